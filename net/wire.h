// Wire codec: turns protocol.h's Header into bytes and back, and decides
// whether a message is acceptable.
//
// Validation happens in two layers, because the two kinds of error call for
// different reactions:
//
//  * CheckFrame() looks only at what framing depends on (magic, version,
//    payload_len). A failure means the byte stream can no longer be trusted or
//    the peer is not speaking Remora at all: the connection is dropped.
//  * ValidateRequest() / ValidateReply() look at one well-framed message and
//    its meaning (known type, payload length that matches the type, batch
//    sizes, page alignment). A failure is answered with kBadRequest and the
//    connection lives on, because the stream is still in sync.
//
// All multi-byte fields are little-endian on the wire.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "remora/protocol.h"
#include "remora/status.h"

namespace remora::wire {

constexpr std::size_t kHeaderSize = sizeof(Header);

// Header <-> 48 bytes.
void EncodeHeader(const Header& h, std::uint8_t out[kHeaderSize]);
Header DecodeHeader(const std::uint8_t in[kHeaderSize]);

// A request header with magic and version filled in and status 0.
Header MakeRequest(MsgType type, std::uint64_t req_id, std::uint64_t asid = 0,
                   std::uint64_t arg0 = 0, std::uint64_t arg1 = 0, std::uint32_t payload_len = 0);
// The reply to `req`: same type with kReplyBit, same req_id and asid.
Header MakeReply(const Header& req, Code status, std::uint32_t payload_len = 0);

inline bool IsReply(const Header& h) { return (h.type & kReplyBit) != 0; }
inline std::uint16_t BaseType(const Header& h) {
  return static_cast<std::uint16_t>(h.type & ~kReplyBit);
}

// "read_page", "write_pages", ... or "unknown". Used in logs and counter names.
std::string_view TypeName(std::uint16_t type);
// True for every MsgType a client may send (everything but kHello).
bool IsKnownRequestType(std::uint16_t type);

enum class FrameError { kNone, kBadMagic, kBadVersion, kTooLarge };
FrameError CheckFrame(const Header& h);
std::string_view FrameErrorName(FrameError e);

// Checks a request from a client against its type: payload length, batch
// count (1..kMaxBatchPages), page alignment of addresses that live in the
// header. Addresses inside a batch payload are checked by ValidateBatchUvas()
// once the payload is at hand. Returns kBadRequest with a reason.
Status ValidateRequest(const Header& h);
// Every uva of a kReadPages / kWritePages payload must be page aligned.
Status ValidateBatchUvas(const Header& h, const std::uint8_t* payload);

// Checks a successful reply against the request it answers (type, and the
// payload length the request implies). Error replies carry free text.
Status ValidateReply(const Header& req, const Header& reply);

// kReadPages reply layout: n presence bytes padded to 8, then n pages.
constexpr std::size_t PresenceBytes(std::size_t n) { return (n + 7) & ~std::size_t{7}; }
constexpr std::size_t ReadPagesReplyLen(std::size_t n) { return PresenceBytes(n) + n * 4096; }

// Little-endian scalar helpers for payloads (batch address lists).
void PutU64(std::uint8_t* p, std::uint64_t v);
std::uint64_t GetU64(const std::uint8_t* p);

}  // namespace remora::wire
