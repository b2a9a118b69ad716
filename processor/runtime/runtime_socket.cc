#include "processor/runtime/runtime_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "processor/abi/fd_passing.h"
#include "processor/abi/runtime_protocol.h"

namespace remora {

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
  const ssize_t n = rt::SendWithFds(sock, &r, sizeof(r), &fd, fd >= 0 ? 1 : 0);
  if (n != static_cast<ssize_t>(sizeof(r)))
    return {Code::kDisconnected, std::string("welcome: ") + std::strerror(errno)};
  return Status::Ok();
}

}  // namespace remora
