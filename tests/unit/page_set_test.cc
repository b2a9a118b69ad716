// PageSet: the pages with a copy on the memory node, as chunked bitmaps.
#include "processor/runtime/page_set.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace remora {
namespace {

constexpr std::uint64_t P(std::uint64_t i) { return i * kPageSize; }

TEST(PageSet, InsertAndContains) {
  PageSet s;
  EXPECT_TRUE(s.empty());
  s.Insert(P(5));
  s.Insert(P(5));
  s.Insert(P(511));
  s.Insert(P(512));  // the next chunk
  EXPECT_EQ(s.size(), 3u);
  EXPECT_TRUE(s.Contains(P(5)));
  EXPECT_TRUE(s.Contains(P(511)));
  EXPECT_TRUE(s.Contains(P(512)));
  EXPECT_FALSE(s.Contains(P(4)));
  EXPECT_FALSE(s.Contains(P(513)));
  EXPECT_FALSE(s.Contains(P(5) + (std::uint64_t{1} << 40)));  // same bit, another chunk
}

TEST(PageSet, EraseRangeClipsPartialChunksAndDropsWholeOnes) {
  PageSet s;
  for (std::uint64_t i = 0; i < 2048; ++i) s.Insert(P(i));
  s.EraseRange(P(100), P(1100));  // part of chunk 0, all of chunk 1, part of chunk 2
  EXPECT_EQ(s.size(), 2048u - 1000u);
  EXPECT_TRUE(s.Contains(P(99)));
  EXPECT_FALSE(s.Contains(P(100)));
  EXPECT_FALSE(s.Contains(P(700)));
  EXPECT_FALSE(s.Contains(P(1099)));
  EXPECT_TRUE(s.Contains(P(1100)));
  s.EraseRange(0, P(4096));
  EXPECT_TRUE(s.empty());
}

// A range far wider than the set (the munmap of a large reservation) is
// walked by the set's chunks; the result is the same.
TEST(PageSet, AHugeRangeEndsTheSameAsASmallOne) {
  PageSet s;
  s.Insert(P(3));
  s.Insert(std::uint64_t{1} << 45);
  s.Insert((std::uint64_t{1} << 46) + P(7));
  s.EraseRange(P(4), std::uint64_t{1} << 46);
  EXPECT_TRUE(s.Contains(P(3)));
  EXPECT_FALSE(s.Contains(std::uint64_t{1} << 45));
  EXPECT_TRUE(s.Contains((std::uint64_t{1} << 46) + P(7)));
  EXPECT_EQ(s.size(), 2u);
}

// Against std::set over random inserts and range erases.
TEST(PageSet, MatchesAnOrderedSet) {
  std::mt19937_64 rng(7);
  PageSet s;
  std::set<std::uint64_t> ref;
  for (int round = 0; round < 2000; ++round) {
    const std::uint64_t page = P(rng() % 8192);
    if (rng() % 4 != 0) {
      s.Insert(page);
      ref.insert(page);
    } else {
      const std::uint64_t end = page + P(1 + rng() % 1500);
      s.EraseRange(page, end);
      ref.erase(ref.lower_bound(page), ref.lower_bound(end));
    }
  }
  EXPECT_EQ(s.size(), ref.size());
  for (std::uint64_t i = 0; i < 8192 + 1600; ++i)
    EXPECT_EQ(s.Contains(P(i)), ref.count(P(i)) == 1) << i;
}

}  // namespace
}  // namespace remora
