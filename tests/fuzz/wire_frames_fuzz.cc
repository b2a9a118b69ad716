// Fuzzes the memory node's protocol decoder and dispatch with what an
// authenticated but hostile processor can send: the input is cut into frames
// (a 48-byte header as given, its payload_len set to the bytes that follow
// it in the input), each sent with a valid tag, then a ping. Input starting
// with 0xff is sent as raw bytes instead (no tags: the integrity check and
// framing themselves).
//
// Oracles besides the sanitizers: every reply carries a valid tag; unless
// the node closed the connection, the final ping is answered, so one hostile
// peer never wedges the node.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "memnode_under_fuzz.h"
#include "net/auth.h"
#include "net/handshake.h"
#include "net/wire.h"

using namespace remora;

namespace {

constexpr NodeId kProcessor = 3;
constexpr std::uint64_t kPingId = 0xFEEDFACECAFEull;

struct Tagger {
  auth::Key key;
  std::uint64_t seq = 0;
  bool Send(int fd, std::uint8_t* header, const std::uint8_t* payload, std::size_t len) {
    auth::Mac tag = auth::FrameTag(key, seq++, header, payload, len);
    std::string frame(reinterpret_cast<char*>(header), wire::kHeaderSize);
    frame.append(reinterpret_cast<const char*>(payload), len);
    frame.append(reinterpret_cast<const char*>(tag.data()), tag.size());
    return fuzz::WriteAll(fd, frame.data(), frame.size());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& node = fuzz::MemnodeUnderFuzz::Get();
  const int fd = node.Connect();
  net::HandshakeResult hs;
  Status st = net::ClientHandshake(fd, node.secret(), kProcessor, 5000, &hs);
  if (!st.ok()) std::abort();  // a well-behaved client is always accepted

  if (size > 0 && data[0] == 0xff) {
    (void)fuzz::WriteAll(fd, data + 1, size - 1);
    shutdown(fd, SHUT_WR);
    char sink[4096];
    while (fuzz::ReadAll(fd, sink, 1, 5000)) {
    }
    close(fd);
    return 0;
  }

  Tagger out{hs.frame_keys.client_to_server};
  bool open = true;
  std::size_t off = 0;
  while (open && size - off >= wire::kHeaderSize) {
    std::uint8_t header[wire::kHeaderSize];
    std::memcpy(header, data + off, sizeof header);
    off += sizeof header;
    wire::Header h = wire::DecodeHeader(header);
    const std::size_t len = std::min<std::size_t>(h.payload_len, size - off);
    h.payload_len = static_cast<std::uint32_t>(len);
    wire::EncodeHeader(h, header);
    open = out.Send(fd, header, data + off, len);
    off += len;
  }
  std::uint8_t ping[wire::kHeaderSize];
  wire::EncodeHeader(wire::MakeRequest(wire::MsgType::kPing, kPingId), ping);
  if (open) open = out.Send(fd, ping, nullptr, 0);

  // Replies until the ping's; each must carry a valid tag.
  std::uint64_t seq = 0;
  std::string payload;
  while (open) {
    std::uint8_t rh[wire::kHeaderSize];
    if (!fuzz::ReadAll(fd, rh, sizeof rh, 10000)) break;  // closed: a refused stream
    wire::Header h = wire::DecodeHeader(rh);
    if (wire::CheckFrame(h) != wire::FrameError::kNone) std::abort();
    payload.resize(h.payload_len + wire::kMacLen);
    if (!fuzz::ReadAll(fd, payload.data(), payload.size(), 10000)) std::abort();
    auth::Mac tag =
        auth::FrameTag(hs.frame_keys.server_to_client, seq++, rh, payload.data(), h.payload_len);
    if (!auth::MacEqual(tag.data(),
                        reinterpret_cast<const std::uint8_t*>(payload.data()) + h.payload_len))
      std::abort();
    if (h.req_id == kPingId &&
        wire::BaseType(h) == static_cast<std::uint16_t>(wire::MsgType::kPing))
      break;
  }
  close(fd);
  return 0;
}
