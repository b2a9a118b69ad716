// StreamServer and StreamClient together, in one process, with a scripted
// handler: multiplexing, reader hand-offs, timeouts, peer loss, backpressure,
// framing enforcement and descriptor passing.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "net/socket_util.h"
#include "net/stream_client.h"
#include "net/stream_server.h"
#include "net/wire.h"
#include "remora/stats.h"

namespace remora {
namespace {

using wire::MsgType;

// kPing echoes; kInfo is never answered; kDestroySpace makes the server hang
// up; kAttachShm answers with a fresh memfd holding the request's arg0.
class ScriptedHandler : public StreamServer::Handler {
 public:
  void OnOpen(StreamServer::Connection& c) override {
    if (deadline_ms) c.SetDeadline(MonotonicNs() + deadline_ms * 1000000ull);
  }
  void OnMessage(StreamServer::Connection& c, const wire::Header& h,
                 std::string_view payload) override {
    switch (static_cast<MsgType>(h.type)) {
      case MsgType::kPing:
        c.Send(wire::MakeReply(h, Code::kOk), std::string(payload));
        break;
      case MsgType::kInfo:
        break;
      case MsgType::kDestroySpace:
        c.CloseAfterFlush();
        break;
      case MsgType::kAttachShm: {
        int fd = memfd_create("stream-test", MFD_CLOEXEC);
        std::string v = std::to_string(h.arg0);
        EXPECT_EQ(write(fd, v.data(), v.size()), static_cast<ssize_t>(v.size()));
        c.Send(wire::MakeReply(h, Code::kOk), "layout", {fd});
        fds_to_close.push_back(fd);  // the server sends it later; close at the end
        break;
      }
      default:
        c.Send(wire::MakeReply(h, Code::kBadRequest), "no");
    }
  }
  void OnClose(StreamServer::Connection&, StreamServer::CloseReason r) override {
    std::lock_guard<std::mutex> l(mu);
    closes.push_back(r);
    cv.notify_all();
  }
  bool WaitClose(StreamServer::CloseReason r) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(5),
                       [&] { return std::find(closes.begin(), closes.end(), r) != closes.end(); });
  }

  int deadline_ms = 0;
  std::vector<int> fds_to_close;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<StreamServer::CloseReason> closes;
};

class StreamTest : public ::testing::Test {
 protected:
  void Start(StreamServer::Options o = {}) {
    o.stats = &stats_;
    o.stats_prefix = "srv";
    server_ = std::make_unique<StreamServer>(&handler_, o);
    ASSERT_TRUE(server_->ListenTcp("127.0.0.1:0", &address_).ok());
    sock_ = "/tmp/remora-stream-test-" + std::to_string(getpid()) + ".sock";
    ASSERT_TRUE(server_->ListenUnix(sock_).ok());
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (server_) {
      server_->Stop();
      thread_.join();
      server_.reset();
    }
    for (int fd : handler_.fds_to_close) close(fd);
  }
  std::unique_ptr<StreamClient> Client(int timeout_ms = 5000, bool unix_socket = false) {
    int fd = -1;
    Status st =
        unix_socket ? net::ConnectUnix(sock_, 1000, &fd) : net::ConnectTcp(address_, 1000, &fd);
    EXPECT_TRUE(st.ok()) << st.ToString();
    StreamClient::Options o;
    o.timeout_ms = timeout_ms;
    o.stats = &stats_;
    o.receive_fds = unix_socket;
    return std::make_unique<StreamClient>(fd, o);
  }
  static Status Ping(StreamClient* c, const std::string& data, std::string* echo) {
    iovec v{const_cast<char*>(data.data()), data.size()};
    StreamClient::Request r;
    r.type = MsgType::kPing;
    r.payload = {&v, 1};
    StreamClient::Reply reply;
    Status st = c->Call(r, &reply);
    if (echo) *echo = reply.payload;
    return st;
  }

  StatsRegistry stats_;
  ScriptedHandler handler_;
  std::unique_ptr<StreamServer> server_;
  std::thread thread_;
  std::string address_, sock_;
};

TEST_F(StreamTest, ManyThreadsShareOneConnection) {
  Start();
  auto c = Client();
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 1500; ++i) {
        std::string data(rng() % 9000, static_cast<char>('a' + t));
        data += std::to_string(i);
        std::string echo;
        if (!Ping(c.get(), data, &echo).ok() || echo != data) ++bad;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(stats_.Snapshot().Counter("tcp_requests"), 8 * 1500);
}

TEST_F(StreamTest, ReplyPayloadIsScatteredIntoCallerBuffers) {
  Start();
  auto c = Client();
  std::string data = "0123456789abcdefXYZ";
  char a[4], b[12];
  iovec into[2] = {{a, sizeof a}, {b, sizeof b}};
  iovec v{data.data(), data.size()};
  StreamClient::Request r;
  r.type = MsgType::kPing;
  r.payload = {&v, 1};
  r.reply_into = into;
  StreamClient::Reply reply;
  ASSERT_TRUE(c->Call(r, &reply).ok());
  EXPECT_EQ(std::string(a, 4), "0123");
  EXPECT_EQ(std::string(b, 12), "456789abcdef");
  EXPECT_EQ(reply.payload, "XYZ");
}

TEST_F(StreamTest, UnansweredRequestTimesOutAndConnectionLives) {
  Start();
  auto c = Client(300);
  StreamClient::Request r;
  r.type = MsgType::kInfo;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c->Call(r).code(), Code::kTimeout);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  EXPECT_GE(ms, 290);
  EXPECT_LT(ms, 1000);
  std::string echo;
  EXPECT_TRUE(Ping(c.get(), "still here", &echo).ok());
  EXPECT_EQ(echo, "still here");
  EXPECT_TRUE(c->connected());
}

TEST_F(StreamTest, AsyncCallbacksRunOnTheClientThread) {
  Start();
  auto c = Client();
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, bad = 0;
  const auto me = std::this_thread::get_id();
  std::vector<std::string> data(500);
  for (int i = 0; i < 500; ++i) {
    data[i] = "async" + std::to_string(i);
    iovec v{data[i].data(), data[i].size()};
    StreamClient::Request r;
    r.type = MsgType::kPing;
    r.payload = {&v, 1};
    c->CallAsync(r, [&, i](Status st, StreamClient::Reply* reply) {
      std::lock_guard<std::mutex> l(mu);
      if (!st.ok() || reply->payload != data[i] || std::this_thread::get_id() == me) ++bad;
      ++done;
      cv.notify_all();
    });
    if (i % 50 == 0) {
      EXPECT_TRUE(Ping(c.get(), "sync", nullptr).ok());  // interleaved with async
    }
  }
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return done == 500; }));
  EXPECT_EQ(bad, 0);
}

// One thread with requests in flight on three connections at once, waited
// for in another order than sent, while another thread calls on the same
// connections (so replies are read by whoever reads first).
TEST_F(StreamTest, PostedRequestsAreAnsweredInAnyWaitOrder) {
  Start();
  std::vector<std::unique_ptr<StreamClient>> cs;
  for (int i = 0; i < 3; ++i) cs.push_back(Client());
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread other([&] {
    for (int i = 0; !stop; ++i) {
      std::string data = "other" + std::to_string(i), echo;
      if (!Ping(cs[i % 3].get(), data, &echo).ok() || echo != data) ++bad;
    }
  });
  for (int round = 0; round < 300; ++round) {
    std::string data[3];
    char into[3][64];
    iovec v[3], w[3];
    std::vector<StreamClient::PostedPtr> posted;
    for (int i = 0; i < 3; ++i) {
      data[i] = std::string(static_cast<std::size_t>(round * 37 % 5000), 'p') +
                std::to_string(round * 3 + i);
      v[i] = {data[i].data(), data[i].size()};
      w[i] = {into[i], sizeof into[i]};
      StreamClient::Request r;
      r.type = MsgType::kPing;
      r.payload = {&v[i], 1};
      r.reply_into = {&w[i], 1};
      posted.push_back(cs[i]->Post(r));
    }
    for (int k = 0; k < 3; ++k) {
      const int i = (round + k) % 3;
      StreamClient::Reply reply;
      if (!cs[i]->Wait(std::move(posted[i]), &reply).ok() ||
          std::string(into[i], std::min<std::size_t>(64, data[i].size())) + reply.payload !=
              data[i])
        ++bad;
    }
  }
  stop = true;
  other.join();
  EXPECT_EQ(bad.load(), 0);
}

// A posted request that is never answered times out like a call, and one
// dropped without Wait() is waited for by its destructor, so no reply can
// land in freed memory.
TEST_F(StreamTest, PostedRequestsTimeOutAndMayBeDropped) {
  Start();
  auto c = Client(200);
  StreamClient::Request r;
  r.type = MsgType::kInfo;
  auto posted = c->Post(r);
  EXPECT_EQ(c->Wait(std::move(posted)).code(), Code::kTimeout);
  {
    std::string data(100, 'd');
    char into[100];
    iovec v{data.data(), data.size()}, w{into, sizeof into};
    StreamClient::Request ping;
    ping.type = MsgType::kPing;
    ping.payload = {&v, 1};
    ping.reply_into = {&w, 1};
    auto dropped = c->Post(ping);
  }
  std::string echo;
  EXPECT_TRUE(Ping(c.get(), "after", &echo).ok());
  EXPECT_EQ(echo, "after");
}

// A posted request waited for only after its deadline (its thread was busy
// elsewhere, as a write-back to a second replica can be) whose reply did
// come in time is answered, not timed out.
TEST_F(StreamTest, APostedRequestWaitedForLateGetsTheReplyThatCame) {
  Start();
  auto c = Client(200);
  std::string data = "came in time";
  iovec v{data.data(), data.size()};
  StreamClient::Request r;
  r.type = MsgType::kPing;
  r.payload = {&v, 1};
  auto posted = c->Post(r);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  StreamClient::Reply reply;
  const Status st = c->Wait(std::move(posted), &reply);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(reply.payload, data);
}

TEST_F(StreamTest, AsyncRequestWithoutReplyTimesOut) {
  Start();
  auto c = Client(200);
  std::atomic<int> code{-1};
  StreamClient::Request r;
  r.type = MsgType::kInfo;
  c->CallAsync(r, [&](Status st, StreamClient::Reply*) { code = static_cast<int>(st.code()); });
  for (int i = 0; i < 200 && code < 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(code.load(), static_cast<int>(Code::kTimeout));
}

TEST_F(StreamTest, PeerHangUpFailsEveryWaiter) {
  Start();
  auto c = Client(10000);
  // Three threads wait for replies that never come, then the server hangs up.
  std::vector<std::thread> ts;
  std::atomic<int> disconnected{0};
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&] {
      StreamClient::Request r;
      r.type = MsgType::kInfo;
      if (c->Call(r).code() == Code::kDisconnected) ++disconnected;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto start = std::chrono::steady_clock::now();
  StreamClient::Request bye;
  bye.type = MsgType::kDestroySpace;
  EXPECT_EQ(c->Call(bye).code(), Code::kDisconnected);
  for (auto& t : ts) t.join();
  EXPECT_EQ(disconnected.load(), 3);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_FALSE(c->connected());
  EXPECT_EQ(Ping(c.get(), "x", nullptr).code(), Code::kDisconnected);
}

TEST_F(StreamTest, ServerStopsReadingFromAPeerThatDoesNotRead) {
  StreamServer::Options o;
  o.max_queued_bytes = 256 * 1024;
  Start(o);
  int fd = -1;
  ASSERT_TRUE(net::ConnectTcp(address_, 1000, &fd).ok());
  // Send pings (8 KiB each) without reading until the server stops taking them.
  constexpr int kPayload = 8192;
  std::string msg(wire::kHeaderSize + kPayload, 'p');
  int sent = 0;
  for (;; ++sent) {
    wire::Header h = wire::MakeRequest(MsgType::kPing, sent, 0, 0, 0, kPayload);
    wire::EncodeHeader(h, reinterpret_cast<std::uint8_t*>(msg.data()));
    if (!net::WriteFull(fd, msg.data(), msg.size(), net::DeadlineAfterMs(300)).ok()) break;
    ASSERT_LT(sent, 100000) << "the server never pushed back";
  }
  // Replies the server holds are bounded by the limit plus the socket buffers.
  std::int64_t out = stats_.Snapshot().Counter("srv_bytes_out");
  EXPECT_LT(out, 64 << 20);
  // Now read everything: every request that went out fully is answered, in
  // order, including those that waited in the server's buffer.
  std::vector<char> buf(wire::kHeaderSize + kPayload);
  int got = 0;
  for (; got < sent; ++got) {
    Status st = net::ReadFull(fd, buf.data(), buf.size(), net::DeadlineAfterMs(3000));
    ASSERT_TRUE(st.ok()) << "reply " << got << " of " << sent << ": " << st.ToString();
    wire::Header h = wire::DecodeHeader(reinterpret_cast<std::uint8_t*>(buf.data()));
    ASSERT_EQ(h.req_id, static_cast<std::uint64_t>(got));
  }
  close(fd);
}

TEST_F(StreamTest, FramingViolationClosesOnlyThatConnection) {
  Start();
  auto good = Client();
  int fd = -1;
  ASSERT_TRUE(net::ConnectTcp(address_, 1000, &fd).ok());
  wire::Header h = wire::MakeRequest(MsgType::kPing, 1);
  h.magic = 0;
  std::uint8_t b[wire::kHeaderSize];
  wire::EncodeHeader(h, b);
  ASSERT_TRUE(net::WriteFull(fd, b, sizeof b, net::DeadlineAfterMs(1000)).ok());
  EXPECT_TRUE(handler_.WaitClose(StreamServer::CloseReason::kProtocolError));
  char c;
  EXPECT_EQ(net::ReadFull(fd, &c, 1, net::DeadlineAfterMs(1000)).code(), Code::kDisconnected);
  close(fd);
  EXPECT_TRUE(Ping(good.get(), "fine", nullptr).ok());
  EXPECT_EQ(stats_.Snapshot().Counter("srv_protocol_violations"), 1);
}

TEST_F(StreamTest, DeadlineClosesTheConnection) {
  handler_.deadline_ms = 100;
  Start();
  auto c = Client();
  EXPECT_TRUE(handler_.WaitClose(StreamServer::CloseReason::kDeadline));
  EXPECT_EQ(Ping(c.get(), "late", nullptr).code(), Code::kDisconnected);
}

TEST_F(StreamTest, DescriptorsArriveWithTheirReply) {
  Start();
  auto c = Client(5000, /*unix_socket=*/true);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::uint64_t tag = static_cast<std::uint64_t>(t * 1000 + i);
        StreamClient::Request r;
        r.type = MsgType::kAttachShm;
        r.arg0 = tag;
        StreamClient::Reply reply;
        if (!c->Call(r, &reply).ok() || reply.fds.size() != 1 || reply.payload != "layout") {
          ++bad;
          continue;
        }
        char buf[32] = {};
        ssize_t n = pread(reply.fds[0], buf, sizeof buf - 1, 0);
        if (n <= 0 || std::string(buf) != std::to_string(tag)) ++bad;
        close(reply.fds[0]);
        if (!Ping(c.get(), "between", nullptr).ok()) ++bad;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace remora
