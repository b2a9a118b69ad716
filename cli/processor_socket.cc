#include "cli/processor_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "processor/abi/runtime_protocol.h"
#include "processor/runtime/runtime_socket.h"

namespace remora::cli {
std::string DefaultProcessorSocket() {
  if (const char* env = std::getenv(rt::kSocketEnv); env && *env) return env;
  if (::geteuid() == 0) {
    ::mkdir("/run/remora", 0755);
    return "/run/remora/processor.sock";
  }
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg)
    return std::string(xdg) + "/remora-processor.sock";
  return "/tmp/remora-processor-" + std::to_string(::geteuid()) + ".sock";
}

bool ProcessorListening(const std::string& path) {
  int fd = ConnectSeqpacket(path);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

Status ProcessorStatsJson(const std::string& path, std::string* json) {
  int fd = ConnectSeqpacket(path);
  if (fd < 0)
    return {Code::kDisconnected, "no processor manager at " + path + ": " + std::strerror(errno)};
  rt::Request req;
  req.op = rt::Op::kStats;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::vector<char> buf(4 << 20);
  ssize_t n = -1;
  if (::send(fd, &req, sizeof(req), MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(req))) {
    do n = ::recv(fd, buf.data(), buf.size(), 0);
    while (n < 0 && errno == EINTR);
  }
  ::close(fd);
  rt::Reply reply;
  if (n < static_cast<ssize_t>(sizeof(reply)))
    return {Code::kDisconnected, "no stats reply from the processor manager"};
  std::memcpy(&reply, buf.data(), sizeof(reply));
  if (reply.magic != rt::kMagic || reply.text_len > n - sizeof(reply))
    return {Code::kBadRequest, "malformed stats reply"};
  json->assign(buf.data() + sizeof(reply), reply.text_len);
  return Status(static_cast<Code>(reply.code), reply.code ? *json : "");
}

}  // namespace remora::cli
