#include "processor/pcache/rmap.h"

#include <gtest/gtest.h>

#include <vector>

namespace remora {
namespace {

std::vector<Rmap> All(const RmapList& l) {
  std::vector<Rmap> out;
  l.Walk([&](const Rmap& r) { out.push_back(r); });
  return out;
}

TEST(RmapList, AddRemoveWalkInline) {
  RmapList l;
  EXPECT_TRUE(l.empty());
  l.Add({1, 0x1000});
  l.Add({2, 0x1000});  // the forked child, same uva
  EXPECT_EQ(l.size(), 2u);
  EXPECT_TRUE(l.Contains({2, 0x1000}));
  EXPECT_FALSE(l.Contains({3, 0x1000}));
  EXPECT_EQ(All(l), (std::vector<Rmap>{{1, 0x1000}, {2, 0x1000}}));
  EXPECT_TRUE(l.Remove({1, 0x1000}));
  EXPECT_FALSE(l.Remove({1, 0x1000}));
  EXPECT_EQ(All(l), (std::vector<Rmap>{{2, 0x1000}}));
}

TEST(RmapList, SpillsPastInlineAndComesBack) {
  RmapList l;
  for (Asid a = 1; a <= 10; ++a) l.Add({a, 0x5000});
  EXPECT_EQ(l.size(), 10u);
  for (Asid a = 1; a <= 10; ++a) EXPECT_TRUE(l.Contains({a, 0x5000}));
  // Remove from the middle, the front and the spill: order is kept.
  EXPECT_TRUE(l.Remove({5, 0x5000}));
  EXPECT_TRUE(l.Remove({1, 0x5000}));
  EXPECT_TRUE(l.Remove({10, 0x5000}));
  std::vector<Rmap> want;
  for (Asid a : {2, 3, 4, 6, 7, 8, 9}) want.push_back({a, 0x5000});
  EXPECT_EQ(All(l), want);
  for (Asid a : {2, 3, 4, 6, 7}) EXPECT_TRUE(l.Remove({a, 0x5000}));
  EXPECT_EQ(All(l), (std::vector<Rmap>{{8, 0x5000}, {9, 0x5000}}));
  l.Add({11, 0x5000});
  EXPECT_EQ(l.size(), 3u);
}

TEST(RmapList, RemoveSpaceTakesEveryMappingOfThatSpace) {
  RmapList l;
  l.Add({1, 0x1000});
  l.Add({2, 0x1000});
  l.Add({1, 0x9000});
  l.Add({3, 0x1000});
  EXPECT_TRUE(l.ContainsSpace(1));
  EXPECT_EQ(l.RemoveSpace(1), 2u);
  EXPECT_FALSE(l.ContainsSpace(1));
  EXPECT_EQ(All(l), (std::vector<Rmap>{{2, 0x1000}, {3, 0x1000}}));
  EXPECT_EQ(l.RemoveSpace(7), 0u);
  l.Clear();
  EXPECT_TRUE(l.empty());
}

TEST(RmapList, CopyTo) {
  RmapList l;
  l.Add({4, 0x2000});
  l.Add({5, 0x2000});
  l.Add({6, 0x2000});
  std::vector<Rmap> out{{9, 0}};
  l.CopyTo(&out);
  EXPECT_EQ(out, (std::vector<Rmap>{{9, 0}, {4, 0x2000}, {5, 0x2000}, {6, 0x2000}}));
}

}  // namespace
}  // namespace remora
