// Placement of regions on memory nodes: two random choices by free memory,
// distinct replicas, and nodes that are full, down or excluded never chosen.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "managers/placement.h"

namespace remora {
namespace {

NodeLoad Node(std::uint64_t capacity, std::uint64_t used, std::uint64_t pending = 0,
              bool usable = true) {
  NodeLoad n;
  n.capacity_pages = capacity;
  n.used_pages = used;
  n.pending_pages = pending;
  n.usable = usable;
  return n;
}

TEST(Placement, FreeIsCapacityLessUsedAndPending) {
  EXPECT_EQ(Node(100, 30, 10).free_pages(), 60u);
  EXPECT_EQ(Node(100, 10, 30).free_pages(), 60u);
  EXPECT_EQ(Node(100, 120, 0).free_pages(), 0u);
  EXPECT_EQ(Node(100, 60, 60).free_pages(), 0u);
}

TEST(Placement, ReplicasAreDistinct) {
  std::mt19937_64 rng(1);
  std::vector<NodeLoad> nodes = {Node(1000, 0), Node(1000, 0), Node(1000, 0)};
  for (int i = 0; i < 200; ++i) {
    auto c = ChooseNodes(nodes, 10, 3, {}, &rng);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(std::set<std::size_t>(c.begin(), c.end()).size(), 3u);
  }
}

TEST(Placement, NodesWithoutRoomDownOrExcludedAreNeverChosen) {
  std::mt19937_64 rng(2);
  std::vector<NodeLoad> nodes = {Node(1000, 995), Node(1000, 0, 0, false), Node(1000, 0),
                                 Node(1000, 0), Node(1000, 0, 991)};
  for (int i = 0; i < 500; ++i) {
    auto c = ChooseNodes(nodes, 10, 2, {3}, &rng);
    ASSERT_EQ(c.size(), 1u) << "only node 2 is eligible";
    EXPECT_EQ(c[0], 2u);
  }
  EXPECT_TRUE(ChooseNodes({Node(5, 0)}, 10, 1, {}, &rng).empty());
}

TEST(Placement, FewerEligibleNodesThanReplicasGivesWhatThereIs) {
  std::mt19937_64 rng(3);
  auto c = ChooseNodes({Node(100, 0), Node(100, 100)}, 10, 2, {}, &rng);
  EXPECT_EQ(c, std::vector<std::size_t>{0});
}

TEST(Placement, TwoChoicesPreferTheEmptierNode) {
  // Node 0 nearly full, nodes 1 and 2 empty: node 0 is only taken when both
  // draws are... never, since two distinct draws always include an empty one.
  std::mt19937_64 rng(4);
  std::vector<NodeLoad> nodes = {Node(1000, 900), Node(1000, 0), Node(1000, 0)};
  std::map<std::size_t, int> hits;
  for (int i = 0; i < 3000; ++i) ++hits[ChooseNodes(nodes, 10, 1, {}, &rng)[0]];
  EXPECT_EQ(hits[0], 0);
  EXPECT_GT(hits[1], 1200);
  EXPECT_GT(hits[2], 1200);
}

TEST(Placement, FillingNodesSpreadsRegionsOverAll) {
  // Place regions until nothing fits, charging each to its node: the pool
  // holds more regions than any node, and no node is over-committed.
  std::mt19937_64 rng(5);
  std::vector<NodeLoad> nodes = {Node(100, 0), Node(60, 0), Node(40, 0)};
  int placed = 0;
  for (;;) {
    auto c = ChooseNodes(nodes, 10, 1, {}, &rng);
    if (c.empty()) break;
    nodes[c[0]].pending_pages += 10;
    ++placed;
  }
  EXPECT_EQ(placed, 20);
  for (const auto& n : nodes) EXPECT_EQ(n.pending_pages, n.capacity_pages);
}

// A region costs a node its pages and their page-table entries: 256 pages
// of 1 MiB need 260 pages of room, so an 8 MiB node (2048 pages) takes 7.
TEST(Placement, ARegionCostsItsPagesAndTheirBookkeeping) {
  EXPECT_EQ(RegionCostPages(256), 256u + 3u + 1u);
  EXPECT_EQ(2048 / RegionCostPages(256), 7u);
  EXPECT_GT(RegionCostPages(1), 1u);
}

}  // namespace

}  // namespace remora
