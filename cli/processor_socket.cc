#include "cli/processor_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/private_dir.h"
#include "processor/abi/runtime_protocol.h"
#include "processor/runtime/runtime_socket.h"

namespace remora::cli {
Status DefaultProcessorSocket(std::string* path) {
  if (const char* env = std::getenv(rt::kSocketEnv); env && *env) {
    *path = env;
    return Status::Ok();
  }
  std::string dir = "/run/remora";
  bool shared = false;
  // Root's node-wide manager has one well-known place.
  REMORA_RETURN_IF_ERROR(::geteuid() == 0 ? EnsurePrivateDir(dir, 0700)
                                          : PrivateRuntimeDir(&dir, &shared));
  *path = dir + (shared ? "/remora-processor.sock" : "/processor.sock");
  return Status::Ok();
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
