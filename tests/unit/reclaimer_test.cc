// Background reclaim against the real pcache (a victim cache writing into an
// in-memory sink): which sets a fill queues, how many lines a batch evicts,
// that evicted data comes back, and that a fork's PauseEvictions holds the
// reclaimer off.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "pcache_test_util.h"
#include "processor/runtime/reclaimer.h"

namespace remora {
namespace {

using namespace std::chrono_literals;
using testing::AllBytes;
using testing::Page;
using testing::PcacheRig;
using testing::RigConfig;

constexpr std::uint32_t kSets = 4;
constexpr std::uint32_t kWays = 8;

// The page `k` of `set` (set = vpn mod kSets).
PageKey SetPage(std::uint32_t set, std::uint32_t k) { return Page(set + kSets * k); }

// A pcache of kSets x kWays lines whose fills report to a reclaimer.
struct ReclaimRig {
  explicit ReclaimRig(Watermarks w, std::uint32_t batch = 32, bool background = false) {
    RigConfig c;
    c.capacity = kSets * kWays * kPageSize;
    c.ways = kWays;
    c.on_allocate = [this](std::uint32_t set, std::uint32_t free_left) {
      if (reclaimer) reclaimer->OnAllocate(set, free_left);
    };
    rig = std::make_unique<PcacheRig>(c);
    counters = std::make_unique<RuntimeCounters>(&rig->stats);
    ReclaimerOptions o;
    o.watermarks = w;
    o.batch = batch;
    o.counters = counters.get();
    o.background = background;
    o.end_batch = [this] { ++batches_ended; };
    reclaimer = std::make_unique<Reclaimer>(rig->pcache.get(), o);
  }
  ~ReclaimRig() { reclaimer.reset(); }  // before the pcache it evicts from

  // Fills pages 0..n-1 of `set`, each page written with its own byte.
  void FillSet(std::uint32_t set, std::uint32_t n) {
    for (std::uint32_t k = 0; k < n; ++k) rig->Load(SetPage(set, k), Byte(set, k));
  }
  static int Byte(std::uint32_t set, std::uint32_t k) { return 1 + set * 16 + k; }
  // Loads the next new page of set 0.
  void LoadNext() { rig->Load(SetPage(0, next_page++)); }
  // Loads new pages of set 0, a batch after each, until the reclaimer
  // evicted at least `lines` or paused. The n-th of these evictions (from
  // 1) faults back after `distance(n)` more evictions of its set, or not at
  // all if that is negative. Returns the evictions; *refaults counts the
  // faults back reported.
  std::uint32_t EvictAndRefault(std::uint32_t lines,
                                const std::function<int(std::uint32_t)>& distance,
                                std::uint32_t* refaults = nullptr) {
    std::uint32_t evicted = 0;
    while (evicted < lines && !reclaimer->Paused()) {
      LoadNext();
      const std::uint32_t n = reclaimer->RunBatch();
      for (std::uint32_t i = 0; i < n; ++i) {
        const int d = distance(++evicted);
        if (d < 0) continue;
        reclaimer->OnRefault(static_cast<std::uint32_t>(d));
        if (refaults) ++*refaults;
      }
    }
    return evicted;
  }
  std::uint32_t next_page = 0;
  std::int64_t Count(const std::string& name) const { return rig->Count(name); }

  std::unique_ptr<PcacheRig> rig;
  std::unique_ptr<RuntimeCounters> counters;
  std::unique_ptr<Reclaimer> reclaimer;
  std::atomic<int> batches_ended{0};
};

TEST(ReclaimWatermarks, DefaultsScaleWithTheWays) {
  auto geometry = [](std::uint64_t lines, std::uint32_t ways) {
    PcacheGeometry g;
    EXPECT_TRUE(PcacheGeometry::FromConfig({lines * kPageSize, ways}, &g).ok());
    return g;
  };
  Watermarks w = DefaultWatermarks(geometry(1024, 16), 2);
  EXPECT_EQ(w.low, 1u);
  EXPECT_EQ(w.high, 2u);
  w = DefaultWatermarks(geometry(4096, 64), 2);
  EXPECT_EQ(w.low, 4u);
  EXPECT_EQ(w.high, 8u);
  // Few ways, or a tiny pcache: a free line per set costs too much.
  EXPECT_FALSE(DefaultWatermarks(geometry(1024, 8), 2).enabled());
  EXPECT_FALSE(DefaultWatermarks(geometry(1024, 4), 2).enabled());
  EXPECT_FALSE(DefaultWatermarks(geometry(64, 8), 2).enabled());
  // One CPU: the reclaimer could only take the fault thread's CPU.
  EXPECT_FALSE(DefaultWatermarks(geometry(1024, 16), 1).enabled());
  EXPECT_FALSE(DefaultWatermarks(geometry(4096, 64), 1).enabled());
  EXPECT_TRUE(DefaultWatermarks(geometry(4096, 64), 4).enabled());
}

TEST(ReclaimWatermarks, ResolveChecksTheConfiguredValues) {
  PcacheGeometry g;
  ASSERT_TRUE(PcacheGeometry::FromConfig({1024 * kPageSize, 16}, &g).ok());
  Watermarks w;
  ASSERT_TRUE(ResolveWatermarks(g, 2, -1, -1, &w).ok());
  EXPECT_EQ(w.low, 1u);
  EXPECT_EQ(w.high, 2u);
  EXPECT_TRUE(w.adaptive);  // the default backs off
  ASSERT_TRUE(ResolveWatermarks(g, 2, 2, -1, &w).ok());
  EXPECT_EQ(w.high, 4u);
  EXPECT_FALSE(w.adaptive);  // a configured reserve is kept
  ASSERT_TRUE(ResolveWatermarks(g, 2, 1, 3, &w).ok());
  EXPECT_EQ(w.low, 1u);
  EXPECT_EQ(w.high, 3u);
  ASSERT_TRUE(ResolveWatermarks(g, 2, -1, 4, &w).ok());
  EXPECT_EQ(w.low, 1u);
  EXPECT_EQ(w.high, 4u);
  EXPECT_TRUE(w.adaptive);
  ASSERT_TRUE(ResolveWatermarks(g, 2, 0, 5, &w).ok());
  EXPECT_FALSE(w.enabled());
  EXPECT_FALSE(ResolveWatermarks(g, 2, 3, 2, &w).ok());   // low above high
  EXPECT_FALSE(ResolveWatermarks(g, 2, 1, 16, &w).ok());  // a set would be all free
  // On one CPU the default is off; configured watermarks still apply.
  ASSERT_TRUE(ResolveWatermarks(g, 1, -1, -1, &w).ok());
  EXPECT_FALSE(w.enabled());
  ASSERT_TRUE(ResolveWatermarks(g, 1, 1, 2, &w).ok());
  EXPECT_EQ(w.low, 1u);
  EXPECT_EQ(w.high, 2u);
}

TEST(Reclaimer, FillBelowTheLowWatermarkQueuesItsSet) {
  ReclaimRig r({2, 3});
  r.FillSet(1, 6);  // 2 free left: at the low watermark, not below
  EXPECT_TRUE(r.reclaimer->QueuedSets().empty());
  r.FillSet(3, 7);  // 1 free left
  r.rig->Load(SetPage(1, 6));
  EXPECT_EQ(r.reclaimer->QueuedSets(), (std::vector<std::uint32_t>{3, 1}));
  r.rig->Load(SetPage(1, 7));  // below again: queued once
  EXPECT_EQ(r.reclaimer->QueuedSets(), (std::vector<std::uint32_t>{3, 1}));
  EXPECT_EQ(r.Count("nr_reclaim_sets_queued"), 2);
  EXPECT_EQ(r.Count("nr_pcache_eviction_triggered"), 0);  // nothing evicted yet
}

TEST(Reclaimer, BatchEvictsUpToTheHighWatermark) {
  ReclaimRig r({1, 3});
  r.FillSet(0, kWays);  // full: queued
  r.FillSet(2, kWays);
  r.FillSet(3, 5);  // 3 free: not queued
  ASSERT_EQ(r.reclaimer->QueuedSets(), (std::vector<std::uint32_t>{0, 2}));

  EXPECT_EQ(r.reclaimer->RunBatch(), 6u);  // 3 lines from each of sets 0 and 2
  EXPECT_EQ(r.rig->pcache->FreeLines(0), 3u);
  EXPECT_EQ(r.rig->pcache->FreeLines(2), 3u);
  EXPECT_EQ(r.rig->pcache->FreeLines(3), 3u);
  EXPECT_TRUE(r.reclaimer->QueuedSets().empty());
  EXPECT_EQ(r.Count("nr_reclaim_background_lines"), 6);
  EXPECT_EQ(r.Count("nr_reclaim_batches"), 1);
  EXPECT_EQ(r.batches_ended, 1);
  EXPECT_EQ(r.Count("nr_pcache_eviction_succeed"), 6);
  EXPECT_EQ(r.Count("nr_pcache_direct_reclaim"), 0);
  // Nothing queued: a batch does nothing and sends nothing.
  EXPECT_EQ(r.reclaimer->RunBatch(), 0u);
  EXPECT_EQ(r.batches_ended, 1);
  ASSERT_TRUE(r.rig->pcache->CheckInvariants().ok());

  // The evicted dirty pages come back with their data, never zeros.
  ASSERT_TRUE(r.rig->victim->Flush().ok());
  for (std::uint32_t set : {0u, 2u}) {
    for (std::uint32_t k = 0; k < kWays; ++k) {
      const LineId line = r.rig->Load(SetPage(set, k));
      EXPECT_TRUE(
          AllBytes(r.rig->frames[line].data(), static_cast<std::byte>(ReclaimRig::Byte(set, k))))
          << "set " << set << " page " << k;
    }
  }
}

TEST(Reclaimer, BatchBudgetSendsTheRestToTheBackOfTheQueue) {
  ReclaimRig r({1, 2}, /*batch=*/3);
  r.FillSet(0, kWays);
  r.FillSet(1, kWays);
  r.FillSet(2, kWays);
  ASSERT_EQ(r.reclaimer->QueuedSets(), (std::vector<std::uint32_t>{0, 1, 2}));
  // Set 0 gets its 2 lines, set 1 one of its 2 and goes behind set 2.
  EXPECT_EQ(r.reclaimer->RunBatch(), 3u);
  EXPECT_EQ(r.rig->pcache->FreeLines(0), 2u);
  EXPECT_EQ(r.rig->pcache->FreeLines(1), 1u);
  EXPECT_EQ(r.reclaimer->QueuedSets(), (std::vector<std::uint32_t>{2, 1}));
  EXPECT_EQ(r.reclaimer->RunBatch(), 3u);
  EXPECT_EQ(r.rig->pcache->FreeLines(1), 2u);
  EXPECT_EQ(r.rig->pcache->FreeLines(2), 2u);
  EXPECT_TRUE(r.reclaimer->QueuedSets().empty());
  EXPECT_EQ(r.Count("nr_reclaim_batches"), 2);
  EXPECT_EQ(r.batches_ended, 2);
}

TEST(Reclaimer, BusySetIsLeftForItsNextFill) {
  ReclaimRig r({1, 2});
  r.FillSet(0, kWays);
  std::vector<LineId> pinned;
  for (std::uint32_t k = 0; k < kWays; ++k) {
    LineId l;
    ASSERT_TRUE(r.rig->pcache->Pin(SetPage(0, k), &l));
    pinned.push_back(l);
  }
  EXPECT_EQ(r.reclaimer->RunBatch(), 0u);
  EXPECT_EQ(r.Count("nr_reclaim_busy"), 1);
  EXPECT_TRUE(r.reclaimer->QueuedSets().empty());
  EXPECT_EQ(r.batches_ended, 0);
  for (LineId l : pinned) r.rig->pcache->Unpin(l);
}

TEST(Reclaimer, DisabledQueuesNothing) {
  ReclaimRig r({0, 0});
  r.FillSet(0, kWays);
  r.rig->Load(SetPage(0, kWays));  // the fill evicts for itself
  EXPECT_TRUE(r.reclaimer->QueuedSets().empty());
  EXPECT_EQ(r.Count("nr_pcache_direct_reclaim"), 1);
  EXPECT_EQ(r.Count("nr_pcache_direct_reclaim_lines"), 1);
}

TEST(Reclaimer, FillOfAFullSetIsDirectReclaim) {
  ReclaimRig r({1, 2});
  r.FillSet(0, kWays);  // queued, but nobody runs the reclaimer
  r.rig->Load(SetPage(0, kWays));
  EXPECT_EQ(r.Count("nr_pcache_direct_reclaim"), 1);
  EXPECT_EQ(r.Count("nr_pcache_direct_reclaim_lines"), 1);
  EXPECT_EQ(r.Count("nr_reclaim_background_lines"), 0);
}

// The thread keeps up with a single filler: after each fill it has time to
// catch up, so no fill ever finds its set full.
TEST(Reclaimer, BackgroundThreadKeepsFillsOffDirectReclaim) {
  ReclaimRig r({1, 2}, 32, /*background=*/true);
  constexpr std::uint32_t kPages = 4 * kSets * kWays;  // the working set is 4x the pcache
  for (std::uint32_t vpn = 0; vpn < kPages; ++vpn) {
    r.rig->Load(Page(vpn), static_cast<int>(vpn % 251));
    ASSERT_TRUE(r.reclaimer->WaitIdle(5s));
  }
  EXPECT_EQ(r.Count("nr_pcache_direct_reclaim"), 0);
  EXPECT_GT(r.Count("nr_reclaim_background_lines"), 0);
  EXPECT_GT(r.Count("nr_reclaim_wakeups"), 0);
  EXPECT_EQ(r.Count("nr_reclaim_background_lines"), r.Count("nr_pcache_eviction_succeed"));
  // Steady state: no set holds more than ways - low pages.
  EXPECT_LE(r.rig->pcache->lines_used(), kSets * (kWays - 1));
  for (std::uint32_t set = 0; set < kSets; ++set) EXPECT_GE(r.rig->pcache->FreeLines(set), 1u);
  // Every page reads back what was written.
  ASSERT_TRUE(r.rig->victim->Flush().ok());
  for (std::uint32_t vpn = 0; vpn < kPages; ++vpn) {
    const LineId line = r.rig->Load(Page(vpn));
    ASSERT_TRUE(AllBytes(r.rig->frames[line].data(), static_cast<std::byte>(vpn % 251)))
        << "page " << vpn;
    ASSERT_TRUE(r.reclaimer->WaitIdle(5s));
  }
  ASSERT_TRUE(r.rig->pcache->CheckInvariants().ok());
}

TEST(Reclaimer, PausedEvictionsHoldTheReclaimerOff) {
  ReclaimRig r({1, 2}, 32, /*background=*/true);
  {
    auto paused = r.rig->pcache->PauseEvictions();
    r.FillSet(0, kWays);  // queued; the thread wakes and waits at the gate
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(r.Count("nr_pcache_eviction_succeed"), 0);
    EXPECT_EQ(r.rig->pcache->FreeLines(0), 0u);
  }
  ASSERT_TRUE(r.reclaimer->WaitIdle(5s));
  EXPECT_EQ(r.rig->pcache->FreeLines(0), 2u);
  EXPECT_EQ(r.Count("nr_reclaim_background_lines"), 2);
}

// Refaults that came back before their set evicted `high` more lines are
// misses the reserve caused, and enough of them pause the reclaimer; later
// refaults (the page would have gone anyway) do not count.
TEST(Reclaimer, PausesWhenItsReserveCausesMisses) {
  for (const int distance : {2, 1, 0}) {
    SCOPED_TRACE("set distance " + std::to_string(distance));
    const bool reserve_miss = distance < 2;  // high watermark 2
    ReclaimRig r({1, 2, /*adaptive=*/true});
    EXPECT_TRUE(r.reclaimer->Holding());
    const std::uint32_t evicted =
        r.EvictAndRefault(Reclaimer::kEpochLines, [&](std::uint32_t) { return distance; });
    EXPECT_GE(evicted, Reclaimer::kEpochLines);
    EXPECT_EQ(r.reclaimer->Paused(), reserve_miss);
    EXPECT_EQ(r.reclaimer->Holding(), !reserve_miss);
    EXPECT_EQ(r.Count("nr_reclaim_pauses"), reserve_miss ? 1 : 0);
    EXPECT_EQ(r.Count("nr_reclaim_reserve_misses"), reserve_miss ? evicted : 0);
    // Paused, a fill below the low watermark queues nothing (two fills:
    // the last batch left the set at its high watermark).
    r.LoadNext();
    r.LoadNext();
    EXPECT_EQ(r.reclaimer->QueuedSets().empty(), reserve_miss);
    ASSERT_TRUE(r.rig->pcache->CheckInvariants().ok());
  }
}

// A few reserve misses in an epoch (under a quarter) are the price of the
// free lines, not a reason to stop.
TEST(Reclaimer, AFewReserveMissesDoNotPause) {
  ReclaimRig r({1, 2, /*adaptive=*/true});
  std::uint32_t misses = 0;
  const std::uint32_t evicted = r.EvictAndRefault(
      4 * Reclaimer::kEpochLines, [](std::uint32_t n) { return n % 5 == 0 ? 0 : -1; }, &misses);
  EXPECT_GE(evicted, 4 * Reclaimer::kEpochLines);
  EXPECT_FALSE(r.reclaimer->Paused());
  EXPECT_EQ(r.Count("nr_reclaim_pauses"), 0);
  EXPECT_EQ(r.Count("nr_reclaim_reserve_misses"), misses);
}

// Configured watermarks are a reserve the user chose: reserve misses are
// not even counted, and the reclaimer never pauses.
TEST(Reclaimer, AConfiguredReserveIsKept) {
  ReclaimRig r({1, 2, /*adaptive=*/false});
  const std::uint32_t evicted =
      r.EvictAndRefault(2 * Reclaimer::kEpochLines, [](std::uint32_t) { return 0; });
  EXPECT_GE(evicted, 2 * Reclaimer::kEpochLines);
  EXPECT_FALSE(r.reclaimer->Paused());
  EXPECT_TRUE(r.reclaimer->Holding());
  EXPECT_EQ(r.Count("nr_reclaim_pauses"), 0);
  EXPECT_EQ(r.Count("nr_reclaim_reserve_misses"), 0);
}

TEST(Reclaimer, StopEndsAnIdleThread) {
  ReclaimRig r({1, 2}, 32, /*background=*/true);
  r.FillSet(1, kWays);
  ASSERT_TRUE(r.reclaimer->WaitIdle(5s));
  const auto start = std::chrono::steady_clock::now();
  r.reclaimer->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  r.FillSet(2, kWays);  // after Stop nothing is queued or evicted
  EXPECT_TRUE(r.reclaimer->QueuedSets().empty());
  EXPECT_EQ(r.rig->pcache->FreeLines(2), 0u);
}

}  // namespace
}  // namespace remora
