// SequentialStreams (processor/runtime/sequential_streams.h): runs open and
// grow as before, any number of them interleaved are followed, their
// windows share a budget, what is not a sequential run never opens one,
// and random misses seldom read ahead.
#include "processor/runtime/sequential_streams.h"

#include <gtest/gtest.h>

#include "remora/types.h"

namespace remora {
namespace {

constexpr std::uint32_t kMax = 32;

std::uint64_t P(std::uint64_t vpn) { return vpn << kPageShift; }

TEST(SequentialStreams, RunOpensAndDoublesItsWindow) {
  SequentialStreams d;
  EXPECT_EQ(d.OnAccess(P(100), kMax), 0u);
  EXPECT_EQ(d.OnAccess(P(101), kMax), 4u);
  EXPECT_EQ(d.OnAccess(P(102), kMax), 8u);
  // The caller covered up to page 110: the next miss of the run is 111.
  d.Advance(P(102), P(110));
  EXPECT_EQ(d.OnAccess(P(103), kMax), 0u);  // not the run's any more
  EXPECT_EQ(d.OnAccess(P(111), kMax), 16u);
  EXPECT_EQ(d.OnAccess(P(112), kMax), 32u);
  EXPECT_EQ(d.OnAccess(P(113), kMax), 32u);  // capped at max
}

// Whether an access continued a run that had read ahead: not for a lone
// access, nor for the access that opens a run; yes for the next ones.
TEST(SequentialStreams, SaysWhetherAnAccessExtendsARun) {
  SequentialStreams d;
  bool extends = true;
  EXPECT_EQ(d.OnAccess(P(100), kMax, 0, &extends), 0u);
  EXPECT_FALSE(extends);
  EXPECT_EQ(d.OnAccess(P(101), kMax, 0, &extends), 4u);
  EXPECT_FALSE(extends);
  d.Advance(P(101), P(105));
  EXPECT_EQ(d.OnAccess(P(106), kMax, 0, &extends), 8u);
  EXPECT_TRUE(extends);
  EXPECT_EQ(d.OnAccess(P(500), kMax, 0, &extends), 0u);
  EXPECT_FALSE(extends);
}

// The shuffle of a radix sort: 2 threads x 256 buckets, each bucket a run
// of pages, their misses round-robin. Once the runs have shown they go on
// (their third access), every run is followed.
TEST(SequentialStreams, FollowsHundredsOfInterleavedRuns) {
  SequentialStreams d;
  constexpr std::uint64_t kRuns = 512;
  std::uint64_t windows[4] = {};
  for (std::uint64_t k = 0; k < 4; ++k)
    for (std::uint64_t r = 0; r < kRuns; ++r)
      if (d.OnAccess(P(r * 10000 + k), kMax) > 0) ++windows[k];
  EXPECT_EQ(windows[0], 0u);         // lone
  EXPECT_EQ(windows[1], 0u);         // far runs, not proven yet
  EXPECT_GE(windows[2], kRuns / 2);  // trusted once half of the far runs opened lately went on
  EXPECT_EQ(windows[3], kRuns);
}

// A program missing at random over 32 MiB: its misses often land on the
// page after an earlier one, but read-ahead seldom follows (about as
// seldom as with a few slots: only a pair within kNear accesses opens a
// window at once).
TEST(SequentialStreams, RandomMissesSeldomReadAhead) {
  SequentialStreams d;
  std::uint64_t x = 88172645463325252ULL, opened = 0;
  constexpr std::uint64_t kMisses = 60000;
  for (std::uint64_t i = 0; i < kMisses; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (d.OnAccess(P(x % 8192), kMax, 512) > 0) ++opened;
  }
  EXPECT_LT(opened, kMisses / 200);
}

TEST(SequentialStreams, OpenRunsShareTheBudget) {
  SequentialStreams d;
  constexpr std::uint64_t kRuns = 256, kBudget = 512;
  std::uint32_t last = 0;
  for (std::uint64_t k = 0; k < 6; ++k)
    for (std::uint64_t r = 0; r < kRuns; ++r) last = d.OnAccess(P(r * 10000 + k), kMax, kBudget);
  EXPECT_EQ(last, kBudget / kRuns);  // each run's previous miss: kRuns ago
  // Never below one page, however many runs share it.
  SequentialStreams tiny;
  for (std::uint64_t k = 0; k < 3; ++k)
    for (std::uint64_t r = 0; r < kRuns; ++r) last = tiny.OnAccess(P(r * 10000 + k), kMax, 16);
  EXPECT_EQ(last, 1u);
}

TEST(SequentialStreams, StridesAndDescentsAreNotRuns) {
  SequentialStreams d;
  std::uint32_t windows = 0;
  for (std::uint64_t k = 0; k < 16; ++k) {
    windows += d.OnAccess(P(9000 + 3 * k), kMax);
    windows += d.OnAccess(P(700 - k), kMax);
  }
  EXPECT_EQ(windows, 0u);
}

// A finished phase's runs are forgotten: they neither pile up nor keep
// shrinking the windows of the runs that come after.
TEST(SequentialStreams, OldRunsAgeOut) {
  SequentialStreams d;
  for (std::uint64_t k = 0; k < 2; ++k)
    for (std::uint64_t r = 0; r < 1000; ++r) d.OnAccess(P(r * 10000 + k), kMax, 1000);
  for (std::uint64_t i = 0; i < 4 * SequentialStreams::kEpoch; ++i)
    d.OnAccess(P(50'000'000 + 7 * i), kMax, 1000);  // lone accesses only
  EXPECT_LE(d.size(), 2 * SequentialStreams::kEpoch);
  std::uint32_t w = 0;
  for (std::uint64_t k = 0; k < 6; ++k) w = d.OnAccess(P(90'000'000 + k), kMax, 1000);
  EXPECT_EQ(w, kMax);
}

}  // namespace
}  // namespace remora
