// Fuzzes both halves of the handshake and the node key parser. The first
// byte picks:
//  0: the client (net::ClientHandshake) reading the input as the server's
//     bytes. Oracle: it never succeeds, since the input cannot hold a proof
//     made with the node's key.
//  1: the memory node reading the input as a client's first bytes, after
//     its hello. Oracle: it never answers with an ok kAuth reply.
//  2: a node key text (auth::ClientNodeKey). Oracle: a parsed key encodes
//     back to a text that parses to the same key.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "memnode_under_fuzz.h"
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
    (void)fuzz::WriteAll(sv[1], data, size);
    shutdown(sv[1], SHUT_WR);
    net::HandshakeResult r;
    Status st = net::ClientHandshake(sv[0], secret, 5, 1000, &r);
    if (st.ok()) std::abort();
    close(sv[0]);
    close(sv[1]);
  } else if (mode == 1) {
    auto& node = fuzz::MemnodeUnderFuzz::Get();
    const int fd = node.Connect();
    std::uint8_t hello[wire::kHeaderSize + wire::kNonceLen];
    if (!fuzz::ReadAll(fd, hello, sizeof hello, 5000)) std::abort();
    (void)fuzz::WriteAll(fd, data, size);
    shutdown(fd, SHUT_WR);
    std::uint8_t rh[wire::kHeaderSize];
    while (fuzz::ReadAll(fd, rh, sizeof rh, 5000)) {
      wire::Header h = wire::DecodeHeader(rh);
      if (h.type == (static_cast<std::uint16_t>(wire::MsgType::kAuth) | wire::kReplyBit) &&
          h.status == 0)
        std::abort();  // authenticated without the key
      std::string skip(h.payload_len, '\0');
      if (!fuzz::ReadAll(fd, skip.data(), skip.size(), 5000)) break;
    }
    close(fd);
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
