#include "net/auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace remora::auth {
namespace {

Mac Proof(std::string_view secret, std::string_view label, const Nonce& nonce) {
  std::uint8_t msg[16 + wire::kNonceLen];
  std::memcpy(msg, label.data(), label.size());
  std::memcpy(msg + label.size(), nonce.data(), nonce.size());
  Mac mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), msg,
       label.size() + nonce.size(), mac.data(), &len);
  return mac;
}

std::string Trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

}  // namespace

Status RandomBytes(void* out, std::size_t len) {
  if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(len)) != 1)
    return {Code::kInternal, "RAND_bytes failed"};
  return Status::Ok();
}

Status NewNonce(Nonce* nonce) { return RandomBytes(nonce->data(), nonce->size()); }

Mac ClientProof(std::string_view secret, const Nonce& server_nonce) {
  return Proof(secret, "remora-c", server_nonce);
}

Mac ServerProof(std::string_view secret, const Nonce& client_nonce) {
  return Proof(secret, "remora-s", client_nonce);
}

bool MacEqual(const std::uint8_t* a, const std::uint8_t* b) {
  return CRYPTO_memcmp(a, b, wire::kMacLen) == 0;
}

Status LoadSecretFile(const std::string& path, std::string* secret) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {Code::kInvalidArgument, "cannot read secret file " + path};
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = Trim(ss.str());
  if (s.empty()) return {Code::kInvalidArgument, "secret file " + path + " is empty"};
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    spdlog::warn("secret file {} is accessible by other users (mode {:o}); use chmod 600", path,
                 st.st_mode & 0777);
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
