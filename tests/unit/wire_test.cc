#include "net/wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "remora/types.h"

namespace remora::wire {
namespace {

Header Req(MsgType t, std::uint64_t arg0 = 0, std::uint64_t arg1 = 0, std::uint32_t len = 0) {
  return MakeRequest(t, 7, MakeAsid(1, 2), arg0, arg1, len);
}

TEST(WireTest, HeaderRoundTripsAndIsLittleEndian) {
  Header h = MakeRequest(MsgType::kWritePages, 0x0102030405060708ull, 0x1122334455667788ull,
                         0xAABBCCDD00112233ull, 5, 5 * (8 + 4096));
  h.status = -3;
  std::uint8_t b[kHeaderSize];
  EncodeHeader(h, b);
  EXPECT_EQ(std::memcmp(b, "RMRA", 4), 0);  // magic reads as text on the wire
  EXPECT_EQ(b[4], kVersion);                // version, low byte first
  EXPECT_EQ(b[6], static_cast<std::uint8_t>(MsgType::kWritePages));
  EXPECT_EQ(b[8], 0x08);  // req_id low byte first
  EXPECT_EQ(b[15], 0x01);
  Header d = DecodeHeader(b);
  EXPECT_EQ(d.magic, kMagic);
  EXPECT_EQ(d.version, kVersion);
  EXPECT_EQ(d.type, h.type);
  EXPECT_EQ(d.req_id, h.req_id);
  EXPECT_EQ(d.asid, h.asid);
  EXPECT_EQ(d.arg0, h.arg0);
  EXPECT_EQ(d.arg1, h.arg1);
  EXPECT_EQ(d.status, -3);
  EXPECT_EQ(d.payload_len, h.payload_len);
}

TEST(WireTest, ReplyMirrorsRequest) {
  Header req = Req(MsgType::kReadPage, 4096);
  Header rep = MakeReply(req, Code::kNoSuchSpace, 12);
  EXPECT_TRUE(IsReply(rep));
  EXPECT_FALSE(IsReply(req));
  EXPECT_EQ(BaseType(rep), static_cast<std::uint16_t>(MsgType::kReadPage));
  EXPECT_EQ(rep.req_id, req.req_id);
  EXPECT_EQ(rep.status, static_cast<std::int32_t>(Code::kNoSuchSpace));
  EXPECT_EQ(rep.payload_len, 12u);
}

TEST(WireTest, CheckFrameRejectsWhatBreaksFraming) {
  Header h = Req(MsgType::kPing);
  EXPECT_EQ(CheckFrame(h), FrameError::kNone);
  h.magic = 0xdeadbeef;
  EXPECT_EQ(CheckFrame(h), FrameError::kBadMagic);
  h = Req(MsgType::kPing);
  h.version = 1;  // the version before per-frame tags: refused
  EXPECT_EQ(CheckFrame(h), FrameError::kBadVersion);
  h = Req(MsgType::kPing);
  h.payload_len = kMaxPayload;
  EXPECT_EQ(CheckFrame(h), FrameError::kNone);
  h.payload_len = kMaxPayload + 1;
  EXPECT_EQ(CheckFrame(h), FrameError::kTooLarge);
  h.payload_len = 0xffffffffu;
  EXPECT_EQ(CheckFrame(h), FrameError::kTooLarge);
}

TEST(WireTest, MaxPayloadFitsTheLargestBatch) {
  EXPECT_LE(kMaxBatchPages * (8 + kPageSize), kMaxPayload);
  EXPECT_LE(kMaxBatchPages * 8 + kPageSize, kMaxPayload);
}

TEST(WireTest, ValidRequestsPass) {
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kCreateSpace)).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kForkSpace, MakeAsid(1, 3))).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kRegisterRange, 0x10000, 0x5000)).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kReadPage, 0x7f0000001000)).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kWritePage, 0x2000, 0, 4096)).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kReadPages, 0, 3, 24)).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kWritePages, 0, 256, 256 * 4104)).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kWritePageShared, 0x3000, 2, 16 + 4096)).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kPing, 0, 0, 100)).ok());
  EXPECT_TRUE(ValidateRequest(Req(MsgType::kAuth, 1, 0, 64)).ok());
}

TEST(WireTest, PayloadMustMatchType) {
  EXPECT_EQ(ValidateRequest(Req(MsgType::kWritePage, 0, 0, 4095)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kWritePage, 0, 0, 4097)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kReadPage, 0, 0, 8)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kCreateSpace, 0, 0, 1)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kReadPages, 0, 3, 16)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kWritePages, 0, 2, 2 * 4096)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kWritePageShared, 0, 2, 4096)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kAuth, 1, 0, 32)).code(), Code::kBadRequest);
}

TEST(WireTest, BatchCountsAreBounded) {
  EXPECT_EQ(ValidateRequest(Req(MsgType::kReadPages, 0, 0, 0)).code(), Code::kBadRequest);
  EXPECT_EQ(
      ValidateRequest(Req(MsgType::kReadPages, 0, kMaxBatchPages + 1, (kMaxBatchPages + 1) * 8))
          .code(),
      Code::kBadRequest);
  // A count so large that n * 8 wraps 32 bits must not sneak through.
  EXPECT_EQ(ValidateRequest(Req(MsgType::kReadPages, 0, 1ull << 61, 0)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kWritePageShared, 0, 0, 4096)).code(), Code::kBadRequest);
}

TEST(WireTest, AddressesMustBePageAligned) {
  EXPECT_EQ(ValidateRequest(Req(MsgType::kReadPage, 0x1001)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kWritePage, 0x800, 0, 4096)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kRegisterRange, 0x10, 0x1000)).code(), Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kWritePageShared, 0x3008, 1, 8 + 4096)).code(),
            Code::kBadRequest);
  EXPECT_EQ(ValidateRequest(Req(MsgType::kDiscardRange, ~0ull & kPageMask, 0x2000)).code(),
            Code::kBadRequest);  // wraps around the address space

  std::vector<std::uint8_t> uvas(16);
  PutU64(uvas.data(), 0x1000);
  PutU64(uvas.data() + 8, 0x2010);
  Header h = Req(MsgType::kReadPages, 0, 2, 16);
  EXPECT_EQ(ValidateBatchUvas(h, uvas.data()).code(), Code::kBadRequest);
  PutU64(uvas.data() + 8, 0x2000);
  EXPECT_TRUE(ValidateBatchUvas(h, uvas.data()).ok());
}

TEST(WireTest, UnknownAndMisdirectedTypesAreBadRequests) {
  Header h = Req(MsgType::kPing);
  h.type = 999;
  EXPECT_EQ(ValidateRequest(h).code(), Code::kBadRequest);
  h.type = 0;
  EXPECT_EQ(ValidateRequest(h).code(), Code::kBadRequest);
  h.type = static_cast<std::uint16_t>(MsgType::kHello);  // only servers say hello
  EXPECT_EQ(ValidateRequest(h).code(), Code::kBadRequest);
  h.type = static_cast<std::uint16_t>(MsgType::kPing) | kReplyBit;  // a reply is no request
  EXPECT_EQ(ValidateRequest(h).code(), Code::kBadRequest);
  EXPECT_EQ(TypeName(999), "unknown");
  EXPECT_EQ(TypeName(static_cast<std::uint16_t>(MsgType::kReadPages)), "read_pages");
  EXPECT_FALSE(IsKnownRequestType(static_cast<std::uint16_t>(MsgType::kHello)));
  EXPECT_TRUE(IsKnownRequestType(static_cast<std::uint16_t>(MsgType::kWritePageShared)));
}

TEST(WireTest, ReplyLengthsFollowTheRequest) {
  Header rp = Req(MsgType::kReadPage, 0x1000);
  Header ok = MakeReply(rp, Code::kOk, 4096);
  ok.arg1 = 1;
  EXPECT_TRUE(ValidateReply(rp, ok).ok());
  ok.arg1 = 0;  // absent page: no data
  EXPECT_FALSE(ValidateReply(rp, ok).ok());
  ok.payload_len = 0;
  EXPECT_TRUE(ValidateReply(rp, ok).ok());

  Header rps = Req(MsgType::kReadPages, 0, 3, 24);
  EXPECT_EQ(ReadPagesReplyLen(3), 8u + 3 * 4096);
  EXPECT_TRUE(ValidateReply(rps, MakeReply(rps, Code::kOk, 8 + 3 * 4096)).ok());
  EXPECT_FALSE(ValidateReply(rps, MakeReply(rps, Code::kOk, 3 * 4096)).ok());
  // Errors carry text of any length.
  EXPECT_TRUE(ValidateReply(rps, MakeReply(rps, Code::kOutOfMemory, 17)).ok());

  Header other = MakeReply(Req(MsgType::kPing), Code::kOk);
  other.req_id = 8;
  EXPECT_FALSE(ValidateReply(Req(MsgType::kPing), other).ok());
  Header info = Req(MsgType::kInfo);
  EXPECT_TRUE(ValidateReply(info, MakeReply(info, Code::kOk, sizeof(InfoPayload))).ok());
}

TEST(WireTest, PresencePaddingIsToEightBytes) {
  EXPECT_EQ(PresenceBytes(1), 8u);
  EXPECT_EQ(PresenceBytes(8), 8u);
  EXPECT_EQ(PresenceBytes(9), 16u);
  EXPECT_EQ(PresenceBytes(256), 256u);
}

}  // namespace
}  // namespace remora::wire
