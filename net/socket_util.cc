#include "net/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "remora/stats.h"

namespace remora::net {
namespace {

Status Errno(const std::string& what) {
  return {Code::kIoError, what + ": " + std::strerror(errno)};
}

Status FillUnixAddr(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path)
    return {Code::kInvalidArgument, "unix socket path empty or too long: " + path};
  std::memcpy(addr->sun_path, path.data(), path.size());
  return Status::Ok();
}

// Non-blocking connect bounded by a deadline.
Status ConnectAddr(int fd, const sockaddr* addr, socklen_t len, std::uint64_t deadline,
                   const std::string& what) {
  for (;;) {
    if (connect(fd, addr, len) == 0) return Status::Ok();
    if (errno == EINPROGRESS) break;
    // A unix listener with a full backlog says EAGAIN: nothing is in
    // progress, so try again shortly.
    if (errno != EAGAIN && errno != EINTR) return Errno("connect " + what);
    if (MonotonicNs() >= deadline) return {Code::kTimeout, "connect " + what + ": timed out"};
    usleep(1000);
  }
  REMORA_RETURN_IF_ERROR(WaitFd(fd, POLLOUT, deadline));
  int err = 0;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) {
    errno = err;
    return Errno("connect " + what);
  }
  return Status::Ok();
}

}  // namespace

std::uint64_t DeadlineAfterMs(int ms) {
  return MonotonicNs() + static_cast<std::uint64_t>(ms < 0 ? 0 : ms) * 1000000ull;
}

int MsUntil(std::uint64_t deadline_ns) {
  std::uint64_t now = MonotonicNs();
  if (deadline_ns <= now) return 0;
  std::uint64_t ms = (deadline_ns - now + 999999) / 1000000;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

Status ParseHostPort(const std::string& s, std::string* host, std::uint16_t* port) {
  std::string h, p;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return {Code::kInvalidArgument, "bad address '" + s + "' (want [v6]:port)"};
    h = s.substr(1, close - 1);
    p = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos)
      return {Code::kInvalidArgument, "bad address '" + s + "' (want host:port)"};
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
  }
  if (h.empty() || p.empty() || p.size() > 5 ||
      p.find_first_not_of("0123456789") != std::string::npos || std::stoul(p) > 65535)
    return {Code::kInvalidArgument, "bad address '" + s + "' (want host:port)"};
  *host = h;
  *port = static_cast<std::uint16_t>(std::stoul(p));
  return Status::Ok();
}

Status SetNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return Errno("fcntl O_NONBLOCK");
  return Status::Ok();
}

Status ConnectTcp(const std::string& host_port, int timeout_ms, int* out) {
  std::string host;
  std::uint16_t port;
  REMORA_RETURN_IF_ERROR(ParseHostPort(host_port, &host, &port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) return {Code::kInvalidArgument, "cannot resolve " + host + ": " + gai_strerror(rc)};
  std::uint64_t deadline = DeadlineAfterMs(timeout_ms);
  Status last{Code::kIoError, "no address for " + host_port};
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = Errno("socket");
      continue;
    }
    last = ConnectAddr(fd, ai->ai_addr, ai->ai_addrlen, deadline, host_port);
    if (last.ok()) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      *out = fd;
      break;
    }
    close(fd);
  }
  freeaddrinfo(res);
  return last;
}

Status ConnectUnix(const std::string& path, int timeout_ms, int* out) {
  sockaddr_un addr;
  REMORA_RETURN_IF_ERROR(FillUnixAddr(path, &addr));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  Status st = ConnectAddr(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr,
                          DeadlineAfterMs(timeout_ms), path);
  if (!st.ok()) {
    close(fd);
    return st;
  }
  *out = fd;
  return Status::Ok();
}

Status ListenTcp(const std::string& host_port, int* out, std::string* bound) {
  std::string host;
  std::uint16_t port;
  REMORA_RETURN_IF_ERROR(ParseHostPort(host_port, &host, &port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  int rc =
      getaddrinfo(host == "*" ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) return {Code::kInvalidArgument, "cannot resolve " + host + ": " + gai_strerror(rc)};
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return Errno("socket");
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  Status st;
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0)
    st = Errno("bind " + host_port);
  else if (listen(fd, 128) != 0)
    st = Errno("listen " + host_port);
  freeaddrinfo(res);
  if (!st.ok()) {
    close(fd);
    return st;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char name[INET6_ADDRSTRLEN] = "?";
  std::uint16_t bound_port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, name, sizeof name);
    bound_port = ntohs(a->sin_port);
    *bound = std::string(name) + ":" + std::to_string(bound_port);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, name, sizeof name);
    bound_port = ntohs(a->sin6_port);
    *bound = "[" + std::string(name) + "]:" + std::to_string(bound_port);
  }
  *out = fd;
  return Status::Ok();
}

Status ListenUnix(const std::string& path, int* out) {
  sockaddr_un addr;
  REMORA_RETURN_IF_ERROR(FillUnixAddr(path, &addr));
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return {Code::kInvalidArgument, path + " exists and is not a socket"};
    unlink(path.c_str());  // stale socket of a previous run
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  Status s;
  // The socket file is created with the umask applied; a tight umask around
  // bind() leaves no moment in which other users could connect.
  mode_t old_mask = umask(077);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old_mask);
  if (rc != 0)
    s = Errno("bind " + path);
  else if (chmod(path.c_str(), 0600) != 0)
    s = Errno("chmod " + path);
  else if (listen(fd, 128) != 0)
    s = Errno("listen " + path);
  if (!s.ok()) {
    close(fd);
    return s;
  }
  *out = fd;
  return Status::Ok();
}

Status WaitFd(int fd, short events, std::uint64_t deadline_ns) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, MsUntil(deadline_ns));
    if (rc > 0) return Status::Ok();  // errors surface on the next read/write
    if (rc == 0) return {Code::kTimeout, "no answer from peer in time"};
    if (errno != EINTR) return Errno("poll");
  }
}

Status ReadFull(int fd, void* buf, std::size_t len, std::uint64_t deadline_ns) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n > 0) {
      p += n;
      len -= static_cast<std::size_t>(n);
    } else if (n == 0) {
      return {Code::kDisconnected, "peer closed the connection"};
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      REMORA_RETURN_IF_ERROR(WaitFd(fd, POLLIN, deadline_ns));
    } else if (errno == ECONNRESET || errno == EPIPE) {
      return {Code::kDisconnected, std::string("connection lost: ") + std::strerror(errno)};
    } else if (errno != EINTR) {
      return Errno("recv");
    }
  }
  return Status::Ok();
}

Status WriteFull(int fd, const void* buf, std::size_t len, std::uint64_t deadline_ns) {
  auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n >= 0) {
      p += n;
      len -= static_cast<std::size_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      REMORA_RETURN_IF_ERROR(WaitFd(fd, POLLOUT, deadline_ns));
    } else if (errno == ECONNRESET || errno == EPIPE) {
      return {Code::kDisconnected, std::string("connection lost: ") + std::strerror(errno)};
    } else if (errno != EINTR) {
      return Errno("send");
    }
  }
  return Status::Ok();
}

bool TrustedLocalPeer(int fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX) return false;
  ucred cred{};
  len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) return false;
  return cred.uid == geteuid() || cred.uid == 0;
}

}  // namespace remora::net
