// A session's life (process_session.h): made, started, failed, torn down;
// and the few ways the manager reaches into the program (its pages, through
// /proc and process_vm_readv). Its threads' work is elsewhere: the control
// connection in control_server.cc, faults in fault_threads.cc, fork in
// fork.cc.
#include "processor/runtime/process_session.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "processor/abi/runtime_protocol.h"
#include "processor/runtime/fault_reader.h"
#include "processor/runtime/processor_manager.h"

namespace remora {

ProcessSession::ProcessSession(ProcessorManager* manager, std::uint64_t id, Asid asid,
                               const Peer& owner, int control_fd, int uffd)
    : manager_(manager),
      id_(id),
      asid_(asid),
      pid_(0),
      uid_(owner.uid),
      control_fd_(control_fd),
      uffd_(uffd) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  reader_ = std::make_unique<FaultReader>(uffd_, stop_fd_);
  pidfd_.store(owner.pidfd, std::memory_order_release);
  if (owner.pid > 0) SetPid(owner.pid);
}

ProcessSession::~ProcessSession() {
  assert(!control_.joinable());
  for (int fd : {control_fd_, agent_fd_, uffd_, stop_fd_, pagemap_fd_.load(), mem_fd_.load(),
                 pidfd_.load()}) {
    if (fd >= 0) ::close(fd);
  }
}

bool ProcessSession::Departed() const {
  if (dead()) return true;
  pollfd p{control_fd_, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP)) != 0;
}

Peer ProcessSession::Owner() const {
  Peer p;
  p.uid = uid_;
  p.pid = pid();
  return p;
}

void ProcessSession::AdoptChild(const Peer& child) {
  const int old = pidfd_.exchange(child.pidfd, std::memory_order_acq_rel);
  if (old >= 0) ::close(old);
  SetPid(child.pid);
}

void ProcessSession::SetPid(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  int pagemap = ::open((proc + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  int mem = ::open((proc + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  // Opened while the program lived: the files are the program's.
  if (!PeerAlive(pidfd_.load(std::memory_order_acquire))) {
    for (int* fd : {&pagemap, &mem}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }
  for (auto [slot, fd] : {std::pair{&pagemap_fd_, pagemap}, std::pair{&mem_fd_, mem}}) {
    const int old = slot->exchange(fd);
    if (old >= 0) ::close(old);
  }
  pid_.store(pid, std::memory_order_release);
}

void ProcessSession::AttachAgent(int agent_fd) {
  agent_fd_ = agent_fd;
  zap_queue_ = std::make_unique<ZapQueue>(agent_fd);
  zaps_.store(zap_queue_.get(), std::memory_order_release);
}

bool ProcessSession::Start(int agent_fd, int fault_threads) {
  if (started_.exchange(true)) return false;
  if (agent_fd >= 0) AttachAgent(agent_fd);
  for (int i = 0; i < fault_threads; ++i) faulters_.emplace_back([this, i] { FaultLoop(i); });
  control_ = std::thread([this] { ControlLoop(); });
  return true;
}

void ProcessSession::Join() {
  if (control_.joinable()) control_.join();
}

bool ProcessSession::HasRemoteCopy(std::uint64_t uva) {
  MutexLock lk(written_mu_);
  return written_.Contains(uva);
}

void ProcessSession::MarkRemoteCopy(std::uint64_t uva) {
  MutexLock lk(written_mu_);
  written_.Insert(uva);
}

int ProcessSession::ReadProcessPage(std::uint64_t uva, void* dst) {
  const int mem = mem_fd_.load(std::memory_order_acquire);
  if (mem >= 0) {
    ssize_t n;
    do {
      n = ::pread(mem, dst, kPageSize, static_cast<off_t>(uva));
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(kPageSize)) return 0;
    // 0: the address space is gone (the program exited or exec'd); EIO or
    // EFAULT: the page is not there.
    return n == 0 ? ESRCH : EFAULT;
  }
  // A page that vanished from the page table would make the read fault
  // into the very eviction that reads it; check first.
  if (!PagePresent(uva)) return EFAULT;
  iovec local{dst, kPageSize};
  iovec remote{reinterpret_cast<void*>(uva), kPageSize};
  const pid_t pid = this->pid();
  if (pid <= 0) return ESRCH;  // a forked child not started yet
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  const int error = n < 0 ? errno : 0;
  // Alive after the read: the pid named the program throughout, not a
  // process that took its pid after it exited.
  if (!PeerAlive(pidfd_.load(std::memory_order_acquire))) return ESRCH;
  if (n == static_cast<ssize_t>(kPageSize)) return 0;
  return n < 0 ? error : EFAULT;
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
  // Once, and not for a program whose teardown began (its control thread
  // is done with it; ServeFault checks dead() before failing for the same
  // reason).
  SessionState state = state_.load();
  do {
    if (state == SessionState::kFailed || state == SessionState::kDead) return;
  } while (!state_.compare_exchange_weak(state, SessionState::kFailed));
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

// ---- teardown (the control thread, when the program is gone) ----

void ProcessSession::Teardown() {
  state_.store(SessionState::kDead, std::memory_order_release);
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
  if (!st.ok())
    spdlog::warn("processor manager: destroying the space of pid {}: {}", pid(), st.ToString());
  for (const Vma& v : vmas_.All()) vmas_.Remove(v.start, v.end);
}

}  // namespace remora
