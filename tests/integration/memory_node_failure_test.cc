// A memory node that dies or hangs: clients must get an error within their
// timeout — never hang — and a node told to stop must stop cleanly.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "harness.h"
#include "remora/transport.h"

namespace remora::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kBase = 0x500000000000ull;

std::string KindName(const ::testing::TestParamInfo<TransportKind>& info) {
  return info.param == TransportKind::kTcp ? "Tcp" : "Shm";
}

std::unique_ptr<Transport> ConnectWithTimeout(const MemoryNodeProcess& node, TransportKind kind,
                                              int timeout_ms) {
  TransportOptions o;
  o.kind = kind;
  o.address = kind == TransportKind::kShm ? node.shm_path() : node.tcp_address();
  o.secret = node.secret();
  o.timeout_ms = timeout_ms;
  Status st;
  auto t = ConnectTransport(o, &st);
  EXPECT_TRUE(t) << st.ToString();
  return t;
}

long MsSince(Clock::time_point t) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

class FailureTest : public ::testing::TestWithParam<TransportKind> {};

TEST_P(FailureTest, KilledNodeFailsEveryCallerQuickly) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  auto t = ConnectWithTimeout(node, GetParam(), 5000);
  ASSERT_TRUE(t);
  Asid a = MakeAsid(1, 1);
  ASSERT_TRUE(t->CreateSpace(a).ok());
  ASSERT_TRUE(t->RegisterRange(a, kBase, 64 << 20).ok());

  // Several threads hammer the node with writes (always a round trip) and
  // batched reads until something fails.
  constexpr int kThreads = 4;
  std::atomic<int> running{kThreads};
  std::vector<Status> last(kThreads);
  std::vector<Clock::time_point> failed_at(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      std::vector<char> page(kPageSize, static_cast<char>(i));
      std::vector<char> pages(16 * kPageSize);
      std::vector<std::uint64_t> uvas(16);
      for (int j = 0; j < 16; ++j) uvas[j] = kBase + static_cast<std::uint64_t>(j) * kPageSize;
      for (std::uint64_t n = 0;; ++n) {
        std::uint64_t uva = kBase + ((n * kThreads + i) % 8192) * kPageSize;
        Status st = n % 3 ? t->WritePage(a, uva, page.data()) : t->ReadPages(a, uvas, pages.data());
        if (!st.ok()) {
          last[i] = st;
          failed_at[i] = Clock::now();
          break;
        }
      }
      --running;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(running.load(), kThreads) << "requests failed before the node was killed";
  Clock::time_point killed = Clock::now();
  kill(node.pid(), SIGKILL);
  for (auto& th : threads) th.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(last[i].code(), Code::kDisconnected) << last[i].ToString();
    long ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(failed_at[i] - killed).count());
    EXPECT_LT(ms, 2000) << "thread " << i << " noticed the death after " << ms << " ms";
  }
  // Later calls fail at once.
  auto start = Clock::now();
  std::vector<char> page(kPageSize);
  EXPECT_EQ(t->WritePage(a, kBase, page.data()).code(), Code::kDisconnected);
  MemoryNodeInfo info;
  EXPECT_FALSE(t->Info(&info).ok());
  EXPECT_LT(MsSince(start), 100);
}

TEST_P(FailureTest, HungNodeTimesOutAndRecovers) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  auto t = ConnectWithTimeout(node, GetParam(), 400);
  ASSERT_TRUE(t);
  Asid a = MakeAsid(1, 1);
  ASSERT_TRUE(t->CreateSpace(a).ok());
  ASSERT_TRUE(t->RegisterRange(a, kBase, 64 << 20).ok());
  std::vector<char> page(kPageSize, 5);
  ASSERT_TRUE(t->WritePage(a, kBase, page.data()).ok());

  ASSERT_EQ(kill(node.pid(), SIGSTOP), 0);
  auto start = Clock::now();
  Status st = t->WritePage(a, kBase + kPageSize, page.data());
  long ms = MsSince(start);
  EXPECT_EQ(st.code(), Code::kTimeout) << st.ToString();
  EXPECT_GE(ms, 350);
  EXPECT_LT(ms, 1500);
  MemoryNodeInfo info;
  EXPECT_EQ(t->Info(&info).code(), Code::kTimeout);

  // Once the node runs again, late replies are ignored and the same
  // connection keeps working.
  ASSERT_EQ(kill(node.pid(), SIGCONT), 0);
  std::vector<char> back(kPageSize);
  st = t->ReadPage(a, kBase, back.data());
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(back, page);
  EXPECT_TRUE(t->Info(&info).ok());
}

INSTANTIATE_TEST_SUITE_P(Transports, FailureTest,
                         ::testing::Values(TransportKind::kTcp, TransportKind::kShm), KindName);

TEST(NodeLifecycleTest, NoNodeAtTheAddressIsAnErrorNotAHang) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  std::string addr = node.tcp_address(), sock = node.shm_path(), secret = node.secret();
  node.Stop();
  for (TransportKind kind : {TransportKind::kTcp, TransportKind::kShm}) {
    TransportOptions o;
    o.kind = kind;
    o.address = kind == TransportKind::kTcp ? addr : sock;
    o.secret = secret;
    o.timeout_ms = 1000;
    Status st;
    auto start = Clock::now();
    EXPECT_EQ(ConnectTransport(o, &st), nullptr);
    EXPECT_FALSE(st.ok());
    EXPECT_LT(MsSince(start), 1500);
  }
}

TEST(NodeLifecycleTest, SigtermStopsCleanly) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  Status st;
  auto t = node.Connect(TransportKind::kTcp, 1, &st);
  ASSERT_TRUE(t) << st.ToString();
  std::string sock = node.shm_path();
  struct stat sb;
  ASSERT_EQ(stat(sock.c_str(), &sb), 0);
  int status = node.Stop();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(stat(sock.c_str(), &sb), 0) << "unix socket left behind";
  MemoryNodeInfo info;
  EXPECT_EQ(t->Info(&info).code(), Code::kDisconnected);
}

}  // namespace
}  // namespace remora::testing
