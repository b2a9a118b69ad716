// The page protocol's wire format (TCP and the control channel of shared
// memory). docs/protocol.md has the message table.
//
// Every message is a fixed 48-byte little-endian header followed by
// `payload_len` bytes. A reply carries the request's type with kReplyBit set,
// the same req_id, a Code in `status`, and on error a UTF-8 message as payload.
// Requests on one connection may be answered out of order.
#pragma once

#include <cstdint>

namespace remora::wire {

constexpr std::uint32_t kMagic = 0x41524D52;  // "RMRA" little-endian
// 2: per-node keys, proofs over both node ids, both nonces and the version,
// and a tag on every frame after the handshake (net/auth.h).
// 3: the processor's incarnation in kAuth (arg1) and in the proofs, so that
// a processor reconnecting keeps its address spaces (memory-node/server.h).
// 4: frame tags are AES-256-GMAC (16 bytes) with the frame's number as the
// nonce, not HMAC-SHA256: GHASH runs about three times as fast as SHA-256,
// and the tag is most of the CPU a page written back costs on TCP.
constexpr std::uint16_t kVersion = 4;
constexpr std::uint16_t kReplyBit = 0x8000;
// What a memory node charges its capacity for the bookkeeping of one stored
// page (a page-table entry: a hash node and its bucket), beside the page
// itself (memory-node/page_store.h). Placement counts it too, so a node is
// never given more regions than it can hold with their page tables.
constexpr std::uint64_t kNodeMetaBytesPerPage = 48;
// Largest payload a peer may send; anything larger is a protocol violation and
// the connection is dropped. Fits a full batch plus its address list.
constexpr std::uint32_t kMaxBatchPages = 256;
constexpr std::uint32_t kMaxPayload = (kMaxBatchPages + 2) * 4096 + kMaxBatchPages * 16;
constexpr std::uint32_t kNonceLen = 32;
constexpr std::uint32_t kMacLen = 32;       // HMAC-SHA256: the handshake's proofs
constexpr std::uint32_t kFrameTagLen = 16;  // AES-256-GMAC: every later frame
// kAuth's payload: proof || client nonce, and on a unix socket to a trusted
// server one more byte asking for untagged frames (net/auth.h, "Local
// connections").
constexpr std::uint32_t kAuthPayload = kMacLen + kNonceLen;
constexpr std::uint32_t kAuthPayloadLocal = kAuthPayload + 1;
// RDMA: queue pairs per connection, and the encoded sizes of one queue pair's
// address (RdmaQpInfo) and one page's translation (RdmaMapping).
constexpr std::uint32_t kRdmaMaxQps = 16;
constexpr std::uint32_t kRdmaQpInfoLen = 32;
constexpr std::uint32_t kRdmaMappingLen = 16;

enum class MsgType : std::uint16_t {
  // Handshake (net/auth.h). Server speaks first with kHello (arg0 = memory
  // node id; payload: server nonce). Client answers kAuth (arg0 = its node
  // id; payload: proof || client nonce). Server replies kAuth|reply with its
  // proof (arg1 = 1: untagged frames granted), so both sides prove they
  // hold the processor node's key. Every later frame carries a 16-byte tag
  // after its payload, unless untagged frames were asked for and granted.
  kHello = 1,
  kAuth = 2,

  // Control. asid = address space.
  kCreateSpace = 10,
  kDestroySpace = 11,
  kForkSpace = 12,        // asid = parent, arg0 = child
  kRegisterRange = 13,    // arg0 = start, arg1 = len
  kUnregisterRange = 14,  // arg0 = start, arg1 = len
  kDiscardRange = 15,     // arg0 = start, arg1 = len
  kInfo = 16,             // reply payload: InfoPayload
  kStats = 17,            // reply payload: JSON text
  kPing = 18,
  // Shared memory only (unix socket): the reply carries the page region and
  // index file descriptors via SCM_RIGHTS; payload describes the layout.
  kAttachShm = 19,

  // Page data. arg0 = uva.
  kReadPage = 20,         // reply: arg1 = 1 if present; payload = 4096 bytes (absent: none)
  kWritePage = 21,        // payload = 4096 bytes
  kReadPages = 22,        // arg1 = n; payload = n * u64 uva. reply payload = n presence
                          //   bytes padded to 8, then n * 4096 bytes
  kWritePages = 23,       // arg1 = n; payload = n * u64 uva, then n * 4096 bytes
  kWritePageShared = 24,  // arg0 = uva, arg1 = n asids; payload = n * u64 asid, then 4096

  // RDMA (net/rdma/rdma_wire.h has the payload layouts; docs/cluster.md the model).
  // After kRdmaAttach the connection's address spaces live in RDMA-registered
  // frames and every control message above applies to them.
  kRdmaAttach = 25,  // arg1 = n QPs (1..16); payload = n * RdmaQpInfo. reply: the same
                     //   for the memory node's QPs
  kRdmaMap = 26,     // asid, arg0 = 1 to prepare for writing, arg1 = n (1..256);
                     //   payload = n * u64 uva. reply payload = n * RdmaMapping
};

#pragma pack(push, 1)
struct Header {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t type;
  std::uint64_t req_id;
  std::uint64_t asid;
  std::uint64_t arg0;
  std::uint64_t arg1;
  std::int32_t status;
  std::uint32_t payload_len;
};
struct InfoPayload {
  std::uint64_t capacity_pages;
  std::uint64_t used_pages;
  std::uint64_t nr_spaces;
  std::uint32_t node_id;
  std::uint32_t reserved;
};
#pragma pack(pop)
static_assert(sizeof(Header) == 48);

}  // namespace remora::wire
