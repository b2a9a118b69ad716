// Replacement order (LRU with second chance for referenced lines) and the
// free list's accounting.
#include <gtest/gtest.h>

#include "pcache_test_util.h"

namespace remora {
namespace {

using testing::Page;
using testing::PcacheRig;
using testing::RigConfig;

// One set of four ways: pages 0..3 fill it, page 4 forces an eviction.
class PcacheLru : public ::testing::Test {
 protected:
  void FillFour() {
    for (int p = 0; p < 4; ++p) rig.Load(Page(p));
  }
  // The page whose line was unmapped by the last eviction.
  std::uint64_t LastEvictedVpn() {
    auto u = rig.Wrprotected();
    return u.empty() ? ~0ull : u.back().second.uva >> kPageShift;
  }
  PcacheRig rig;
};

TEST_F(PcacheLru, EvictsLeastRecentlyFilledWithoutHints) {
  FillFour();
  rig.Load(Page(4));
  EXPECT_EQ(LastEvictedVpn(), 0u);
  EXPECT_FALSE(rig.pcache->Lookup(Page(0)));
  rig.Load(Page(5));
  EXPECT_EQ(LastEvictedVpn(), 1u);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_succeed"), 2);
  EXPECT_EQ(rig.Count("nr_pcache_lru_second_chance"), 0);
}

TEST_F(PcacheLru, ReferencedLineGetsSecondChance) {
  FillFour();  // LRU order, MRU first: 3 2 1 0
  EXPECT_TRUE(rig.pcache->MarkReferenced(Page(0)));
  rig.Load(Page(4));  // 0 moves to MRU with its bit cleared; 1 goes
  EXPECT_EQ(LastEvictedVpn(), 1u);
  EXPECT_TRUE(rig.pcache->Lookup(Page(0)));
  EXPECT_EQ(rig.Count("nr_pcache_lru_second_chance"), 1);
  // Now 4 0 3 2: the next evictions take 2, 3, then 0 (its chance is used).
  rig.Load(Page(5));
  EXPECT_EQ(LastEvictedVpn(), 2u);
  rig.Load(Page(6));
  EXPECT_EQ(LastEvictedVpn(), 3u);
  rig.Load(Page(7));
  EXPECT_EQ(LastEvictedVpn(), 0u);
}

TEST_F(PcacheLru, HintByLineIdWorksLikeHintByKey) {
  FillFour();
  rig.pcache->MarkReferenced(*rig.pcache->Lookup(Page(0)));
  rig.pcache->MarkReferenced(*rig.pcache->Lookup(Page(1)));
  rig.Load(Page(4));
  EXPECT_EQ(LastEvictedVpn(), 2u);
  EXPECT_EQ(rig.Count("nr_pcache_lru_second_chance"), 2);
}

TEST_F(PcacheLru, AllReferencedDegeneratesToFifoAfterOneRound) {
  FillFour();
  for (int p = 0; p < 4; ++p) rig.pcache->MarkReferenced(Page(p));
  rig.Load(Page(4));
  EXPECT_EQ(LastEvictedVpn(), 0u);
  EXPECT_EQ(rig.Count("nr_pcache_lru_second_chance"), 4);
}

TEST_F(PcacheLru, TouchMovesToMostRecentlyUsed) {
  FillFour();
  rig.pcache->Touch(*rig.pcache->Lookup(Page(0)));
  rig.pcache->Touch(*rig.pcache->Lookup(Page(1)));
  rig.Load(Page(4));
  EXPECT_EQ(LastEvictedVpn(), 2u);
  rig.Load(Page(5));
  EXPECT_EQ(LastEvictedVpn(), 3u);
  rig.Load(Page(6));
  EXPECT_EQ(LastEvictedVpn(), 0u);
  EXPECT_EQ(rig.Count("nr_pcache_lru_second_chance"), 0);
}

// Touch by key (a strided walk's coming hit) moves a resident page to the
// front at once, in the order of the touches: touching 1 then 0 evicts 1
// before 0 (referenced hints, by contrast, would give both a second chance
// in list order and evict 0 first). False, and nothing moved, for a page
// not resident.
TEST_F(PcacheLru, TouchByKeyMovesToTheFrontInOrder) {
  FillFour();  // MRU first: 3 2 1 0
  EXPECT_TRUE(rig.pcache->Touch(Page(1)));
  EXPECT_TRUE(rig.pcache->Touch(Page(0)));  // 0 1 3 2
  EXPECT_FALSE(rig.pcache->Touch(Page(9)));
  EXPECT_FALSE(rig.pcache->Touch(Page(0, /*asid=*/2)));
  rig.Load(Page(4));
  EXPECT_EQ(LastEvictedVpn(), 2u);
  rig.Load(Page(5));
  EXPECT_EQ(LastEvictedVpn(), 3u);
  EXPECT_FALSE(rig.pcache->Touch(Page(3)));
  rig.Load(Page(6));
  EXPECT_EQ(LastEvictedVpn(), 1u);
  rig.Load(Page(7));
  EXPECT_EQ(LastEvictedVpn(), 0u);
  EXPECT_EQ(rig.Count("nr_pcache_lru_second_chance"), 0);
}

TEST_F(PcacheLru, LookupIsNotAnAccess) {
  FillFour();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rig.pcache->Lookup(Page(0)));
  rig.Load(Page(4));
  EXPECT_EQ(LastEvictedVpn(), 0u);
}

TEST_F(PcacheLru, HintForAbsentPageIsIgnored) {
  EXPECT_FALSE(rig.pcache->MarkReferenced(Page(9)));
  FillFour();
  EXPECT_FALSE(rig.pcache->MarkReferenced(Page(9)));
  EXPECT_FALSE(rig.pcache->MarkReferenced(Page(0, /*asid=*/2)));
}

TEST(PcacheFreeList, AccountsLinesPerSet) {
  PcacheRig rig(RigConfig{.capacity = 8 * kPageSize, .ways = 4});  // 2 sets
  EXPECT_EQ(rig.pcache->lines_used(), 0u);
  // Even pages go to set 0, odd pages to set 1.
  for (int p : {0, 2, 4, 6, 1}) rig.Load(Page(p));
  EXPECT_EQ(rig.pcache->lines_used(), 5u);
  EXPECT_EQ(rig.Count("pcache_lines_used"), 5);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), 0);
  // Set 0 is full: page 8 evicts there, set 1 keeps its free lines.
  rig.Load(Page(8));
  EXPECT_EQ(rig.Count("nr_pcache_eviction_succeed"), 1);
  ASSERT_EQ(rig.Wrprotected().size(), 1u);
  EXPECT_EQ(rig.Wrprotected()[0].second, Page(0));
  EXPECT_EQ(rig.pcache->lines_used(), 5u);
  rig.Load(Page(3));
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), 1);
  EXPECT_EQ(rig.pcache->lines_used(), 6u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());

  EXPECT_EQ(rig.pcache->RemoveRmap(Page(3)), RemoveResult::kFreed);
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(3)), RemoveResult::kNotMapped);
  EXPECT_EQ(rig.pcache->lines_used(), 5u);
  EXPECT_EQ(rig.Count("pcache_lines_used"), 5);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFreeList, LinesOfASetAreItsOwn) {
  PcacheRig rig(RigConfig{.capacity = 16 * kPageSize, .ways = 4});  // 4 sets
  const PcacheGeometry& g = rig.pcache->geometry();
  for (int p = 0; p < 16; ++p) {
    LineId line = rig.Load(Page(p));
    EXPECT_EQ(g.SetOfLine(line), g.SetIndex(Page(p).uva)) << "page " << p;
  }
  EXPECT_EQ(rig.pcache->lines_used(), 16u);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), 0);
}

TEST(PcacheFreeList, ZeroFillIsCountedAndClearsData) {
  PcacheRig rig;
  LineId line = rig.Load(Page(7));
  EXPECT_TRUE(testing::AllBytes(rig.frames[line].data(), std::byte{0}));
  EXPECT_EQ(rig.Count("nr_pcache_fill_zerofill"), 1);
  LineInfo info = rig.pcache->Inspect(line);
  EXPECT_EQ(info.flags, kLineValid);
  EXPECT_EQ(info.refcount, 1u);
  EXPECT_EQ(info.mapcount, 1u);
}

}  // namespace
}  // namespace remora
