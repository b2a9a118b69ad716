// Fuzzes the memory node's protocol decoder and dispatch with what an
// authenticated but hostile processor can send: the input is cut into frames
// (a 48-byte header as given, its payload_len set to the bytes that follow
// it in the input), each sent with a valid tag, then a ping. Input starting
// with 0xff is sent as raw bytes instead (no tags: the integrity check and
// framing themselves), followed by the end of the stream.
//
// The node runs in this thread (memnode_in_process.h): the harness sends what
// the socket takes, lets the node serve, and reads its replies, until the
// ping is answered or the node closes the connection.
//
// Oracles besides the sanitizers: every reply is a well-formed frame with a
// valid tag; unless the node closed the connection, the ping is answered —
// when neither can happen any more the node is wedged by one hostile peer,
// which is a failure; a raw stream always ends with the node closing it.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "memnode_in_process.h"
#include "net/auth.h"
#include "net/wire.h"

using namespace remora;

namespace {

constexpr NodeId kProcessor = 3;
constexpr std::uint64_t kPingId = 0xFEEDFACECAFEull;

void Fail(const char* why) {
  std::fprintf(stderr, "wire_frames_fuzz: %s\n", why);
  std::abort();
}

// Appends one tagged frame to `out`.
void AppendFrame(const auth::Key& key, std::uint64_t seq, const std::uint8_t* header,
                 const std::uint8_t* payload, std::size_t len, std::string* out) {
  const auth::Tag tag = auth::FrameTag(key, seq, header, payload, len);
  out->append(reinterpret_cast<const char*>(header), wire::kHeaderSize);
  out->append(reinterpret_cast<const char*>(payload), len);
  out->append(reinterpret_cast<const char*>(tag.data()), tag.size());
}

// Checks the complete replies at the front of `in` and drops them; true once
// the ping's reply was among them.
bool TakeReplies(const auth::Key& key, std::uint64_t* seq, std::string* in) {
  std::size_t off = 0;
  bool pinged = false;
  while (!pinged && in->size() - off >= wire::kHeaderSize) {
    const auto* rh = reinterpret_cast<const std::uint8_t*>(in->data() + off);
    const wire::Header h = wire::DecodeHeader(rh);
    if (wire::CheckFrame(h) != wire::FrameError::kNone) Fail("malformed reply frame");
    const std::size_t total = wire::kHeaderSize + h.payload_len + wire::kFrameTagLen;
    if (in->size() - off < total) break;
    const auth::Tag tag = auth::FrameTag(key, (*seq)++, rh, rh + wire::kHeaderSize, h.payload_len);
    if (!auth::TagEqual(tag.data(), rh + wire::kHeaderSize + h.payload_len))
      Fail("reply with a wrong tag");
    pinged = h.req_id == kPingId &&
             wire::BaseType(h) == static_cast<std::uint16_t>(wire::MsgType::kPing);
    off += total;
  }
  in->erase(0, off);
  return pinged;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& node = fuzz::InProcessMemnode::Get();
  const fuzz::InProcessMemnode::Session s = node.Open(kProcessor);

  const bool raw = size > 0 && data[0] == 0xff;
  std::string out;
  if (raw) {
    out.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  } else {
    std::uint64_t seq = 0;
    std::size_t off = 0;
    while (size - off >= wire::kHeaderSize) {
      std::uint8_t header[wire::kHeaderSize];
      std::memcpy(header, data + off, sizeof header);
      off += sizeof header;
      wire::Header h = wire::DecodeHeader(header);
      const std::size_t len = std::min<std::size_t>(h.payload_len, size - off);
      h.payload_len = static_cast<std::uint32_t>(len);
      wire::EncodeHeader(h, header);
      AppendFrame(s.keys.client_to_server, seq++, header, data + off, len, &out);
      off += len;
    }
    std::uint8_t ping[wire::kHeaderSize];
    wire::EncodeHeader(wire::MakeRequest(wire::MsgType::kPing, kPingId), ping);
    AppendFrame(s.keys.client_to_server, seq, ping, nullptr, 0, &out);
  }

  std::size_t sent = 0;
  bool write_shut = false, closed = false, pinged = false;
  std::uint64_t reply_seq = 0;
  std::string in;
  char buf[64 * 1024];
  while (!closed && !pinged) {
    bool moved = false;
    if (sent < out.size()) {
      const ssize_t n =
          send(s.fd, out.data() + sent, out.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        moved = true;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        sent = out.size();  // the node closed; what it sent is still to read
      }
    } else if (raw && !write_shut) {
      shutdown(s.fd, SHUT_WR);
      write_shut = moved = true;
    }
    moved |= node.Pump();
    for (;;) {
      const ssize_t n = recv(s.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        moved = true;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) closed = true;
      break;
    }
    // A reply cut short is possible only where the node dropped the
    // connection for a violation; TakeReplies stops before it.
    if (!raw) pinged = TakeReplies(s.keys.server_to_client, &reply_seq, &in);
    if (!moved && !closed && !pinged && !node.Wait())
      Fail("the node neither answers the ping nor closes");
  }
  node.Close(s.fd);
  return 0;
}
