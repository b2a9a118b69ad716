// The agent thread: the manager's hands inside the program.
//
// The manager can install and write-protect pages in this process through
// the uffd, but it cannot drop them, so evictions end here: the agent reads
// Zap batches, drops the pages with MADV_DONTNEED and acknowledges. It
// drains every batch already queued before zapping, so a burst of evictions
// costs one wake-up and one process_madvise call where the kernel allows it
// (Linux 6.13+ accepts MADV_DONTNEED on oneself; older kernels get one
// madvise per page).
//
// The agent is also the program's watchdog: when the manager's end of the
// connection closes (it died) or it sends Fatal (e.g. the memory node is
// unreachable), the agent stops the program. Threads blocked on a fault stay
// blocked until then (the shim holds its own uffd), so no code ever runs on
// a page that should have held data but was zero-filled.
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "processor/shim/shim.h"

#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace remora::shim {
namespace {

constexpr std::size_t kMaxPending = 1024;  // pages zapped per wake-up at most

int g_agent_fd = -1;
int g_self_pidfd = -1;
bool g_batch_madvise = true;  // process_madvise on ourselves; cleared if refused
// Set by the agent once its announcement is on the socket (StartAgent waits
// for it).
std::atomic<int> g_announced{0};

std::uint64_t g_uvas[kMaxPending];
iovec g_iov[kMaxPending];

void Zap(std::size_t n) {
  std::size_t done = 0;
  if (g_batch_madvise && g_self_pidfd >= 0) {
    while (done < n) {
      // Adjacent pages share one iovec: a streaming program evicts runs of
      // consecutive pages, and the kernel then finds the VMA and walks the
      // page table once per run instead of once per page.
      std::size_t k = 0, used = 0;
      for (; used < n - done; ++used) {
        const std::uint64_t uva = g_uvas[done + used];
        if (k > 0 &&
            reinterpret_cast<std::uint64_t>(g_iov[k - 1].iov_base) + g_iov[k - 1].iov_len == uva) {
          g_iov[k - 1].iov_len += kPageSize;
          continue;
        }
        if (k == 512) break;  // UIO_MAXIOV is 1024
        g_iov[k].iov_base = reinterpret_cast<void*>(uva);
        g_iov[k].iov_len = kPageSize;
        ++k;
      }
      long r = ::syscall(SYS_process_madvise, g_self_pidfd, g_iov, k, MADV_DONTNEED, 0);
      if (r < 0) {
        // EINVAL: this kernel allows only advisory hints here. Other errors
        // (a page unmapped meanwhile) fall back to per-page calls, which
        // skip the bad page and drop the rest.
        if (errno == EINVAL || errno == EPERM || errno == ENOSYS) g_batch_madvise = false;
        break;
      }
      // The kernel stops at the first range that fails and returns what it
      // advised before it: the per-page calls below drop the rest.
      const std::size_t advised = static_cast<std::size_t>(r) / kPageSize;
      done += advised < used ? advised : used;
      if (advised < used) break;
    }
  }
  // A page whose range was unmapped meanwhile fails with ENOMEM: nothing to
  // drop there.
  for (; done < n; ++done)
    (void)RawMadvise(reinterpret_cast<void*>(g_uvas[done]), kPageSize, MADV_DONTNEED);
}

void SendAck(std::uint64_t seq) {
  rt::ZapAck ack;
  ack.seq = seq;
  ssize_t w;
  do w = ::send(g_agent_fd, &ack, sizeof(ack), MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w != static_cast<ssize_t>(sizeof(ack))) Fatal("lost the processor manager");
}

// Touches only its own stack (glibc maps thread stacks itself: unmanaged)
// and the shim's static data, never managed memory: the manager may wait
// for this thread while it evicts (zap backpressure), so a fault of the
// agent's would wait for itself.
void* AgentMain(void*) {
  alignas(8) char buf[sizeof(rt::FatalMessage) > sizeof(rt::ZapMessage) ? sizeof(rt::FatalMessage)
                                                                        : sizeof(rt::ZapMessage)];
  // "Up to 0": nothing dropped yet, but the manager now knows the agent
  // runs and may wait for it.
  SendAck(0);
  g_announced.store(1, std::memory_order_release);
  (void)::syscall(SYS_futex, &g_announced, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  for (;;) {
    std::size_t pending = 0;
    std::uint64_t last_seq = 0;
    int flags = 0;  // block for the first message, then drain without waiting
    for (;;) {
      ssize_t n = ::recv(g_agent_fd, buf, sizeof(buf), flags);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) Fatal("lost the processor manager");
      std::uint32_t magic;
      rt::Op op;
      memcpy(&magic, buf, sizeof(magic));
      memcpy(&op, buf + 4, sizeof(op));
      if (magic != rt::kMagic) Fatal("bad message from the processor manager");
      if (op == rt::Op::kFatal) {
        rt::FatalMessage m;
        memcpy(&m, buf, sizeof(m) < static_cast<std::size_t>(n) ? sizeof(m) : n);
        m.text[sizeof(m.text) - 1] = '\0';
        Fatal(m.text);
      }
      if (op != rt::Op::kZap) Fatal("unexpected message from the processor manager");
      rt::ZapMessage z;
      memcpy(&z, buf, static_cast<std::size_t>(n) < sizeof(z) ? n : sizeof(z));
      if (z.count > rt::kZapBatchMax) Fatal("bad zap batch from the processor manager");
      for (std::uint32_t i = 0; i < z.count; ++i) g_uvas[pending++] = z.uvas[i];
      last_seq = z.seq;
      flags = MSG_DONTWAIT;
      if (pending + rt::kZapBatchMax > kMaxPending) break;
    }
    Zap(pending);
    SendAck(last_seq);
  }
  return nullptr;
}

}  // namespace

void CloseAgentInChild() {
  if (g_agent_fd >= 0) ::close(g_agent_fd);
  g_agent_fd = -1;
  if (g_self_pidfd >= 0) ::close(g_self_pidfd);
  g_self_pidfd = -1;
}

void StartAgent(int fd) {
  g_agent_fd = fd;
  g_self_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, getpid(), 0));
  // Signals are for the program's threads, never the agent.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  g_announced.store(0, std::memory_order_relaxed);  // a forked child inherits the parent's 1
  pthread_t t;
  int rc = pthread_create(&t, nullptr, AgentMain, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) Fatal("cannot start the agent thread");
  pthread_detach(t);
  pthread_setname_np(t, "remora-agent");
  // No program code runs before the agent has announced itself. Until then
  // the manager cannot hold the program to its bound (it never waits for an
  // agent that may not exist yet, ZapQueue::Throttle), and on a loaded
  // machine a new thread can wait milliseconds for a CPU while the program,
  // a forked child most of all, faults on: each fault leaves one more page
  // mapped that only the agent can drop. The agent touches no managed
  // memory on its way there, so this wait needs no fault served.
  while (g_announced.load(std::memory_order_acquire) == 0)
    (void)::syscall(SYS_futex, &g_announced, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
}

}  // namespace remora::shim
