#include "net/auth.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "net/handshake.h"
#include "net/socket_util.h"
#include "net/wire.h"

namespace remora::auth {
namespace {

template <std::size_t N>
std::string Hex(const std::array<std::uint8_t, N>& m) {
  std::string s;
  char b[3];
  for (auto c : m) {
    std::snprintf(b, sizeof b, "%02x", c);
    s += b;
  }
  return s;
}

Nonce CountingNonce() {
  Nonce n;
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(i);
  return n;
}

constexpr char kSecret[] = "integration-test-secret-0123456789abcdef";

Transcript SampleTranscript() {
  Transcript t;
  t.processor_node = 5;
  t.memory_node = 42;
  t.incarnation = 0x0102030405060708ull;
  t.server_nonce = CountingNonce();
  for (std::size_t i = 0; i < t.client_nonce.size(); ++i)
    t.client_nonce[i] = static_cast<std::uint8_t>(32 + i);
  return t;
}

// The client-to-server tag of frame 7 (header bytes 0..47, payload
// "payload") under the frame keys of `t`.
std::string SampleClientTag(const Key& k, const Transcript& t) {
  const FrameKeys fk = DeriveFrameKeys(k, t);
  std::uint8_t header[wire::kHeaderSize];
  for (std::size_t i = 0; i < sizeof header; ++i) header[i] = static_cast<std::uint8_t>(i);
  return Hex(FrameTag(fk.client_to_server, 7, header, "payload", 7));
}

// Expected values computed independently (Python's hmac module, HKDF written
// out as extract and one expand step, the frame tag with AES-GCM of the
// `cryptography` package over no plaintext): the protocol-4 transcript T,
// and a local connection's (auth.h, "Local connections": Pc over T || F, Ps
// and the frame keys over T || F || G, here with G = 0).
TEST(AuthTest, KeysProofsAndTagsMatchReference) {
  const Key k = DeriveNodeKey(kSecret, 5);
  EXPECT_EQ(Hex(k), "e80b6843a39d6703d20fe8430183e4ff838b5d72ebddbc8383e14dbf05b72460");
  struct Case {
    bool untagged_requested;
    const char* client_proof;
    const char* server_proof;
    const char* tag;
  };
  const Case cases[] = {
      {false, "648e5fa6ce670a028a3862f00684ef982a149a663d04de8c5dce179006b538c1",
       "ae677a873103349e6dc7285c9a2dc4d99bd633583b518699ac296e072f6588ad",
       "3a60f4ed0818b3278234bc9100b9e802"},
      {true, "d98658d6334edf60796c48603cd4b65ec631ee838f8db2149119b69628295cc0",
       "18d7958f2cba9538a6ccccb6d07145d1cf08bcfc5b4ff6c412096e126b967887",
       "78bcfa3601d4321231379620398b2de6"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.untagged_requested ? "T || F || G" : "T");
    Transcript t = SampleTranscript();
    t.untagged_requested = c.untagged_requested;
    EXPECT_EQ(Hex(ClientProof(k, t)), c.client_proof);
    EXPECT_EQ(Hex(ServerProof(k, t)), c.server_proof);
    EXPECT_EQ(SampleClientTag(k, t), c.tag);
  }
}

// The grant is bound into the server's proof, never into the client's; the
// request into both, so a relay can neither add nor drop F.
TEST(AuthTest, LocalConnectionsBindTheRequestAndTheGrant) {
  const Key k = DeriveNodeKey(kSecret, 5);
  Transcript t = SampleTranscript();
  t.untagged_requested = true;
  const Mac client = ClientProof(k, t);
  t.untagged_granted = true;
  EXPECT_EQ(Hex(ServerProof(k, t)),
            "0cf1cade80a92d80bd406c753953f12313bccb667381dec49e23dde5cf49c1e8");
  EXPECT_EQ(ClientProof(k, t), client);
  EXPECT_NE(ClientProof(k, SampleTranscript()), client);
}

// Everything the proofs must bind: change any of it and the proof changes.
TEST(AuthTest, ProofsBindNodeIdsNoncesVersionAndDirection) {
  const Key k = DeriveNodeKey(kSecret, 5);
  const Transcript t = SampleTranscript();
  const Mac base = ClientProof(k, t);
  EXPECT_EQ(base, ClientProof(k, t));
  EXPECT_NE(base, ServerProof(k, t));  // no reflection of a proof
  Transcript u = t;
  u.processor_node = 6;
  EXPECT_NE(base, ClientProof(k, u));
  u = t;
  u.memory_node = 43;
  EXPECT_NE(base, ClientProof(k, u));
  u = t;
  u.version = 1;
  EXPECT_NE(base, ClientProof(k, u));
  u = t;
  u.server_nonce[31] ^= 1;
  EXPECT_NE(base, ClientProof(k, u));
  u = t;
  u.client_nonce[0] ^= 1;
  EXPECT_NE(base, ClientProof(k, u));
  EXPECT_NE(base, ClientProof(DeriveNodeKey(kSecret, 6), t));
  FrameKeys fk = DeriveFrameKeys(k, t);
  EXPECT_NE(fk.client_to_server, fk.server_to_client);
}

TEST(AuthTest, NodeKeysAreBoundToTheirNode) {
  const Key k5 = DeriveNodeKey(kSecret, 5);
  EXPECT_NE(k5, DeriveNodeKey(kSecret, 6));
  EXPECT_NE(k5, DeriveNodeKey("another-cluster-secret-0123456789abcdef", 5));
  Key k;
  ASSERT_TRUE(ClientNodeKey(kSecret, 5, &k).ok());  // a cluster secret: derived
  EXPECT_EQ(k, k5);
  const std::string text = EncodeNodeKey(5, k5);
  EXPECT_TRUE(IsNodeKey(text));
  k.fill(0);
  ASSERT_TRUE(ClientNodeKey(text, 5, &k).ok());
  EXPECT_EQ(k, k5);
  // A node key proves its own node and no other.
  EXPECT_EQ(ClientNodeKey(text, 6, &k).code(), Code::kAuthFailed);
  EXPECT_EQ(ClientNodeKey("remora-node-key 5 abc", 5, &k).code(), Code::kInvalidArgument);
}

// A frame's tag covers its number, every header byte and every payload
// byte, and does not depend on how the payload is cut into pieces.
TEST(AuthTest, FrameTagsBindNumberHeaderAndPayload) {
  const FrameKeys fk = DeriveFrameKeys(DeriveNodeKey(kSecret, 5), SampleTranscript());
  std::uint8_t header[wire::kHeaderSize] = {};
  std::string page(4096 * 3 + 17, '\0');
  for (std::size_t i = 0; i < page.size(); ++i) page[i] = static_cast<char>(i * 7 + 3);
  const Tag base = FrameTag(fk.client_to_server, 9, header, page.data(), page.size());
  const iovec pieces[] = {{page.data(), 5},
                          {page.data() + 5, 4096},
                          {page.data() + 4101, 0},
                          {page.data() + 4101, page.size() - 4101}};
  EXPECT_EQ(FrameTag(fk.client_to_server, 9, header, pieces), base);
  EXPECT_NE(FrameTag(fk.client_to_server, 10, header, page.data(), page.size()), base);
  EXPECT_NE(FrameTag(fk.server_to_client, 9, header, page.data(), page.size()), base);
  header[47] ^= 1;
  EXPECT_NE(FrameTag(fk.client_to_server, 9, header, page.data(), page.size()), base);
  header[47] ^= 1;
  page[page.size() - 1] ^= 0x40;
  EXPECT_NE(FrameTag(fk.client_to_server, 9, header, page.data(), page.size()), base);
  EXPECT_NE(FrameTag(fk.client_to_server, 9, header, page.data(), page.size() - 1), base);
  Tag other = base;
  EXPECT_TRUE(TagEqual(base.data(), other.data()));
  other[wire::kFrameTagLen - 1] ^= 0x80;
  EXPECT_FALSE(TagEqual(base.data(), other.data()));
}

TEST(AuthTest, MacEqualComparesAllBytes) {
  Mac a = ClientProof(DeriveNodeKey(kSecret, 1), SampleTranscript());
  Mac b = a;
  EXPECT_TRUE(MacEqual(a.data(), b.data()));
  b[31] ^= 0x80;
  EXPECT_FALSE(MacEqual(a.data(), b.data()));
  b = a;
  b[0] ^= 1;
  EXPECT_FALSE(MacEqual(a.data(), b.data()));
}

TEST(AuthTest, NoncesAreFresh) {
  Nonce a, b;
  ASSERT_TRUE(NewNonce(&a).ok());
  ASSERT_TRUE(NewNonce(&b).ok());
  EXPECT_NE(a, b);
}

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/remora-auth-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    chmod(p.c_str(), 0600);
    return p;
  }
  std::string dir_;
};

TEST_F(SecretFileTest, TrimsWhitespace) {
  std::string s;
  ASSERT_TRUE(
      LoadSecretFile(Write("a", "  hunter2-hunter2-hunter2-hunter2-hunter2 \n\n"), &s).ok());
  EXPECT_EQ(s, "hunter2-hunter2-hunter2-hunter2-hunter2");
  ASSERT_TRUE(LoadSecretFile(Write("b", "with inner space, long enough to pass\n"), &s).ok());
  EXPECT_EQ(s, "with inner space, long enough to pass");
}

// A secret others can read, or one short enough to guess, is refused with a
// message that says how to fix it.
TEST_F(SecretFileTest, RefusesWeakOrExposedSecrets) {
  std::string s = "unchanged";
  const std::string good(40, 'g');
  std::string p = Write("open", good);
  for (mode_t mode : {0640, 0604, 0644, 0660, 0666}) {
    chmod(p.c_str(), mode);
    Status st = LoadSecretFile(p, &s);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << std::oct << mode;
    EXPECT_NE(st.message().find("chmod 600"), std::string::npos) << st.message();
  }
  chmod(p.c_str(), 0400);
  EXPECT_TRUE(LoadSecretFile(p, &s).ok());
  Status st = LoadSecretFile(Write("short", "x\n"), &s);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("at least 32"), std::string::npos) << st.message();
  EXPECT_EQ(LoadSecretFile(Write("31", std::string(31, 'a')), &s).code(), Code::kInvalidArgument);
  EXPECT_TRUE(LoadSecretFile(Write("32", std::string(32, 'a')), &s).ok());
  EXPECT_EQ(LoadSecretFile(dir_, &s).code(), Code::kInvalidArgument);  // not a file
}

TEST_F(SecretFileTest, RefusesEmptyAndMissing) {
  std::string s = "unchanged";
  EXPECT_EQ(LoadSecretFile(Write("e", ""), &s).code(), Code::kInvalidArgument);
  EXPECT_EQ(LoadSecretFile(Write("w", " \n\t\n"), &s).code(), Code::kInvalidArgument);
  EXPECT_EQ(LoadSecretFile(dir_ + "/missing", &s).code(), Code::kInvalidArgument);
  EXPECT_EQ(s, "unchanged");
}

TEST_F(SecretFileTest, GeneratedSecretRoundTripsWithMode0600) {
  std::string s1, s2, back;
  ASSERT_TRUE(GenerateSecret(&s1).ok());
  ASSERT_TRUE(GenerateSecret(&s2).ok());
  EXPECT_EQ(s1.size(), 64u);
  EXPECT_NE(s1, s2);
  EXPECT_EQ(s1.find_first_not_of("0123456789abcdef"), std::string::npos);
  std::string path = dir_ + "/gen.secret";
  ASSERT_TRUE(WriteSecretFile(path, s1).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(LoadSecretFile(path, &back).ok());
  EXPECT_EQ(back, s1);
}

TEST_F(SecretFileTest, WriteReplacesASymlinkInsteadOfFollowingIt) {
  const std::string kept = "do not touch, this file is not the secret";
  const std::string fresh = "the new secret, thirty-two bytes or more";
  std::string victim = Write("victim", kept + "\n");
  std::string link = dir_ + "/link.secret";
  ASSERT_EQ(symlink(victim.c_str(), link.c_str()), 0);
  std::string s;
  EXPECT_EQ(LoadSecretFile(link, &s).code(), Code::kInvalidArgument);  // never followed
  ASSERT_TRUE(WriteSecretFile(link, fresh).ok());
  ASSERT_TRUE(LoadSecretFile(victim, &s).ok());
  EXPECT_EQ(s, kept);
  ASSERT_TRUE(LoadSecretFile(link, &s).ok());
  EXPECT_EQ(s, fresh);
}

// ---- the client handshake against a scripted server on a socketpair ----

// How the scripted server answers a request for untagged frames.
enum class Grant { kGrant, kRefuse, kLie };  // kLie: grants, but proves a refusal

// Plays the server side with `server_secret` (the cluster secret).
void ScriptedServer(int fd, std::string server_secret, bool corrupt_proof,
                    Grant grant = Grant::kGrant) {
  std::uint64_t deadline = net::DeadlineAfterMs(5000);
  Transcript t;
  t.memory_node = 42;
  t.server_nonce = CountingNonce();
  std::uint8_t hello[wire::kHeaderSize + wire::kNonceLen];
  wire::EncodeHeader(wire::MakeRequest(wire::MsgType::kHello, 0, 0, 42, 0, wire::kNonceLen), hello);
  std::memcpy(hello + wire::kHeaderSize, t.server_nonce.data(), t.server_nonce.size());
  if (!net::WriteFull(fd, hello, sizeof hello, deadline).ok()) return;
  std::uint8_t req[wire::kHeaderSize + wire::kAuthPayloadLocal];
  if (!net::ReadFull(fd, req, wire::kHeaderSize, deadline).ok()) return;
  wire::Header h = wire::DecodeHeader(req);
  EXPECT_EQ(h.type, static_cast<std::uint16_t>(wire::MsgType::kAuth));
  EXPECT_EQ(h.arg0, 5u);  // the client's node id
  EXPECT_TRUE(wire::ValidateRequest(h).ok());
  if (h.payload_len > wire::kAuthPayloadLocal) return;
  if (!net::ReadFull(fd, req + wire::kHeaderSize, h.payload_len, deadline).ok()) return;
  t.untagged_requested = h.payload_len == wire::kAuthPayloadLocal;
  t.processor_node = static_cast<NodeId>(h.arg0);
  std::memcpy(t.client_nonce.data(), req + wire::kHeaderSize + wire::kMacLen,
              t.client_nonce.size());
  const Key key = DeriveNodeKey(server_secret, t.processor_node);
  Mac expect = ClientProof(key, t);
  std::string out;
  wire::Header rep;
  if (!MacEqual(expect.data(), req + wire::kHeaderSize)) {
    out = "wrong key";
    rep = wire::MakeReply(h, Code::kAuthFailed, static_cast<std::uint32_t>(out.size()));
  } else {
    t.untagged_granted = t.untagged_requested && grant == Grant::kGrant;
    Mac proof = ServerProof(key, t);
    if (corrupt_proof) proof[3] ^= 1;
    out.assign(reinterpret_cast<char*>(proof.data()), proof.size());
    rep = wire::MakeReply(h, Code::kOk, wire::kMacLen);
    rep.arg0 = 42;
    rep.arg1 = t.untagged_requested && grant != Grant::kRefuse ? 1 : 0;
  }
  std::uint8_t rb[wire::kHeaderSize];
  wire::EncodeHeader(rep, rb);
  (void)net::WriteFull(fd, rb, sizeof rb, deadline);
  (void)net::WriteFull(fd, out.data(), out.size(), deadline);
}

Status RunHandshake(const std::string& client_secret, const std::string& server_secret,
                    bool corrupt_proof, net::HandshakeResult* result, Grant grant = Grant::kGrant) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  std::thread server(ScriptedServer, sv[1], server_secret, corrupt_proof, grant);
  net::HandshakeResult unused;
  Status st = net::ClientHandshake(sv[0], client_secret, 5, 0, 5000, result ? result : &unused);
  server.join();
  close(sv[0]);
  close(sv[1]);
  return st;
}

TEST(HandshakeTest, SucceedsWithTheSameSecret) {
  net::HandshakeResult r;
  Status st = RunHandshake(kSecret, kSecret, false, &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(r.server_node_id, 42u);
}

TEST(HandshakeTest, SucceedsWithTheNodesOwnKey) {
  net::HandshakeResult r;
  Status st = RunHandshake(EncodeNodeKey(5, DeriveNodeKey(kSecret, 5)), kSecret, false, &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(HandshakeTest, AnotherNodesKeyCannotClaimThisNode) {
  // The client is node 5 but holds node 6's key: refused before sending.
  EXPECT_EQ(
      RunHandshake(EncodeNodeKey(6, DeriveNodeKey(kSecret, 6)), kSecret, false, nullptr).code(),
      Code::kAuthFailed);
}

TEST(HandshakeTest, ServerRefusesAWrongSecret) {
  EXPECT_EQ(RunHandshake("wrong-secret-wrong-secret-wrong-secret", kSecret, false, nullptr).code(),
            Code::kAuthFailed);
}

TEST(HandshakeTest, ClientRefusesAServerThatCannotProveTheSecret) {
  EXPECT_EQ(RunHandshake(kSecret, kSecret, true, nullptr).code(), Code::kAuthFailed);
}

// A socketpair is a unix socket to ourselves: the client asks for untagged
// frames. Granted, it has no frame keys; refused, it tags as over TCP; a
// server (or relay) that claims a grant its proof does not cover is refused.
TEST(HandshakeTest, LocalClientsAskForUntaggedFrames) {
  net::HandshakeResult r;
  ASSERT_TRUE(RunHandshake(kSecret, kSecret, false, &r, Grant::kGrant).ok());
  EXPECT_FALSE(r.frame_keys.has_value());

  net::HandshakeResult refused;
  ASSERT_TRUE(RunHandshake(kSecret, kSecret, false, &refused, Grant::kRefuse).ok());
  ASSERT_TRUE(refused.frame_keys.has_value());

  net::HandshakeResult lie;
  EXPECT_EQ(RunHandshake(kSecret, kSecret, false, &lie, Grant::kLie).code(), Code::kAuthFailed);
}

TEST(HandshakeTest, OnlyUnixPeersOfThisUidOrRootAreTrusted) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  EXPECT_TRUE(net::TrustedLocalPeer(sv[0]));
  close(sv[0]);
  close(sv[1]);
  // A TCP connection over loopback is never trusted, whoever is at the end.
  int lfd = -1;
  std::string bound;
  ASSERT_TRUE(net::ListenTcp("127.0.0.1:0", &lfd, &bound).ok());
  int cfd = -1;
  ASSERT_TRUE(net::ConnectTcp(bound, 2000, &cfd).ok());
  EXPECT_FALSE(net::TrustedLocalPeer(cfd));
  close(cfd);
  close(lfd);
  // A unix peer running as another uid (only root can make one here).
  // SO_PEERCRED records the credentials at connect(), so the other uid
  // makes its own connection, to a listening socket.
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  const std::string path = ::testing::TempDir() + "/remora-trust-" + std::to_string(getpid());
  ::unlink(path.c_str());
  int ufd = -1;
  ASSERT_TRUE(net::ListenUnix(path, &ufd).ok());
  ::chmod(path.c_str(), 0777);
  const pid_t other = fork();
  if (other == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    int fd = -1;
    _exit(net::ConnectUnix(path, 2000, &fd).ok() ? 0 : 3);
  }
  ASSERT_TRUE(net::WaitFd(ufd, POLLIN, net::DeadlineAfterMs(5000)).ok());
  const int afd = accept(ufd, nullptr, nullptr);
  ASSERT_GE(afd, 0);
  EXPECT_FALSE(net::TrustedLocalPeer(afd));  // nobody: neither us nor root
  close(afd);
  int status = 0;
  waitpid(other, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  close(ufd);
  ::unlink(path.c_str());
}

TEST(HandshakeTest, SilentServerTimesOut) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  net::HandshakeResult r;
  Status st = net::ClientHandshake(sv[0], kSecret, 1, 0, 200, &r);
  EXPECT_EQ(st.code(), Code::kTimeout);
  close(sv[1]);
  close(sv[0]);
}

}  // namespace
}  // namespace remora::auth
