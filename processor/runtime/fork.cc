// fork of a program under Remora: the manager's half of the handshake in
// processor/shim/shim_fork.cc.
//
//   PrepareFork (control thread, before the fork system call)
//     hold back the program's faults (ServeFault defers them), write-protect
//     every registered range — one ioctl per run of ranges — so that after
//     the kernel copies the page tables every shared page faults on its
//     first write, in either process.
//   OnForkEvent (a fault thread, when it reads UFFD_EVENT_FORK)
//     with evictions paused: fork the space on the memory node, share the
//     victim cache's entries and the resident pcache lines with the child
//     (two rmaps, kLineForked), give it the parent's view (ranges, pages
//     ever written back). Then the held-back faults are served.
//   FinishFork (control thread, ForkDone: the pid)
//     hand the child its uffd (ForkWelcome) and start its session.
//
// Why evictions pause: an eviction between forking the memory node's space
// and sharing the pcache lines would write a page back for the parent only
// while the child still expects it from the line or the memory node.
//
// Pages the parent had evicted but not yet zapped (the zap in flight) are
// still in its page table when the kernel copies it, so the child inherits
// them without a line; they get zapped in the child too (NoteZap).
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "processor/abi/uffd.h"
#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"
#include "processor/runtime/runtime_socket.h"

namespace remora {
namespace {

// A FORK event nobody prepared for: the program forked around the shim (a
// raw system call). Its child's pages were not write-protected before the
// copy, so it cannot share the parent's lines, and serving it zeros would
// corrupt it. The child runs on what it has resident; the first time it
// needs a page from the manager it is stopped — through a pidfd, and only
// if the thread the kernel named is in a child of the parent's process.
void StopUnpreparedChild(int uffd, const Peer& parent) {
  spdlog::error(
      "processor manager: pid {} forked without going through the shim (a raw fork "
      "system call); its child will be stopped when it touches managed memory",
      parent.pid);
  std::thread([uffd, parent] {
    pollfd p{uffd, POLLIN, 0};
    uffd_msg msg{};
    for (;;) {
      if (::poll(&p, 1, -1) < 0 && errno != EINTR) break;
      const ssize_t n = ::read(uffd, &msg, sizeof(msg));
      if (n == static_cast<ssize_t>(sizeof(msg)) && msg.event == UFFD_EVENT_PAGEFAULT) {
        const pid_t tid = static_cast<pid_t>(msg.arg.pagefault.feat.ptid);
        const int pidfd = ChildThreadPidfd(tid, parent);
        if (pidfd >= 0) {
          (void)SignalPidfd(pidfd, SIGKILL);
          ::close(pidfd);
        }
        break;
      }
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    }
    ::close(uffd);
  }).detach();
}

void CloseFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

}  // namespace

Status ProcessSession::PrepareFork(int child_control, int child_agent, pid_t tid, bool* fresh) {
  // The shim holds its control lock across the fork, so no range comes or
  // goes until ForkDone: if none is registered now, the kernel has nothing
  // to copy and sends no event.
  *fresh = vmas_.size() == 0;
  if (*fresh) {
    ::close(child_control);
    ::close(child_agent);
    MutexLock lk(fork_mu_);
    fork_.fresh = true;
    return Status::Ok();
  }
  {
    // Exclusive: no fault of ours is half-served (a page about to be
    // installed writable) while the ranges are write-protected below.
    WriterMutexLock gate(fault_mu_);
    MutexLock lk(fork_mu_);
    if (fork_.pending || fork_.child) {
      ::close(child_control);
      ::close(child_agent);
      return {Code::kBusy, "a fork is already in progress"};
    }
    ResetForkLocked();
    SetForkPendingLocked(true);
    fork_.tid = tid;
    fork_.control = child_control;
    fork_.agent = child_agent;
    fork_.zapped = zaps().PendingPages();
  }
  // Write-protect whole ranges; adjacent ranges go in one call.
  const std::vector<Vma> ranges = vmas_.All();
  Status st;
  for (std::size_t i = 0; i < ranges.size() && st.ok();) {
    std::size_t j = i + 1;
    while (j < ranges.size() && ranges[j].start == ranges[j - 1].end) ++j;
    const int e =
        uffd::WriteProtect(uffd_, ranges[i].start, ranges[j - 1].end - ranges[i].start, true);
    if (e != 0 && e != ENOENT) {
      st = {Code::kIoError, std::string("write-protecting for fork: ") + std::strerror(e)};
    }
    i = j;
  }
  if (!st.ok()) {
    {
      MutexLock lk(fork_mu_);
      CloseFd(&fork_.control);
      CloseFd(&fork_.agent);
    }
    EndFork();
    manager_->counters().fork_failed->Inc();
  }
  return st;
}

void ProcessSession::OnForkEvent(int child_uffd) {
  int control, agent;
  {
    MutexLock lk(fork_mu_);
    if (!fork_.pending || fork_.event_seen) {
      StopUnpreparedChild(child_uffd, Owner());
      return;
    }
    fork_.event_seen = true;
    control = std::exchange(fork_.control, -1);
    agent = std::exchange(fork_.agent, -1);
  }
  std::uint64_t id;
  Asid asid;
  manager_->NewSessionIds(&id, &asid);
  // The child runs as its parent's user; its pid (and pidfd) come with
  // ForkDone, checked there.
  Peer unborn;
  unborn.uid = uid_;
  auto child = std::make_shared<ProcessSession>(manager_, id, asid, unborn, control, child_uffd);
  child->AttachAgent(agent);
  Status st = ShareWithChild(child);
  if (!st.ok()) {
    spdlog::error("processor manager: pid {}: cannot set up the forked child: {}", pid(),
                  st.ToString());
  }
  {
    // The hold-back ends together with the fork: once FinishFork sees
    // `done` the program may fork again, and that fork's PrepareFork must
    // not be undone by this one's end.
    WriterMutexLock gate(fault_mu_);
    MutexLock lk(fork_mu_);
    if (st.ok())
      fork_.child = child;
    else
      fork_.error = st;
    fork_.done = true;
    SetForkPendingLocked(false);
  }
  fork_cv_.notify_all();
  // A failed child is simply dropped: its connections close and the child
  // stops itself ("could not take over the forked child").
  ServeDeferred();
}

Status ProcessSession::ShareWithChild(const std::shared_ptr<ProcessSession>& child) {
  Pcache* pcache = manager_->pcache();
  std::vector<std::uint64_t> zapped;
  {
    auto paused = pcache->PauseEvictions();
    REMORA_RETURN_IF_ERROR(manager_->transport()->ForkSpace(asid_, child->asid()));
    // From here on evictions find the child and treat it as an owner.
    manager_->Register(child);
    // The memory node's fork came first: a flush since then reached the
    // parent's page only, so a flushed entry is written again for both.
    if (manager_->victim()) manager_->victim()->ShareSpace(asid_, child->asid(), true);
    pcache->ShareSpace(asid_, child->asid());
    child->InheritFrom(*this);
    MutexLock lk(fork_mu_);
    zapped.swap(fork_.zapped);
    for (std::uint64_t uva : fork_.served) {
      // The forking thread's own writes in the window may have left a page
      // writable before the copy: protect it again on both sides.
      (void)uffd::WriteProtect(uffd_, uva, kPageSize, true);
      (void)uffd::WriteProtect(child->uffd(), uva, kPageSize, true);
    }
    fork_.shared = true;  // NoteZap: from now on the child gets its own zaps
  }
  for (std::uint64_t uva : zapped) {
    // A page resident for the child is its line's page (refilled before
    // the copy); anything else the child inherited is stale.
    if (pcache->Lookup({child->asid(), uva})) continue;
    if (child->zaps().Zap(uva).ok()) manager_->counters().zap_pages->Inc();
  }
  return Status::Ok();
}

void ProcessSession::InheritFrom(ProcessSession& parent) {
  for (const Vma& v : parent.vmas_.All()) vmas_.Insert(v);
  // Parent's lock first: the child is not started, nobody else takes both.
  MutexLock parent_lk(parent.written_mu_);
  MutexLock lk(written_mu_);
  written_ = parent.written_;
}

void ProcessSession::SetForkPendingLocked(bool pending) {
  fork_.pending = pending;
  // Relaxed, as the faults that read it hold fault_mu_ (shared) and we hold
  // it exclusively. A failed or dead session stays so: the exchange fails.
  SessionState from = pending ? SessionState::kAttached : SessionState::kForkPending;
  state_.compare_exchange_strong(from,
                                 pending ? SessionState::kForkPending : SessionState::kAttached,
                                 std::memory_order_relaxed);
}

void ProcessSession::ResetForkLocked() {
  // Faults held back and not served yet stay: their threads wait for them.
  auto deferred = std::move(fork_.deferred);
  fork_ = ForkState{};
  fork_.deferred = std::move(deferred);
}

void ProcessSession::EndFork() {
  {
    WriterMutexLock gate(fault_mu_);
    MutexLock lk(fork_mu_);
    SetForkPendingLocked(false);
  }
  ServeDeferred();
}

Status ProcessSession::FinishFork(pid_t child_pid) {
  MutexLock lk(fork_mu_);
  if (fork_.fresh) {
    // The child attaches as a new program (Hello) on its own.
    ResetForkLocked();
    if (child_pid > 0) manager_->counters().fork->Inc();
    return Status::Ok();
  }
  if (!fork_.pending && !fork_.done) return Status::Ok();  // nothing in progress
  if (child_pid <= 0) {
    // The fork failed: no event comes. End the hold-back (EndFork leaves
    // kForkPending too, or every later fault would be deferred for good)
    // and let the held-back faults go.
    CloseFd(&fork_.control);
    CloseFd(&fork_.agent);
    const bool was_pending = fork_.pending;
    ResetForkLocked();
    lk.unlock();
    if (was_pending) EndFork();
    return Status::Ok();
  }
  // The fork returned, so the kernel queued the event; a fault thread may
  // still be setting the child up.
  if (!fork_cv_.wait_for(fork_mu_, std::chrono::seconds(10),
                         [&]() REQUIRES(fork_mu_) { return fork_.done; })) {
    CloseFd(&fork_.control);
    CloseFd(&fork_.agent);
    lk.unlock();
    EndFork();
    {
      MutexLock relock(fork_mu_);
      ResetForkLocked();
    }
    manager_->counters().fork_failed->Inc();
    return {Code::kTimeout, "no fork event for child " + std::to_string(child_pid)};
  }
  std::shared_ptr<ProcessSession> child = std::move(fork_.child);
  const Status error = fork_.error;
  ResetForkLocked();
  lk.unlock();
  if (!child) {
    manager_->counters().fork_failed->Inc();
    return error;
  }
  // The pid comes from the program: it must name the forked child, not
  // some process whose memory the child's evictions would then copy.
  Peer adopted;
  Status checked = CheckForkedChild(child_pid, Owner(), &adopted);
  if (!checked.ok()) {
    child->Start(-1, 0);
    child->Fail(checked);
    manager_->counters().fork_failed->Inc();
    return checked;
  }
  child->AdoptChild(adopted);
  Status st =
      SendReplyWithFd(child->control_fd_, Code::kOk, child->id(), child->asid(), child->uffd());
  // Started either way: if the welcome did not arrive, the child is gone or
  // stops itself, and its control thread notices and tears down.
  child->Start(-1, manager_->options().fault_threads);
  if (!st.ok()) {
    manager_->counters().fork_failed->Inc();
    return st;
  }
  manager_->counters().fork->Inc();
  return Status::Ok();
}

void ProcessSession::NoteZap(std::uint64_t uva) {
  MutexLock lk(fork_mu_);
  if (fork_.pending && !fork_.shared) fork_.zapped.push_back(uva);
}

void ProcessSession::AbandonFork() {
  MutexLock lk(fork_mu_);
  std::shared_ptr<ProcessSession> child = std::move(fork_.child);
  CloseFd(&fork_.control);
  CloseFd(&fork_.agent);
  ResetForkLocked();
  lk.unlock();
  if (child) {
    // Set up but never told its pid: start it only to stop it, so its
    // teardown frees what it shares.
    child->Start(-1, 0);
    child->Fail({Code::kDisconnected, "the parent exited while forking"});
  }
}

}  // namespace remora
