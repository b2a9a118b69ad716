#include "processor/runtime/process_session.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "processor/runtime/fault.h"
#include "processor/runtime/fault_reader.h"
#include "processor/runtime/processor_manager.h"
#include "processor/abi/runtime_protocol.h"
#include "processor/runtime/runtime_socket.h"
#include "processor/abi/uffd.h"

namespace remora {

ProcessSession::ProcessSession(ProcessorManager* manager, std::uint64_t id, Asid asid, pid_t pid,
                               int control_fd, int uffd)
    : manager_(manager), id_(id), asid_(asid), pid_(0), control_fd_(control_fd), uffd_(uffd) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  reader_ = std::make_unique<FaultReader>(uffd_, stop_fd_);
  if (pid > 0) SetPid(pid);
}

ProcessSession::~ProcessSession() {
  assert(!control_.joinable());
  for (int fd : {control_fd_, agent_fd_, uffd_, stop_fd_, pagemap_fd_.load()}) {
    if (fd >= 0) ::close(fd);
  }
}

bool ProcessSession::Departed() const {
  if (dead()) return true;
  pollfd p{control_fd_, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP)) != 0;
}

void ProcessSession::SetPid(pid_t pid) {
  const std::string pagemap = "/proc/" + std::to_string(pid) + "/pagemap";
  const int fd = ::open(pagemap.c_str(), O_RDONLY | O_CLOEXEC);
  const int old = pagemap_fd_.exchange(fd);
  if (old >= 0) ::close(old);
  pid_.store(pid, std::memory_order_release);
}

void ProcessSession::AttachAgent(int agent_fd) {
  agent_fd_ = agent_fd;
  zap_queue_ = std::make_unique<ZapQueue>(agent_fd);
  zaps_.store(zap_queue_.get(), std::memory_order_release);
}

void ProcessSession::Start(int agent_fd, int fault_threads) {
  if (agent_fd >= 0) AttachAgent(agent_fd);
  for (int i = 0; i < fault_threads; ++i) faulters_.emplace_back([this, i] { FaultLoop(i); });
  control_ = std::thread([this] { ControlLoop(); });
}

void ProcessSession::Join() {
  if (control_.joinable()) control_.join();
}

bool ProcessSession::Written(std::uint64_t uva) {
  MutexLock lk(written_mu_);
  return written_.count(uva) != 0;
}

void ProcessSession::MarkWritten(std::uint64_t uva) {
  MutexLock lk(written_mu_);
  written_.insert(uva);
}

int ProcessSession::ReadProcessPage(std::uint64_t uva, void* dst) {
  iovec local{dst, kPageSize};
  iovec remote{reinterpret_cast<void*>(uva), kPageSize};
  const pid_t pid = this->pid();
  if (pid <= 0) return ESRCH;  // a forked child not started yet
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n == static_cast<ssize_t>(kPageSize)) return 0;
  return n < 0 ? errno : EFAULT;
}

bool ProcessSession::PagePresent(std::uint64_t uva) {
  std::uint64_t entry = 0;
  const int pagemap = pagemap_fd_.load(std::memory_order_acquire);
  if (pagemap < 0 ||
      ::pread(pagemap, &entry, sizeof(entry), static_cast<off_t>((uva >> kPageShift) * 8)) !=
          static_cast<ssize_t>(sizeof(entry))) {
    return true;  // cannot tell: assume present (the caller then just wakes)
  }
  return (entry >> 62) & 3;  // present, or swapped out by the kernel
}

void ProcessSession::Fail(const Status& why) {
  if (failed_.exchange(true)) return;
  manager_->counters().pgfault_failed->Inc();
  spdlog::error("processor manager: stopping pid {}: {}", pid(), why.ToString());
  if (agent_fd_ >= 0) {
    rt::FatalMessage m;
    std::snprintf(m.text, sizeof(m.text), "%s", why.message().c_str());
    (void)::send(agent_fd_, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(agent_fd_, SHUT_RDWR);
  }
  ::shutdown(control_fd_, SHUT_RDWR);
}

// ---- control thread ----

void ProcessSession::ControlLoop() {
  const ZapQueue* zq = zaps_.load(std::memory_order_acquire);
  pollfd fds[3] = {{control_fd_, POLLIN, 0}, {agent_fd_, POLLIN, 0},
                   {zq != nullptr ? zq->timer_fd() : -1, POLLIN, 0}};
  for (;;) {
    int n = ::poll(fds, 3, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    // The agent gone means the program is exiting (or broken).
    if (fds[1].revents && !zaps().DrainAcks()) break;
    if (fds[2].revents) zaps().OnTimer();  // a batch of zaps waited long enough
    if (fds[0].revents) {
      rt::Request req;
      int fds[2];
      ssize_t r = RecvWithFds(control_fd_, &req, sizeof(req), fds, 2);
      int& fd = fds[0];
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break;
      if (r < 0) continue;
      Status st;
      std::uint32_t reply_flags = 0;
      if (r != static_cast<ssize_t>(sizeof(req)) || req.magic != rt::kMagic) {
        st = {Code::kBadRequest, "malformed request"};
      } else {
        switch (req.op) {
          case rt::Op::kMap: {
            Vma v;
            v.start = req.start;
            v.end = req.start + req.len;
            if (!PageAligned(req.start) || !PageAligned(req.len) || req.len == 0 ||
                v.end < v.start) {
              st = {Code::kBadRequest, "misaligned range"};
              break;
            }
            if (req.flags & rt::kMapFile) {
              if (fd < 0) {
                st = {Code::kBadRequest, "file mapping without a descriptor"};
                break;
              }
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
            st = Release(PageDown(req.start), PageUp(req.start + req.len) - PageDown(req.start), true);
            break;
          case rt::Op::kDiscard:
            st = Release(PageDown(req.start), PageUp(req.start + req.len) - PageDown(req.start), false);
            break;
          case rt::Op::kForkPrepare: {
            if (fds[0] < 0 || fds[1] < 0) {
              st = {Code::kBadRequest, "fork without the child's connections"};
              break;
            }
            bool fresh = false;
            st = PrepareFork(fds[0], fds[1], req.tid, &fresh);
            if (fresh) reply_flags |= rt::kReplyFreshChild;
            fds[0] = fds[1] = -1;  // owned by the fork now, whatever the outcome
            break;
          }
          case rt::Op::kForkDone:
            st = FinishFork(static_cast<pid_t>(req.child_pid));
            break;
          default:
            st = {Code::kBadRequest, "unexpected request"};
        }
      }
      for (int f : fds) {
        if (f >= 0) ::close(f);
      }
      if (!st.ok()) spdlog::warn("processor manager: pid {}: {}", pid(), st.ToString());
      if (!SendReply(control_fd_, st.code(), id_, asid_, "", reply_flags).ok()) break;
    }
  }
  Teardown();
  manager_->Retire(id_);
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
    for (std::uint64_t uva = v.start; uva < v.end; uva += kPageSize) {
      const PageKey key{asid_, uva};
      pcache->RemoveRmap(key);
      if (victim) victim->Drop(key);
    }
    {
      MutexLock lk(written_mu_);
      if (written_.size() < (v.end - v.start) / kPageSize) {
        for (auto it = written_.begin(); it != written_.end();) {
          if (*it >= v.start && *it < v.end) it = written_.erase(it); else ++it;
        }
      } else {
        for (std::uint64_t uva = v.start; uva < v.end; uva += kPageSize) written_.erase(uva);
      }
    }
    // A zap still queued for this memory must land before the program
    // unmaps it, or it could hit whatever is mapped there next.
    Status st = zaps().WaitClear(v.start, v.end, manager_->options().zap_timeout);
    if (st.ok()) {
      st = unmap ? manager_->transport()->UnregisterRange(asid_, v.start, v.end - v.start)
                 : manager_->transport()->DiscardRange(asid_, v.start, v.end - v.start);
    }
    if (!st.ok() && result.ok()) result = st;
  }
  (unmap ? manager_->counters().ranges_unmapped : manager_->counters().ranges_discarded)->Inc();
  return result;
}

void ProcessSession::Teardown() {
  dead_.store(true, std::memory_order_release);
  std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof(one));
  reader_->Interrupt();
  if (zap_queue_) zap_queue_->Close();
  for (auto& t : faulters_) t.join();
  faulters_.clear();
  AbandonFork();  // a fork cut short by the program's end
  // RemoveSpace waits out evictions of our lines already under way, so
  // their data is in the victim cache before DropSpace runs.
  manager_->pcache()->RemoveSpace(asid_);
  if (manager_->victim()) manager_->victim()->DropSpace(asid_);
  Status st = manager_->transport()->DestroySpace(asid_);
  if (!st.ok()) spdlog::warn("processor manager: destroying the space of pid {}: {}", pid(), st.ToString());
  for (const Vma& v : vmas_.All()) vmas_.Remove(v.start, v.end);
  finished_.store(true);
}

// ---- fault threads ----

// How the fault threads wait is FaultReader's business (a single blocking
// reader until a second program thread faults, then EPOLLEXCLUSIVE). They
// wait without a timeout: zaps queued by evictions go out when a batch is
// full or, by the zap queue's timer, from the control thread.
void ProcessSession::FaultLoop(int index) {
  FaultReader::Waiter waiter(*reader_, index);
  uffd_msg msgs[16];
  for (;;) {
    const int n = waiter.Wait(msgs, 16);
    if (n < 0) break;
    if (n == 0) continue;
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
  if (fork_pending_.load(std::memory_order_relaxed)) {
    MutexLock lk(fork_mu_);
    if (fork_.event_seen || tid == 0 || tid != fork_.tid) {
      fork_.deferred.emplace_back(address, flags);
      manager_->counters().pgfault_deferred->Inc();
      return;
    }
    // The forking thread itself, before the fork reached the kernel
    // (an atfork handler touching memory): it cannot wait for the fork.
    fork_.served.push_back(PageDown(address));
  }
  std::optional<Vma> vma = vmas_.Find(PageDown(address));
  if (!vma) {
    (void)uffd::Wake(uffd_, PageDown(address), kPageSize);
    manager_->counters().pgfault_range_gone->Inc();
    return;
  }
  Status st = HandleFault(*manager_, *this, address, flags, *vma);
  if (!st.ok() && !dead()) Fail(st);
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
