#include "processor/runtime/peer.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; Debian 12's headers lack it
#endif

namespace remora {
namespace {

constexpr long kAnonInodeFsMagic = 0x09041934;

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// The fields of /proc/PID/status the checks need.
struct ProcStatus {
  pid_t tgid = 0;
  pid_t ppid = 0;
  uid_t ruid = static_cast<uid_t>(-1), euid = static_cast<uid_t>(-1);  // "Uid:" real, effective
};

bool ReadStatus(pid_t pid, ProcStatus* out) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return false;
  std::string line;
  bool have_tgid = false, have_ppid = false, have_uid = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "Tgid:") {
      have_tgid = static_cast<bool>(fields >> out->tgid);
    } else if (key == "PPid:") {
      have_ppid = static_cast<bool>(fields >> out->ppid);
    } else if (key == "Uid:") {
      have_uid = static_cast<bool>(fields >> out->ruid >> out->euid);
    }
  }
  return have_tgid && have_ppid && have_uid;
}

}  // namespace

Status GetPeer(int sock, Peer* out) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
    return {Code::kIoError, std::string("SO_PEERCRED: ") + std::strerror(errno)};
  if (cred.pid <= 0)
    return {Code::kPermissionDenied, "the peer's process is not visible from here"};
  int pidfd = -1;
  len = sizeof(pidfd);
  // SO_PEERPIDFD names the very process that connected; pidfd_open of the
  // credential's pid could name a later process with a reused pid, so
  // that one is checked against the credentials once more after opening.
  if (::getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0 || pidfd < 0) {
    pidfd = PidfdOpen(cred.pid);
    if (pidfd < 0)
      return {Code::kPermissionDenied,
              "the peer (pid " + std::to_string(cred.pid) + ") is gone: " + std::strerror(errno)};
    ProcStatus st;
    if (!ReadStatus(cred.pid, &st) || st.euid != cred.uid || !PeerAlive(pidfd)) {
      ::close(pidfd);
      return {Code::kPermissionDenied, "the peer went away while connecting"};
    }
  } else {
    (void)::fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  }
  out->uid = cred.uid;
  out->gid = cred.gid;
  out->pid = cred.pid;
  out->pidfd = pidfd;
  return Status::Ok();
}

void ClosePeer(Peer* peer) {
  if (peer->pidfd >= 0) ::close(peer->pidfd);
  peer->pidfd = -1;
}

bool PeerAlive(int pidfd) {
  if (pidfd < 0) return false;
  // EPERM: it exists, we just may not signal it. ESRCH: it has been reaped.
  return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0 || errno == EPERM;
}

int SignalPidfd(int pidfd, int sig) {
  if (pidfd < 0) return EBADF;
  return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0 ? 0 : errno;
}

Status CheckPeerUserfaultfd(int fd, const Peer& peer, int peer_fd_number) {
  // What it is: the kernel names a userfaultfd "anon_inode:[userfaultfd]";
  // a file, pipe, socket or another anon-inode object has another name,
  // and no client can choose this one.
  char link[64];
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  char target[64] = {};
  const ssize_t n = ::readlink(link, target, sizeof(target) - 1);
  if (n < 0 || std::strcmp(target, "anon_inode:[userfaultfd]") != 0)
    return {Code::kPermissionDenied, "the descriptor passed is not a userfaultfd"};
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0 || static_cast<long>(fs.f_type) != kAnonInodeFsMagic)
    return {Code::kPermissionDenied, "the descriptor passed is not a userfaultfd"};
  // Its handshake is done (the shim asked for its features): a second
  // UFFDIO_API is refused with EINVAL. ENOTTY would mean another object.
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(fd, UFFDIO_API, &api) == 0 || errno != EINVAL)
    return {Code::kPermissionDenied, "the userfaultfd passed was never initialised"};
  // Whose it is: the peer holds the same uffd (the same inode) as its
  // descriptor `peer_fd_number`.
  struct stat ours {};
  if (::fstat(fd, &ours) != 0)
    return {Code::kIoError, std::string("fstat: ") + std::strerror(errno)};
  if (peer_fd_number < 0) return {Code::kPermissionDenied, "the program's own uffd is not named"};
  struct stat theirs {};
  const std::string path =
      "/proc/" + std::to_string(peer.pid) + "/fd/" + std::to_string(peer_fd_number);
  if (::stat(path.c_str(), &theirs) != 0 || theirs.st_dev != ours.st_dev ||
      theirs.st_ino != ours.st_ino)
    return {Code::kPermissionDenied, "the userfaultfd passed is not the connecting process's"};
  // The /proc lookup was about the peer, not a process that reused its pid.
  if (!PeerAlive(peer.pidfd)) return {Code::kDisconnected, "the program went away"};
  return Status::Ok();
}

Status CheckForkedChild(pid_t child_pid, const Peer& parent, Peer* child) {
  if (child_pid <= 0) return {Code::kBadRequest, "no child pid"};
  const int pidfd = PidfdOpen(child_pid);
  if (pidfd < 0)
    return {Code::kPermissionDenied,
            "forked child " + std::to_string(child_pid) + " not found: " + std::strerror(errno)};
  ProcStatus st;
  const bool ok = ReadStatus(child_pid, &st) && st.tgid == child_pid && st.ppid == parent.pid &&
                  (parent.root() || (st.ruid == parent.uid && st.euid == parent.uid)) &&
                  PeerAlive(pidfd);
  if (!ok) {
    ::close(pidfd);
    return {Code::kPermissionDenied, "pid " + std::to_string(child_pid) +
                                         " is not a child of pid " + std::to_string(parent.pid) +
                                         " running as its user"};
  }
  child->uid = parent.uid;
  child->gid = parent.gid;
  child->pid = child_pid;
  child->pidfd = pidfd;
  return Status::Ok();
}

int ChildThreadPidfd(pid_t tid, const Peer& parent) {
  if (tid <= 0) return -1;
  ProcStatus thread;
  if (!ReadStatus(tid, &thread) || thread.ppid != parent.pid) return -1;
  const int pidfd = PidfdOpen(thread.tgid);
  if (pidfd < 0) return -1;
  // Checked again through the process the pidfd holds.
  ProcStatus proc;
  if (!ReadStatus(thread.tgid, &proc) || proc.ppid != parent.pid ||
      (!parent.root() && proc.euid != parent.uid) || !PeerAlive(pidfd)) {
    ::close(pidfd);
    return -1;
  }
  return pidfd;
}

}  // namespace remora
