#include "net/auth.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

std::string Hex(const Mac& m) {
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

// Expected values computed independently (Python's hmac module, HKDF written
// out as extract and one expand step).
TEST(AuthTest, KeysProofsAndTagsMatchReferenceHmac) {
  Key k = DeriveNodeKey(kSecret, 5);
  EXPECT_EQ(Hex(k), "e80b6843a39d6703d20fe8430183e4ff838b5d72ebddbc8383e14dbf05b72460");
  Transcript t = SampleTranscript();
  EXPECT_EQ(Hex(ClientProof(k, t)),
            "5046b6baca2623f4a038f053e0aa89274ffd62b0e280921efd309fc2410d6183");
  EXPECT_EQ(Hex(ServerProof(k, t)),
            "aedf4ce4c0f5a06e70f4315a9058ea1bb5246a616a08ca0e3649226bd38f79eb");
  FrameKeys fk = DeriveFrameKeys(k, t);
  std::uint8_t header[wire::kHeaderSize];
  for (std::size_t i = 0; i < sizeof header; ++i) header[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(Hex(FrameTag(fk.client_to_server, 7, header, "payload", 7)),
            "20f2fced371cbc99bf23dd3f29c1db424d55684dcc12a11126900add14e76c96");
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

// Plays the server side with `server_secret` (the cluster secret).
void ScriptedServer(int fd, std::string server_secret, bool corrupt_proof) {
  std::uint64_t deadline = net::DeadlineAfterMs(5000);
  Transcript t;
  t.memory_node = 42;
  t.server_nonce = CountingNonce();
  std::uint8_t hello[wire::kHeaderSize + wire::kNonceLen];
  wire::EncodeHeader(wire::MakeRequest(wire::MsgType::kHello, 0, 0, 42, 0, wire::kNonceLen), hello);
  std::memcpy(hello + wire::kHeaderSize, t.server_nonce.data(), t.server_nonce.size());
  if (!net::WriteFull(fd, hello, sizeof hello, deadline).ok()) return;
  std::uint8_t req[wire::kHeaderSize + wire::kMacLen + wire::kNonceLen];
  if (!net::ReadFull(fd, req, sizeof req, deadline).ok()) return;
  wire::Header h = wire::DecodeHeader(req);
  EXPECT_EQ(h.type, static_cast<std::uint16_t>(wire::MsgType::kAuth));
  EXPECT_EQ(h.arg0, 5u);  // the client's node id
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
    Mac proof = ServerProof(key, t);
    if (corrupt_proof) proof[3] ^= 1;
    out.assign(reinterpret_cast<char*>(proof.data()), proof.size());
    rep = wire::MakeReply(h, Code::kOk, wire::kMacLen);
    rep.arg0 = 42;
  }
  std::uint8_t rb[wire::kHeaderSize];
  wire::EncodeHeader(rep, rb);
  (void)net::WriteFull(fd, rb, sizeof rb, deadline);
  (void)net::WriteFull(fd, out.data(), out.size(), deadline);
}

Status RunHandshake(const std::string& client_secret, const std::string& server_secret,
                    bool corrupt_proof, net::HandshakeResult* result) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  std::thread server(ScriptedServer, sv[1], server_secret, corrupt_proof);
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
