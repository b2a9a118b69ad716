// The replacement policy (processor/pcache/replacement.h): set dueling's
// leaders and selector, bimodal insertion in one set, and the behaviour
// that matters, measured with the simulator driven as the runtime drives
// the pcache (hits invisible): a loop larger than the cache keeps a
// resident subset, a scan does not flush a hot set, and a trace that
// recency serves well is not hurt.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "pcache_test_util.h"
#include "processor/sim/pcache_sim.h"

namespace remora {
namespace {

using testing::Page;
using testing::PcacheRig;
using testing::RigConfig;

TEST(SetDueling, OneLeaderOfEachKindPerGroup) {
  for (std::uint32_t sets : {2u, 8u, 64u, 128u, 1024u, 4096u}) {
    SetDueling d(Replacement::kAdaptive, sets);
    std::uint32_t recency = 0, bimodal = 0;
    for (std::uint32_t s = 0; s < sets; ++s) {
      recency += d.role(s) == SetDueling::Role::kRecencyLeader;
      bimodal += d.role(s) == SetDueling::Role::kBimodalLeader;
    }
    const std::uint32_t pairs =
        std::clamp<std::uint32_t>(sets / SetDueling::kLeaderSpacing, 1, SetDueling::kMaxPairs);
    EXPECT_EQ(recency, pairs) << sets;
    EXPECT_EQ(bimodal, pairs) << sets;
  }
  // One set cannot duel: it is a follower, and followers start on recency.
  SetDueling one(Replacement::kAdaptive, 1);
  EXPECT_EQ(one.role(0), SetDueling::Role::kFollower);
  EXPECT_FALSE(one.Bimodal(0));
}

TEST(SetDueling, FollowersUseThePolicyWhoseLeadersFillLess) {
  SetDueling d(Replacement::kAdaptive, 64);
  std::uint32_t rl = 0, bl = 0, follower = 0;
  for (std::uint32_t s = 0; s < 64; ++s) {
    if (d.role(s) == SetDueling::Role::kRecencyLeader) rl = s;
    if (d.role(s) == SetDueling::Role::kBimodalLeader) bl = s;
    if (d.role(s) == SetDueling::Role::kFollower) follower = s;
  }
  constexpr int kH = SetDueling::kHysteresis;
  EXPECT_FALSE(d.Bimodal(follower));
  EXPECT_FALSE(d.Bimodal(rl));
  EXPECT_TRUE(d.Bimodal(bl));
  // Recency's leader misses more, but not by enough yet: hysteresis.
  for (int i = 0; i < kH; ++i) d.OnFill(rl);
  EXPECT_FALSE(d.Bimodal(follower));
  d.OnFill(rl);
  EXPECT_TRUE(d.Bimodal(follower));
  EXPECT_FALSE(d.Bimodal(rl));  // leaders never switch
  // Back across the middle: the followers stay bimodal until the selector
  // is as far below it.
  for (int i = 0; i < 2 * kH + 1; ++i) d.OnFill(bl);
  EXPECT_EQ(d.selector(), SetDueling::kSelectorMid - kH);
  EXPECT_TRUE(d.Bimodal(follower));
  d.OnFill(bl);
  EXPECT_FALSE(d.Bimodal(follower));
  d.OnFill(follower);  // followers do not vote
  EXPECT_EQ(d.selector(), SetDueling::kSelectorMid - kH - 1);
  for (int i = 0; i < 5000; ++i) d.OnFill(rl);
  EXPECT_EQ(d.selector(), SetDueling::kSelectorMax);  // saturates
  for (int i = 0; i < 5000; ++i) d.OnFill(bl);
  EXPECT_EQ(d.selector(), 0);
}

TEST(SetDueling, FixedModesIgnoreTheSelector) {
  SetDueling r(Replacement::kRecency, 64), b(Replacement::kBimodal, 64);
  for (std::uint32_t s = 0; s < 64; ++s) {
    EXPECT_FALSE(r.Bimodal(s));
    EXPECT_TRUE(b.Bimodal(s));
    EXPECT_EQ(r.role(s), SetDueling::Role::kFollower);
    r.OnFill(s);
    b.OnFill(s);
  }
  // No selector to keep: fills leave it alone.
  EXPECT_EQ(r.selector(), SetDueling::kSelectorMid);
  EXPECT_EQ(b.selector(), SetDueling::kSelectorMid);
}

// One set of four ways, bimodal: a fill is the next victim, except every
// 32nd, which goes to the front.
TEST(BimodalSet, FillGoesToTheBackAndIsEvictedFirst) {
  RigConfig c;
  c.replacement = Replacement::kBimodal;
  PcacheRig rig(c);
  for (int p = 0; p < 4; ++p) rig.Load(Page(p));
  // List, front first: 0 1 2 3 (each fill went to the back).
  for (int p = 4; p < 4 + 26; ++p) {
    rig.Load(Page(p));
    ASSERT_FALSE(rig.pcache->Lookup(Page(p == 4 ? 3 : p - 1))) << p;
    ASSERT_TRUE(rig.pcache->Lookup(Page(0)));  // the first pages stay
  }
  // A referenced line (a refault) gets its second chance: to the front.
  rig.pcache->MarkReferenced(Page(29));
  rig.Load(Page(30));  // list: 29 0 1 30
  EXPECT_TRUE(rig.pcache->Lookup(Page(29)));
  EXPECT_FALSE(rig.pcache->Lookup(Page(2)));
  EXPECT_EQ(rig.Count("nr_pcache_lru_second_chance"), 1);
  // Fill 32 of the set goes to the front: list 31 29 0 1.
  rig.Load(Page(31));
  EXPECT_EQ(rig.Count("nr_pcache_bimodal_front"), 1);
  EXPECT_FALSE(rig.pcache->Lookup(Page(30)));
  rig.Load(Page(32));  // list: 31 29 0 32
  EXPECT_FALSE(rig.pcache->Lookup(Page(1)));
  EXPECT_TRUE(rig.pcache->Lookup(Page(31)));
  EXPECT_TRUE(rig.pcache->Lookup(Page(0)));
  // Touch (an access seen exactly) promotes under bimodal insertion too.
  rig.pcache->Touch(*rig.pcache->Lookup(Page(32)));  // list: 32 31 29 0
  rig.Load(Page(33));
  EXPECT_TRUE(rig.pcache->Lookup(Page(32)));
  EXPECT_FALSE(rig.pcache->Lookup(Page(0)));
  EXPECT_TRUE(rig.pcache->CheckInvariants().ok());
}

// EvictOne (background reclaim) evicts the line the policy picks: under
// recency the oldest fill, under bimodal the newest.
TEST(BimodalSet, EvictOnePicksThePolicysVictim) {
  for (Replacement r : {Replacement::kRecency, Replacement::kBimodal}) {
    RigConfig c;
    c.replacement = r;
    PcacheRig rig(c);
    for (int p = 0; p < 4; ++p) rig.Load(Page(p));
    ASSERT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
    EXPECT_FALSE(rig.pcache->Lookup(Page(r == Replacement::kRecency ? 0 : 3)))
        << ReplacementName(r);
    EXPECT_TRUE(rig.pcache->CheckInvariants().ok());
  }
}

// ---- behaviour, through the simulator in the runtime's view ----

constexpr std::uint64_t kLines = 512;  // 2 MiB: 64 sets x 8 ways

SimResult Replay(const std::vector<TraceRecord>& trace, Replacement r) {
  SimOptions o;
  o.pcache = {kLines * kPageSize, 8};
  o.policy = SimPolicy::kRuntime;
  o.replacement = r;
  o.belady = true;
  std::unique_ptr<PcacheSim> sim;
  EXPECT_TRUE(PcacheSim::Create(o, &sim).ok());
  for (const TraceRecord& rec : trace) EXPECT_TRUE(sim->Access(rec).ok());
  SimResult res;
  EXPECT_TRUE(sim->Finish(&res).ok());
  EXPECT_EQ(res.data_errors, 0u);
  return res;
}

TraceRecord Read(std::uint64_t vpn) { return {false, 1, vpn << kPageShift}; }

TEST(Replacement, LoopLargerThanTheCacheKeepsAResidentSubset) {
  // 640 pages (1.25x the cache), 20 times over, like a column walk.
  std::vector<TraceRecord> trace;
  for (int pass = 0; pass < 20; ++pass)
    for (std::uint64_t p = 0; p < 640; ++p) trace.push_back(Read(0x1000 + p));
  const SimResult recency = Replay(trace, Replacement::kRecency);
  const SimResult adaptive = Replay(trace, Replacement::kAdaptive);
  // Recency (and LRU) miss on (nearly) every access of a loop they cannot
  // hold.
  EXPECT_GT(recency.misses, trace.size() * 9 / 10);
  EXPECT_EQ(adaptive.lru_misses, trace.size());
  // MIN keeps all but one line's worth: 640 cold + ~129 per pass.
  std::printf("loop: recency %lu adaptive %lu min %lu\n", (unsigned long)recency.misses,
              (unsigned long)adaptive.misses, (unsigned long)adaptive.min_misses);
  EXPECT_LT(adaptive.misses, trace.size() / 2);
  EXPECT_LT(adaptive.gap(), 2.0);
}

TEST(Replacement, ScanDoesNotFlushAHotSet) {
  // A hot set of half the cache, read over and over (invisible hits once
  // resident), with a scan of 8x the cache streaming through in between.
  std::vector<TraceRecord> trace;
  std::uint64_t scan = 0x100000;
  for (int round = 0; round < 64; ++round) {
    for (std::uint64_t p = 0; p < kLines / 2; ++p) trace.push_back(Read(0x1000 + p));
    for (std::uint64_t i = 0; i < kLines / 8; ++i) trace.push_back(Read(scan++));
  }
  const std::uint64_t cold = kLines / 2 + (scan - 0x100000);
  const SimResult recency = Replay(trace, Replacement::kRecency);
  const SimResult adaptive = Replay(trace, Replacement::kAdaptive);
  const std::uint64_t hot_recency = recency.misses - cold;
  const std::uint64_t hot_adaptive = adaptive.misses - cold;
  std::printf("scan: hot-set misses recency %lu adaptive %lu\n", (unsigned long)hot_recency,
              (unsigned long)hot_adaptive);
  EXPECT_GT(hot_recency, 2 * kLines);  // FIFO: the scan pushes the hot set out
  EXPECT_LT(hot_adaptive, hot_recency / 5);
}

TEST(Replacement, RecencyFriendlyTraceIsNotHurt) {
  // A window of 3/4 of the cache sliding slowly over memory, each page
  // read a few times at random while it is in the window: what LRU and
  // recency serve well (only the page entering the window misses).
  std::mt19937_64 rng(7);
  std::vector<TraceRecord> trace;
  const std::uint64_t window = kLines * 3 / 4;
  for (std::uint64_t base = 0; base < 8 * kLines; ++base)
    for (int i = 0; i < 8; ++i) trace.push_back(Read(0x1000 + base + rng() % window));
  const SimResult recency = Replay(trace, Replacement::kRecency);
  const SimResult adaptive = Replay(trace, Replacement::kAdaptive);
  std::printf("window: lru %lu recency %lu adaptive %lu min %lu\n",
              (unsigned long)adaptive.lru_misses, (unsigned long)recency.misses,
              (unsigned long)adaptive.misses, (unsigned long)adaptive.min_misses);
  // The followers stay on recency; what is lost is the bimodal leaders'
  // (an eighth of 64 sets, each evicting a new page at its set's next miss
  // unless it refaults): 9% here, 7% with 128 sets (docs/pcache.md).
  EXPECT_LE(adaptive.misses, recency.misses * 110 / 100);
  EXPECT_LE(adaptive.misses, adaptive.lru_misses * 112 / 100);
}

}  // namespace
}  // namespace remora
