#include "memnode_in_process.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fuzz_node.h"
#include "net/socket_util.h"
#include "net/stream_server.h"
#include "net/wire.h"

namespace remora::fuzz {
InProcessMemnode& InProcessMemnode::Get() {
  // Deliberately never destroyed: libFuzzer exits without unwinding.
  static InProcessMemnode* node = [] {
    auto* n = new InProcessMemnode;
    n->Start();
    return n;
  }();
  return *node;
}

void InProcessMemnode::Start() {
  path_ = "/tmp/remora-fuzz-inproc-" + std::to_string(getpid()) + ".sock";
  FuzzNodeOptions o;
  // Small, so that the node's per-processor files (created with the
  // processor's first space, dropped when its last goes, i.e. once per
  // input) cost little, and out-of-memory paths are within reach.
  o.capacity_pages = 64;
  o.node_id = kNodeId;
  o.secret = secret_;
  o.socket_path = path_;
  server_ = StartFuzzNode(o);
}

bool InProcessMemnode::Pump() {
  bool any = false;
  for (;;) {
    const int n = server_->Poll(0);
    if (n < 0) std::abort();
    if (n == 0) return any;
    any = true;
  }
}

bool InProcessMemnode::Wait() {
  const std::uint64_t deadline = net::DeadlineAfterMs(10000);
  while (MonotonicNs() < deadline) {
    const int n = server_->Poll(net::MsUntil(deadline));
    if (n < 0) std::abort();
    if (n > 0) return true;
  }
  return false;
}

bool InProcessMemnode::ReadReady(int fd, void* out, std::size_t len) {
  auto* p = static_cast<std::uint8_t*>(out);
  while (len > 0) {
    const ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      len -= static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) return false;
    if (!Pump()) return false;
  }
  return true;
}

int InProcessMemnode::Connect(std::uint8_t* hello) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  // A unix connect completes at once while the listen backlog has room.
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
  std::uint8_t buf[wire::kHeaderSize + wire::kNonceLen];
  if (!ReadReady(fd, buf, sizeof buf)) std::abort();
  const wire::Header hh = wire::DecodeHeader(buf);
  if (hh.type != static_cast<std::uint16_t>(wire::MsgType::kHello) ||
      hh.payload_len != wire::kNonceLen || hh.arg0 != kNodeId)
    std::abort();
  if (hello) std::memcpy(hello, buf, sizeof buf);
  return fd;
}

void InProcessMemnode::Close(int fd) {
  close(fd);
  Pump();
}

InProcessMemnode::Session InProcessMemnode::Open(NodeId node) {
  Session s;
  // The client half of auth.h's exchange, one step at a time.
  std::uint8_t hello[wire::kHeaderSize + wire::kNonceLen];
  s.fd = Connect(hello);
  auth::Transcript t;
  t.processor_node = node;
  t.memory_node = kNodeId;
  std::memcpy(t.server_nonce.data(), hello + wire::kHeaderSize, t.server_nonce.size());
  if (!auth::NewNonce(&t.client_nonce).ok()) std::abort();
  const auth::Key key = auth::DeriveNodeKey(secret_, node);

  std::uint8_t msg[wire::kHeaderSize + wire::kMacLen + wire::kNonceLen];
  wire::EncodeHeader(
      wire::MakeRequest(wire::MsgType::kAuth, 1, 0, node, 0, wire::kMacLen + wire::kNonceLen), msg);
  const auth::Mac proof = auth::ClientProof(key, t);
  std::memcpy(msg + wire::kHeaderSize, proof.data(), proof.size());
  std::memcpy(msg + wire::kHeaderSize + wire::kMacLen, t.client_nonce.data(), wire::kNonceLen);
  if (send(s.fd, msg, sizeof msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof msg)) std::abort();

  std::uint8_t reply[wire::kHeaderSize + wire::kMacLen];
  if (!ReadReady(s.fd, reply, sizeof reply)) std::abort();
  const wire::Header rh = wire::DecodeHeader(reply);
  const auth::Mac expect = auth::ServerProof(key, t);
  if (rh.status != 0 || rh.payload_len != wire::kMacLen ||
      !auth::MacEqual(expect.data(), reply + wire::kHeaderSize))
    std::abort();
  s.keys = auth::DeriveFrameKeys(key, t);
  return s;
}

}  // namespace remora::fuzz
