// The RDMA transport's bookkeeping, without an RDMA device: the control
// payload codecs (net/rdma/rdma_wire.h), the memory node's frames and budget
// (memory-node/rdma_frames.h), and the per-connection address spaces that
// answer kRdmaMap (memory-node/rdma_spaces.h). Real verbs run in the
// emulated cluster (tests/cluster/qemu-rdma.sh).
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "memory-node/rdma_frames.h"
#include "memory-node/rdma_spaces.h"
#include "net/rdma/rdma_wire.h"
#include "net/wire.h"

namespace remora {
namespace {

// Hands out distinct rkeys per region and remembers what is registered, so
// the tests can check that every region is released exactly once.
class CountingRegistrar final : public FrameRegistrar {
 public:
  Status Register(char* base, std::size_t len, std::uint32_t* rkey, void** handle) override {
    if (fail_next) {
      fail_next = false;
      return {Code::kIoError, "registration refused"};
    }
    *rkey = next_rkey++;
    live.insert(base);
    EXPECT_EQ(len, RdmaFrames::kChunkFrames * kPageSize);
    *handle = base;
    return Status::Ok();
  }
  void Deregister(void* handle) override { EXPECT_EQ(live.erase(static_cast<char*>(handle)), 1u); }
  std::set<char*> live;
  std::uint32_t next_rkey = 100;
  bool fail_next = false;
};

TEST(RdmaWireTest, QpInfosRoundTrip) {
  rdma::QpInfo a;
  a.qpn = 0x123456;
  a.psn = 0xABCDEF;
  for (int i = 0; i < 16; ++i) a.gid[i] = static_cast<std::uint8_t>(i * 7);
  a.lid = 0x1234;
  a.mtu = 3;
  a.max_rd_atomic = 16;
  rdma::QpInfo b = a;
  b.qpn = 17;
  std::vector<rdma::QpInfo> in{a, b}, out;
  const std::string enc = rdma::EncodeQpInfos(in);
  ASSERT_EQ(enc.size(), 2 * wire::kRdmaQpInfoLen);
  EXPECT_EQ(static_cast<std::uint8_t>(enc[0]), 0x56);  // little-endian qpn
  ASSERT_TRUE(rdma::DecodeQpInfos(enc, 2, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].qpn, a.qpn);
  EXPECT_EQ(out[0].psn, a.psn);
  EXPECT_EQ(std::memcmp(out[0].gid, a.gid, 16), 0);
  EXPECT_EQ(out[0].lid, a.lid);
  EXPECT_EQ(out[0].mtu, 3);
  EXPECT_EQ(out[0].max_rd_atomic, 16);
  EXPECT_EQ(out[1].qpn, 17u);
}

TEST(RdmaWireTest, MalformedQpInfosAreRefused) {
  rdma::QpInfo q;
  q.qpn = 5;
  q.mtu = 3;
  q.max_rd_atomic = 1;
  std::vector<rdma::QpInfo> out;
  std::string enc = rdma::EncodeQpInfos(std::vector<rdma::QpInfo>{q});
  EXPECT_EQ(rdma::DecodeQpInfos(enc, 2, &out).code(), Code::kBadRequest);  // count mismatch
  EXPECT_EQ(rdma::DecodeQpInfos(enc.substr(1), 1, &out).code(), Code::kBadRequest);
  EXPECT_EQ(rdma::DecodeQpInfos("", 0, &out).code(), Code::kBadRequest);
  std::string bad = enc;
  bad[26] = 9;  // no such MTU
  EXPECT_EQ(rdma::DecodeQpInfos(bad, 1, &out).code(), Code::kBadRequest);
  bad = enc;
  std::memset(bad.data(), 0, 4);  // QP number 0
  EXPECT_EQ(rdma::DecodeQpInfos(bad, 1, &out).code(), Code::kBadRequest);
}

TEST(RdmaWireTest, MappingsRoundTripAndRejectNonsense) {
  std::vector<rdma::Mapping> in(3), out;
  in[0] = {0x7f0000001000ull, 0xDEADBEEF, true, true};
  in[1] = {};  // absent
  in[2] = {0x2000, 7, true, false};
  const std::string enc = rdma::EncodeMappings(in);
  ASSERT_EQ(enc.size(), 3 * wire::kRdmaMappingLen);
  ASSERT_TRUE(rdma::DecodeMappings(enc, 3, &out).ok());
  EXPECT_EQ(out[0].addr, in[0].addr);
  EXPECT_EQ(out[0].rkey, in[0].rkey);
  EXPECT_TRUE(out[0].writable);
  EXPECT_FALSE(out[1].present);
  EXPECT_TRUE(out[2].present);
  EXPECT_FALSE(out[2].writable);
  EXPECT_FALSE(rdma::DecodeMappings(enc, 2, &out).ok());
  std::string bad = enc;
  bad[wire::kRdmaMappingLen + 12] = 2;  // writable but absent
  EXPECT_FALSE(rdma::DecodeMappings(bad, 3, &out).ok());
  bad = enc;
  bad[1] = 1;  // address not page aligned
  EXPECT_FALSE(rdma::DecodeMappings(bad, 3, &out).ok());
}

TEST(RdmaWireTest, ControlMessagesAreValidated) {
  using wire::MsgType;
  auto req = [](MsgType t, std::uint64_t arg0, std::uint64_t arg1, std::uint32_t len) {
    return wire::MakeRequest(t, 1, MakeAsid(1, 1), arg0, arg1, len);
  };
  EXPECT_TRUE(wire::ValidateRequest(req(MsgType::kRdmaAttach, 0, 4, 4 * 32)).ok());
  EXPECT_FALSE(wire::ValidateRequest(req(MsgType::kRdmaAttach, 0, 17, 17 * 32)).ok());
  EXPECT_FALSE(wire::ValidateRequest(req(MsgType::kRdmaAttach, 0, 2, 32)).ok());
  EXPECT_TRUE(wire::ValidateRequest(req(MsgType::kRdmaMap, 1, 3, 24)).ok());
  EXPECT_FALSE(wire::ValidateRequest(req(MsgType::kRdmaMap, 2, 3, 24)).ok());  // bad mode
  EXPECT_FALSE(wire::ValidateRequest(req(MsgType::kRdmaMap, 0, 257, 257 * 8)).ok());
  const wire::Header map = req(MsgType::kRdmaMap, 0, 3, 24);
  wire::Header reply = wire::MakeReply(map, Code::kOk, 3 * 16);
  EXPECT_TRUE(wire::ValidateReply(map, reply).ok());
  reply.payload_len = 16;
  EXPECT_FALSE(wire::ValidateReply(map, reply).ok());
  EXPECT_EQ(wire::TypeName(static_cast<std::uint16_t>(MsgType::kRdmaMap)), "rdma_map");
}

TEST(RdmaFramesTest, AllocatesZeroedFramesInRegisteredChunksWithinBudget) {
  FrameBudget budget(RdmaFrames::kChunkFrames + 10);
  CountingRegistrar reg;
  {
    RdmaFrames frames(&budget, &reg);
    std::vector<RdmaFrames::Frame> got;
    for (std::uint32_t i = 0; i < RdmaFrames::kChunkFrames + 10; ++i) {
      RdmaFrames::Frame f;
      ASSERT_TRUE(frames.Allocate(&f).ok()) << i;
      got.push_back(f);
    }
    EXPECT_EQ(frames.chunks(), 2u);
    EXPECT_EQ(reg.live.size(), 2u);
    EXPECT_EQ(budget.used(), RdmaFrames::kChunkFrames + 10);
    RdmaFrames::Frame f;
    EXPECT_EQ(frames.Allocate(&f).code(), Code::kOutOfMemory);
    // Frames of one chunk share its rkey, the other chunk has its own.
    EXPECT_EQ(frames.Rkey(got[0]), frames.Rkey(got[1]));
    EXPECT_NE(frames.Rkey(got[0]), frames.Rkey(got.back()));
    EXPECT_EQ(frames.RemoteAddr(got[1]) - frames.RemoteAddr(got[0]), kPageSize);
    // A freed frame comes back zeroed.
    std::memset(frames.Data(got[5]), 0xAB, kPageSize);
    frames.Unref(got[5]);
    EXPECT_EQ(budget.used(), RdmaFrames::kChunkFrames + 9);
    ASSERT_TRUE(frames.Allocate(&f).ok());
    EXPECT_EQ(f, got[5]);
    for (std::size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(frames.Data(f)[i], 0);
    // Shared frames free on the last reference.
    frames.Ref(f);
    frames.Unref(f);
    EXPECT_EQ(frames.refcount(f), 1u);
  }
  EXPECT_TRUE(reg.live.empty());  // every region deregistered
  EXPECT_EQ(budget.used(), 0u);   // and the budget returned
}

TEST(RdmaFramesTest, FailedRegistrationGivesTheBudgetBack) {
  FrameBudget budget(100);
  CountingRegistrar reg;
  RdmaFrames frames(&budget, &reg);
  reg.fail_next = true;
  RdmaFrames::Frame f;
  EXPECT_EQ(frames.Allocate(&f).code(), Code::kIoError);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_TRUE(frames.Allocate(&f).ok());
}

TEST(RdmaFramesTest, BudgetIsSharedByConnections) {
  FrameBudget budget(3);
  CountingRegistrar reg;
  RdmaFrames a(&budget, &reg), b(&budget, &reg);
  RdmaFrames::Frame f;
  ASSERT_TRUE(a.Allocate(&f).ok());
  ASSERT_TRUE(a.Allocate(&f).ok());
  ASSERT_TRUE(b.Allocate(&f).ok());
  EXPECT_EQ(b.Allocate(&f).code(), Code::kOutOfMemory);
  b.Unref(f);
  EXPECT_TRUE(a.Allocate(&f).ok());
}

class RdmaSpacesTest : public ::testing::Test {
 protected:
  static constexpr Asid kA = MakeAsid(1, 1);
  static constexpr Asid kB = MakeAsid(1, 2);
  static constexpr std::uint64_t kBase = 0x10000000;

  RdmaSpacesTest() : budget_(64), frames_(&budget_, &reg_), spaces_(&frames_) {
    EXPECT_TRUE(spaces_.CreateSpace(kA).ok());
    EXPECT_TRUE(spaces_.RegisterRange(kA, kBase, 16 * kPageSize).ok());
  }
  rdma::Mapping MapOne(Asid asid, std::uint64_t uva, bool write) {
    std::vector<rdma::Mapping> m;
    Status st = spaces_.Map(asid, std::vector<std::uint64_t>{uva}, write, &m);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return m.empty() ? rdma::Mapping{} : m[0];
  }
  // What an RDMA READ of the mapping would return.
  std::string Remote(const rdma::Mapping& m) {
    return std::string(reinterpret_cast<const char*>(m.addr), kPageSize);
  }
  // What an RDMA WRITE through the mapping does.
  void RemoteWrite(const rdma::Mapping& m, char c) {
    ASSERT_TRUE(m.writable);
    std::memset(reinterpret_cast<char*>(m.addr), c, kPageSize);
  }

  FrameBudget budget_;
  CountingRegistrar reg_;
  RdmaFrames frames_;
  RdmaSpaces spaces_;
};

TEST_F(RdmaSpacesTest, AbsentPagesNeedNoFrameUntilMappedForWriting) {
  rdma::Mapping r = MapOne(kA, kBase, false);
  EXPECT_FALSE(r.present);
  EXPECT_EQ(budget_.used(), 0u);
  rdma::Mapping w = MapOne(kA, kBase, true);
  EXPECT_TRUE(w.present && w.writable);
  EXPECT_EQ(Remote(w), std::string(kPageSize, '\0'));
  RemoteWrite(w, 'x');
  // The frame stays put: later maps, for reading or writing, point at it.
  rdma::Mapping again = MapOne(kA, kBase, false);
  EXPECT_EQ(again.addr, w.addr);
  EXPECT_EQ(again.rkey, w.rkey);
  EXPECT_TRUE(again.writable);
  EXPECT_EQ(MapOne(kA, kBase, true).addr, w.addr);
  EXPECT_EQ(budget_.used(), 1u);
  char buf[kPageSize];
  bool present = false;
  ASSERT_TRUE(spaces_.ReadPage(kA, kBase, buf, &present).ok());
  EXPECT_TRUE(present);
  EXPECT_EQ(buf[100], 'x');
}

TEST_F(RdmaSpacesTest, ErrorsMatchThePageStore) {
  std::vector<rdma::Mapping> m;
  EXPECT_EQ(spaces_.Map(kB, std::vector<std::uint64_t>{kBase}, false, &m).code(),
            Code::kNoSuchSpace);
  EXPECT_EQ(spaces_.Map(kA, std::vector<std::uint64_t>{kBase + 16 * kPageSize}, true, &m).code(),
            Code::kNotRegistered);
  EXPECT_EQ(spaces_.Map(kA, std::vector<std::uint64_t>{kBase + 1}, false, &m).code(),
            Code::kBadRequest);
  EXPECT_EQ(spaces_.CreateSpace(kA).code(), Code::kSpaceExists);
  EXPECT_EQ(spaces_.RegisterRange(kA, kBase, 0).code(), Code::kBadRequest);
}

TEST_F(RdmaSpacesTest, ForkSharesFramesReadOnlyAndWritesBreakTheSharing) {
  RemoteWrite(MapOne(kA, kBase, true), 'p');
  ASSERT_TRUE(spaces_.ForkSpace(kA, kB).ok());
  rdma::Mapping pa = MapOne(kA, kBase, false), pb = MapOne(kB, kBase, false);
  EXPECT_EQ(pa.addr, pb.addr);
  EXPECT_FALSE(pa.writable);
  EXPECT_FALSE(pb.writable);
  EXPECT_EQ(budget_.used(), 1u);
  // The child writes: it gets its own copy, the parent keeps the original.
  rdma::Mapping wb = MapOne(kB, kBase, true);
  EXPECT_NE(wb.addr, pa.addr);
  EXPECT_EQ(Remote(wb), std::string(kPageSize, 'p'));  // copied, not zeroed
  RemoteWrite(wb, 'c');
  EXPECT_EQ(Remote(MapOne(kA, kBase, false)), std::string(kPageSize, 'p'));
  EXPECT_EQ(spaces_.metrics().cow_breaks, 1u);
  // The parent is the frame's only holder now: writable in place, no copy.
  rdma::Mapping wa = MapOne(kA, kBase, true);
  EXPECT_EQ(wa.addr, pa.addr);
  EXPECT_EQ(spaces_.metrics().cow_breaks, 1u);
  EXPECT_EQ(budget_.used(), 2u);
  ASSERT_TRUE(spaces_.DestroySpace(kB).ok());
  EXPECT_EQ(budget_.used(), 1u);
}

TEST_F(RdmaSpacesTest, SharedWriteStoresOneFrameForAllSpaces) {
  ASSERT_TRUE(spaces_.ForkSpace(kA, kB).ok());
  std::vector<char> page(kPageSize, 's');
  const Asid both[] = {kA, kB};
  ASSERT_TRUE(spaces_.WritePageShared(both, kBase, page.data()).ok());
  rdma::Mapping a = MapOne(kA, kBase, false), b = MapOne(kB, kBase, false);
  EXPECT_EQ(a.addr, b.addr);
  EXPECT_FALSE(a.writable);
  EXPECT_EQ(budget_.used(), 1u);
  // Writing it again for the same two overwrites in place.
  page.assign(kPageSize, 't');
  ASSERT_TRUE(spaces_.WritePageShared(both, kBase, page.data()).ok());
  EXPECT_EQ(MapOne(kA, kBase, false).addr, a.addr);
  EXPECT_EQ(Remote(a), std::string(kPageSize, 't'));
  EXPECT_EQ(budget_.used(), 1u);
}

TEST_F(RdmaSpacesTest, DiscardUnregisterAndDestroyFreeFrames) {
  for (int i = 0; i < 8; ++i) RemoteWrite(MapOne(kA, kBase + i * kPageSize, true), 'd');
  EXPECT_EQ(budget_.used(), 8u);
  ASSERT_TRUE(spaces_.DiscardRange(kA, kBase, 2 * kPageSize).ok());
  EXPECT_EQ(budget_.used(), 6u);
  EXPECT_FALSE(MapOne(kA, kBase, false).present);
  ASSERT_TRUE(spaces_.UnregisterRange(kA, kBase + 6 * kPageSize, 2 * kPageSize).ok());
  EXPECT_EQ(budget_.used(), 4u);
  std::vector<rdma::Mapping> m;
  EXPECT_EQ(spaces_.Map(kA, std::vector<std::uint64_t>{kBase + 6 * kPageSize}, false, &m).code(),
            Code::kNotRegistered);
  ASSERT_TRUE(spaces_.DestroySpace(kA).ok());
  EXPECT_EQ(budget_.used(), 0u);
}

TEST_F(RdmaSpacesTest, OutOfCapacityIsReportedAndNothingLeaks) {
  ASSERT_TRUE(spaces_.RegisterRange(kA, kBase, 128 * kPageSize).ok());
  std::vector<std::uint64_t> uvas;
  for (int i = 0; i < 100; ++i) uvas.push_back(kBase + i * kPageSize);
  std::vector<rdma::Mapping> m;
  Status st = spaces_.Map(kA, uvas, true, &m);
  EXPECT_EQ(st.code(), Code::kOutOfMemory);
  EXPECT_NE(st.message().find("page 64 of 100"), std::string::npos) << st.message();
  EXPECT_EQ(budget_.used(), 64u);
  ASSERT_TRUE(spaces_.DestroySpace(kA).ok());
  EXPECT_EQ(budget_.used(), 0u);
}

}  // namespace
}  // namespace remora
