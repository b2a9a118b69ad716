// A session's fault threads: each reads the program's userfaultfd and serves
// what it read on the same thread (fault.cc does the serving), so the only
// hand-off on the fault path is the one userfaultfd itself makes. The FORK
// event arrives here too (OnForkEvent, fork.cc). While a fork is being set
// up the program's faults are held back and served when it ends.
#include <linux/userfaultfd.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/thread_name.h"
#include "processor/abi/uffd.h"
#include "processor/runtime/fault.h"
#include "processor/runtime/fault_reader.h"
#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"

namespace remora {

// How the fault threads wait is FaultReader's business (a single blocking
// reader until a second program thread faults, then EPOLLEXCLUSIVE; a short
// adaptive poll after each fault before sleeping). They wait without a
// timeout: zaps queued by evictions go out when a batch is
// full or, by the zap queue's timer, from the control thread.
void ProcessSession::FaultLoop(int index) {
  NameThisThread("remora-fault" + std::to_string(index));
  FaultReader::Waiter waiter(*reader_, index);
  uffd_msg msgs[16];
  for (;;) {
    const int n = waiter.Wait(msgs, 16);
    if (n < 0) break;
    if (waiter.last_poll() == FaultReader::Waiter::Poll::kHit)
      manager_->counters().fault_spin_hit->Inc();
    else if (waiter.last_poll() == FaultReader::Waiter::Poll::kMiss)
      manager_->counters().fault_spin_miss->Inc();
    if (n == 0) continue;
    manager_->cpu_latency_qos().OnFaults(static_cast<std::uint32_t>(n));
    for (int i = 0; i < n; ++i) {
      const uffd_msg& msg = msgs[i];
      if (msg.event == UFFD_EVENT_FORK) {
        OnForkEvent(static_cast<int>(msg.arg.fork.ufd));
      } else if (msg.event == UFFD_EVENT_PAGEFAULT) {
        const auto tid = static_cast<pid_t>(msg.arg.pagefault.feat.ptid);
        if (reader_->ObserveFaultingThread(tid)) manager_->counters().fault_reader_shared->Inc();
        ServeFault(msg.arg.pagefault.address, msg.arg.pagefault.flags, tid);
      }
    }
  }
}

void ProcessSession::ServeFault(std::uint64_t address, std::uint64_t flags, pid_t tid) {
  // Held shared while the fault is served: Release (munmap, discard) waits
  // for it, and a fault that comes after finds its range gone instead of
  // filling a line for memory that is about to disappear (that line would
  // outlive the mapping, and its eviction would write to a range the memory
  // node no longer has). The program is woken to retry: the access then
  // either finds the memory unmapped or (discard) faults again.
  ReaderMutexLock gate(fault_mu_);
  // kAttached: no fork is pending (that state is left only under the gate
  // held exclusively). Otherwise a fork may hold faults back: kForkPending,
  // or a fork cut across by Fail or Teardown, which fork_.pending tells.
  if (state_.load(std::memory_order_relaxed) != SessionState::kAttached) {
    MutexLock lk(fork_mu_);
    if (fork_.pending) {
      if (fork_.event_seen || tid == 0 || tid != fork_.tid) {
        fork_.deferred.emplace_back(address, flags);
        manager_->counters().pgfault_deferred->Inc();
        return;
      }
      // The forking thread itself, before the fork reached the kernel
      // (an atfork handler touching memory): it cannot wait for the fork.
      fork_.served.push_back(PageDown(address));
    }
  }
  std::optional<Vma> vma = vmas_.Find(PageDown(address));
  if (!vma) {
    (void)uffd::Wake(uffd_, PageDown(address), kPageSize);
    manager_->counters().pgfault_range_gone->Inc();
    return;
  }
  Status st = HandleFault(*manager_, *this, address, flags, tid, *vma);
  if (!st.ok() && !dead()) {
    // The faulting thread stays blocked: only the agent (or EnsureStopped)
    // ends the program now.
    fault_unserved_.store(true, std::memory_order_relaxed);
    Fail(st);
  }
}

void ProcessSession::ServeDeferred() {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> deferred;
  {
    MutexLock lk(fork_mu_);
    deferred.swap(fork_.deferred);
  }
  for (const auto& [address, flags] : deferred) ServeFault(address, flags, 0);
}

}  // namespace remora
