// WalkPaths (the pages strided walks come back to) and the eviction scan
// that spares them.
#include "processor/pcache/walk_paths.h"

#include <gtest/gtest.h>

#include "pcache_test_util.h"

namespace remora {
namespace {

using testing::Page;
using testing::PcacheRig;

constexpr std::uint64_t kRow = 6400;  // a row of 800 doubles: 1.5625 pages
constexpr std::uint64_t kBase = 0x40000000;

// The lattice of a column walk covers exactly the pages holding one of its
// points, within its extent and its address space.
TEST(WalkPathsTest, ALatticeCoversThePagesItsPointsFallIn) {
  WalkPaths::Lattice l;
  l.asid = 3;
  l.stride = kRow;
  l.anchor = kBase + 10 * kRow + 24;  // row 10, column 3
  l.lo = kBase + 24;                  // row 0
  l.hi = kBase + 99 * kRow + 24;      // row 99
  int covered = 0;
  for (std::uint64_t page = kBase; page < kBase + 100 * kRow; page += kPageSize) {
    bool expected = false;
    for (std::uint64_t row = 0; row < 100; ++row) {
      const std::uint64_t point = kBase + row * kRow + 24;
      expected |= point >= page && point < page + kPageSize;
    }
    EXPECT_EQ(l.Covers(3, page), expected) << "page " << (page - kBase) / kPageSize;
    covered += expected;
  }
  EXPECT_EQ(covered, 100);                        // rows are longer than a page: one page each
  EXPECT_FALSE(l.Covers(4, PageDown(l.anchor)));  // another space
  EXPECT_FALSE(l.Covers(3, PageDown(kBase) - kPageSize));  // before the extent
  EXPECT_FALSE(l.Covers(3, PageDown(l.hi + kRow)));        // after it
}

TEST(WalkPathsTest, MissesGrowTheExtentAndAFarOneStartsAnother) {
  WalkPaths paths(/*ttl=*/100);
  WalkPaths::Lattice out[WalkPaths::kSlots];
  EXPECT_FALSE(paths.MayBeActive(0));
  paths.Note(1, 7, kBase + 5 * kRow, kRow, 0);
  EXPECT_TRUE(paths.MayBeActive(0));
  EXPECT_EQ(paths.Snapshot(0, out), 0);  // one point: nothing to spare yet
  paths.Note(1, 7, kBase + 9 * kRow, kRow, 1);
  paths.Note(1, 7, kBase + 2 * kRow + 8, kRow, 2);  // the next column, higher up
  ASSERT_EQ(paths.Snapshot(2, out), 1);
  EXPECT_EQ(out[0].lo, kBase + 2 * kRow + 8);
  EXPECT_EQ(out[0].hi, kBase + 9 * kRow);
  EXPECT_EQ(out[0].anchor, kBase + 2 * kRow + 8);
  // Far outside (another matrix): a new extent, one point.
  paths.Note(1, 7, kBase + (WalkPaths::kMaxGapSteps + 20) * kRow, kRow, 3);
  EXPECT_EQ(paths.Snapshot(3, out), 0);
  // A walk downwards is the same lattice.
  paths.Note(1, 8, kBase + 50 * kRow, -static_cast<std::int64_t>(kRow), 4);
  paths.Note(1, 8, kBase + 40 * kRow, -static_cast<std::int64_t>(kRow), 5);
  ASSERT_EQ(paths.Snapshot(5, out), 1);
  EXPECT_EQ(out[0].stride, kRow);
  EXPECT_EQ(out[0].lo, kBase + 40 * kRow);
}

TEST(WalkPathsTest, AWalkThatStopsMissingExpires) {
  WalkPaths paths(/*ttl=*/100);
  WalkPaths::Lattice out[WalkPaths::kSlots];
  paths.Note(1, 7, kBase, kRow, 10);
  paths.Note(1, 7, kBase + 3 * kRow, kRow, 10);
  EXPECT_EQ(paths.Snapshot(110, out), 1);
  EXPECT_TRUE(paths.MayBeActive(110));
  EXPECT_EQ(paths.Snapshot(111, out), 0);
  EXPECT_FALSE(paths.MayBeActive(111));
}

TEST(WalkPathsTest, TheLeastRecentlyNotedWalkGivesWay) {
  WalkPaths paths(/*ttl=*/1000);
  WalkPaths::Lattice out[WalkPaths::kSlots];
  for (std::uint32_t w = 0; w <= WalkPaths::kSlots; ++w) {
    paths.Note(1, w, kBase, kRow, w);
    paths.Note(1, w, kBase + kRow, kRow, w);
  }
  ASSERT_EQ(paths.Snapshot(WalkPaths::kSlots, out), WalkPaths::kSlots);
}

// One set of four ways. A walk with a stride of two pages through pages 0,
// 2, 4, ...: its pages are passed over while the set has another line.
TEST(PcacheWalkPathTest, EvictionPassesOverAWalksPathWhileItCan) {
  PcacheRig rig;
  for (int p = 0; p < 4; ++p) rig.Load(Page(p));  // fill order 0 1 2 3
  rig.pcache->NoteWalk(1, 9, 0, 2 * kPageSize);
  rig.pcache->NoteWalk(1, 9, 6 * kPageSize, 2 * kPageSize);  // path: 0 2 4 6
  rig.Load(Page(4));                                         // 0 is the oldest, but on the path
  EXPECT_TRUE(rig.pcache->Lookup(Page(0)));
  EXPECT_FALSE(rig.pcache->Lookup(Page(1)));
  rig.Load(Page(5));
  EXPECT_FALSE(rig.pcache->Lookup(Page(3)));
  EXPECT_EQ(rig.Count("nr_pcache_walk_path_spared"), 2);
  // Only path lines left (0 2 4) and 5: 5 goes, then the oldest path line.
  rig.Load(Page(7));
  EXPECT_FALSE(rig.pcache->Lookup(Page(5)));
  rig.Load(Page(9));
  EXPECT_FALSE(rig.pcache->Lookup(Page(7)));
  rig.Load(Page(11));  // 0 2 4 9 resident: 9 is off the path
  EXPECT_FALSE(rig.pcache->Lookup(Page(9)));
  EXPECT_TRUE(rig.pcache->Lookup(Page(0)));
}

TEST(PcacheWalkPathTest, WhenEveryLineIsOnThePathTheOldestGoes) {
  PcacheRig rig;
  for (int p = 0; p < 8; p += 2) rig.Load(Page(p));  // 0 2 4 6
  rig.pcache->NoteWalk(1, 9, 0, 2 * kPageSize);
  rig.pcache->NoteWalk(1, 9, 8 * kPageSize, 2 * kPageSize);
  rig.Load(Page(8));
  EXPECT_FALSE(rig.pcache->Lookup(Page(0)));
  EXPECT_EQ(rig.Count("nr_pcache_walk_path_spared"), 0);
}

// Background reclaim makes room ahead of need: it takes no line a walk
// will come back to, and leaves a set of path lines to the fill that needs
// one.
TEST(PcacheWalkPathTest, BackgroundReclaimLeavesThePathAlone) {
  PcacheRig rig;
  for (int p = 0; p < 8; p += 2) rig.Load(Page(p));  // 0 2 4 6
  rig.pcache->NoteWalk(1, 9, 0, 2 * kPageSize);
  rig.pcache->NoteWalk(1, 9, 8 * kPageSize, 2 * kPageSize);
  EXPECT_EQ(rig.pcache->EvictOne(0, nullptr, EvictFor::kReclaim), EvictOutcome::kOnPath);
  EXPECT_EQ(rig.pcache->FreeLines(0), 0u);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), 0);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);  // a fill's need
  EXPECT_FALSE(rig.pcache->Lookup(Page(0)));
}

TEST(PcacheWalkPathTest, AnotherSpacesLinesAreNotSpared) {
  PcacheRig rig;
  for (int p = 0; p < 4; ++p) rig.Load(Page(p));
  rig.pcache->NoteWalk(2, 9, 0, 2 * kPageSize);  // a walk of space 2
  rig.pcache->NoteWalk(2, 9, 6 * kPageSize, 2 * kPageSize);
  rig.Load(Page(4));
  EXPECT_FALSE(rig.pcache->Lookup(Page(0)));
}

// The path stops being spared once the pcache has evicted a cache's worth
// of lines (here 4) without the walk missing again.
TEST(PcacheWalkPathTest, AStaleWalkStopsSparing) {
  PcacheRig rig;
  rig.pcache->NoteWalk(1, 9, 0, 2 * kPageSize);
  rig.pcache->NoteWalk(1, 9, 1000 * kPageSize, 2 * kPageSize);
  for (int p = 1; p <= 9; p += 2) rig.Load(Page(p));    // odd pages: off the path, 1 eviction
  for (int p = 11; p <= 17; p += 2) rig.Load(Page(p));  // 4 more evictions
  rig.Load(Page(100));                                  // path page, the newest
  rig.Load(Page(19));
  for (int p = 21; p <= 25; p += 2) rig.Load(Page(p));
  EXPECT_FALSE(rig.pcache->Lookup(Page(100)));  // no longer spared
}

}  // namespace
}  // namespace remora
