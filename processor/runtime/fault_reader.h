// How a session's fault threads take messages off its userfaultfd.
//
// The cheapest way to wait for a fault is a blocking read() on the uffd:
// the kernel wakes the reader directly. Waiting in epoll first costs an
// extra system call and an extra wake-up layer per fault — about 0.7 us on
// top of a ~5 us round trip, measured with bench/uffd_roundtrip's handler
// in the same run. But a blocking read does not scale to several threads:
// every reader sleeping on a uffd is woken by every fault (the kernel's
// read wait is not exclusive), while EPOLLEXCLUSIVE wakes one.
//
// So a session starts with a single reader: thread 0 blocks in read() and
// serves each fault itself (no hand-off); the other threads sleep. A
// program whose faults come from one thread can never have two faults
// outstanding, so nothing is lost. The first fault from a second thread
// (the uffd reports the faulting thread's id) switches the session for good
// to shared reading: every thread waits in its own epoll set with the uffd
// added EPOLLEXCLUSIVE. Programs whose faults carry no thread id read shared
// from the start.
//
// The kernel's uffd poll reports EPOLLERR on a descriptor without
// O_NONBLOCK ("poll() never guarantees that read won't block"), so the flag
// follows the way of waiting: cleared for the single reader's blocking
// read, set for good once reading is shared. Only thread 0 changes it, and
// only while it is the sole reader; the shim's copy of the descriptor
// shares the flag but never reads. No wait has a timeout: nothing a fault
// thread does is due at a time (partial zap batches go out by the zap
// queue's timer, on the control thread).
//
// Before it sleeps, a thread that has just served a fault polls the uffd
// with non-blocking reads for a while (spin_budget.h: how long adapts to
// whether polling has been finding faults, from zero to 50 us): a program
// that faults densely then finds its next fault read by an awake thread
// instead of paying a sleep and a cross-CPU wake-up on both sides. The
// single reader sets O_NONBLOCK for the poll and clears it again before it
// blocks; the flag only changes when a poll comes up empty. A manager
// confined to one CPU never polls: there a poll can only succeed if the
// program preempts the poller, and sleeping is what lets the program run.
#pragma once

#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "processor/runtime/spin_budget.h"

namespace remora {

class FaultReader {
 public:
  // uffd and stop_fd stay owned by the caller.
  FaultReader(int uffd, int stop_fd);
  ~FaultReader();

  FaultReader(const FaultReader&) = delete;
  FaultReader& operator=(const FaultReader&) = delete;

  // Per-thread state; construct one in each fault thread.
  class Waiter {
   public:
    Waiter(FaultReader& reader, int index) : reader_(reader), index_(index) {}
    ~Waiter();
    // Waits for messages: > 0 the number read into msgs; 0 nothing (another
    // thread took the message, or the session switched to shared reading);
    // -1 stop.
    int Wait(uffd_msg* msgs, int cap);

    // What the last Wait's poll before sleeping did.
    enum class Poll { kNone, kHit, kMiss };
    Poll last_poll() const { return last_poll_; }
    const SpinBudget& spin() const { return spin_; }

   private:
    int WaitShared(uffd_msg* msgs, int cap);
    // Polls for up to the spin budget: > 0 messages, 0 none, -1 stop or
    // error. Updates the budget.
    int Spin(uffd_msg* msgs, int cap);
    FaultReader& reader_;
    const int index_;
    int epoll_fd_ = -1;
    SpinBudget spin_;
    Poll last_poll_ = Poll::kNone;
  };

  // Reports the thread a page fault came from (0: unknown). A second
  // thread switches to shared reading; returns true when this call did.
  bool ObserveFaultingThread(pid_t tid);
  bool shared() const { return shared_.load(std::memory_order_acquire); }

  // After the stop eventfd was written: interrupts a blocking read in
  // progress and waits until the single reader has left it.
  void Interrupt();

 private:
  enum State : int { kServing = 0, kReading = 1, kInterrupted = 2 };

  int ReadBlocking(uffd_msg* msgs, int cap);
  int ReadNoWait(uffd_msg* msgs, int cap);
  // Sets or clears O_NONBLOCK on the uffd if it is not so already.
  bool SetNonBlocking(bool on);
  void SwitchToShared();

  const int uffd_;
  const int stop_fd_;
  int shared_fd_ = -1;       // eventfd: wakes the sleeping threads on the switch
  bool nonblocking_ = true;  // the uffd's O_NONBLOCK; changed by thread 0 only
  bool may_spin_ = false;    // the manager may run on more than one CPU
  std::atomic<bool> shared_{true};
  std::atomic<bool> stopping_{false};
  std::atomic<int> state_{kServing};
  std::atomic<bool> reader_known_{false};
  pthread_t reader_{};
  pid_t first_tid_ = 0;  // touched by the single reader only
};

}  // namespace remora
