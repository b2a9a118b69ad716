// A session's control thread: the server of the program's control
// connection (runtime_protocol.h). It answers the requests in the order the
// program made them — Map (register a range, a private file mapping's
// descriptor with it), Unmap and Discard (Release), ForkPrepare and ForkDone
// (fork.cc) — flushes the zap queue on its timer, reads the agent's
// ZapAcks, samples the program's local memory (local_memory.h) and notices
// the program's end (either connection closing), after
// which it tears the session down. Hello is the manager's (it makes the
// session, processor_manager.cc).
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/thread_name.h"
#include "processor/abi/fd_passing.h"
#include "processor/abi/runtime_protocol.h"
#include "processor/runtime/local_memory.h"
#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"
#include "processor/runtime/runtime_message.h"
#include "processor/runtime/runtime_socket.h"

namespace remora {

void ProcessSession::ControlLoop() {
  NameThisThread("remora-control");
  const ZapQueue* zq = zaps_.load(std::memory_order_acquire);
  pollfd fds[3] = {{control_fd_, POLLIN, 0},
                   {agent_fd_, POLLIN, 0},
                   {zq != nullptr ? zq->timer_fd() : -1, POLLIN, 0}};
  auto next_sample = std::chrono::steady_clock::now();
  std::chrono::milliseconds sample_period = kLocalMemorySamplePeriod;
  std::uint64_t faults_at_sample = 0;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_sample) {
      // Back off while the program sleeps (local_memory.h).
      const std::uint64_t faults = manager_->counters().pgfault->Value();
      const bool moved = SampleLocalMemory() || faults != faults_at_sample;
      faults_at_sample = faults;
      sample_period = moved ? kLocalMemorySamplePeriod
                            : std::min(sample_period * 2, kLocalMemoryIdleSamplePeriod);
      next_sample = now + sample_period;
    }
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_sample - now).count() + 1;
    int n = ::poll(fds, 3, static_cast<int>(wait));
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) continue;
    // The agent gone means the program is exiting (or broken).
    if (fds[1].revents && !zaps().DrainAcks()) break;
    if (fds[2].revents) zaps().OnTimer();  // a batch of zaps waited long enough
    if (fds[0].revents) {
      alignas(rt::Request) char buf[sizeof(rt::Request) + 1];
      int fds[2];
      ssize_t r = rt::RecvWithFds(control_fd_, buf, sizeof(buf), fds, 2);
      int& fd = fds[0];
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break;
      if (r < 0) continue;
      rt::Request req;
      Status st = DecodeRequest(buf, static_cast<std::size_t>(r), (fds[0] >= 0) + (fds[1] >= 0),
                                RequestChannel::kControl, id_, &req);
      std::uint32_t reply_flags = 0;
      if (!st.ok()) {
        // A program that breaks the protocol is not served any further: it
        // ends, and the manager and every other program go on.
        for (int f : fds) {
          if (f >= 0) ::close(f);
        }
        (void)SendReply(control_fd_, st.code(), id_, asid_, st.message());
        Fail(st);
        break;
      }
      switch (req.op) {
        case rt::Op::kMap: {
          Vma v;
          v.start = req.start;
          v.end = req.start + req.len;
          if (req.flags & rt::kMapFile) {
            v.file = std::make_shared<FileBacking>(fd);
            fd = -1;
            v.file_offset = req.file_offset;
          }
          st = manager_->transport()->RegisterRange(asid_, v.start, req.len);
          if (st.ok()) {
            vmas_.Insert(v);
            manager_->counters().ranges_mapped->Inc();
          }
          break;
        }
        case rt::Op::kUnmap:
          st =
              Release(PageDown(req.start), PageUp(req.start + req.len) - PageDown(req.start), true);
          break;
        case rt::Op::kDiscard:
          st = Release(PageDown(req.start), PageUp(req.start + req.len) - PageDown(req.start),
                       false);
          break;
        case rt::Op::kForkPrepare: {
          bool fresh = false;
          st = PrepareFork(fds[0], fds[1], req.tid, &fresh);
          if (fresh) reply_flags |= rt::kReplyFreshChild;
          fds[0] = fds[1] = -1;  // owned by the fork now, whatever the outcome
          break;
        }
        case rt::Op::kForkDone:
          st = FinishFork(static_cast<pid_t>(req.child_pid));
          break;
        default:  // DecodeRequest lets no other op through
          st = {Code::kBadRequest, "unexpected request"};
      }
      for (int f : fds) {
        if (f >= 0) ::close(f);
      }
      if (!st.ok()) spdlog::warn("processor manager: pid {}: {}", pid(), st.ToString());
      // An error's reason goes back with it: the shim stops the program
      // with it when the request was one it cannot do without (a release).
      if (!SendReply(control_fd_, st.code(), id_, asid_, st.message(), reply_flags).ok()) break;
    }
  }
  if (state_.load() == SessionState::kFailed && fault_unserved_.load(std::memory_order_relaxed))
    EnsureStopped();
  ForgetLocalMemory();
  Teardown();
  manager_->Retire(id_);
}

void ProcessSession::EnsureStopped() {
  const int pidfd = pidfd_.load(std::memory_order_acquire);
  if (pidfd < 0) return;
  // A pidfd is readable once its process has exited.
  pollfd p{pidfd, POLLIN, 0};
  int n;
  do n = ::poll(&p, 1, static_cast<int>(kStopGrace.count()));
  while (n < 0 && errno == EINTR);
  if (n != 0) return;
  spdlog::error(
      "processor manager: pid {} did not stop within {} ms (its agent cannot run); "
      "killing it",
      pid(), kStopGrace.count());
  const int e = SignalPidfd(pidfd, SIGKILL);
  if (e != 0 && e != ESRCH)
    spdlog::error("processor manager: killing pid {}: {}", pid(), std::strerror(e));
}

// Frees the pages of [start, start+len): lines, victim entries, zaps still
// queued there, and the memory node's copies. `unmap` also forgets the range.
Status ProcessSession::Release(std::uint64_t start, std::uint64_t len, bool unmap) {
  WriterMutexLock gate(fault_mu_);  // no fault is being served meanwhile
  const std::uint64_t end = start + len;
  std::vector<Vma> pieces = unmap ? vmas_.Remove(start, end) : vmas_.Overlapping(start, end);
  Pcache* pcache = manager_->pcache();
  VictimCache* victim = manager_->victim();
  Status result;
  for (const Vma& v : pieces) {
    // Per page for a small range; for one with more pages than the cache
    // has lines (a reservation of gigabytes, mostly never touched), a walk
    // of the lines and victim entries instead: the cost of a release is
    // bounded by what can be resident, not by the size of the range.
    const std::uint64_t pages = (v.end - v.start) / kPageSize;
    if (pages > pcache->geometry().nr_lines()) {
      pcache->RemoveRange(asid_, v.start, v.end);
      if (victim) victim->DropRange(asid_, v.start, v.end);
    } else {
      for (std::uint64_t uva = v.start; uva < v.end; uva += kPageSize) {
        const PageKey key{asid_, uva};
        pcache->RemoveRmap(key);
        if (victim) victim->Drop(key);
      }
    }
    {
      MutexLock lk(written_mu_);
      written_.EraseRange(v.start, v.end);
    }
    // A zap still queued for this memory must land before the program
    // unmaps it, or it could hit whatever is mapped there next.
    Status st = zaps().WaitClear(v.start, v.end, manager_->options().zap_timeout);
    if (st.ok()) {
      st = unmap ? manager_->transport()->UnregisterRange(asid_, v.start, v.end - v.start)
                 : manager_->transport()->DiscardRange(asid_, v.start, v.end - v.start);
      if (!st.ok() && st.message().rfind("memory node", 0) != 0)  // as in fault.cc
        st = {st.code(), "memory node: " + st.message()};
    }
    if (!st.ok() && result.ok()) result = st;
  }
  (unmap ? manager_->counters().ranges_unmapped : manager_->counters().ranges_discarded)->Inc();
  return result;
}

}  // namespace remora
