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

// Expected values computed independently (Python's hmac module).
TEST(AuthTest, ProofsMatchReferenceHmac) {
  Nonce n = CountingNonce();
  EXPECT_EQ(Hex(ClientProof("integration-test-secret", n)),
            "1e15d3e5119917518acd31bdfb2526b2c40869bce0ffe60c9e844e4fc5f6e663");
  EXPECT_EQ(Hex(ServerProof("integration-test-secret", n)),
            "efff358d2bc99d0f5b00656f7912d6f91227bcf83106d16c16bfbfd71b5c59ee");
}

TEST(AuthTest, ProofsDependOnSecretNonceAndDirection) {
  Nonce a = CountingNonce(), b = CountingNonce();
  b[31] ^= 1;
  EXPECT_NE(ClientProof("s", a), ClientProof("s", b));
  EXPECT_NE(ClientProof("s", a), ClientProof("t", a));
  EXPECT_NE(ClientProof("s", a), ServerProof("s", a));  // no reflection of a proof
  EXPECT_EQ(ClientProof("s", a), ClientProof("s", a));
}

TEST(AuthTest, MacEqualComparesAllBytes) {
  Mac a = ClientProof("s", CountingNonce());
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
  ASSERT_TRUE(LoadSecretFile(Write("a", "  hunter2 \n\n"), &s).ok());
  EXPECT_EQ(s, "hunter2");
  ASSERT_TRUE(LoadSecretFile(Write("b", "with inner space\n"), &s).ok());
  EXPECT_EQ(s, "with inner space");
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
  std::string victim = Write("victim", "do not touch\n");
  std::string link = dir_ + "/link.secret";
  ASSERT_EQ(symlink(victim.c_str(), link.c_str()), 0);
  ASSERT_TRUE(WriteSecretFile(link, "abc").ok());
  std::string s;
  ASSERT_TRUE(LoadSecretFile(victim, &s).ok());
  EXPECT_EQ(s, "do not touch");
  ASSERT_TRUE(LoadSecretFile(link, &s).ok());
  EXPECT_EQ(s, "abc");
}

// ---- the client handshake against a scripted server on a socketpair ----

// Plays the server side; `server_secret` decides what it accepts and proves.
void ScriptedServer(int fd, std::string server_secret, bool corrupt_proof) {
  std::uint64_t deadline = net::DeadlineAfterMs(5000);
  Nonce ns = CountingNonce();
  std::uint8_t hello[wire::kHeaderSize + wire::kNonceLen];
  wire::EncodeHeader(wire::MakeRequest(wire::MsgType::kHello, 0, 0, 42, 0, wire::kNonceLen), hello);
  std::memcpy(hello + wire::kHeaderSize, ns.data(), ns.size());
  if (!net::WriteFull(fd, hello, sizeof hello, deadline).ok()) return;
  std::uint8_t req[wire::kHeaderSize + wire::kMacLen + wire::kNonceLen];
  if (!net::ReadFull(fd, req, sizeof req, deadline).ok()) return;
  wire::Header h = wire::DecodeHeader(req);
  EXPECT_EQ(h.type, static_cast<std::uint16_t>(wire::MsgType::kAuth));
  EXPECT_EQ(h.arg0, 5u);  // the client's node id
  Mac expect = ClientProof(server_secret, ns);
  std::string out;
  wire::Header rep;
  if (!MacEqual(expect.data(), req + wire::kHeaderSize)) {
    out = "wrong secret";
    rep = wire::MakeReply(h, Code::kAuthFailed, static_cast<std::uint32_t>(out.size()));
  } else {
    Nonce nc;
    std::memcpy(nc.data(), req + wire::kHeaderSize + wire::kMacLen, nc.size());
    Mac proof = ServerProof(server_secret, nc);
    if (corrupt_proof) proof[3] ^= 1;
    out.assign(reinterpret_cast<char*>(proof.data()), proof.size());
    rep = wire::MakeReply(h, Code::kOk, wire::kMacLen);
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
  Status st = net::ClientHandshake(sv[0], client_secret, 5, 5000, result);
  server.join();
  close(sv[0]);
  close(sv[1]);
  return st;
}

TEST(HandshakeTest, SucceedsWithTheSameSecret) {
  net::HandshakeResult r;
  Status st = RunHandshake("k", "k", false, &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(r.server_node_id, 42u);
}

TEST(HandshakeTest, ServerRefusesAWrongSecret) {
  EXPECT_EQ(RunHandshake("wrong", "k", false, nullptr).code(), Code::kAuthFailed);
}

TEST(HandshakeTest, ClientRefusesAServerThatCannotProveTheSecret) {
  EXPECT_EQ(RunHandshake("k", "k", true, nullptr).code(), Code::kAuthFailed);
}

TEST(HandshakeTest, SilentServerTimesOut) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  Status st = net::ClientHandshake(sv[0], "k", 1, 200);
  EXPECT_EQ(st.code(), Code::kTimeout);
  close(sv[1]);
  close(sv[0]);
}

}  // namespace
}  // namespace remora::auth
