#include "net/auth.h"

#include "net/wire.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace remora::auth {
namespace {

constexpr std::string_view kNodeKeyPrefix = "remora-node-key ";

std::string Trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// HMAC-SHA256 over the concatenation of `parts`.
Mac Hmac(const std::uint8_t* key, std::size_t key_len, std::span<const iovec> parts) {
  struct CtxFree {
    void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
  };
  // One fetch per thread: fetching walks OpenSSL's provider tables.
  thread_local EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  Mac out{};
  std::unique_ptr<EVP_MAC_CTX, CtxFree> ctx(EVP_MAC_CTX_new(mac));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  std::size_t len = 0;
  bool ok = ctx && EVP_MAC_init(ctx.get(), key, key_len, params) == 1;
  for (const iovec& p : parts)
    if (ok && p.iov_len)
      ok = EVP_MAC_update(ctx.get(), static_cast<const unsigned char*>(p.iov_base), p.iov_len) == 1;
  ok = ok && EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) == 1;
  // Never a proof anybody could compute (all zeros) if the library fails.
  if (!ok) (void)RandomBytes(out.data(), out.size());
  return out;
}

iovec Iov(const void* p, std::size_t n) { return {const_cast<void*>(p), n}; }

// `with_grant`: T' (F and G) rather than T || F, when F was sent.
Mac TranscriptMac(const Key& key, std::string_view label, const Transcript& t,
                  bool with_grant = true) {
  std::uint8_t fixed[20];
  fixed[0] = static_cast<std::uint8_t>(t.version);
  fixed[1] = static_cast<std::uint8_t>(t.version >> 8);
  for (int i = 0; i < 4; ++i) {
    fixed[2 + i] = static_cast<std::uint8_t>(t.processor_node >> (8 * i));
    fixed[6 + i] = static_cast<std::uint8_t>(t.memory_node >> (8 * i));
  }
  for (int i = 0; i < 8; ++i) fixed[10 + i] = static_cast<std::uint8_t>(t.incarnation >> (8 * i));
  fixed[18] = 1;  // F
  fixed[19] = t.untagged_granted ? 1 : 0;
  const std::size_t flags = !t.untagged_requested ? 0 : with_grant ? 2 : 1;
  const iovec parts[] = {Iov(label.data(), label.size()), Iov(fixed, 18),
                         Iov(t.server_nonce.data(), t.server_nonce.size()),
                         Iov(t.client_nonce.data(), t.client_nonce.size()), Iov(fixed + 18, flags)};
  return Hmac(key.data(), key.size(), parts);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Status RandomBytes(void* out, std::size_t len) {
  if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(len)) != 1)
    return {Code::kInternal, "RAND_bytes failed"};
  return Status::Ok();
}

Status NewNonce(Nonce* nonce) { return RandomBytes(nonce->data(), nonce->size()); }

std::uint64_t NewIncarnation() {
  std::uint64_t v = 0;
  if (!RandomBytes(&v, sizeof v).ok())
    v = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) *
            0x9E3779B97F4A7C15ull ^
        static_cast<std::uint64_t>(getpid());
  return v != 0 ? v : 1;
}

Key DeriveNodeKey(std::string_view cluster_secret, NodeId node) {
  static constexpr char kSalt[] = "remora node key v2";
  const std::uint8_t info[4] = {
      static_cast<std::uint8_t>(node), static_cast<std::uint8_t>(node >> 8),
      static_cast<std::uint8_t>(node >> 16), static_cast<std::uint8_t>(node >> 24)};
  Key key{};
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr), EVP_PKEY_CTX_free);
  std::size_t len = key.size();
  bool ok = ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) == 1 &&
            EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), reinterpret_cast<const unsigned char*>(kSalt),
                                        sizeof kSalt - 1) == 1 &&
            EVP_PKEY_CTX_set1_hkdf_key(
                ctx.get(), reinterpret_cast<const unsigned char*>(cluster_secret.data()),
                static_cast<int>(cluster_secret.size())) == 1 &&
            EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), info, sizeof info) == 1 &&
            EVP_PKEY_derive(ctx.get(), key.data(), &len) == 1;
  // Never fall back to a key anybody could compute.
  if (!ok) (void)RandomBytes(key.data(), key.size());
  return key;
}

bool IsNodeKey(std::string_view secret) { return secret.starts_with(kNodeKeyPrefix); }

std::string EncodeNodeKey(NodeId node, const Key& key) {
  static const char* hex = "0123456789abcdef";
  std::string s(kNodeKeyPrefix);
  s += std::to_string(node) + " ";
  for (std::uint8_t b : key) {
    s.push_back(hex[b >> 4]);
    s.push_back(hex[b & 15]);
  }
  return s;
}

Status ClientNodeKey(std::string_view secret, NodeId node, Key* key) {
  if (!IsNodeKey(secret)) {
    *key = DeriveNodeKey(secret, node);
    return Status::Ok();
  }
  std::string_view rest = secret.substr(kNodeKeyPrefix.size());
  const std::size_t sp = rest.find(' ');
  if (sp == std::string_view::npos || rest.size() - sp - 1 != 2 * key->size())
    return {Code::kInvalidArgument, "malformed node key (want 'remora-node-key <id> <64 hex>')"};
  const std::string id_text(rest.substr(0, sp));
  char* end = nullptr;
  errno = 0;
  const unsigned long long id = std::strtoull(id_text.c_str(), &end, 10);
  if (id_text.empty() || *end != '\0' || errno != 0 || id > UINT32_MAX)
    return {Code::kInvalidArgument, "malformed node id in node key"};
  if (id != node)
    return {Code::kAuthFailed,
            "the node key is for processor node " + id_text + ", not node " + std::to_string(node)};
  std::string_view hex = rest.substr(sp + 1);
  for (std::size_t i = 0; i < key->size(); ++i) {
    const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return {Code::kInvalidArgument, "malformed hex in node key"};
    (*key)[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return Status::Ok();
}

Mac ClientProof(const Key& key, const Transcript& t) {
  return TranscriptMac(key, "remora-c2", t, /*with_grant=*/false);
}
Mac ServerProof(const Key& key, const Transcript& t) { return TranscriptMac(key, "remora-s2", t); }

FrameKeys DeriveFrameKeys(const Key& key, const Transcript& t) {
  FrameKeys k;
  Mac cs = TranscriptMac(key, "remora-k-cs", t), sc = TranscriptMac(key, "remora-k-sc", t);
  std::memcpy(k.client_to_server.data(), cs.data(), cs.size());
  std::memcpy(k.server_to_client.data(), sc.data(), sc.size());
  return k;
}

Tag FrameTag(const Key& key, std::uint64_t seq, const std::uint8_t* header,
             std::span<const iovec> payload) {
  struct CtxFree {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  };
  // One context and one fetch per thread, reused for every frame: only the
  // key and the nonce change.
  thread_local EVP_CIPHER* gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  thread_local std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  std::uint8_t nonce[12] = {};
  for (int i = 0; i < 8; ++i) nonce[i] = static_cast<std::uint8_t>(seq >> (8 * i));
  Tag tag{};
  int len = 0;
  bool ok = gcm && ctx && EVP_EncryptInit_ex2(ctx.get(), gcm, key.data(), nonce, nullptr) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, header, wire::kHeaderSize) == 1;
  for (const iovec& p : payload)
    if (ok && p.iov_len)
      ok =
          EVP_EncryptUpdate(ctx.get(), nullptr, &len, static_cast<const unsigned char*>(p.iov_base),
                            static_cast<int>(p.iov_len)) == 1;
  std::uint8_t none[16];  // GCM's final writes no ciphertext: there was none
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), none, &len) == 1 &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()),
                           tag.data()) == 1;
  if (!ok) (void)RandomBytes(tag.data(), tag.size());
  return tag;
}

Tag FrameTag(const Key& key, std::uint64_t seq, const std::uint8_t* header, const void* payload,
             std::size_t len) {
  const iovec p = Iov(payload, len);
  return FrameTag(key, seq, header, std::span<const iovec>(&p, 1));
}

bool MacEqual(const std::uint8_t* a, const std::uint8_t* b) {
  return CRYPTO_memcmp(a, b, wire::kMacLen) == 0;
}

bool TagEqual(const std::uint8_t* a, const std::uint8_t* b) {
  return CRYPTO_memcmp(a, b, wire::kFrameTagLen) == 0;
}

Status LoadSecretFile(const std::string& path, std::string* secret) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    return {Code::kInvalidArgument, "cannot read secret file " + path + ": " +
                                        std::strerror(errno) +
                                        (errno == ELOOP ? " (a symlink is not accepted)" : "")};
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return {Code::kInvalidArgument, "secret file " + path + " is not a regular file"};
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
    return {Code::kInvalidArgument, "secret file " + path + " is accessible by other users (mode " +
                                        mode + "); run: chmod 600 " + path};
  }
  std::string raw;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return {Code::kInvalidArgument, "cannot read secret file " + path};
    }
    if (n == 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
    if (raw.size() > (1u << 20)) {
      close(fd);
      return {Code::kInvalidArgument, "secret file " + path + " is larger than 1 MiB"};
    }
  }
  close(fd);
  std::string s = Trim(raw);
  if (s.size() < kMinSecretLen)
    return {Code::kInvalidArgument, "secret in " + path + " is " + std::to_string(s.size()) +
                                        " bytes; at least " + std::to_string(kMinSecretLen) +
                                        " are required (e.g. 32 random bytes as hex)"};
  *secret = std::move(s);
  return Status::Ok();
}

Status GenerateSecret(std::string* secret) {
  std::uint8_t raw[32];
  REMORA_RETURN_IF_ERROR(RandomBytes(raw, sizeof raw));
  static const char* hex = "0123456789abcdef";
  secret->clear();
  for (std::uint8_t b : raw) {
    secret->push_back(hex[b >> 4]);
    secret->push_back(hex[b & 15]);
  }
  return Status::Ok();
}

Status WriteSecretFile(const std::string& path, const std::string& secret) {
  // Remove whatever is there (a stale file, or a symlink planted in /tmp) and
  // create afresh with O_EXCL so the secret never lands in someone else's file.
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return {Code::kIoError, "cannot replace " + path + ": " + std::strerror(errno)};
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return {Code::kIoError, "cannot create " + path + ": " + std::strerror(errno)};
  std::string line = secret + "\n";
  bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(fd);
  if (!ok) return {Code::kIoError, "cannot write " + path};
  return Status::Ok();
}

}  // namespace remora::auth
