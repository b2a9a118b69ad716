// fork() under Remora.
//
// The kernel copies the program's page tables into the child (with
// UFFD_FEATURE_EVENT_FORK the child's memory stays registered, and the
// manager gets the child's uffd from the FORK event); the manager must make
// every page the two now share write-protected *before* that copy, so the
// first write by either side is seen (a COW or a reuse), and must learn the
// child's pid, which the event does not carry. Hence the handshake, with
// the control lock held throughout so no mmap/munmap notice interleaves:
//
//   parent: ForkPrepare + two fresh socketpair ends (the child's future
//           control and agent connections). The manager holds back the
//           program's faults, write-protects every registered range (one
//           ioctl per range, never page by page) and answers.
//   parent: the real fork(). The kernel queues the FORK event, which the
//           manager reads: it shares the resident lines with the child,
//           forks the memory node's space and sets up the child's session.
//   parent: ForkDone(child pid); the manager starts serving the child.
//   child:  drops the parent's connections and uffd, waits for ForkWelcome
//           (its own uffd) on its control connection, starts its agent.
//
// A program with no registered memory at all (bash, with its own brk-based
// malloc) gets no FORK event: the manager says so in its answer to
// ForkPrepare, and the child attaches as a new program instead.
//
// vfork() and posix_spawn() share the parent's memory until exec (no page
// tables are copied, no FORK event): they need nothing here, and the new
// image attaches on its own. daemon() is wrapped because glibc's forks
// internally, where no shim can see it.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "processor/shim/shim.h"

namespace remora::shim {
namespace {

using ForkFn = pid_t (*)();

ForkFn RealFork() {
  static ForkFn fn = reinterpret_cast<ForkFn>(dlsym(RTLD_NEXT, "fork"));
  return fn;
}

void CloseBoth(const int fds[2]) {
  ::close(fds[0]);
  ::close(fds[1]);
}

pid_t ManagedFork() {
  if (!ForkSupported()) {
    // Without the FORK event the child's memory would not be registered:
    // it would read zeros where the parent's pages live remotely.
    static const char msg[] =
        "remora: fork() needs UFFD_FEATURE_EVENT_FORK (CAP_SYS_PTRACE); refusing it\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    errno = EAGAIN;
    return -1;
  }
  int control[2], agent[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) != 0) return -1;
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, agent) != 0) {
    CloseBoth(control);
    return -1;
  }
  LockControl();
  rt::Request prep;
  prep.op = rt::Op::kForkPrepare;
  prep.tid = static_cast<std::int32_t>(::syscall(SYS_gettid));
  const int ends[2] = {control[1], agent[1]};
  rt::Reply reply;
  const int code = CallWithFds(prep, ends, 2, &reply);
  const bool fresh = (reply.flags & rt::kReplyFreshChild) != 0;
  // The manager has its own copies of the manager-side ends now.
  ::close(control[1]);
  ::close(agent[1]);
  if (code != 0) {
    UnlockControl();
    ::close(control[0]);
    ::close(agent[0]);
    errno = EAGAIN;
    return -1;
  }
  SetInFork(true);
  const pid_t pid = RealFork()();
  const int saved = errno;
  if (pid == 0) {
    BecomeForkedChild(control[0], agent[0], fresh);  // also re-makes the control lock
    return 0;
  }
  SetInFork(false);
  ::close(control[0]);
  ::close(agent[0]);
  rt::Request done;
  done.op = rt::Op::kForkDone;
  done.child_pid = pid;
  (void)Call(done);  // an error means the child could not be taken over: it stops itself
  UnlockControl();
  errno = saved;
  return pid;
}

}  // namespace
}  // namespace remora::shim

extern "C" {

__attribute__((visibility("default"))) pid_t fork() {
  if (!remora::shim::Active()) return remora::shim::RealFork()();
  return remora::shim::ManagedFork();
}

__attribute__((visibility("default"))) int daemon(int nochdir, int noclose) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid > 0) ::_exit(0);
  if (::setsid() < 0) return -1;
  if (!nochdir) (void)!::chdir("/");
  if (!noclose) {
    const int fd = ::open("/dev/null", O_RDWR);
    if (fd >= 0) {
      ::dup2(fd, 0);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      if (fd > 2) ::close(fd);
    }
  }
  return 0;
}

}  // extern "C"
