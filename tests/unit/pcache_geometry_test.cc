#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <vector>

#include "processor/pcache/geometry.h"
#include "processor/pcache/line.h"

namespace remora {
namespace {

TEST(PcacheGeometry, SetsWaysAndLines) {
  PcacheGeometry g;
  ASSERT_TRUE(PcacheGeometry::FromConfig({64 << 20, 8}, &g).ok());
  EXPECT_EQ(g.ways(), 8u);
  EXPECT_EQ(g.nr_sets(), 2048u);  // 64 MiB / (8 x 4 KiB)
  EXPECT_EQ(g.nr_lines(), 16384u);
  EXPECT_EQ(g.capacity_bytes(), std::uint64_t{64} << 20);
}

TEST(PcacheGeometry, SetIndexIsVirtualPageNumberModuloSets) {
  PcacheGeometry g;
  ASSERT_TRUE(PcacheGeometry::FromConfig({16 * kPageSize, 4}, &g).ok());  // 4 sets
  EXPECT_EQ(g.SetIndex(0x0000), 0u);
  EXPECT_EQ(g.SetIndex(0x1000), 1u);
  EXPECT_EQ(g.SetIndex(0x3fff), 3u);  // offset inside the page is ignored
  EXPECT_EQ(g.SetIndex(0x4000), 0u);
  EXPECT_EQ(g.SetIndex(0x7fff'ffff'5000), 1u);
}

TEST(PcacheGeometry, LineIdsAreContiguousPerSet) {
  PcacheGeometry g;
  ASSERT_TRUE(PcacheGeometry::FromConfig({16 * kPageSize, 4}, &g).ok());
  EXPECT_EQ(g.FirstLineOfSet(2), 8u);
  for (LineId id = 0; id < g.nr_lines(); ++id) EXPECT_EQ(g.SetOfLine(id), id / 4);
}

TEST(PcacheGeometry, OneSetAndDirectMappedAreValid) {
  PcacheGeometry g;
  ASSERT_TRUE(PcacheGeometry::FromConfig({64 * kPageSize, 64}, &g).ok());
  EXPECT_EQ(g.nr_sets(), 1u);
  EXPECT_EQ(g.SetIndex(0x12345000), 0u);
  ASSERT_TRUE(PcacheGeometry::FromConfig({8 * kPageSize, 1}, &g).ok());
  EXPECT_EQ(g.nr_sets(), 8u);
}

TEST(PcacheGeometry, RejectsBadAssociativity) {
  PcacheGeometry g;
  Status st = PcacheGeometry::FromConfig({1 << 20, 0}, &g);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("1..64"), std::string::npos) << st.message();
  EXPECT_FALSE(PcacheGeometry::FromConfig({1 << 20, 65}, &g).ok());
}

TEST(PcacheGeometry, RejectsNonPowerOfTwoSets) {
  PcacheGeometry g;
  Status st = PcacheGeometry::FromConfig({3 << 20, 8}, &g);  // 96 sets
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("power-of-two"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("2 MiB"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("4 MiB"), std::string::npos) << st.message();
  // Not a whole number of sets.
  EXPECT_FALSE(PcacheGeometry::FromConfig({(1 << 20) + 4096, 8}, &g).ok());
  // Not a whole number of pages: the message shows the bytes.
  st = PcacheGeometry::FromConfig({(1 << 20) + 1, 8}, &g);
  EXPECT_NE(st.message().find("1048577 bytes"), std::string::npos) << st.message();
}

TEST(PcacheGeometry, RejectsLessThanOneSet) {
  PcacheGeometry g;
  Status st = PcacheGeometry::FromConfig({4 * kPageSize, 8}, &g);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("smaller than one set"), std::string::npos) << st.message();
  EXPECT_FALSE(PcacheGeometry::FromConfig({0, 8}, &g).ok());
}

// The best capacity any allowed geometry gives for `bytes`, by brute force
// over every ways count and every power-of-two number of sets.
std::uint64_t BestAutoCapacity(std::uint64_t bytes) {
  std::uint64_t best = 0;
  for (std::uint64_t w = PcacheGeometry::kMinAutoWays; w <= PcacheGeometry::kMaxAutoWays; ++w)
    for (std::uint64_t sets = 1; sets * w * kPageSize <= bytes; sets *= 2)
      best = std::max(best, sets * w * kPageSize);
  return best;
}

TEST(PcacheGeometry, AnySizeGetsTheClosestGeometryBelowIt) {
  std::vector<std::uint64_t> sizes;
  for (std::uint64_t mib = 1; mib <= (64u << 10); mib *= 2) {
    for (std::uint64_t num : {4, 5, 6, 7}) sizes.push_back((mib << 20) * num / 4);  // 1, 1.25, ..
    sizes.push_back((mib << 20) * 3 / 2 + 12345);
  }
  for (std::uint64_t odd : {48ull << 20, 24ull << 20, 100ull << 20, 3840ull << 10, 1000000ull,
                            (1ull << 20) - 1, 999ull << 20, 7ull << 30, 100ull << 30})
    sizes.push_back(odd);
  for (std::uint64_t bytes : sizes) {
    SCOPED_TRACE(bytes);
    PcacheGeometry g;
    Status st = PcacheGeometry::ForCapacity(bytes, 0, &g);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_LE(g.capacity_bytes(), bytes);
    EXPECT_EQ(g.capacity_bytes(), BestAutoCapacity(bytes));
    EXPECT_GE(g.capacity_bytes(), bytes - bytes / 16);
    EXPECT_GE(g.ways(), PcacheGeometry::kMinAutoWays);
    EXPECT_LE(g.ways(), PcacheGeometry::kMaxAutoWays);
    EXPECT_TRUE(std::has_single_bit(g.nr_sets()));
    // What was chosen is a valid explicit configuration too.
    PcacheGeometry again;
    ASSERT_TRUE(PcacheGeometry::FromConfig(g.config(), &again).ok());
    EXPECT_EQ(again.nr_lines(), g.nr_lines());
    // The default associativity whenever it fits exactly.
    PcacheGeometry eight;
    if (PcacheGeometry::FromConfig({g.capacity_bytes(), 8}, &eight).ok()) {
      EXPECT_EQ(g.ways(), 8u);
    }
  }
}

TEST(PcacheGeometry, SizesPeopleType) {
  struct Case {
    std::uint64_t bytes;
    std::uint32_t sets, ways;
  };
  for (const Case& c : std::vector<Case>{
           {1ull << 20, 32, 8},         // powers of two keep 8 ways
           {64ull << 20, 2048, 8},      // the default
           {64ull << 30, 2u << 20, 8},  //
           {48ull << 20, 1024, 12},     // 3 x 2^n: 12 ways (not 6, not 24)
           {24ull << 20, 512, 12},      //
           {100ull << 20, 1024, 25},    // 25 x 2^n pages
           {3840ull << 10, 64, 15},     // 3.75 MiB
           {1000000, 16, 15},           // 244 pages: 240 is the best below
           {64 << 10, 2, 8},            // the minimum
       }) {
    SCOPED_TRACE(c.bytes);
    PcacheGeometry g;
    ASSERT_TRUE(PcacheGeometry::ForCapacity(c.bytes, 0, &g).ok());
    EXPECT_EQ(g.nr_sets(), c.sets);
    EXPECT_EQ(g.ways(), c.ways);
  }
  PcacheGeometry g;
  ASSERT_TRUE(PcacheGeometry::ForCapacity(48ull << 20, 0, &g).ok());
  EXPECT_EQ(g.ToString(), "48 MiB = 1024 sets x 12 ways");
  ASSERT_TRUE(PcacheGeometry::ForCapacity(3840ull << 10, 0, &g).ok());
  EXPECT_EQ(g.ToString(), "3840 KiB = 64 sets x 15 ways");
}

TEST(PcacheGeometry, BelowTheMinimumIsAnError) {
  PcacheGeometry g;
  Status st = PcacheGeometry::ForCapacity((64 << 10) - 4096, 0, &g);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("minimum of 64 KiB"), std::string::npos) << st.message();
  EXPECT_FALSE(PcacheGeometry::ForCapacity(0, 0, &g).ok());
}

TEST(PcacheGeometry, FixedWaysThatDoNotFitNameTheNearestSizes) {
  PcacheGeometry g;
  Status st = PcacheGeometry::ForCapacity(48ull << 20, 8, &g);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("32 MiB or 64 MiB"), std::string::npos) << st.message();
  st = PcacheGeometry::ForCapacity(100ull << 20, 16, &g);
  EXPECT_NE(st.message().find("64 MiB or 128 MiB"), std::string::npos) << st.message();
  // A pair that fits is taken as it is, even outside the automatic range.
  ASSERT_TRUE(PcacheGeometry::ForCapacity(48ull << 20, 12, &g).ok());
  EXPECT_EQ(g.nr_sets(), 1024u);
  ASSERT_TRUE(PcacheGeometry::ForCapacity(64ull << 20, 64, &g).ok());
  EXPECT_EQ(g.ways(), 64u);
}

TEST(PcacheGeometry, LineMetadataIsSmall) {
  std::printf("sizeof(PcacheLine) = %zu bytes\n", sizeof(PcacheLine));
  EXPECT_LE(sizeof(PcacheLine), 128u);
}

}  // namespace
}  // namespace remora
