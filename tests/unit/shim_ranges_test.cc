// ShimRanges: the shim's allocation-free table of registered ranges.
#include "processor/shim/shim_ranges.h"

#include <gtest/gtest.h>

#include <memory>

namespace remora::shim {
namespace {

TEST(ShimRanges, AddFindOverlap) {
  auto r = std::make_unique<ShimRanges>();
  EXPECT_TRUE(r->Add(100, 200, 3));
  EXPECT_TRUE(r->Add(300, 400, 1));
  EXPECT_FALSE(r->Add(150, 250, 3));  // overlaps
  EXPECT_FALSE(r->Add(50, 50, 3));    // empty
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(r->Find(100)->prot, 3);
  EXPECT_EQ(r->Find(399)->prot, 1);
  EXPECT_EQ(r->Find(200), nullptr);
  EXPECT_TRUE(r->Overlaps(199, 201));
  EXPECT_FALSE(r->Overlaps(200, 300));
}

TEST(ShimRanges, RemoveSplitsAtTheEdges) {
  auto r = std::make_unique<ShimRanges>();
  ASSERT_TRUE(r->Add(100, 200, 3));
  ASSERT_TRUE(r->Add(300, 400, 3));
  EXPECT_TRUE(r->Remove(150, 350));
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(r->Find(149)->end, 150u);
  EXPECT_EQ(r->Find(150), nullptr);
  EXPECT_EQ(r->Find(350)->start, 350u);
  EXPECT_TRUE(r->Remove(120, 130));  // hole in the middle
  EXPECT_EQ(r->size(), 3u);
  EXPECT_EQ(r->Find(125), nullptr);
  EXPECT_EQ(r->Find(130)->end, 150u);
  EXPECT_FALSE(r->Remove(1000, 2000));
  EXPECT_TRUE(r->Remove(0, 1000));
  EXPECT_EQ(r->size(), 0u);
}

TEST(ShimRanges, ManyRangesStaySorted) {
  auto r = std::make_unique<ShimRanges>();
  for (std::uint64_t i = 0; i < 1000; ++i)
    ASSERT_TRUE(r->Add((999 - i) * 10, (999 - i) * 10 + 5, 0));
  for (std::uint64_t i = 0; i < 1000; ++i) {
    ASSERT_NE(r->Find(i * 10 + 4), nullptr) << i;
    ASSERT_EQ(r->Find(i * 10 + 5), nullptr) << i;
  }
}

}  // namespace
}  // namespace remora::shim
