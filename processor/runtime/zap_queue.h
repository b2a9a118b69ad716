// Zaps on their way to one program's agent thread.
//
// Eviction does not wait for the agent: it write-protects the page, copies
// its data out, queues the zap and frees the line. Until the agent has
// dropped the page, the program may still read it (same data as the copy,
// and writes are blocked by the write protection), so the overshoot is
// harmless — as long as nothing new is installed at that address before the
// zap lands. Hence the rule, enforced by the fault handler and by unmap and
// discard: before anything is installed at (or unmapped from) an address,
// WaitClear() for it.
//
// Zaps are batched: Zap() queues, and a batch goes to the agent when it is
// full, when someone waits for a queued page (WaitClear), or kFlushDelay
// after the first zap of the batch was queued: a timerfd, armed then (unless
// it is armed already: it then fires sooner for this batch), wakes the
// session's control thread, which calls OnTimer(). (Fault threads never
// need a timeout of their own, so they can wait in a blocking read.) One
// agent wake-up and one madvise call then drop many pages.
//
// Pending zaps are pages still resident in the program beyond the pcache's
// capacity. Throttle() bounds them: an eviction that leaves more than
// kMaxPending zaps pending for a program sends them at once and waits until
// the agent has dropped all but kMaxPending - kBatch of them (backpressure),
// so a program's resident managed pages never exceed its pcache lines by
// more than kMaxPending plus the evictions in flight (one per evicting
// thread). A wait that times out (the program is stopped, its agent does
// not run) marks the agent stalled: nobody waits for it again until it
// acknowledges something.
//
// Before the agent has announced itself (its first acknowledgement), no zap
// is sent: they stay queued, and the first acknowledgement arms the flush
// timer. A wait for a page queued then would wait for a thread that may
// never start: a forked child creates its agent after fork, and creating a
// thread writes to memory that may be the page (glibc clears the DTV of a
// cached thread stack, which lives in the managed heap). So WaitClear takes
// such zaps back instead of waiting: never sent, they can be. The page they
// were to drop is then either absent already (the fault that waits proves
// it) or still mapped with the data that was copied out (eviction
// write-protects before it copies), which the fault path keeps as dirty
// (UFFDIO_COPY's EEXIST).
//
// Sequence numbers order the zaps; the agent acknowledges "everything up to
// seq". Two mutexes: send_mu_ keeps batches in sequence order (taken before
// mu_, and held across the send, which may block on a full socket); mu_
// guards the pending set and is never held across a send, so
// acknowledgements are always processed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "remora/status.h"

namespace remora {

class ZapQueue {
 public:
  explicit ZapQueue(int agent_fd);
  ~ZapQueue();
  ZapQueue(const ZapQueue&) = delete;
  ZapQueue& operator=(const ZapQueue&) = delete;

  static constexpr std::size_t kBatch = 32;
  // Pages with a zap pending (queued or unacknowledged) per program, at most
  // (see Throttle). 512 KiB.
  static constexpr std::size_t kMaxPending = 128;
  // Long enough that a program evicting slowly still sends batches of many
  // pages (each batch is a wake-up of the control thread, of the agent and
  // an acknowledgement); the overshoot meanwhile is bounded by kMaxPending
  // either way.
  static constexpr std::chrono::milliseconds kFlushDelay{10};

  // Queues a zap of the page at uva (sending the batch if it is full).
  // kDisconnected if the agent is gone (the program is exiting).
  Status Zap(std::uint64_t uva) EXCLUDES(mu_);
  // Sends what is queued.
  Status Flush() EXCLUDES(send_mu_, mu_);
  // Readable when queued zaps have waited kFlushDelay; then call OnTimer.
  int timer_fd() const { return timer_fd_; }
  void OnTimer() EXCLUDES(send_mu_, mu_);
  bool has_queued() const { return queued_count_.load(std::memory_order_relaxed) != 0; }
  // The agent dropped every page up to seq.
  void OnAck(std::uint64_t seq) EXCLUDES(mu_);
  // Reads every acknowledgement waiting on the agent connection (without
  // blocking). False if the agent is gone. Any thread may call it: waiters
  // do, so that a wait never depends on another thread reading acks (the
  // control thread itself waits for zaps when a program unmaps memory).
  bool DrainAcks() EXCLUDES(mu_);
  // Waits until no zap of a page in [start, end) is pending. kTimeout or
  // kDisconnected if the agent does not answer. Before the agent has
  // announced itself, takes the range's zaps back instead (see above).
  Status WaitClear(std::uint64_t start, std::uint64_t end, std::chrono::milliseconds timeout)
      EXCLUDES(send_mu_, mu_);
  // Backpressure, called after zaps were queued: above kMaxPending pending
  // zaps, sends them and waits (up to timeout) for the agent. Never waits
  // before the agent announced itself (its first acknowledgement, seq 0),
  // but reads the socket for that announcement first.
  enum class Backpressure { kNone, kWaited, kGaveUp };
  // kThrottleTimeout is long enough for a loaded machine to schedule the
  // agent, short enough that a stopped program holds up others' evictions
  // only briefly.
  static constexpr std::chrono::milliseconds kThrottleTimeout{1000};
  Backpressure Throttle(std::chrono::milliseconds timeout = kThrottleTimeout)
      EXCLUDES(send_mu_, mu_);
  // The agent is gone: pending zaps will never be acknowledged.
  void Close() EXCLUDES(mu_);

  std::size_t pending() const EXCLUDES(mu_);
  // The pages with a zap queued or not yet acknowledged.
  std::vector<std::uint64_t> PendingPages() const EXCLUDES(mu_);

 private:
  bool PendingInLocked(std::uint64_t start, std::uint64_t end, bool* queued) const REQUIRES(mu_);
  // Forgets the queued (never sent) zaps of pages in [start, end).
  void TakeBackLocked(std::uint64_t start, std::uint64_t end) REQUIRES(mu_);
  // Waits a little (at most until deadline, a few ms) for an
  // acknowledgement: watches the agent socket, or waits for the waiter that
  // does. Drops mu_ meanwhile.
  void AwaitAckLocked(std::chrono::steady_clock::time_point deadline) REQUIRES(mu_);
  // Arms the flush timer for kFlushDelay (the caller set timer_armed_).
  void ArmTimer();
  // Signals ack_event_ if a WaitClear is watching the socket (mu_ held).
  void WakeWatcherLocked() REQUIRES(mu_);

  const int fd_;
  // Signalled by OnAck while a waiter watches the socket (watching_).
  const int ack_event_;
  const int timer_fd_;  // armed when a batch starts (kFlushDelay), unless armed already
  // Held across a send (blocking I/O); guards no field, only the order of
  // sends.
  Mutex send_mu_ ACQUIRED_BEFORE(mu_);
  mutable Mutex mu_;
  CondVar acked_cv_;
  std::uint64_t next_seq_ GUARDED_BY(mu_) = 0;
  std::uint64_t acked_ GUARDED_BY(mu_) = 0;
  std::uint64_t sent_ GUARDED_BY(mu_) = 0;  // highest sequence number handed to the socket
  struct Queued {
    std::uint64_t uva;
    std::uint64_t seq;
  };
  std::vector<Queued> queue_ GUARDED_BY(mu_);  // not yet sent, in sequence order
  std::atomic<std::size_t> queued_count_{0};
  // pending_.size(), for WaitClear's lock-free fast path. Stored under mu_
  // (release); a zap queued before a line was freed is visible to whoever
  // allocates that line next (the set lock orders the two).
  std::atomic<std::size_t> pending_count_{0};
  bool closed_ GUARDED_BY(mu_) = false;
  bool timer_armed_ GUARDED_BY(mu_) = false;    // set when armed, cleared when it fires
  bool agent_running_ GUARDED_BY(mu_) = false;  // it acknowledged once (seq 0 at its start)
  bool stalled_ GUARDED_BY(mu_) = false;        // a Throttle wait for it timed out
  // One WaitClear at a time polls the agent socket; the others wait on
  // acked_cv_.
  bool watching_ GUARDED_BY(mu_) = false;
  std::unordered_map<std::uint64_t, std::uint64_t> pending_ GUARDED_BY(mu_);  // uva -> latest seq
};

}  // namespace remora
