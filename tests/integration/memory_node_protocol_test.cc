// The memory node against bad peers: every malformed input, before and after
// authentication, must cost the offender at most its own connection, while
// the node stays up and keeps serving a well-behaved client that is connected
// the whole time.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <random>
#include <set>
#include <thread>
#include <vector>

#include "harness.h"
#include "net/stream_transport.h"
#include "raw_peer.h"
#include "remora/stats.h"

namespace remora::testing {
namespace {

using wire::MsgType;

constexpr std::uint64_t kBase = 0x600000000000ull;

class ProtocolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    MemoryNodeProcessOptions o;
    o.extra_args = {"--auth-timeout-ms", "500"};
    node_ = new MemoryNodeProcess(o);
    if (!node_->started()) return;
    good_ = node_->Connect(TransportKind::kTcp, 1).release();
    if (good_) {
      (void)good_->CreateSpace(kSpace);
      (void)good_->RegisterRange(kSpace, kBase, 1 << 20);
    }
  }
  static void TearDownTestSuite() {
    delete good_;
    delete node_;
  }

  void SetUp() override {
    ASSERT_TRUE(node_->started());
    ASSERT_NE(good_, nullptr);
  }

  // After every bad peer: the node is alive and the long-lived client still
  // works, reading back the page it wrote before.
  void TearDown() override {
    ASSERT_TRUE(node_->Alive()) << "the memory node died";
    std::vector<char> page(kPageSize, static_cast<char>(++round_));
    ASSERT_TRUE(good_->WritePage(kSpace, kBase, page.data()).ok());
    std::vector<char> back(kPageSize);
    Status st = good_->ReadPage(kSpace, kBase, back.data());
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(back, page);
  }

  std::unique_ptr<RawPeer> Authed(NodeId node = 1) {
    auto p = RawPeer::Tcp(node_->tcp_address());
    EXPECT_TRUE(p);
    if (p) {
      EXPECT_EQ(p->Authenticate(node_->secret(), node), Code::kOk);
    }
    return p;
  }

  std::int64_t Counter(const std::string& name) {
    std::string json;
    EXPECT_TRUE(good_->RemoteStatsJson(&json).ok());
    StatsSnapshot s;
    EXPECT_TRUE(StatsSnapshot::FromJson(json, &s).ok());
    return s.Counter(name);
  }

  static wire::Header Req(MsgType t, std::uint64_t id = 5, Asid asid = kSpace,
                          std::uint64_t arg0 = 0, std::uint64_t arg1 = 0, std::uint32_t len = 0) {
    return wire::MakeRequest(t, id, asid, arg0, arg1, len);
  }

  static constexpr Asid kSpace = MakeAsid(1, 1);
  static MemoryNodeProcess* node_;
  static Transport* good_;
  static int round_;
};

MemoryNodeProcess* ProtocolTest::node_ = nullptr;
Transport* ProtocolTest::good_ = nullptr;
int ProtocolTest::round_ = 0;

// ---- before authentication ----

TEST_F(ProtocolTest, ServerGreetsFirst) {
  auto p = RawPeer::Tcp(node_->tcp_address());
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->ReadHello());
}

TEST_F(ProtocolTest, RequestBeforeAuthIsRefusedAndCounted) {
  std::int64_t before = Counter("memnode_auth_failures");
  auto p = RawPeer::Tcp(node_->tcp_address());
  ASSERT_TRUE(p->ReadHello());
  ASSERT_TRUE(p->Send(Req(MsgType::kReadPage, 9, kSpace, kBase)));
  EXPECT_EQ(p->ReplyCode(), Code::kAuthFailed);
  EXPECT_TRUE(p->WaitClosed());
  EXPECT_EQ(Counter("memnode_auth_failures"), before + 1);
}

TEST_F(ProtocolTest, WrongSecretIsRefusedAndCounted) {
  std::int64_t before = Counter("memnode_auth_failures");
  auto p = RawPeer::Tcp(node_->tcp_address());
  EXPECT_EQ(p->Authenticate("not-the-secret", 1), Code::kAuthFailed);
  EXPECT_TRUE(p->WaitClosed());

  Status st;
  auto t = node_->Connect(TransportKind::kTcp, 1, &st, "also-wrong");
  EXPECT_EQ(t, nullptr);
  EXPECT_EQ(st.code(), Code::kAuthFailed) << st.ToString();
  EXPECT_EQ(Counter("memnode_auth_failures"), before + 2);
}

TEST_F(ProtocolTest, MalformedAuthIsRefused) {
  auto p = RawPeer::Tcp(node_->tcp_address());
  ASSERT_TRUE(p->ReadHello());
  ASSERT_TRUE(p->Send(Req(MsgType::kAuth, 1, 0, 1, 0, 10), std::string(10, 'x')));
  EXPECT_EQ(p->ReplyCode(), Code::kAuthFailed);
  EXPECT_TRUE(p->WaitClosed());
}

TEST_F(ProtocolTest, SilentPeerIsDroppedAfterAuthTimeout) {
  std::int64_t before = Counter("memnode_auth_timeouts");
  auto p = RawPeer::Tcp(node_->tcp_address());
  ASSERT_TRUE(p->ReadHello());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(p->WaitClosed(5000));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  EXPECT_GE(ms, 300);
  EXPECT_LE(ms, 2500);
  EXPECT_EQ(Counter("memnode_auth_timeouts"), before + 1);
}

TEST_F(ProtocolTest, GarbageBeforeAuthDropsTheConnection) {
  std::int64_t before = Counter("memnode_protocol_violations");
  auto p = RawPeer::Tcp(node_->tcp_address());
  std::string junk = "GET / HTTP/1.1\r\nHost: memory-node\r\n\r\n" + std::string(64, 'z');
  ASSERT_TRUE(p->SendBytes(junk.data(), junk.size()));
  EXPECT_TRUE(p->WaitClosed());
  EXPECT_EQ(Counter("memnode_protocol_violations"), before + 1);
}

TEST_F(ProtocolTest, WrongVersionBeforeAuthDropsTheConnection) {
  auto p = RawPeer::Tcp(node_->tcp_address());
  ASSERT_TRUE(p->ReadHello());
  wire::Header h = Req(MsgType::kAuth, 1, 0, 1, 0, 64);
  h.version = 7;
  ASSERT_TRUE(p->Send(h, std::string(64, 'a')));
  EXPECT_TRUE(p->WaitClosed());
}

TEST_F(ProtocolTest, LargePayloadBeforeAuthDropsTheConnection) {
  // Until it authenticates a peer may send only kAuth's 64 bytes, so it
  // cannot make the node buffer a megabyte per connection.
  std::int64_t before = Counter("memnode_protocol_violations");
  auto p = RawPeer::Tcp(node_->tcp_address());
  ASSERT_TRUE(p->ReadHello());
  ASSERT_TRUE(p->Send(Req(MsgType::kAuth, 1, 0, 1, 0, 65536)));
  EXPECT_TRUE(p->WaitClosed());
  EXPECT_EQ(Counter("memnode_protocol_violations"), before + 1);
}

// ---- after authentication: framing errors drop the peer ----

TEST_F(ProtocolTest, WrongMagicDropsTheConnection) {
  std::int64_t before = Counter("memnode_protocol_violations");
  auto p = Authed();
  wire::Header h = Req(MsgType::kPing);
  h.magic = 0x12345678;
  ASSERT_TRUE(p->Send(h));
  EXPECT_TRUE(p->WaitClosed());
  EXPECT_EQ(Counter("memnode_protocol_violations"), before + 1);
}

TEST_F(ProtocolTest, WrongVersionDropsTheConnection) {
  auto p = Authed();
  wire::Header h = Req(MsgType::kPing);
  h.version = wire::kVersion + 1;
  ASSERT_TRUE(p->Send(h));
  EXPECT_TRUE(p->WaitClosed());
}

TEST_F(ProtocolTest, OversizedPayloadLenDropsTheConnection) {
  std::int64_t before = Counter("memnode_protocol_violations");
  auto p = Authed();
  // Announces 4 GiB; the node must not wait for (or allocate) it.
  ASSERT_TRUE(p->Send(Req(MsgType::kWritePage, 5, kSpace, kBase, 0, 0xffffffffu)));
  EXPECT_TRUE(p->WaitClosed());
  auto q = Authed();
  ASSERT_TRUE(q->Send(Req(MsgType::kWritePages, 5, kSpace, 0, 1, wire::kMaxPayload + 1)));
  EXPECT_TRUE(q->WaitClosed());
  EXPECT_EQ(Counter("memnode_protocol_violations"), before + 2);
}

TEST_F(ProtocolTest, TruncatedMessageCostsOnlyThatConnection) {
  std::int64_t before = Counter("memnode_truncated_messages");
  {
    auto p = Authed();
    ASSERT_TRUE(p->Send(Req(MsgType::kWritePage, 5, kSpace, kBase + kPageSize, 0, 4096),
                        std::string(100, 'q')));
  }  // closes mid-payload
  {
    auto p = Authed();
    std::uint8_t half[20] = {};
    ASSERT_TRUE(p->SendBytes(half, sizeof half));  // closes mid-header
  }
  for (int i = 0; i < 50 && Counter("memnode_truncated_messages") < before + 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(Counter("memnode_truncated_messages"), before + 2);
  // The half-sent page was not stored.
  std::vector<char> buf(kPageSize);
  bool present = true;
  ASSERT_TRUE(good_->ReadPage(kSpace, kBase + kPageSize, buf.data(), &present).ok());
  EXPECT_FALSE(present);
}

// ---- after authentication: bad requests get kBadRequest, the stream lives ----

TEST_F(ProtocolTest, UnknownTypeIsABadRequest) {
  auto p = Authed();
  wire::Header h = Req(MsgType::kPing, 77);
  h.type = 999;
  ASSERT_TRUE(p->Send(h));
  wire::Header r;
  std::string text;
  ASSERT_EQ(p->Read(&r, &text), RawPeer::Result::kMessage);
  EXPECT_EQ(r.status, static_cast<std::int32_t>(Code::kBadRequest));
  EXPECT_EQ(r.req_id, 77u);
  EXPECT_NE(text.find("unknown"), std::string::npos) << text;
  // Same connection still serves.
  ASSERT_TRUE(p->Send(Req(MsgType::kPing, 78)));
  EXPECT_EQ(p->ReplyCode(), Code::kOk);
  // Replies and kHello are not requests either.
  ASSERT_TRUE(p->Send(Req(static_cast<MsgType>(0x8000 | 20), 79)));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kHello, 80)));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kAuth, 81, 0, 1, 0, 64), std::string(64, 'a')));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);  // already authenticated
}

TEST_F(ProtocolTest, PayloadSizeMismatchIsABadRequest) {
  std::int64_t before = Counter("memnode_err_bad_request");
  auto p = Authed();
  ASSERT_TRUE(p->Send(Req(MsgType::kWritePage, 1, kSpace, kBase, 0, 100), std::string(100, 'x')));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kReadPages, 2, kSpace, 0, 2, 8), std::string(8, '\0')));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kReadPages, 3, kSpace, 0, 300, 2400), std::string(2400, 0)));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kReadPages, 4, kSpace, 0, 0, 0)));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kWritePages, 5, kSpace, 0, 1, 4096), std::string(4096, 0)));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kCreateSpace, 6, MakeAsid(1, 9), 0, 0, 3), "abc"));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kPing, 7)));
  EXPECT_EQ(p->ReplyCode(), Code::kOk);
  EXPECT_EQ(Counter("memnode_err_bad_request"), before + 6);
}

TEST_F(ProtocolTest, MisalignedAddressIsABadRequest) {
  auto p = Authed();
  ASSERT_TRUE(p->Send(Req(MsgType::kReadPage, 1, kSpace, kBase + 1)));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(
      p->Send(Req(MsgType::kWritePage, 2, kSpace, kBase + 2048, 0, 4096), std::string(4096, 'w')));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  std::string uvas(16, 0);
  wire::PutU64(reinterpret_cast<std::uint8_t*>(uvas.data()), kBase);
  wire::PutU64(reinterpret_cast<std::uint8_t*>(uvas.data()) + 8, kBase + 8);
  ASSERT_TRUE(p->Send(Req(MsgType::kReadPages, 3, kSpace, 0, 2, 16), uvas));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
  ASSERT_TRUE(p->Send(Req(MsgType::kRegisterRange, 4, kSpace, kBase + 5, 4096)));
  EXPECT_EQ(p->ReplyCode(), Code::kBadRequest);
}

TEST_F(ProtocolTest, UnknownAddressSpaceIsNoSuchSpace) {
  std::int64_t before = Counter("memnode_err_no_such_space");
  auto p = Authed();
  ASSERT_TRUE(p->Send(Req(MsgType::kReadPage, 1, MakeAsid(1, 0xdead), kBase)));
  EXPECT_EQ(p->ReplyCode(), Code::kNoSuchSpace);
  ASSERT_TRUE(p->Send(Req(MsgType::kWritePage, 2, MakeAsid(1, 0xdead), kBase, 0, 4096),
                      std::string(4096, 'w')));
  EXPECT_EQ(p->ReplyCode(), Code::kNoSuchSpace);
  EXPECT_EQ(Counter("memnode_err_no_such_space"), before + 2);
}

TEST_F(ProtocolTest, OtherNodesSpacesArePermissionDenied) {
  auto p = Authed(3);
  ASSERT_TRUE(p->Send(Req(MsgType::kReadPage, 1, kSpace, kBase)));
  std::string text;
  EXPECT_EQ(p->ReplyCode(&text), Code::kPermissionDenied);
  EXPECT_NE(text.find("node 3"), std::string::npos) << text;
}

TEST_F(ProtocolTest, AttachShmOnlyOnTheUnixSocket) {
  auto p = Authed();
  ASSERT_TRUE(p->Send(Req(MsgType::kAttachShm, 1, 0)));
  EXPECT_EQ(p->ReplyCode(), Code::kUnsupported);

  TransportOptions o;
  o.address = node_->shm_path();
  o.secret = node_->secret();
  std::unique_ptr<StreamClient> client;
  Status st = StreamTransport::Dial(o, /*unix_socket=*/true, "unix", &client);
  ASSERT_TRUE(st.ok()) << st.ToString();
  StreamClient::Request r;
  r.type = MsgType::kAttachShm;
  StreamClient::Reply reply;
  st = client->Call(r, &reply);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GE(reply.fds.size(), 2u);  // page region and index
  EXPECT_FALSE(reply.payload.empty());
  for (int fd : reply.fds) {
    EXPECT_GE(fcntl(fd, F_GETFD), 0) << "received fd is not open";
    close(fd);
  }
}

TEST_F(ProtocolTest, PipelinedRequestsAreAllAnswered) {
  auto p = Authed();
  std::string burst;
  for (std::uint64_t id = 1; id <= 200; ++id) {
    wire::Header h =
        id % 2 ? Req(MsgType::kPing, id, 0, 0, 0, 8) : Req(MsgType::kReadPage, id, kSpace, kBase);
    burst += p->Frame(h, id % 2 ? std::string(8, static_cast<char>(id)) : std::string());
  }
  ASSERT_TRUE(p->SendBytes(burst.data(), burst.size()));
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 200; ++i) {
    wire::Header h;
    std::string payload;
    ASSERT_EQ(p->Read(&h, &payload), RawPeer::Result::kMessage);
    EXPECT_EQ(h.status, 0);
    if (h.req_id % 2) {
      EXPECT_EQ(payload, std::string(8, static_cast<char>(h.req_id)));
    }
    seen.insert(h.req_id);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST_F(ProtocolTest, PeerThatNeverReadsDoesNotStallOthers) {
  auto p = Authed();
  // Many 4 KiB reads whose replies it never takes.
  std::string burst;
  for (std::uint64_t id = 1; id <= 2000; ++id) {
    burst += p->Frame(Req(MsgType::kPing, id, 0, 0, 0, 4096), std::string(4096, 'p'));
  }
  std::thread writer([&] { p->SendBytes(burst.data(), burst.size()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  MemoryNodeInfo info;
  EXPECT_TRUE(good_->Info(&info).ok());  // others are served meanwhile
  shutdown(p->fd(), SHUT_RDWR);
  writer.join();
}

TEST_F(ProtocolTest, RandomMessagesNeverKillTheNode) {
  std::mt19937_64 rng(12345);
  for (int conn = 0; conn < 20; ++conn) {
    auto p = Authed();
    ASSERT_TRUE(p);
    for (int i = 0; i < 100; ++i) {
      // Never the space TearDown checks: random destroys must not hit it.
      Asid target = rng() % 4 == 0 ? rng() : MakeAsid(1, 2 + rng() % 3);
      wire::Header h = Req(static_cast<MsgType>(rng() % 30), rng(), target);
      h.arg0 = rng() % 3 ? kBase + (rng() % 64) * kPageSize : rng();
      h.arg1 = rng() % 3 ? rng() % 300 : rng();
      std::uint64_t len = rng() % 3 ? h.arg1 * 8 : rng() % 9000;
      if (len > 20000 || rng() % 5 == 0) len = 4096;
      h.payload_len = static_cast<std::uint32_t>(len);
      std::string payload(len, 0);
      for (auto& c : payload) c = static_cast<char>(rng());
      if (!p->Send(h, payload)) break;
    }
    // Drain whatever came back; the node may have dropped us, which is fine.
    p->WaitClosed(50);
  }
  // Raw noise on fresh connections, before and after auth.
  for (int conn = 0; conn < 20; ++conn) {
    auto p = conn % 2 ? Authed() : RawPeer::Tcp(node_->tcp_address());
    std::string noise(1 + rng() % 5000, 0);
    for (auto& c : noise) c = static_cast<char>(rng());
    p->SendBytes(noise.data(), noise.size());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace remora::testing
