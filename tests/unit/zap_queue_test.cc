// ZapQueue against a real agent peer on a socketpair: batching, ordering,
// waiting for a page's zap, and a vanished agent.
#include "processor/runtime/zap_queue.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "processor/abi/runtime_protocol.h"
#include "remora/types.h"

namespace remora {
namespace {

using namespace std::chrono_literals;

class ZapQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_), 0);
    q_ = std::make_unique<ZapQueue>(fds_[0]);
  }
  void TearDown() override {
    StopAgent();
    ::close(fds_[0]);
    if (fds_[1] >= 0) ::close(fds_[1]);
  }
  // An agent that announces itself, acknowledges each batch (after `delay`)
  // and records pages.
  void StartAgent(std::chrono::milliseconds delay = 0ms) {
    q_->OnAck(0);  // what the control thread does on the agent's first message
    agent_ = std::thread([this, delay] {
      rt::ZapMessage m;
      for (;;) {
        ssize_t n = ::recv(fds_[1], &m, sizeof(m), 0);
        if (n <= 0) return;
        std::this_thread::sleep_for(delay);
        for (std::uint32_t i = 0; i < m.count; ++i) zapped_.push_back(m.uvas[i]);
        batches_++;
        rt::ZapAck ack;
        ack.seq = m.seq;
        q_->OnAck(ack.seq);  // what the control thread does on the ack
      }
    });
  }
  void StopAgent() {
    if (agent_.joinable()) {
      ::shutdown(fds_[1], SHUT_RDWR);
      agent_.join();
    }
  }

  int fds_[2];
  std::unique_ptr<ZapQueue> q_;
  std::thread agent_;
  std::vector<std::uint64_t> zapped_;
  std::atomic<int> batches_{0};
};

TEST_F(ZapQueueTest, ZapsWaitInTheQueueUntilABatchIsFullOrFlushed) {
  StartAgent();
  for (std::uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(q_->Zap(i * kPageSize).ok());
  EXPECT_TRUE(q_->has_queued());
  EXPECT_EQ(q_->pending(), 5u);
  ASSERT_TRUE(q_->Flush().ok());
  EXPECT_FALSE(q_->has_queued());
  ASSERT_TRUE(q_->WaitClear(0, 5 * kPageSize, 2000ms).ok());
  EXPECT_EQ(q_->pending(), 0u);
  EXPECT_EQ(batches_.load(), 1);

  for (std::uint64_t i = 0; i < ZapQueue::kBatch; ++i) ASSERT_TRUE(q_->Zap(i * kPageSize).ok());
  EXPECT_FALSE(q_->has_queued());  // the full batch went by itself
  ASSERT_TRUE(q_->WaitClear(0, ZapQueue::kBatch * kPageSize, 2000ms).ok());
}

TEST_F(ZapQueueTest, APartialBatchGoesOutWhenItsTimerFires) {
  StartAgent();
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(q_->Zap(i * kPageSize).ok());
  // What the control thread does: wait for the timer, then OnTimer.
  pollfd p{q_->timer_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_GE(std::chrono::steady_clock::now() - start, ZapQueue::kFlushDelay / 2);
  EXPECT_TRUE(q_->has_queued());
  q_->OnTimer();
  EXPECT_FALSE(q_->has_queued());
  ASSERT_TRUE(q_->WaitClear(0, 3 * kPageSize, 2000ms).ok());
  EXPECT_EQ(batches_.load(), 1);
  // The timer was consumed: it does not fire again until a new batch starts.
  EXPECT_EQ(::poll(&p, 1, 20), 0);
  ASSERT_TRUE(q_->Zap(9 * kPageSize).ok());
  EXPECT_EQ(::poll(&p, 1, 5000), 1);
}

// The timer is armed once per period, not once per batch: a batch that starts
// while it is still armed for an earlier one (sent early by a Flush) goes
// out when that timer fires, and no later.
TEST_F(ZapQueueTest, ABatchStartedWhileTheTimerIsArmedGoesOutWhenItFires) {
  StartAgent();
  pollfd p{q_->timer_fd(), POLLIN, 0};
  ASSERT_TRUE(q_->Zap(1 * kPageSize).ok());  // arms the timer
  ASSERT_TRUE(q_->Flush().ok());             // the batch goes before it fires
  ASSERT_TRUE(q_->Zap(2 * kPageSize).ok());  // a new batch: the timer is still armed
  EXPECT_TRUE(q_->has_queued());
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  q_->OnTimer();
  EXPECT_FALSE(q_->has_queued());
  ASSERT_TRUE(q_->WaitClear(0, 3 * kPageSize, 2000ms).ok());
  EXPECT_EQ(batches_.load(), 2);
  // Fired and consumed: the next batch arms it again.
  EXPECT_EQ(::poll(&p, 1, 20), 0);
  ASSERT_TRUE(q_->Zap(3 * kPageSize).ok());
  EXPECT_EQ(::poll(&p, 1, 5000), 1);
  q_->OnTimer();
  EXPECT_FALSE(q_->has_queued());
}

TEST_F(ZapQueueTest, WaitingForAQueuedPageSendsIt) {
  StartAgent(20ms);
  ASSERT_TRUE(q_->Zap(7 * kPageSize).ok());
  ASSERT_TRUE(q_->Zap(9 * kPageSize).ok());
  // Nothing flushed it; WaitClear must, or it would wait forever.
  ASSERT_TRUE(q_->WaitClear(7 * kPageSize, 8 * kPageSize, 2000ms).ok());
  StopAgent();
  EXPECT_EQ(zapped_, (std::vector<std::uint64_t>{7 * kPageSize, 9 * kPageSize}));
}

TEST_F(ZapQueueTest, PagesOutsideTheRangeDoNotBlockAWaiter) {
  // An agent that announced itself and then never reads: the zap of page 1
  // is never acknowledged.
  q_->OnAck(0);
  ASSERT_TRUE(q_->Zap(1 * kPageSize).ok());
  ASSERT_TRUE(q_->Flush().ok());
  EXPECT_TRUE(q_->WaitClear(2 * kPageSize, 10 * kPageSize, 100ms).ok());
  Status st = q_->WaitClear(0, 2 * kPageSize, 100ms);
  EXPECT_EQ(st.code(), Code::kTimeout) << st.ToString();
}

TEST_F(ZapQueueTest, AClosedAgentReleasesWaitersAndRefusesZaps) {
  q_->OnAck(0);
  ASSERT_TRUE(q_->Zap(1 * kPageSize).ok());
  ASSERT_TRUE(q_->Flush().ok());
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    q_->Close();
  });
  auto t0 = std::chrono::steady_clock::now();
  Status st = q_->WaitClear(0, 4 * kPageSize, 5000ms);
  closer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_TRUE(st.ok() || st.code() == Code::kDisconnected) << st.ToString();
  EXPECT_EQ(q_->Zap(2 * kPageSize).code(), Code::kDisconnected);
}

TEST_F(ZapQueueTest, ConcurrentZappersAreAcknowledgedInOrder) {
  StartAgent();
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < 500; ++i) {
        ASSERT_TRUE(q_->Zap((t * 1000 + i) * kPageSize).ok());
        if (i % 37 == 0) {
          ASSERT_TRUE(q_->Flush().ok());
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_TRUE(q_->WaitClear(0, 10000 * kPageSize, 5000ms).ok());
  EXPECT_EQ(q_->pending(), 0u);
  StopAgent();
  EXPECT_EQ(zapped_.size(), 2000u);
}

// A forked child's agent starts after the fork, and starting a thread
// writes to memory that may be a page with a zap queued. Before the agent
// announces itself nothing is sent, and a waiter takes its range's zaps back
// at once instead of waiting for a thread that is not there yet; the others
// go out once the agent has announced itself.
TEST_F(ZapQueueTest, BeforeTheAgentRunsZapsAreHeldAndAWaiterTakesThemBack) {
  for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(q_->Zap(i * kPageSize).ok());
  ASSERT_TRUE(q_->Flush().ok());
  EXPECT_TRUE(q_->has_queued());  // held: no agent to send them to
  pollfd peer{fds_[1], POLLIN, 0};
  EXPECT_EQ(::poll(&peer, 1, 0), 0);  // nothing on the wire

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(q_->WaitClear(2 * kPageSize, 3 * kPageSize, 5000ms).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(q_->pending(), 2u);  // pages 1 and 3

  StartAgent();  // announces itself: the held zaps go at the next tick
  pollfd timer{q_->timer_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&timer, 1, 5000), 1);
  q_->OnTimer();
  ASSERT_TRUE(q_->WaitClear(0, 10 * kPageSize, 2000ms).ok());
  StopAgent();
  EXPECT_EQ(zapped_, (std::vector<std::uint64_t>{1 * kPageSize, 3 * kPageSize}));
}

// Backpressure (Throttle): never before the agent announced itself; above
// kMaxPending it sends and waits until the agent is back below the mark.
TEST_F(ZapQueueTest, ThrottleWaitsOnlyForAnAnnouncedAgentAboveTheBound) {
  constexpr std::uint64_t kOver = ZapQueue::kMaxPending + 10;
  for (std::uint64_t i = 0; i < kOver; ++i) ASSERT_TRUE(q_->Zap(i * kPageSize).ok());
  // No agent has said it runs: nobody could answer, so no wait.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(q_->Throttle(2000ms), ZapQueue::Backpressure::kNone);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(q_->pending(), kOver);

  q_->OnAck(0);  // the agent's first message
  StartAgent(5ms);
  EXPECT_EQ(q_->Throttle(2000ms), ZapQueue::Backpressure::kWaited);
  EXPECT_LE(q_->pending(), ZapQueue::kMaxPending - ZapQueue::kBatch);
  // At or below the bound nothing waits.
  EXPECT_EQ(q_->Throttle(2000ms), ZapQueue::Backpressure::kNone);
}

// The shim runs no program code before its agent's announcement is on the
// socket, but the control thread may not have read it yet when the program
// faults hard: Throttle reads it itself and holds the program to the bound.
TEST_F(ZapQueueTest, ThrottleReadsAnAnnouncementStillOnTheSocket) {
  constexpr std::uint64_t kOver = ZapQueue::kMaxPending + 10;
  for (std::uint64_t i = 0; i < kOver; ++i) ASSERT_TRUE(q_->Zap(i * kPageSize).ok());
  rt::ZapAck hello;  // seq 0: "I run"
  ASSERT_EQ(::send(fds_[1], &hello, sizeof(hello), 0), static_cast<ssize_t>(sizeof(hello)));
  // A real agent: acknowledges each batch on the socket, read by whoever
  // waits (no control thread here).
  std::thread agent([this] {
    rt::ZapMessage m;
    for (;;) {
      ssize_t n = ::recv(fds_[1], &m, sizeof(m), 0);
      if (n <= 0) return;
      rt::ZapAck ack;
      ack.seq = m.seq;
      if (::send(fds_[1], &ack, sizeof(ack), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(ack)))
        return;
    }
  });
  EXPECT_EQ(q_->Throttle(2000ms), ZapQueue::Backpressure::kWaited);
  EXPECT_LE(q_->pending(), ZapQueue::kMaxPending - ZapQueue::kBatch);
  ::shutdown(fds_[1], SHUT_RDWR);
  agent.join();
}

TEST_F(ZapQueueTest, AStalledAgentIsGivenUpUntilItAcknowledges) {
  q_->OnAck(0);  // announced, then never reads (a stopped program)
  constexpr std::uint64_t kOver = ZapQueue::kMaxPending + 1;
  for (std::uint64_t i = 0; i < kOver; ++i) ASSERT_TRUE(q_->Zap(i * kPageSize).ok());
  EXPECT_EQ(q_->Throttle(50ms), ZapQueue::Backpressure::kGaveUp);
  EXPECT_EQ(q_->pending(), kOver);
  // Not waited for again while it stays silent.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(q_->Throttle(2000ms), ZapQueue::Backpressure::kNone);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  // An acknowledgement (of the first page only) makes it waited for again.
  q_->OnAck(1);
  EXPECT_EQ(q_->pending(), kOver - 1);
  ASSERT_TRUE(q_->Zap(kOver * kPageSize).ok());
  EXPECT_EQ(q_->Throttle(50ms), ZapQueue::Backpressure::kGaveUp);
}

}  // namespace
}  // namespace remora
