#include <gtest/gtest.h>

#include <cstdio>

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

TEST(PcacheGeometry, LineMetadataIsSmall) {
  std::printf("sizeof(PcacheLine) = %zu bytes\n", sizeof(PcacheLine));
  EXPECT_LE(sizeof(PcacheLine), 128u);
}

}  // namespace
}  // namespace remora
