#include "processor/runtime/fault_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

namespace remora {
namespace {

// The signal that interrupts a blocking read. Its handler does nothing:
// the point is the EINTR. Installed without SA_RESTART.
int InterruptSignal() {
  static const int sig = [] {
    const int s = SIGRTMIN + 4;
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(s, &sa, nullptr);
    return s;
  }();
  return sig;
}

int MessagesIn(ssize_t bytes) {
  return static_cast<int>(bytes / static_cast<ssize_t>(sizeof(uffd_msg)));
}

std::uint64_t NowNs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

FaultReader::FaultReader(int uffd, int stop_fd) : uffd_(uffd), stop_fd_(stop_fd) {
  shared_fd_ = ::eventfd(0, EFD_CLOEXEC);
  const int flags = ::fcntl(uffd_, F_GETFL);
  if (shared_fd_ < 0 || flags < 0) return;  // read shared
  nonblocking_ = (flags & O_NONBLOCK) != 0;
  // On one CPU a poll can only find a fault if the program preempts the
  // poller: sleeping is the way to let it run.
  cpu_set_t cpus;
  may_spin_ = ::sched_getaffinity(0, sizeof(cpus), &cpus) != 0 || CPU_COUNT(&cpus) > 1;
  InterruptSignal();
  shared_.store(false, std::memory_order_release);
}

bool FaultReader::SetNonBlocking(bool on) {
  if (nonblocking_ == on) return true;
  const int flags = ::fcntl(uffd_, F_GETFL);
  if (flags < 0 || ::fcntl(uffd_, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK)) != 0)
    return false;
  nonblocking_ = on;
  return true;
}

FaultReader::~FaultReader() {
  if (shared_fd_ >= 0) ::close(shared_fd_);
}

FaultReader::Waiter::~Waiter() {
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

bool FaultReader::ObserveFaultingThread(pid_t tid) {
  if (shared()) return false;
  if (tid != 0 && (first_tid_ == 0 || first_tid_ == tid)) {
    first_tid_ = tid;
    return false;
  }
  SwitchToShared();
  return true;
}

void FaultReader::SwitchToShared() {
  // Before anyone polls: a blocking uffd polls as EPOLLERR.
  (void)SetNonBlocking(true);
  shared_.store(true, std::memory_order_release);
  std::uint64_t one = 1;
  (void)!::write(shared_fd_, &one, sizeof(one));
}

void FaultReader::Interrupt() {
  stopping_.store(true);
  if (!reader_known_.load()) return;
  // The reader either sees stopping_ before it reads, or is (about to be)
  // in the read with state kReading. Repeat the signal until it left: a
  // signal that lands just before the read starts is not an interruption.
  for (;;) {
    int s = kReading;
    if (state_.compare_exchange_strong(s, kInterrupted) || s == kInterrupted) {
      ::pthread_kill(reader_, InterruptSignal());
    } else if (s == kServing) {
      // Serving a fault, or gone: it checks stopping_ before reading again.
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

int FaultReader::ReadBlocking(uffd_msg* msgs, int cap) {
  if (!SetNonBlocking(false)) return -1;
  state_.store(kReading);
  if (stopping_.load()) {
    state_.store(kServing);
    return -1;
  }
  const ssize_t r = ::read(uffd_, msgs, sizeof(uffd_msg) * static_cast<std::size_t>(cap));
  if (state_.exchange(kServing) == kInterrupted) return -1;
  if (r < 0) return (errno == EINTR || errno == EAGAIN) ? 0 : -1;
  return r == 0 ? -1 : MessagesIn(r);  // a userfaultfd never reads as end-of-file
}

int FaultReader::ReadNoWait(uffd_msg* msgs, int cap) {
  const ssize_t r = ::read(uffd_, msgs, sizeof(uffd_msg) * static_cast<std::size_t>(cap));
  if (r < 0) return (errno == EINTR || errno == EAGAIN) ? 0 : -1;
  return r == 0 ? -1 : MessagesIn(r);
}

int FaultReader::Waiter::Spin(uffd_msg* msgs, int cap) {
  FaultReader& r = reader_;
  const std::uint64_t budget = spin_.budget_ns();
  if (budget == 0 || !r.may_spin_) return 0;
  // The single reader's uffd is blocking between polls; shared reading
  // keeps it non-blocking for good.
  if (!r.shared() && !r.SetNonBlocking(true)) return -1;
  const std::uint64_t deadline = NowNs() + budget;
  int n = 0;
  do {
    if (r.stopping_.load(std::memory_order_relaxed)) return -1;
    n = r.ReadNoWait(msgs, cap);
  } while (n == 0 && NowNs() < deadline);
  if (n < 0) return -1;
  spin_.AfterPoll(n > 0);
  last_poll_ = n > 0 ? Poll::kHit : Poll::kMiss;
  return n;
}

int FaultReader::Waiter::Wait(uffd_msg* msgs, int cap) {
  FaultReader& r = reader_;
  last_poll_ = Poll::kNone;
  if (index_ == 0 || r.shared()) {
    const int n = Spin(msgs, cap);
    if (n != 0) return n;
  }
  if (r.shared()) return WaitShared(msgs, cap);
  if (index_ != 0) {
    // Sleep until the session reads shared, or stops.
    pollfd p[2] = {{r.shared_fd_, POLLIN, 0}, {r.stop_fd_, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) return 0;
    if (p[1].revents) return -1;
    return 0;
  }
  if (!r.reader_known_.load(std::memory_order_relaxed)) {
    r.reader_ = ::pthread_self();
    r.reader_known_.store(true);
  }
  const std::uint64_t start = NowNs();
  const int n = r.ReadBlocking(msgs, cap);
  if (n > 0) spin_.AfterBlock(NowNs() - start);
  return n;
}

int FaultReader::Waiter::WaitShared(uffd_msg* msgs, int cap) {
  FaultReader& r = reader_;
  if (epoll_fd_ < 0) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return -1;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u32 = 0;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, r.uffd_, &ev) != 0) return -1;
    ev.events = EPOLLIN;
    ev.data.u32 = 1;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, r.stop_fd_, &ev) != 0) return -1;
  }
  epoll_event ready[2];
  const std::uint64_t start = NowNs();
  const int n = ::epoll_wait(epoll_fd_, ready, 2, -1);
  if (n < 0) return errno == EINTR ? 0 : -1;
  bool fault = false;
  for (int i = 0; i < n; ++i) {
    if (ready[i].data.u32 == 1) return -1;
    if (ready[i].events & EPOLLIN)
      fault = true;
    else if (ready[i].events & (EPOLLERR | EPOLLHUP))
      return -1;
  }
  if (!fault) return 0;
  const int got = r.ReadNoWait(msgs, cap);
  if (got > 0) spin_.AfterBlock(NowNs() - start);
  return got;
}

}  // namespace remora
