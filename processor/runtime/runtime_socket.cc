#include "processor/runtime/runtime_socket.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "processor/abi/runtime_protocol.h"

namespace remora {

ssize_t RecvWithFd(int sock, void* buf, std::size_t len, int* fd) {
  return RecvWithFds(sock, buf, len, fd, 1);
}

ssize_t RecvWithFds(int sock, void* buf, std::size_t len, int* fds, int max) {
  for (int i = 0; i < max; ++i) fds[i] = -1;
  int got_count = 0;
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(4 * sizeof(int))];
  msg.msg_control = ctrl;
  msg.msg_controllen = sizeof(ctrl);
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
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

int ConnectSeqpacket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::strcpy(addr.sun_path, path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

Status SendReply(int sock, Code code, std::uint64_t session, Asid asid, const std::string& text,
                 std::uint32_t flags) {
  rt::Reply r;
  r.flags = flags;
  r.code = static_cast<std::int32_t>(code);
  r.session = session;
  r.asid = asid;
  r.text_len = static_cast<std::uint32_t>(text.size());
  std::string buf(reinterpret_cast<const char*>(&r), sizeof(r));
  buf += text;
  ssize_t n;
  do n = ::send(sock, buf.data(), buf.size(), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(buf.size()))
    return {Code::kDisconnected, std::string("reply: ") + std::strerror(errno)};
  return Status::Ok();
}

Status SendReplyWithFd(int sock, Code code, std::uint64_t session, Asid asid, int fd) {
  rt::Reply r;
  r.op = rt::Op::kForkWelcome;
  r.code = static_cast<std::int32_t>(code);
  r.session = session;
  r.asid = asid;
  iovec iov{&r, sizeof(r)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof(ctrl);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(r)))
    return {Code::kDisconnected, std::string("welcome: ") + std::strerror(errno)};
  return Status::Ok();
}

}  // namespace remora
