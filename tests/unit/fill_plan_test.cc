// FillPlan: the order of preference of a fill's sources, victim entries taken
// as the plan goes, and the grouping of a run into stretches.
#include "processor/pcache/fill_plan.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <vector>

#include "tests/unit/testing/memory_writeback_sink.h"

namespace remora {
namespace {

constexpr Asid kAsid = 7;
constexpr std::uint64_t kBase = 0x10000000;

PageKey Page(std::uint32_t i) { return {kAsid, kBase + std::uint64_t{i} * kPageSize}; }

class FillPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VictimCacheOptions o;
    o.entries = 8;
    o.sink = &sink;
    o.stats = &stats;
    ASSERT_TRUE(VictimCache::Create(o, &victim).ok());
  }
  void PutVictim(std::uint32_t i, std::byte fill, bool dirty) {
    std::array<std::byte, kPageSize> data;
    data.fill(fill);
    const Rmap owners[] = {Page(i)};
    ASSERT_TRUE(victim->Insert(owners, dirty, data.data()).ok());
  }
  // Plans n pages from page 0; remote: the pages the memory node has.
  FillPlan Plan(std::uint32_t n, const std::set<std::uint32_t>& remote, bool file) {
    bufs.assign(std::size_t{n} * kPageSize, std::byte{0xee});
    asked.clear();
    FillPlan plan;
    plan.Decide(victim.get(), Page(0), n, bufs.data(), file, [&](std::uint64_t uva) {
      const auto i = static_cast<std::uint32_t>((uva - kBase) / kPageSize);
      asked.push_back(i);
      return remote.count(i) != 0;
    });
    return plan;
  }

  MemoryWritebackSink sink;
  StatsRegistry stats;
  std::unique_ptr<VictimCache> victim;
  std::vector<std::byte> bufs;
  std::vector<std::uint32_t> asked;  // pages has_remote_copy was asked about
};

TEST_F(FillPlanTest, VictimThenMemoryNodeThenFileOrZero) {
  PutVictim(1, std::byte{0x11}, /*dirty=*/true);
  PutVictim(2, std::byte{0x22}, /*dirty=*/false);
  // Page 1 also has a copy on the memory node: the victim cache's is newer.
  FillPlan anon = Plan(4, {1, 3}, /*file=*/false);
  ASSERT_EQ(anon.size(), 4u);
  EXPECT_EQ(anon.source(0), FillSource::kZeroFill);
  EXPECT_EQ(anon.source(1), FillSource::kVictimCache);
  EXPECT_EQ(anon.source(2), FillSource::kVictimCache);
  EXPECT_EQ(anon.source(3), FillSource::kMemoryNode);
  EXPECT_FALSE(anon.dirty(0));
  EXPECT_TRUE(anon.dirty(1));
  EXPECT_FALSE(anon.dirty(2));
  EXPECT_FALSE(anon.dirty(3));
  // Victim pages landed in their slots; the others were left for the caller.
  EXPECT_EQ(bufs[1 * kPageSize], std::byte{0x11});
  EXPECT_EQ(bufs[2 * kPageSize + kPageSize - 1], std::byte{0x22});
  EXPECT_EQ(bufs[0], std::byte{0xee});
  EXPECT_EQ(bufs[3 * kPageSize], std::byte{0xee});
  // The memory node is asked about victim misses only, in address order.
  EXPECT_EQ(asked, (std::vector<std::uint32_t>{0, 3}));
  // Taken: the victim cache gave the pages up.
  EXPECT_FALSE(victim->Contains(Page(1)));
  EXPECT_FALSE(victim->Contains(Page(2)));

  FillPlan file = Plan(2, {1}, /*file=*/true);
  EXPECT_EQ(file.source(0), FillSource::kFile);
  EXPECT_EQ(file.source(1), FillSource::kMemoryNode);
}

TEST_F(FillPlanTest, WithoutVictimCache) {
  bufs.assign(kPageSize, std::byte{0});
  FillPlan plan;
  plan.Decide(nullptr, Page(0), 1, bufs.data(), /*file=*/false, [](std::uint64_t) { return true; });
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.source(0), FillSource::kMemoryNode);
  ASSERT_EQ(plan.stretches().size(), 1u);
  EXPECT_EQ(plan.stretches()[0].count, 1u);
}

TEST_F(FillPlanTest, StretchesGroupConsecutivePagesOfOneSource) {
  PutVictim(3, std::byte{0x33}, /*dirty=*/true);
  // 0-2 memory node, 3 victim, 4-5 memory node, 6-7 file.
  FillPlan plan = Plan(8, {0, 1, 2, 4, 5}, /*file=*/true);
  const auto s = plan.stretches();
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].source, FillSource::kMemoryNode);
  EXPECT_EQ(s[0].first, 0u);
  EXPECT_EQ(s[0].count, 3u);
  EXPECT_EQ(s[1].source, FillSource::kVictimCache);
  EXPECT_EQ(s[1].first, 3u);
  EXPECT_EQ(s[1].count, 1u);
  EXPECT_EQ(s[2].source, FillSource::kMemoryNode);
  EXPECT_EQ(s[2].first, 4u);
  EXPECT_EQ(s[2].count, 2u);
  EXPECT_EQ(s[3].source, FillSource::kFile);
  EXPECT_EQ(s[3].first, 6u);
  EXPECT_EQ(s[3].count, 2u);
}

TEST_F(FillPlanTest, AFullRunOfOneSourceIsOneStretch) {
  FillPlan plan = Plan(FillPlan::kMaxPages, {}, /*file=*/false);
  ASSERT_EQ(plan.stretches().size(), 1u);
  EXPECT_EQ(plan.stretches()[0].source, FillSource::kZeroFill);
  EXPECT_EQ(plan.stretches()[0].first, 0u);
  EXPECT_EQ(plan.stretches()[0].count, FillPlan::kMaxPages);
}

}  // namespace
}  // namespace remora
