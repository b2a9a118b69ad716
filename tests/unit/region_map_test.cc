// The region map: placement records, fork inheritance, node loss (a region
// with no replica left is lost, never "unplaced"), written-page tracking and
// the per-node counts.
#include <gtest/gtest.h>

#include "managers/region_map.h"

namespace remora {
namespace {

constexpr std::uint64_t kRegion = std::uint64_t{1} << 20;  // 256 pages

TEST(RegionMap, RegionsAreAlignedSlicesOfTheSpace) {
  RegionMap m(kRegion);
  EXPECT_EQ(m.region_pages(), 256u);
  EXPECT_EQ(m.IndexOf(0x7f0000000000), 0x7f0000000000 / kRegion);
  EXPECT_EQ(m.IndexOf(kRegion - 1), 0u);
  EXPECT_EQ(m.IndexOf(kRegion), 1u);
  EXPECT_EQ(m.StartOf(3), 3 * kRegion);
}

TEST(RegionMap, PlaceAndFind) {
  RegionMap m(kRegion);
  ASSERT_TRUE(m.AddSpace(1));
  EXPECT_FALSE(m.AddSpace(1));
  EXPECT_EQ(m.Find(1, 5), nullptr);
  m.Place(1, 5, {0, 2});
  m.MarkHosted(0, 1);
  m.MarkHosted(2, 1);
  const Region* r = m.Find(1, 5);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->in_sync(), 2);
  EXPECT_TRUE(r->HasReplica(2));
  EXPECT_FALSE(r->HasReplica(1));
  EXPECT_EQ(m.NodesOf(1), (std::vector<NodeIndex>{0, 2}));
  // Placing twice keeps the first placement.
  m.Place(1, 5, {1});
  EXPECT_FALSE(m.Find(1, 5)->HasReplica(1));
  EXPECT_EQ(m.RemoveSpace(1), (std::vector<NodeIndex>{0, 2}));
  EXPECT_EQ(m.regions(), 0u);
  EXPECT_FALSE(m.HasSpace(1));
}

TEST(RegionMap, ForkInheritsReplicasAndHosting) {
  RegionMap m(kRegion);
  m.AddSpace(1);
  m.Place(1, 0, {0, 1});
  m.MarkHosted(0, 1);
  m.MarkHosted(1, 1);
  m.MarkWritten(1, 0x3000);
  std::vector<NodeIndex> nodes;
  ASSERT_TRUE(m.ForkSpace(1, 2, &nodes));
  EXPECT_EQ(nodes, (std::vector<NodeIndex>{0, 1}));
  EXPECT_FALSE(m.ForkSpace(1, 2, &nodes));
  EXPECT_FALSE(m.ForkSpace(9, 3, &nodes));
  ASSERT_NE(m.Find(2, 0), nullptr);
  EXPECT_TRUE(m.IsHosted(1, 2));
  EXPECT_EQ(m.WrittenPages({2, 0}), std::vector<std::uint64_t>{0x3000});
  // Destroying the child leaves the parent alone.
  m.RemoveSpace(2);
  EXPECT_NE(m.Find(1, 0), nullptr);
  EXPECT_TRUE(m.IsHosted(1, 1));
  EXPECT_FALSE(m.IsHosted(1, 2));
}

TEST(RegionMap, LosingANodeDegradesOrLosesItsRegions) {
  RegionMap m(kRegion);
  m.AddSpace(1);
  m.Place(1, 0, {0, 1});  // two replicas
  m.Place(1, 1, {1});     // one, on the node about to go
  m.Place(1, 2, {2});     // untouched
  m.MarkHosted(1, 1);
  std::vector<Asid> spaces;
  auto affected = m.RemoveNode(1, &spaces);
  EXPECT_EQ(affected.size(), 2u);
  EXPECT_EQ(spaces, std::vector<Asid>{1});
  EXPECT_EQ(m.Find(1, 0)->in_sync(), 1);
  EXPECT_FALSE(m.Find(1, 0)->lost);
  ASSERT_NE(m.Find(1, 1), nullptr) << "a lost region stays known: it must not read as zeros";
  EXPECT_TRUE(m.Find(1, 1)->lost);
  EXPECT_EQ(m.Find(1, 1)->lost_on, 1u) << "the error names the node it was lost with";
  EXPECT_EQ(m.lost(), 1u);
  EXPECT_EQ(m.degraded(2), 3u);
  EXPECT_EQ(m.DegradedKeys(2), (std::vector<RegionKey>{{1, 0}, {1, 2}}));
  EXPECT_EQ(m.regions_on(1), 0u);
  EXPECT_FALSE(m.IsHosted(1, 1));
}

TEST(RegionMap, ANewReplicaServesReadsOnlyOnceInSync) {
  RegionMap m(kRegion);
  m.AddSpace(1);
  m.Place(1, 0, {0});
  m.AddReplica({1, 0}, 2);
  EXPECT_EQ(m.Find(1, 0)->in_sync(), 1);
  EXPECT_TRUE(m.Find(1, 0)->HasReplica(2));
  m.SetInSync({1, 0}, 2);
  EXPECT_EQ(m.Find(1, 0)->in_sync(), 2);
  m.DropReplica({1, 0}, 2);
  EXPECT_EQ(m.Find(1, 0)->in_sync(), 1);
  EXPECT_FALSE(m.Find(1, 0)->HasReplica(2));
}

TEST(RegionMap, WrittenPagesFollowWritesDiscardsAndUnmaps) {
  RegionMap m(kRegion);
  m.AddSpace(1);
  m.Place(1, 0, {0});
  m.Place(1, 1, {0});
  for (std::uint64_t a :
       {std::uint64_t{0}, std::uint64_t{0x5000}, kRegion - 0x1000, kRegion, kRegion + 0x2000})
    m.MarkWritten(1, a);
  m.MarkWritten(1, 2 * kRegion);  // region 2 never placed: nothing to track
  EXPECT_EQ(m.WrittenPages({1, 0}), (std::vector<std::uint64_t>{0x0, 0x5000, kRegion - 0x1000}));
  // A discard across the boundary clears both sides.
  m.ClearWritten(1, kRegion - 0x1000, 0x2000);
  EXPECT_EQ(m.WrittenPages({1, 0}), (std::vector<std::uint64_t>{0x0, 0x5000}));
  EXPECT_EQ(m.WrittenPages({1, 1}), (std::vector<std::uint64_t>{kRegion + 0x2000}));
  EXPECT_TRUE(m.WrittenPages({1, 2}).empty());
}

TEST(RegionMap, CountsPerNode) {
  RegionMap m(kRegion);
  m.AddSpace(1);
  m.AddSpace(2);
  m.Place(1, 0, {0, 1});
  m.Place(2, 0, {1});
  EXPECT_EQ(m.regions(), 2u);
  EXPECT_EQ(m.regions_on(1), 2u);
  EXPECT_EQ(m.regions_on(0), 1u);
  Asid a = 0;
  EXPECT_FALSE(m.AnyHosted(0, &a));
  m.MarkHosted(0, 2);
  EXPECT_TRUE(m.AnyHosted(0, &a));
  EXPECT_EQ(a, 2u);
}

}  // namespace
}  // namespace remora
