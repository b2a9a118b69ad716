#include "processor/runtime/zap_queue.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstddef>

#include "processor/abi/runtime_protocol.h"
#include "remora/types.h"

namespace remora {

ZapQueue::ZapQueue(int agent_fd)
    : fd_(agent_fd),
      ack_event_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      timer_fd_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {}

ZapQueue::~ZapQueue() {
  for (int fd : {ack_event_, timer_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void ZapQueue::OnTimer() {
  std::uint64_t expirations;
  (void)!::read(timer_fd_, &expirations, sizeof(expirations));
  {
    MutexLock lk(mu_);
    timer_armed_ = false;
  }
  (void)Flush();
  // A zap queued between the read and the Flush went out with it; one
  // queued after the Flush found the timer disarmed and armed it.
}

void ZapQueue::ArmTimer() {
  itimerspec t{};
  t.it_value.tv_nsec = std::chrono::nanoseconds(kFlushDelay).count();
  ::timerfd_settime(timer_fd_, 0, &t, nullptr);
}

Status ZapQueue::Zap(std::uint64_t uva) {
  bool full, arm = false;
  {
    MutexLock lk(mu_);
    if (closed_) return {Code::kDisconnected, "agent gone"};
    pending_[uva] = ++next_seq_;
    pending_count_.store(pending_.size(), std::memory_order_release);
    queue_.push_back({uva, next_seq_});
    queued_count_.store(queue_.size(), std::memory_order_relaxed);
    full = queue_.size() >= kBatch;
    // A batch starts: it goes out in kFlushDelay at the latest. A timer
    // still armed for an earlier batch (sent full, or by a waiter, before
    // it fired) is left alone: it fires early for this one, which only
    // sends it sooner, and saves a timerfd_settime per batch.
    if (!full && queue_.size() == 1 && !timer_armed_ && timer_fd_ >= 0) {
      timer_armed_ = true;
      arm = true;
    }
  }
  if (full) return Flush();
  if (arm) ArmTimer();
  return Status::Ok();
}

Status ZapQueue::Flush() {
  MutexLock send_lk(send_mu_);
  for (;;) {
    rt::ZapMessage m;
    {
      MutexLock lk(mu_);
      if (closed_) return {Code::kDisconnected, "agent gone"};
      // Held until the agent runs (see the header).
      if (queue_.empty() || !agent_running_) return Status::Ok();
      const std::size_t n = std::min<std::size_t>(queue_.size(), rt::kZapBatchMax);
      for (std::size_t i = 0; i < n; ++i) m.uvas[i] = queue_[i].uva;
      // Sequence numbers rise along queue_; acknowledging the batch's last
      // acknowledges all of it.
      m.seq = queue_[n - 1].seq;
      queue_.erase(queue_.begin(), queue_.begin() + n);
      queued_count_.store(queue_.size(), std::memory_order_relaxed);
      m.count = static_cast<std::uint32_t>(n);
      sent_ = m.seq;
    }
    const std::size_t len = offsetof(rt::ZapMessage, uvas) + m.count * sizeof(std::uint64_t);
    ssize_t n;
    do n = ::send(fd_, &m, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(len)) {
      Close();
      return {Code::kDisconnected, "agent connection closed"};
    }
  }
}

bool ZapQueue::DrainAcks() {
  for (;;) {
    rt::ZapAck ack;
    ssize_t r = ::recv(fd_, &ack, sizeof(ack), MSG_DONTWAIT);
    if (r == static_cast<ssize_t>(sizeof(ack)) && ack.magic == rt::kMagic &&
        ack.op == rt::Op::kZapAck) {
      OnAck(ack.seq);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    Close();  // closed, broken, or not speaking the protocol
    return false;
  }
}

void ZapQueue::OnAck(std::uint64_t seq) {
  MutexLock lk(mu_);
  // The agent's first acknowledgement (seq 0) says it runs; any says it is
  // not stalled. What was held for it goes out at the next timer tick (a
  // send cannot be made under mu_).
  if (!agent_running_ && !queue_.empty() && !timer_armed_ && timer_fd_ >= 0) {
    timer_armed_ = true;
    ArmTimer();
  }
  agent_running_ = true;
  stalled_ = false;
  if (seq <= acked_) return;
  acked_ = seq;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second <= seq)
      it = pending_.erase(it);
    else
      ++it;
  }
  pending_count_.store(pending_.size(), std::memory_order_release);
  acked_cv_.notify_all();
  // The waiter watching the socket may be in poll() while another thread
  // (the control thread) read this acknowledgement.
  WakeWatcherLocked();
}

void ZapQueue::WakeWatcherLocked() {
  if (!watching_) return;
  const std::uint64_t one = 1;
  (void)!::write(ack_event_, &one, sizeof(one));
}

bool ZapQueue::PendingInLocked(std::uint64_t start, std::uint64_t end, bool* queued) const {
  *queued = false;
  if (end - start == kPageSize) {
    auto it = pending_.find(start);
    if (it == pending_.end()) return false;
    *queued = it->second > sent_;
    return true;
  }
  bool any = false;
  if ((end - start) / kPageSize <= pending_.size()) {
    for (std::uint64_t uva = start; uva < end; uva += kPageSize) {
      auto it = pending_.find(uva);
      if (it == pending_.end()) continue;
      any = true;
      if (it->second > sent_) *queued = true;
    }
    return any;
  }
  for (auto& [uva, seq] : pending_) {
    if (uva >= start && uva < end) {
      any = true;
      if (seq > sent_) *queued = true;
    }
  }
  return any;
}

Status ZapQueue::WaitClear(std::uint64_t start, std::uint64_t end,
                           std::chrono::milliseconds timeout) {
  if (pending_count_.load(std::memory_order_acquire) == 0) return Status::Ok();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lk(mu_);
  bool queued;
  bool drained = false;
  while (PendingInLocked(start, end, &queued)) {
    if (closed_) return {Code::kDisconnected, "agent gone with zaps pending"};
    if (!agent_running_) {
      if (!drained) {  // it may have announced itself unread
        drained = true;
        lk.unlock();
        DrainAcks();
        lk.lock();
        continue;
      }
      TakeBackLocked(start, end);
      return Status::Ok();
    }
    if (queued) {  // still in our queue: send it now, then wait
      lk.unlock();
      REMORA_RETURN_IF_ERROR(Flush());
      lk.lock();
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      return {Code::kTimeout, "the program's agent did not drop evicted pages in time"};
    AwaitAckLocked(deadline);
  }
  return Status::Ok();
}

void ZapQueue::TakeBackLocked(std::uint64_t start, std::uint64_t end) {
  // Nothing was sent before the agent ran, so every pending zap is queued.
  assert(sent_ == 0);
  std::erase_if(queue_, [&](const Queued& q) { return q.uva >= start && q.uva < end; });
  queued_count_.store(queue_.size(), std::memory_order_relaxed);
  std::erase_if(pending_, [&](const auto& p) { return p.first >= start && p.first < end; });
  pending_count_.store(pending_.size(), std::memory_order_release);
}

void ZapQueue::AwaitAckLocked(std::chrono::steady_clock::time_point deadline) {
  const auto now = std::chrono::steady_clock::now();
  if (watching_) {
    // Another waiter watches the socket; every acknowledgement, whoever
    // reads it, wakes us through acked_cv_.
    acked_cv_.wait_until(mu_, std::min(deadline, now + std::chrono::milliseconds(2)));
    return;
  }
  // Watch the socket ourselves rather than rely on another thread: the
  // control thread may itself be the one waiting. It may also read the
  // acknowledgement first; OnAck then signals ack_event_, so the poll
  // never sleeps past an acknowledgement.
  watching_ = true;
  mu_.unlock();
  pollfd p[2] = {{fd_, POLLIN, 0}, {ack_event_, POLLIN, 0}};
  if (::poll(p, ack_event_ >= 0 ? 2 : 1, 2) > 0) {
    if (p[1].revents & POLLIN) {
      std::uint64_t v;
      (void)!::read(ack_event_, &v, sizeof(v));
    }
    if (p[0].revents) DrainAcks();
  }
  mu_.lock();
  watching_ = false;
  acked_cv_.notify_all();  // a waiter on the condition variable may take over
}

ZapQueue::Backpressure ZapQueue::Throttle(std::chrono::milliseconds timeout) {
  if (pending_count_.load(std::memory_order_acquire) <= kMaxPending) return Backpressure::kNone;
  for (bool drained = false;; drained = true) {
    MutexLock lk(mu_);
    // Before the agent runs (the shim starts it in its constructor, after
    // the first mappings) nobody could answer; an agent that let a wait
    // time out (a stopped program) is not waited for again until it
    // acknowledges something.
    if (closed_ || stalled_) return Backpressure::kNone;
    if (agent_running_) break;
    if (drained) return Backpressure::kNone;
    // The shim lets no program code run before its agent has announced
    // itself (shim_agent.cc, StartAgent), so a program faulting this hard
    // usually has an announcement waiting on the socket that the control
    // thread has not read yet: read it here rather than let the program
    // run on unbounded.
    lk.unlock();
    if (!DrainAcks()) return Backpressure::kNone;
  }
  if (!Flush().ok()) return Backpressure::kNone;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lk(mu_);
  while (pending_.size() > kMaxPending - kBatch && !closed_) {
    if (!queue_.empty()) {  // others queued meanwhile: they count, send them
      lk.unlock();
      (void)Flush();
      lk.lock();
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      stalled_ = true;
      return Backpressure::kGaveUp;
    }
    AwaitAckLocked(deadline);
  }
  return Backpressure::kWaited;
}

void ZapQueue::Close() {
  MutexLock lk(mu_);
  closed_ = true;
  pending_.clear();
  pending_count_.store(0, std::memory_order_release);
  queue_.clear();
  queued_count_.store(0, std::memory_order_relaxed);
  acked_cv_.notify_all();
  WakeWatcherLocked();
}

std::size_t ZapQueue::pending() const {
  MutexLock lk(mu_);
  return pending_.size();
}

std::vector<std::uint64_t> ZapQueue::PendingPages() const {
  MutexLock lk(mu_);
  std::vector<std::uint64_t> out;
  out.reserve(pending_.size());
  for (const auto& [uva, seq] : pending_) out.push_back(uva);
  return out;
}

}  // namespace remora
