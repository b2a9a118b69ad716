// Reverse maps in the pcache: lines shared after fork, copy-on-write,
// unmapping, address-space teardown and the leak check that follows it.
#include <gtest/gtest.h>

#include <algorithm>

#include "pcache_test_util.h"

namespace remora {
namespace {

using testing::AllBytes;
using testing::Page;
using testing::PcacheRig;
using testing::RigConfig;

constexpr Asid kParent = 10, kChild = 11;

TEST(PcacheRmap, ForkSharesTheLine) {
  PcacheRig rig;
  LineId line = rig.Load(Page(5, kParent), 0x42);
  EXPECT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  EXPECT_EQ(rig.pcache->Lookup(Page(5, kChild)), line);
  EXPECT_EQ(rig.pcache->Lookup(Page(5, kParent)), line);
  LineInfo info = rig.pcache->Inspect(line);
  EXPECT_EQ(info.mapcount, 2u);
  EXPECT_EQ(info.refcount, 1u);
  EXPECT_TRUE(info.flags & kLineForked);
  std::vector<Rmap> walked;
  rig.pcache->WalkRmaps(line, [&](const Rmap& r) { walked.push_back(r); });
  EXPECT_EQ(walked, (std::vector<Rmap>{Page(5, kParent), Page(5, kChild)}));
  // Sharing again is harmless; a page that is not resident is not shared.
  EXPECT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  EXPECT_EQ(rig.pcache->Inspect(line).mapcount, 2u);
  EXPECT_FALSE(rig.pcache->Lookup(Page(6, kChild)));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheRmap, EvictingASharedLineUnmapsEveryMappingAndWritesOnce) {
  PcacheRig rig;
  rig.Load(Page(5, kParent), 0x42);
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
  auto unmapped = rig.Wrprotected();
  ASSERT_EQ(unmapped.size(), 2u);
  EXPECT_EQ(unmapped[0].second, Page(5, kParent));
  EXPECT_EQ(unmapped[1].second, Page(5, kChild));
  EXPECT_EQ(unmapped[0].first, unmapped[1].first);

  ASSERT_TRUE(rig.victim->Flush().ok());
  EXPECT_EQ(rig.sink.writes(), 1u);  // one write-back names both owners
  std::array<std::byte, kPageSize> got;
  ASSERT_TRUE(rig.sink.Read(Page(5, kChild), got.data()));
  EXPECT_TRUE(AllBytes(got.data(), std::byte{0x42}));
  ASSERT_TRUE(rig.sink.Read(Page(5, kParent), got.data()));
  EXPECT_TRUE(AllBytes(got.data(), std::byte{0x42}));

  // Each side faults it back on its own; the entry lives until both did.
  LineId child_line = rig.Load(Page(5, kChild));
  EXPECT_TRUE(AllBytes(rig.frames[child_line].data(), std::byte{0x42}));
  EXPECT_TRUE(rig.victim->Contains(Page(5, kParent)));
  rig.Load(Page(5, kParent));
  EXPECT_EQ(rig.victim->used(), 0u);
  EXPECT_EQ(rig.Count("nr_victim_hit"), 2);
}

TEST(PcacheRmap, CopyOnWriteGivesTheWriterItsOwnLineInTheSameSet) {
  PcacheRig rig(RigConfig{.capacity = 16 * kPageSize, .ways = 4});  // 4 sets
  LineId shared = rig.Load(Page(9, kParent), 0x11);
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);

  // The child writes: keep the shared line while copying out of it.
  LineId pinned;
  ASSERT_TRUE(rig.pcache->Pin(Page(9, kParent), &pinned));
  EXPECT_EQ(pinned, shared);
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(9, kChild)), RemoveResult::kRemoved);
  FillResult r;
  ASSERT_TRUE(rig.pcache->Fill(Page(9, kChild), &r).ok());
  ASSERT_TRUE(r.allocated);
  EXPECT_NE(r.line, shared);
  const PcacheGeometry& g = rig.pcache->geometry();
  EXPECT_EQ(g.SetOfLine(r.line), g.SetOfLine(shared));
  rig.frames[r.line] = rig.frames[shared];
  rig.frames[r.line].fill(std::byte{0x22});  // the child's write
  rig.pcache->CompleteFill(r.line, FillSource::kCowBreak, /*dirty=*/true);
  rig.pcache->Unpin(pinned);
  EXPECT_EQ(rig.Count("nr_pcache_fill_copy"), 1);

  EXPECT_EQ(rig.pcache->Lookup(Page(9, kParent)), shared);
  EXPECT_EQ(rig.pcache->Lookup(Page(9, kChild)), r.line);
  EXPECT_EQ(rig.pcache->Inspect(shared).mapcount, 1u);
  EXPECT_TRUE(AllBytes(rig.frames[shared].data(), std::byte{0x11}));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheRmap, LastUnmapFreesUnlessPinned) {
  PcacheRig rig;
  LineId line = rig.Load(Page(1, kParent));
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(1, kParent)), RemoveResult::kRemoved);
  LineId pinned;
  ASSERT_TRUE(rig.pcache->Pin(Page(1, kChild), &pinned));
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(1, kChild)), RemoveResult::kRemoved);
  EXPECT_EQ(rig.pcache->lines_used(), 1u);  // held by the pin
  EXPECT_FALSE(rig.pcache->Lookup(Page(1, kChild)));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
  rig.pcache->Unpin(pinned);
  EXPECT_EQ(rig.pcache->lines_used(), 0u);
  EXPECT_EQ(rig.pcache->Inspect(line).flags, 0);
}

TEST(PcacheRmap, LockIsHeldAcrossIoByPinHolders) {
  PcacheRig rig;
  rig.Load(Page(1));
  LineId line;
  ASSERT_TRUE(rig.pcache->Pin(Page(1), &line));
  rig.pcache->Lock(line);
  EXPECT_TRUE(rig.pcache->Inspect(line).flags & kLineLocked);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kBusy);
  rig.pcache->Unlock(line);
  rig.pcache->Unpin(line);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
}

TEST(PcacheRmap, RemoveSpaceLeavesNoLineBehind) {
  PcacheRig rig(RigConfig{.capacity = 32 * kPageSize, .ways = 4});  // 8 sets
  for (int p = 0; p < 12; ++p) rig.Load(Page(p, kParent), p % 2 ? p : -1);
  // The child of a fork keeps every third page and unmaps the others.
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 12u);
  for (int p = 0; p < 12; ++p) {
    if (p % 3 == 0) continue;
    ASSERT_EQ(rig.pcache->RemoveRmap(Page(p, kChild)), RemoveResult::kRemoved);
  }
  for (int p = 20; p < 24; ++p) rig.Load(Page(p, kChild));
  EXPECT_EQ(rig.pcache->lines_used(), 16u);

  EXPECT_EQ(rig.pcache->RemoveSpace(kParent), 12u);
  EXPECT_EQ(rig.pcache->lines_used(), 8u);  // 4 shared with the child + 4 its own
  EXPECT_TRUE(rig.pcache->Lookup(Page(3, kChild)));
  EXPECT_FALSE(rig.pcache->Lookup(Page(3, kParent)));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());

  EXPECT_EQ(rig.pcache->RemoveSpace(kChild), 8u);
  EXPECT_EQ(rig.pcache->lines_used(), 0u);
  EXPECT_EQ(rig.Count("pcache_lines_used"), 0);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
  // No write-back for pages of a space that is gone.
  EXPECT_EQ(rig.sink.writes(), 0u);
}

TEST(PcacheRmap, RemoveRangeDropsOnlyThatRangeOfThatSpace) {
  PcacheRig rig(RigConfig{.capacity = 32 * kPageSize, .ways = 4});  // 8 sets
  for (int p = 0; p < 12; ++p) rig.Load(Page(p, kParent), p);
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 12u);
  for (int p = 20; p < 24; ++p) rig.Load(Page(p, kParent));
  // A huge range around pages 4..9 of the parent: the walk of the lines
  // finds exactly those, and the child keeps its shared lines.
  EXPECT_EQ(rig.pcache->RemoveRange(kParent, Page(4).uva, Page(10).uva), 6u);
  for (int p = 0; p < 12; ++p) {
    EXPECT_EQ(rig.pcache->Lookup(Page(p, kParent)).has_value(), p < 4 || p >= 10) << p;
    EXPECT_TRUE(rig.pcache->Lookup(Page(p, kChild))) << p;
  }
  EXPECT_EQ(rig.pcache->lines_used(), 16u);
  EXPECT_EQ(rig.pcache->RemoveRange(kChild, 0, std::uint64_t{1} << 47), 12u);
  EXPECT_EQ(rig.pcache->lines_used(), 10u);  // the parent's 6 + 4 unshared ones
  EXPECT_EQ(rig.pcache->RemoveRange(kChild, 0, std::uint64_t{1} << 47), 0u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
  EXPECT_EQ(rig.sink.writes(), 0u);
}

TEST(PcacheRmap, MappingDroppedDuringFillFreesTheLineAtCompletion) {
  PcacheRig rig;
  FillResult r;
  ASSERT_TRUE(rig.pcache->Fill(Page(2, kParent), &r).ok());
  EXPECT_EQ(rig.pcache->RemoveSpace(kParent), 1u);  // the process exited meanwhile
  EXPECT_EQ(rig.pcache->lines_used(), 1u);
  rig.pcache->CompleteFill(r.line, FillSource::kMemoryNode);
  EXPECT_EQ(rig.pcache->lines_used(), 0u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

}  // namespace
}  // namespace remora
