// Fuzzes both halves of the handshake and the node key parser. The first
// byte picks:
//  0: the client (net::ClientHandshake) reading the input as the server's
//     bytes. Oracle: it never succeeds, since the input cannot hold a proof
//     made with the node's key.
//  1: the memory node reading the input as a client's first bytes, after
//     its hello. Oracle: it never answers with an ok kAuth reply. The node
//     runs in this thread (memnode_in_process.h), so an input never waits on
//     a timer and nothing of the node is running when the fuzzer exits.
//  2: a node key text (auth::ClientNodeKey). Oracle: a parsed key encodes
//     back to a text that parses to the same key.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "memnode_in_process.h"
#include "net/auth.h"
#include "net/handshake.h"
#include "net/wire.h"

using namespace remora;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0] % 3;
  ++data;
  --size;
  const std::string secret = "fuzzing-cluster-secret-0123456789abcdef";
  if (mode == 0) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    // A unix socket buffer holds far more than libFuzzer's largest input.
    if (send(sv[1], data, size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) std::abort();
    shutdown(sv[1], SHUT_WR);
    net::HandshakeResult r;
    Status st = net::ClientHandshake(sv[0], secret, 5, 0, 1000, &r);
    if (st.ok()) std::abort();
    close(sv[0]);
    close(sv[1]);
  } else if (mode == 1) {
    auto& node = fuzz::InProcessMemnode::Get();
    const int fd = node.Connect();
    // Send what the socket takes, serving the node in between, until all
    // is sent or the node stops reading (it refused the client).
    std::size_t sent = 0;
    while (sent < size) {
      const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!node.Pump()) break;
      } else {
        break;  // the node closed the connection
      }
    }
    shutdown(fd, SHUT_WR);
    std::uint8_t rh[wire::kHeaderSize];
    while (node.ReadReady(fd, rh, sizeof rh)) {
      wire::Header h = wire::DecodeHeader(rh);
      if (h.type == (static_cast<std::uint16_t>(wire::MsgType::kAuth) | wire::kReplyBit) &&
          h.status == 0)
        std::abort();  // authenticated without the key
      std::string skip(h.payload_len, '\0');
      if (!node.ReadReady(fd, skip.data(), skip.size())) break;
    }
    node.Close(fd);
  } else {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auth::Key key;
    if (auth::IsNodeKey(text) && auth::ClientNodeKey(text, 5, &key).ok()) {
      auth::Key back;
      if (!auth::ClientNodeKey(auth::EncodeNodeKey(5, key), 5, &back).ok() || back != key)
        std::abort();
    }
  }
  return 0;
}
