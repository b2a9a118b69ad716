#include "net/wire.h"

#include <cstring>
#include <string>

#include "remora/types.h"

namespace remora::wire {
namespace {

template <typename T>
void PutLE(std::uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

template <typename T>
T GetLE(const std::uint8_t* p) {
  using U = std::make_unsigned_t<T>;
  U v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<U>(U{p[i]} << (8 * i));
  return static_cast<T>(v);
}

Status Bad(std::string msg) { return {Code::kBadRequest, std::move(msg)}; }

Status ExpectPayload(const Header& h, std::uint64_t want) {
  if (h.payload_len == want) return Status::Ok();
  return Bad(std::string(TypeName(h.type)) + ": payload is " + std::to_string(h.payload_len) +
             " bytes, expected " + std::to_string(want));
}

Status ExpectBatchCount(const Header& h, std::uint64_t max) {
  if (h.arg1 >= 1 && h.arg1 <= max) return Status::Ok();
  return Bad(std::string(TypeName(h.type)) + ": count " + std::to_string(h.arg1) + " outside 1.." +
             std::to_string(max));
}

Status ExpectAligned(const Header& h, std::uint64_t addr) {
  if (PageAligned(addr)) return Status::Ok();
  return Bad(std::string(TypeName(h.type)) + ": address " + std::to_string(addr) +
             " is not page aligned");
}

}  // namespace

void PutU64(std::uint8_t* p, std::uint64_t v) { PutLE(p, v); }
std::uint64_t GetU64(const std::uint8_t* p) { return GetLE<std::uint64_t>(p); }

void EncodeHeader(const Header& h, std::uint8_t out[kHeaderSize]) {
  PutLE(out + 0, h.magic);
  PutLE(out + 4, h.version);
  PutLE(out + 6, h.type);
  PutLE(out + 8, h.req_id);
  PutLE(out + 16, h.asid);
  PutLE(out + 24, h.arg0);
  PutLE(out + 32, h.arg1);
  PutLE(out + 40, static_cast<std::uint32_t>(h.status));
  PutLE(out + 44, h.payload_len);
}

Header DecodeHeader(const std::uint8_t in[kHeaderSize]) {
  Header h;
  h.magic = GetLE<std::uint32_t>(in + 0);
  h.version = GetLE<std::uint16_t>(in + 4);
  h.type = GetLE<std::uint16_t>(in + 6);
  h.req_id = GetLE<std::uint64_t>(in + 8);
  h.asid = GetLE<std::uint64_t>(in + 16);
  h.arg0 = GetLE<std::uint64_t>(in + 24);
  h.arg1 = GetLE<std::uint64_t>(in + 32);
  h.status = GetLE<std::int32_t>(in + 40);
  h.payload_len = GetLE<std::uint32_t>(in + 44);
  return h;
}

Header MakeRequest(MsgType type, std::uint64_t req_id, std::uint64_t asid, std::uint64_t arg0,
                   std::uint64_t arg1, std::uint32_t payload_len) {
  Header h{};
  h.magic = kMagic;
  h.version = kVersion;
  h.type = static_cast<std::uint16_t>(type);
  h.req_id = req_id;
  h.asid = asid;
  h.arg0 = arg0;
  h.arg1 = arg1;
  h.status = 0;
  h.payload_len = payload_len;
  return h;
}

Header MakeReply(const Header& req, Code status, std::uint32_t payload_len) {
  Header h{};
  h.magic = kMagic;
  h.version = kVersion;
  h.type = static_cast<std::uint16_t>(req.type | kReplyBit);
  h.req_id = req.req_id;
  h.asid = req.asid;
  h.status = static_cast<std::int32_t>(status);
  h.payload_len = payload_len;
  return h;
}

std::string_view TypeName(std::uint16_t type) {
  switch (static_cast<MsgType>(type & ~kReplyBit)) {
    case MsgType::kHello:
      return "hello";
    case MsgType::kAuth:
      return "auth";
    case MsgType::kCreateSpace:
      return "create_space";
    case MsgType::kDestroySpace:
      return "destroy_space";
    case MsgType::kForkSpace:
      return "fork_space";
    case MsgType::kRegisterRange:
      return "register_range";
    case MsgType::kUnregisterRange:
      return "unregister_range";
    case MsgType::kDiscardRange:
      return "discard_range";
    case MsgType::kInfo:
      return "info";
    case MsgType::kStats:
      return "stats";
    case MsgType::kPing:
      return "ping";
    case MsgType::kAttachShm:
      return "attach_shm";
    case MsgType::kReadPage:
      return "read_page";
    case MsgType::kWritePage:
      return "write_page";
    case MsgType::kReadPages:
      return "read_pages";
    case MsgType::kWritePages:
      return "write_pages";
    case MsgType::kWritePageShared:
      return "write_page_shared";
    case MsgType::kRdmaAttach:
      return "rdma_attach";
    case MsgType::kRdmaMap:
      return "rdma_map";
  }
  return "unknown";
}

bool IsKnownRequestType(std::uint16_t type) {
  return type != static_cast<std::uint16_t>(MsgType::kHello) && TypeName(type) != "unknown" &&
         (type & kReplyBit) == 0;
}

FrameError CheckFrame(const Header& h) {
  if (h.magic != kMagic) return FrameError::kBadMagic;
  if (h.version != kVersion) return FrameError::kBadVersion;
  if (h.payload_len > kMaxPayload) return FrameError::kTooLarge;
  return FrameError::kNone;
}

std::string_view FrameErrorName(FrameError e) {
  switch (e) {
    case FrameError::kNone:
      return "ok";
    case FrameError::kBadMagic:
      return "bad magic";
    case FrameError::kBadVersion:
      return "unsupported protocol version";
    case FrameError::kTooLarge:
      return "payload larger than allowed";
  }
  return "?";
}

Status ValidateRequest(const Header& h) {
  if (!IsKnownRequestType(h.type)) return Bad("unknown message type " + std::to_string(h.type));
  switch (static_cast<MsgType>(h.type)) {
    case MsgType::kAuth:
      if (h.payload_len == kAuthPayloadLocal) return Status::Ok();
      return ExpectPayload(h, kAuthPayload);
    case MsgType::kCreateSpace:
    case MsgType::kDestroySpace:
    case MsgType::kForkSpace:
    case MsgType::kInfo:
    case MsgType::kStats:
    case MsgType::kAttachShm:
      return ExpectPayload(h, 0);
    case MsgType::kPing:
      return Status::Ok();  // any payload, echoed back
    case MsgType::kRegisterRange:
    case MsgType::kUnregisterRange:
    case MsgType::kDiscardRange:
      REMORA_RETURN_IF_ERROR(ExpectPayload(h, 0));
      REMORA_RETURN_IF_ERROR(ExpectAligned(h, h.arg0));
      if (h.arg0 + h.arg1 < h.arg0) return Bad(std::string(TypeName(h.type)) + ": range wraps");
      return Status::Ok();
    case MsgType::kReadPage:
      REMORA_RETURN_IF_ERROR(ExpectPayload(h, 0));
      return ExpectAligned(h, h.arg0);
    case MsgType::kWritePage:
      REMORA_RETURN_IF_ERROR(ExpectPayload(h, kPageSize));
      return ExpectAligned(h, h.arg0);
    case MsgType::kReadPages:
      REMORA_RETURN_IF_ERROR(ExpectBatchCount(h, kMaxBatchPages));
      return ExpectPayload(h, h.arg1 * 8);
    case MsgType::kWritePages:
      REMORA_RETURN_IF_ERROR(ExpectBatchCount(h, kMaxBatchPages));
      return ExpectPayload(h, h.arg1 * (8 + kPageSize));
    case MsgType::kWritePageShared:
      REMORA_RETURN_IF_ERROR(ExpectBatchCount(h, kMaxBatchPages));
      REMORA_RETURN_IF_ERROR(ExpectPayload(h, h.arg1 * 8 + kPageSize));
      return ExpectAligned(h, h.arg0);
    case MsgType::kRdmaAttach:
      REMORA_RETURN_IF_ERROR(ExpectBatchCount(h, kRdmaMaxQps));
      return ExpectPayload(h, h.arg1 * kRdmaQpInfoLen);
    case MsgType::kRdmaMap:
      REMORA_RETURN_IF_ERROR(ExpectBatchCount(h, kMaxBatchPages));
      if (h.arg0 > 1) return Bad("rdma_map: mode must be 0 (read) or 1 (write)");
      return ExpectPayload(h, h.arg1 * 8);
    case MsgType::kHello:
      break;
  }
  return Bad("unexpected message type " + std::to_string(h.type));
}

Status ValidateBatchUvas(const Header& h, const std::uint8_t* payload) {
  auto t = static_cast<MsgType>(h.type);
  if (t != MsgType::kReadPages && t != MsgType::kWritePages && t != MsgType::kRdmaMap)
    return Status::Ok();
  for (std::uint64_t i = 0; i < h.arg1; ++i)
    REMORA_RETURN_IF_ERROR(ExpectAligned(h, GetU64(payload + i * 8)));
  return Status::Ok();
}

Status ValidateReply(const Header& req, const Header& reply) {
  if (reply.type != (req.type | kReplyBit) || reply.req_id != req.req_id)
    return {Code::kInternal, "reply does not match its request"};
  if (reply.status != 0) return Status::Ok();  // error text of any length
  std::uint64_t want = 0;
  switch (static_cast<MsgType>(req.type)) {
    case MsgType::kReadPage:
      want = reply.arg1 ? kPageSize : 0;
      break;
    case MsgType::kReadPages:
      want = ReadPagesReplyLen(req.arg1);
      break;
    case MsgType::kInfo:
      want = sizeof(InfoPayload);
      break;
    case MsgType::kAuth:
      want = kMacLen;
      break;
    case MsgType::kRdmaAttach:
      want = req.arg1 * kRdmaQpInfoLen;
      break;
    case MsgType::kRdmaMap:
      want = req.arg1 * kRdmaMappingLen;
      break;
    case MsgType::kPing:
      want = req.payload_len;
      break;
    case MsgType::kStats:
    case MsgType::kAttachShm:
      return Status::Ok();  // free-form
    default:
      want = 0;
  }
  if (reply.payload_len != want)
    return {Code::kInternal, std::string(TypeName(req.type)) + " reply has " +
                                 std::to_string(reply.payload_len) + " payload bytes, expected " +
                                 std::to_string(want)};
  return Status::Ok();
}

}  // namespace remora::wire
