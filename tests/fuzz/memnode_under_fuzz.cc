#include "memnode_under_fuzz.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "fuzz_node.h"
#include "net/socket_util.h"
#include "net/stream_server.h"

namespace remora::fuzz {

MemnodeUnderFuzz& MemnodeUnderFuzz::Get() {
  // Deliberately never destroyed: the serving thread runs until exit.
  static MemnodeUnderFuzz* node = [] {
    auto* n = new MemnodeUnderFuzz;
    n->Start();
    return n;
  }();
  return *node;
}

void MemnodeUnderFuzz::Start() {
  path_ = "/tmp/remora-fuzz-" + std::to_string(getpid()) + ".sock";
  FuzzNodeOptions o;
  o.capacity_pages = 4096;
  o.node_id = kNodeId;
  o.secret = secret_;
  o.auth_timeout_ms = 2000;
  o.socket_path = path_;
  StreamServer* server = StartFuzzNode(o);
  std::thread([server] { server->Run(); }).detach();
}

int MemnodeUnderFuzz::Connect() const {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
  return fd;
}

bool WriteAll(int fd, const void* data, std::size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

bool ReadAll(int fd, void* data, std::size_t len, int timeout_ms) {
  // libFuzzer's -timeout runs on SIGALRM, which interrupts poll() and
  // recv(); an interrupted wait is not the node's failure to answer.
  const std::uint64_t deadline = net::DeadlineAfterMs(timeout_ms);
  char* p = static_cast<char*>(data);
  while (len > 0) {
    pollfd pfd{fd, POLLIN, 0};
    const int rc = poll(&pfd, 1, net::MsUntil(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc != 1) return false;
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace remora::fuzz
