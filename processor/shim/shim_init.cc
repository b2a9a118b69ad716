// Shim start-up and its connection to the processor manager.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "processor/abi/fd_passing.h"
#include "processor/abi/uffd.h"
#include "processor/shim/shim.h"

namespace remora::shim {
namespace {

bool g_active = false;
bool g_in_fork = false;  // inside fork() through the shim (shim_fork.cc)
std::uint64_t g_features = 0;
int g_uffd = -1;
int g_control = -1;
std::uint64_t g_session = 0;
pid_t g_manager_pid = 0;  // from SO_PEERCRED on the manager's socket
pthread_mutex_t g_control_mu = PTHREAD_MUTEX_INITIALIZER;
// The text of the last reply (an error's reason), under the control lock.
char g_reply_text[257];

void WriteAll(int fd, const char* s, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

int ConnectTo(const char* path) {
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(addr.sun_path)) {
    ::close(fd);
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  // The manager will hold this program's userfaultfd and read its pages:
  // it must be root's or our own user's, whoever made the socket file.
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
    Fatal("cannot tell who serves REMORA_PROCESSOR_SOCKET");
  if (cred.uid != 0 && cred.uid != ::geteuid())
    Fatal("REMORA_PROCESSOR_SOCKET is served by another user; refusing to hand it this program");
  g_manager_pid = cred.pid;
  return fd;
}

// The manager copies evicted pages out of /proc/PID/mem (or with
// process_vm_readv), which Yama's
// ptrace_scope=1 allows only to an ancestor, a holder of CAP_SYS_PTRACE, or
// the one process the program names: name the manager, and nobody else
// (never PR_SET_PTRACER_ANY). Without Yama this fails harmlessly.
void AllowManagerToRead() {
  if (g_manager_pid > 0) (void)prctl(PR_SET_PTRACER, g_manager_pid, 0, 0, 0);
}

// Sends req (with the nfds descriptors in fds attached) and reads the reply.
bool Exchange(int sock, const rt::Request& req, const int* fds, int nfds, rt::Reply* reply) {
  ssize_t n = rt::SendWithFds(sock, &req, sizeof(req), fds, nfds);
  if (n != static_cast<ssize_t>(sizeof(req))) return false;
  // An error reply carries its reason; a longer one is truncated.
  char buf[sizeof(rt::Reply) + sizeof(g_reply_text) - 1];
  do n = ::recv(sock, buf, sizeof(buf), 0);
  while (n < 0 && errno == EINTR);
  if (n < static_cast<ssize_t>(sizeof(rt::Reply))) return false;
  memcpy(reply, buf, sizeof(*reply));
  const std::size_t text = static_cast<std::size_t>(n) - sizeof(rt::Reply);
  memcpy(g_reply_text, buf + sizeof(rt::Reply), text);
  g_reply_text[text] = '\0';
  return reply->magic == rt::kMagic && reply->op == rt::Op::kReply;
}

bool Exchange(int sock, const rt::Request& req, int fd, rt::Reply* reply) {
  return Exchange(sock, req, &fd, fd >= 0 ? 1 : 0, reply);
}

// Receives the manager's ForkWelcome on a forked child's control
// connection: the reply and the child's own uffd.
bool ReceiveWelcome(int sock, rt::Reply* reply, int* uffd) {
  const ssize_t n = rt::RecvWithFds(sock, reply, sizeof(*reply), uffd, 1);
  return n == static_cast<ssize_t>(sizeof(*reply)) && reply->magic == rt::kMagic &&
         reply->op == rt::Op::kForkWelcome && reply->code == 0 && *uffd >= 0;
}

// Opens a uffd, says Hello with it and connects the agent: a new session,
// served from here on (the manager starts the session's threads on
// AgentHello). Returns the agent connection; its thread is not started yet.
int Connect(const char* path) {
  g_uffd = uffd::Open();
  if (g_uffd < 0) {
    Fatal(errno == EPERM ? "userfaultfd is not permitted (run as root, or set "
                           "vm.unprivileged_userfaultfd=1)"
                         : "cannot open a userfaultfd");
  }
  std::uint64_t features = 0;
  // EVENT_FORK keeps a forked child's memory registered and hands the
  // manager its uffd (the kernel allows it with CAP_SYS_PTRACE only);
  // without it fork() is refused (shim_fork.cc). THREAD_ID tells the manager
  // which thread faulted (it must not hold up the forking thread), and
  // EXACT_ADDRESS which byte (Linux 5.18): read-ahead follows strided walks
  // by them (processor/runtime/stride_walks.h). Each is asked for with
  // EXACT_ADDRESS first, then without.
  const std::uint64_t kWp = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
  const std::uint64_t kExact = UFFD_FEATURE_EXACT_ADDRESS;
  const std::uint64_t kForkTid = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_THREAD_ID;
  const std::uint64_t kTries[] = {
      kWp | kForkTid | kExact,      kWp | kForkTid, kWp | UFFD_FEATURE_THREAD_ID | kExact,
      kWp | UFFD_FEATURE_THREAD_ID, kWp | kExact,   kWp};
  bool granted = false;
  for (std::uint64_t wanted : kTries) {
    if (uffd::Api(g_uffd, wanted, &features) == 0) {
      granted = true;
      g_features = wanted;
      break;
    }
  }
  if (!granted)
    Fatal("this kernel's userfaultfd lacks write-protect support (needs Linux 5.7 or later)");

  g_control = ConnectTo(path);
  if (g_control < 0) Fatal("cannot reach the processor manager (REMORA_PROCESSOR_SOCKET)");
  AllowManagerToRead();
  rt::Request hello;
  hello.op = rt::Op::kHello;
  hello.pid = static_cast<std::int32_t>(getpid());
  hello.uffd_features = g_features;
  hello.own_fd = g_uffd;  // the manager checks we hold the uffd we pass
  rt::Reply reply;
  if (!Exchange(g_control, hello, g_uffd, &reply) || reply.code != 0)
    Fatal("the processor manager refused this program");
  g_session = reply.session;

  int agent = ConnectTo(path);
  rt::Request ah;
  ah.op = rt::Op::kAgentHello;
  ah.pid = hello.pid;
  ah.session = g_session;
  if (agent < 0 || !Exchange(agent, ah, -1, &reply) || reply.code != 0)
    Fatal("the processor manager refused the agent connection");
  return agent;
}

// A new session, active before its agent thread is created: creating a
// thread allocates (glibc callocs the thread's TLS vector), and what the
// allocator maps then must be managed like the rest.
void Attach(const char* path) {
  const int agent = Connect(path);
  g_active = true;
  StartAgent(agent);
}

// Start-up comes in two steps. Attach early: on the first interposed mmap
// (the allocator's first segment, which another library's constructor may
// map before ours runs: libstdc++'s does in every C++ program), or in our
// constructor if no mmap came first. Before the constructors, one thread
// runs: a second thread's mmap racing with the attach would stay local. It makes no system call
// that allocates, so it is safe inside the allocator. Then, in the constructor, start the agent
// thread (which allocates: never inside the allocator) and the fork handler. Until the agent runs,
// zaps wait in its connection; the manager never waits for an agent that has not announced itself.
enum class StartState : int { kUntried, kAttached, kNotUnderRemora };
std::atomic<StartState> g_start{StartState::kUntried};
int g_pending_agent = -1;  // connected, thread not started yet

void AttachEarly() {
  // The environment is readable once libc is initialised; anything mapped
  // before that stays local (docs/runtime.md).
  if (environ == nullptr) return;
  StartState untried = StartState::kUntried;
  const char* path = getenv(rt::kSocketEnv);
  const bool ours = path != nullptr && *path != '\0';
  if (!g_start.compare_exchange_strong(untried,
                                       ours ? StartState::kAttached : StartState::kNotUnderRemora))
    return;
  if (!ours) return;
  g_pending_agent = Connect(path);
  g_active = true;
}

void Start() {
  AttachEarly();
  if (g_pending_agent < 0) return;  // not under Remora
  const int agent = g_pending_agent;
  g_pending_agent = -1;
  StartAgent(agent);
  // A child forked behind the shim's back (a libc-internal fork, a raw
  // system call: not through shim_fork.cc) must not speak on its parent's
  // connections: the manager would take its munmaps for the parent's. It
  // goes unmanaged; the manager refuses such a child (docs/runtime.md).
  pthread_atfork(nullptr, nullptr, [] {
    if (g_in_fork) return;  // ours: ForkChild() takes over
    g_active = false;
    ::close(g_control);
    g_control = -1;
    CloseAgentInChild();
  });
}

}  // namespace

bool Active() { return g_active; }
void BeforeFirstMmap() {
  if (g_start.load(std::memory_order_relaxed) == StartState::kUntried) AttachEarly();
}
int Uffd() { return g_uffd; }

void* RawMmap(void* addr, std::size_t len, int prot, int flags, int fd, long off) {
  return reinterpret_cast<void*>(::syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}
int RawMunmap(void* addr, std::size_t len) {
  return static_cast<int>(::syscall(SYS_munmap, addr, len));
}
int RawMadvise(void* addr, std::size_t len, int advice) {
  return static_cast<int>(::syscall(SYS_madvise, addr, len, advice));
}
void* RawMremap(void* old_addr, std::size_t old_len, std::size_t new_len, int flags,
                void* new_addr) {
  return reinterpret_cast<void*>(
      ::syscall(SYS_mremap, old_addr, old_len, new_len, flags, new_addr));
}

void LockControl() { pthread_mutex_lock(&g_control_mu); }
void UnlockControl() { pthread_mutex_unlock(&g_control_mu); }

int Call(const rt::Request& req_in, int fd) {
  return CallWithFds(req_in, &fd, fd >= 0 ? 1 : 0, nullptr);
}

int CallWithFds(const rt::Request& req_in, const int* fds, int nfds, rt::Reply* out) {
  rt::Request req = req_in;
  req.session = g_session;
  req.pid = static_cast<std::int32_t>(getpid());
  rt::Reply reply;
  if (!Exchange(g_control, req, fds, nfds, &reply)) Fatal("lost the processor manager");
  if (out != nullptr) *out = reply;
  return reply.code;
}

const char* ReplyText() { return g_reply_text; }

bool ForkSupported() { return (g_features & UFFD_FEATURE_EVENT_FORK) != 0; }
void SetInFork(bool in_fork) { g_in_fork = in_fork; }

void BecomeForkedChild(int control, int agent, bool fresh) {
  // The parent's connections and its uffd belong to the parent's session.
  ::close(g_control);
  CloseAgentInChild();
  ::close(g_uffd);
  // The forking thread held the control lock across fork; in the child it
  // is the only thread, and the lock is re-made rather than trusted.
  pthread_mutex_t fresh_mu = PTHREAD_MUTEX_INITIALIZER;
  g_control_mu = fresh_mu;
  g_in_fork = false;
  if (fresh) {
    // Nothing of the parent's was registered: the child starts a session
    // of its own, as a new program would.
    ::close(control);
    ::close(agent);
    const char* path = getenv(rt::kSocketEnv);
    if (path == nullptr) Fatal("lost the processor manager's address");
    g_active = false;  // no connection until Connect: map locally meanwhile
    Attach(path);
    return;
  }
  g_control = control;
  AllowManagerToRead();  // Yama's exception is per process: not inherited
  rt::Reply welcome;
  int uffd;
  if (!ReceiveWelcome(g_control, &welcome, &uffd))
    Fatal("the processor manager could not take over the forked child");
  g_uffd = uffd;
  g_session = welcome.session;
  StartAgent(agent);
}

void Fatal(const char* what) {
  static const char prefix[] = "remora: ";
  static const char suffix[] = "; stopping the program\n";
  WriteAll(2, prefix, sizeof(prefix) - 1);
  WriteAll(2, what, strlen(what));
  WriteAll(2, suffix, sizeof(suffix) - 1);
  ::_exit(rt::kFatalExitCode);
}

// Runs before the program's constructors and main; other preloaded and
// needed libraries' constructors may run before it (libstdc++ allocates in
// its own), which is why the first mmap attaches too (AttachEarly).
__attribute__((constructor(101))) static void ShimConstructor() { Start(); }

}  // namespace remora::shim
