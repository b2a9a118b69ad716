#include "net/handshake.h"

#include <cstring>
#include <string>

#include "net/auth.h"
#include "net/socket_util.h"
#include "net/wire.h"

namespace remora::net {
namespace {

// Reads one message whose payload must fit in `max_payload` bytes.
Status ReadMessage(int fd, std::uint64_t deadline, std::size_t max_payload, wire::Header* h,
                   std::string* payload) {
  std::uint8_t hb[wire::kHeaderSize];
  REMORA_RETURN_IF_ERROR(ReadFull(fd, hb, sizeof hb, deadline));
  *h = wire::DecodeHeader(hb);
  if (wire::CheckFrame(*h) != wire::FrameError::kNone || h->payload_len > max_payload)
    return {Code::kDisconnected, "peer is not a compatible memory node (" +
                                     std::string(wire::FrameErrorName(wire::CheckFrame(*h))) + ")"};
  payload->resize(h->payload_len);
  return ReadFull(fd, payload->data(), payload->size(), deadline);
}

}  // namespace

Status ClientHandshake(int fd, const std::string& secret, NodeId node_id, std::uint64_t incarnation,
                       int timeout_ms, HandshakeResult* result) {
  auth::Key key;
  REMORA_RETURN_IF_ERROR(auth::ClientNodeKey(secret, node_id, &key));
  const std::uint64_t deadline = DeadlineAfterMs(timeout_ms);
  wire::Header h;
  std::string payload;
  REMORA_RETURN_IF_ERROR(ReadMessage(fd, deadline, 4096, &h, &payload));
  if (h.type != static_cast<std::uint16_t>(wire::MsgType::kHello) ||
      payload.size() != wire::kNonceLen || h.arg0 > UINT32_MAX)
    return {Code::kDisconnected, "memory node did not greet with a hello"};
  auth::Transcript t;
  t.processor_node = node_id;
  t.memory_node = static_cast<NodeId>(h.arg0);
  t.incarnation = incarnation;
  std::memcpy(t.server_nonce.data(), payload.data(), t.server_nonce.size());
  REMORA_RETURN_IF_ERROR(auth::NewNonce(&t.client_nonce));
  // A unix socket to a server running as us or as root: ask for untagged
  // frames (auth.h, "Local connections").
  t.untagged_requested = TrustedLocalPeer(fd);

  std::uint8_t msg[wire::kHeaderSize + wire::kAuthPayloadLocal];
  const std::uint32_t len = t.untagged_requested ? wire::kAuthPayloadLocal : wire::kAuthPayload;
  wire::Header req = wire::MakeRequest(wire::MsgType::kAuth, 1, 0, node_id, incarnation, len);
  wire::EncodeHeader(req, msg);
  auth::Mac proof = auth::ClientProof(key, t);
  std::memcpy(msg + wire::kHeaderSize, proof.data(), proof.size());
  std::memcpy(msg + wire::kHeaderSize + wire::kMacLen, t.client_nonce.data(),
              t.client_nonce.size());
  msg[wire::kHeaderSize + wire::kAuthPayload] = 1;  // F (sent only when requested)
  REMORA_RETURN_IF_ERROR(WriteFull(fd, msg, wire::kHeaderSize + len, deadline));

  REMORA_RETURN_IF_ERROR(ReadMessage(fd, deadline, 4096, &h, &payload));
  if (h.type != (req.type | wire::kReplyBit))
    return {Code::kDisconnected, "unexpected answer to authentication"};
  if (h.status != 0)
    return {static_cast<Code>(h.status), "memory node refused authentication: " + payload};
  if (payload.size() != wire::kMacLen || h.arg0 != t.memory_node ||
      (t.untagged_requested && h.arg1 > 1))
    return {Code::kAuthFailed, "memory node sent a malformed proof"};
  // G; unasked, arg1 means nothing and Ps does not cover it.
  t.untagged_granted = t.untagged_requested && h.arg1 == 1;
  auth::Mac expect = auth::ServerProof(key, t);
  if (!auth::MacEqual(expect.data(), reinterpret_cast<const std::uint8_t*>(payload.data())))
    return {Code::kAuthFailed, "memory node could not prove it holds this node's key"};
  result->server_node_id = t.memory_node;
  result->frame_keys.reset();
  if (!t.untagged_granted) result->frame_keys = auth::DeriveFrameKeys(key, t);
  return Status::Ok();
}

}  // namespace remora::net
