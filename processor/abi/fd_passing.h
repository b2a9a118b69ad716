// One message with descriptors attached (SCM_RIGHTS) on the runtime's unix
// SOCK_SEQPACKET sockets: the shim passes its userfaultfd and private files'
// descriptors to the manager, the manager a forked child's userfaultfd back.
// Both ends use these two functions, so the control-message layout is
// written once. Header-only (see README.md): the shim links nothing.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace remora::rt {

// The most descriptors one runtime message carries (a Hello: the userfaultfd;
// a ForkPrepare: two).
inline constexpr int kMaxPassedFds = 4;

// Sends buf with fds[0..nfds) attached (nfds from 0 to kMaxPassedFds),
// retrying an interrupted call. Returns what sendmsg returned (-1 and errno
// for nfds out of range).
inline ssize_t SendWithFds(int sock, const void* buf, std::size_t len, const int* fds, int nfds) {
  if (nfds < 0 || nfds > kMaxPassedFds) {
    errno = EINVAL;
    return -1;
  }
  iovec iov{const_cast<void*>(buf), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(kMaxPassedFds * sizeof(int))] = {};
  if (nfds > 0) {
    msg.msg_control = ctrl;
    msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  }
  ssize_t n;
  do n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

// Receives one message into buf and at most `max` passed descriptors, made
// close-on-exec (unused slots -1; any beyond `max` are closed, so a peer
// cannot make us leak descriptors). Returns what recvmsg returned.
inline ssize_t RecvWithFds(int sock, void* buf, std::size_t len, int* fds, int max) {
  for (int i = 0; i < max; ++i) fds[i] = -1;
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(kMaxPassedFds * sizeof(int))];
  msg.msg_control = ctrl;
  msg.msg_controllen = sizeof(ctrl);
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return n;
  int got_count = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (got_count < max)
        fds[got_count++] = got;
      else
        ::close(got);
    }
  }
  return n;
}

}  // namespace remora::rt
