// Eviction outcomes (succeed, busy, failure), where evicted data goes, and
// faults racing with an eviction of the same page.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "pcache_test_util.h"

namespace remora {
namespace {

using namespace std::chrono_literals;
using testing::AllBytes;
using testing::HeldEviction;
using testing::Page;
using testing::PcacheRig;
using testing::RigConfig;

TEST(PcacheEvict, SucceedWrprotectsAndFreesTheLine) {
  PcacheRig rig;
  for (int p = 0; p < 4; ++p) rig.Load(Page(p));
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), 1);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_succeed"), 1);
  EXPECT_EQ(rig.pcache->lines_used(), 3u);
  ASSERT_EQ(rig.Wrprotected().size(), 1u);
  EXPECT_EQ(rig.Wrprotected()[0].second, Page(0));
  EXPECT_FALSE(rig.pcache->Lookup(Page(0)));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

// Each set counts its own evictions: the clock a refault's distance is
// measured by (reclaimer.h, "Backing off").
TEST(PcacheEvict, EachSetCountsItsEvictions) {
  RigConfig c;
  c.capacity = 4 * 4 * kPageSize;  // 4 sets of 4 ways
  c.ways = 4;
  PcacheRig rig(c);
  EXPECT_EQ(rig.pcache->SetEvictions(1), 0u);
  for (int p = 0; p < 8; ++p) rig.Load(Page(1 + 4 * p));  // set 1 only: 4 evictions
  EXPECT_EQ(rig.pcache->SetEvictions(1), 4u);
  EXPECT_EQ(rig.pcache->SetEvictions(0), 0u);
  EXPECT_EQ(rig.pcache->SetEvictions(2), 0u);
  EXPECT_EQ(rig.pcache->EvictOne(1), EvictOutcome::kSucceed);
  EXPECT_EQ(rig.pcache->SetEvictions(1), 5u);
  EXPECT_EQ(rig.pcache->EvictOne(2), EvictOutcome::kEmpty);  // no victim: no number
  EXPECT_EQ(rig.pcache->SetEvictions(2), 0u);
}

TEST(PcacheEvict, EmptySetHasNothingToEvict) {
  PcacheRig rig;
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kEmpty);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), 0);
  rig.Load(Page(0));
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kEmpty);
}

TEST(PcacheEvict, DirtyLineGoesToVictimAndComesBack) {
  PcacheRig rig;
  rig.sink.Pause();  // keep the victim dirty
  rig.Load(Page(0), 0xab);
  for (int p = 1; p < 4; ++p) rig.Load(Page(p));
  rig.Load(Page(4));  // evicts page 0
  EXPECT_EQ(rig.Count("nr_pcache_eviction_to_victim"), 1);
  EXPECT_TRUE(rig.victim->Contains(Page(0)));

  LineId line = rig.Load(Page(0));  // evicts page 1 (clean, dropped)
  EXPECT_TRUE(AllBytes(rig.frames[line].data(), std::byte{0xab}));
  EXPECT_EQ(rig.Count("nr_pcache_fill_from_victim"), 1);
  EXPECT_EQ(rig.Count("nr_victim_hit"), 1);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_clean_dropped"), 1);
  EXPECT_FALSE(rig.victim->Contains(Page(0)));  // exclusive
  // The victim was not known to be written back: the line is dirty again.
  EXPECT_TRUE(rig.pcache->Inspect(line).flags & kLineDirty);
  rig.sink.Resume();
  ASSERT_TRUE(rig.victim->Flush().ok());
}

TEST(PcacheEvict, FlushedVictimComesBackClean) {
  PcacheRig rig;
  rig.Load(Page(0), 0xab);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
  ASSERT_TRUE(rig.victim->Flush().ok());
  EXPECT_EQ(rig.sink.WritesOf(Page(0)), 1u);
  LineId line = rig.Load(Page(0));
  EXPECT_TRUE(AllBytes(rig.frames[line].data(), std::byte{0xab}));
  EXPECT_EQ(rig.Count("nr_pcache_fill_from_victim"), 1);
  EXPECT_FALSE(rig.pcache->Inspect(line).flags & kLineDirty);
}

TEST(PcacheEvict, CleanLineIsDropped) {
  PcacheRig rig;
  for (int p = 0; p < 5; ++p) rig.Load(Page(p));
  EXPECT_EQ(rig.Count("nr_pcache_eviction_clean_dropped"), 1);
  EXPECT_EQ(rig.victim->used(), 0u);
  EXPECT_EQ(rig.sink.writes(), 0u);
}

TEST(PcacheEvict, CleanLineKeptWhenAsked) {
  PcacheRig rig(RigConfig{.victim_clean = true});
  for (int p = 0; p < 5; ++p) rig.Load(Page(p));
  EXPECT_TRUE(rig.victim->Contains(Page(0)));
  rig.Load(Page(0));
  EXPECT_EQ(rig.Count("nr_pcache_fill_from_victim"), 1);
  ASSERT_TRUE(rig.victim->Flush().ok());
  EXPECT_EQ(rig.sink.writes(), 0u);  // clean data is never written back
}

TEST(PcacheEvict, WithoutVictimCacheDirtyDataIsWrittenAtEviction) {
  PcacheRig rig(RigConfig{.victim_entries = 0});
  rig.Load(Page(0), 0x5a);
  for (int p = 1; p < 5; ++p) rig.Load(Page(p));
  EXPECT_EQ(rig.Count("nr_pcache_eviction_writeback_sync"), 1);
  std::array<std::byte, kPageSize> got;
  ASSERT_TRUE(rig.sink.Read(Page(0), got.data()));
  EXPECT_TRUE(AllBytes(got.data(), std::byte{0x5a}));
  LineId line = rig.Load(Page(0));
  EXPECT_TRUE(AllBytes(rig.frames[line].data(), std::byte{0x5a}));
  EXPECT_EQ(rig.Count("nr_pcache_fill_from_memory"), 1);
}

TEST(PcacheEvict, BusyWhenEveryLineIsLocked) {
  PcacheRig rig;  // 3 busy attempts before kBusy
  std::vector<LineId> filling;
  for (int p = 0; p < 4; ++p) {
    FillResult r;
    ASSERT_TRUE(rig.pcache->Fill(Page(p), &r).ok());
    ASSERT_TRUE(r.allocated);
    filling.push_back(r.line);  // line lock held: data "in flight"
  }
  FillResult r;
  Status st = rig.pcache->Fill(Page(4), &r);
  EXPECT_EQ(st.code(), Code::kBusy) << st.ToString();
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), 3);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_eagain"), 3);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_succeed"), 0);
  EXPECT_TRUE(rig.Wrprotected().empty());

  rig.pcache->CompleteFill(filling[2], FillSource::kZeroFill);
  ASSERT_TRUE(rig.pcache->Fill(Page(4), &r).ok());
  EXPECT_TRUE(r.allocated);
  EXPECT_EQ(rig.Wrprotected().back().second, Page(2));  // the only idle line
  rig.pcache->CompleteFill(r.line, FillSource::kZeroFill);
  for (LineId l : {filling[0], filling[1], filling[3]})
    rig.pcache->CompleteFill(l, FillSource::kZeroFill);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheEvict, BusyWhenPinned) {
  PcacheRig rig;
  std::vector<LineId> pins;
  for (int p = 0; p < 4; ++p) rig.Load(Page(p), p);  // all dirty
  for (int p = 0; p < 4; ++p) {
    LineId l;
    ASSERT_TRUE(rig.pcache->Pin(Page(p), &l));
    pins.push_back(l);
  }
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kBusy);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_eagain"), 1);

  rig.pcache->Unpin(pins[3]);
  rig.pcache->Unpin(pins[2]);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
  EXPECT_EQ(rig.Wrprotected().back().second, Page(2));  // oldest idle line
  for (LineId l : {pins[0], pins[1]}) rig.pcache->Unpin(l);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheEvict, WrprotectFailureKeepsTheLine) {
  PcacheRig rig;
  for (int p = 0; p < 4; ++p) rig.Load(Page(p), 0x10 + p);
  rig.wrprotect_hook = [](LineId, const Rmap& r) {
    return r == Page(0) ? Status(Code::kDisconnected, "agent gone") : Status::Ok();
  };
  Status why;
  EXPECT_EQ(rig.pcache->EvictOne(0, &why), EvictOutcome::kFailed);
  EXPECT_EQ(why.code(), Code::kDisconnected);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_failure"), 1);
  auto line = rig.pcache->Lookup(Page(0));
  ASSERT_TRUE(line);
  EXPECT_TRUE(rig.pcache->Inspect(*line).flags & kLineDirty);
  EXPECT_EQ(rig.victim->used(), 0u);
  // It went back as most recently used: the next eviction takes page 1.
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
  EXPECT_EQ(rig.Wrprotected().back().second, Page(1));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheEvict, FillReportsEvictionFailure) {
  PcacheRig rig;
  for (int p = 0; p < 4; ++p) rig.Load(Page(p));
  rig.wrprotect_hook = [](LineId, const Rmap&) { return Status(Code::kTimeout, "slow"); };
  FillResult r;
  EXPECT_EQ(rig.pcache->Fill(Page(4), &r).code(), Code::kTimeout);
  EXPECT_EQ(rig.pcache->lines_used(), 4u);
}

TEST(PcacheEvict, VictimInsertFailureKeepsDirtyData) {
  PcacheRig rig(RigConfig{.victim_entries = 1});
  rig.sink.SetFailing(true);
  rig.Load(Page(0), 0x01);
  rig.Load(Page(1), 0x02);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);  // page 0 fills the victim cache
  // The victim cache is full of dirty data it cannot write: page 1 stays.
  Status why;
  EXPECT_EQ(rig.pcache->EvictOne(0, &why), EvictOutcome::kFailed);
  EXPECT_EQ(why.code(), Code::kIoError) << why.ToString();
  auto line = rig.pcache->Lookup(Page(1));
  ASSERT_TRUE(line);
  EXPECT_TRUE(AllBytes(rig.frames[*line].data(), std::byte{0x02}));
  EXPECT_TRUE(rig.victim->Contains(Page(0)));

  rig.sink.SetFailing(false);
  ASSERT_TRUE(rig.victim->Flush().ok());
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
  ASSERT_TRUE(rig.victim->Flush().ok());
  std::array<std::byte, kPageSize> got;
  ASSERT_TRUE(rig.sink.Read(Page(0), got.data()));
  EXPECT_TRUE(AllBytes(got.data(), std::byte{0x01}));
  ASSERT_TRUE(rig.sink.Read(Page(1), got.data()));
  EXPECT_TRUE(AllBytes(got.data(), std::byte{0x02}));
}

TEST(PcacheEvict, FaultWaitsForConcurrentEvictionOfSamePage) {
  PcacheRig rig;
  rig.Load(Page(0), 0xcd);
  HeldEviction held(rig);
  EXPECT_FALSE(rig.pcache->Lookup(Page(0)));  // under reclaim: not a hit
  auto fault = std::async(std::launch::async, [&] { return rig.Load(Page(0)); });
  EXPECT_EQ(fault.wait_for(50ms), std::future_status::timeout);  // waits for the eviction
  for (int i = 0; i < 5000 && rig.Count("nr_pgfault_due_to_concurrent_eviction") == 0; ++i)
    std::this_thread::sleep_for(1ms);
  held.Release();
  LineId line = fault.get();
  EXPECT_TRUE(AllBytes(rig.frames[line].data(), std::byte{0xcd}));
  EXPECT_EQ(rig.Count("nr_pgfault_due_to_concurrent_eviction"), 1);
  EXPECT_EQ(rig.Count("nr_pcache_fill_from_victim"), 1);
}

// nr_pgfault_due_to_concurrent_eviction counts faults: a read-ahead fill
// waits out the eviction of its page like a fault's but is not counted.
TEST(PcacheEvict, OnlyAFaultWaitingForAnEvictionIsCounted) {
  PcacheRig rig;
  rig.Load(Page(0), 0xcd);
  HeldEviction held(rig);

  std::atomic<bool> readahead_started{false};
  auto readahead = std::async(std::launch::async, [&] {
    readahead_started = true;
    return rig.Load(Page(0), -1, FillIntent::kReadahead);
  });
  while (!readahead_started) std::this_thread::yield();
  EXPECT_EQ(readahead.wait_for(50ms), std::future_status::timeout);  // waits for the eviction
  EXPECT_EQ(rig.Count("nr_pgfault_due_to_concurrent_eviction"), 0);

  auto fault = std::async(std::launch::async, [&] { return rig.Load(Page(0)); });
  for (int i = 0; i < 5000 && rig.Count("nr_pgfault_due_to_concurrent_eviction") == 0; ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(rig.Count("nr_pgfault_due_to_concurrent_eviction"), 1);
  EXPECT_EQ(readahead.wait_for(0ms), std::future_status::timeout);  // still waiting
  held.Release();

  // One of them filled the page back from the victim cache, the other found
  // it filled.
  LineId line = readahead.get();
  EXPECT_EQ(fault.get(), line);
  EXPECT_TRUE(AllBytes(rig.frames[line].data(), std::byte{0xcd}));
  EXPECT_EQ(rig.Count("nr_pcache_fill_from_victim"), 1);
  EXPECT_EQ(rig.Count("nr_pgfault_due_to_concurrent_eviction"), 1);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheEvict, ConcurrentFillsOfOnePageShareTheLine) {
  PcacheRig rig;
  FillResult first;
  ASSERT_TRUE(rig.pcache->Fill(Page(3), &first).ok());
  ASSERT_TRUE(first.allocated);
  auto second = std::async(std::launch::async, [&] {
    FillResult r;
    EXPECT_TRUE(rig.pcache->Fill(Page(3), &r).ok());
    return r;
  });
  EXPECT_EQ(second.wait_for(50ms), std::future_status::timeout);  // waits for the data
  rig.pcache->CompleteFill(first.line, FillSource::kMemoryNode);
  FillResult r = second.get();
  EXPECT_FALSE(r.allocated);
  EXPECT_EQ(r.line, first.line);
  EXPECT_EQ(rig.Count("nr_pcache_fill_from_memory"), 1);
}

TEST(PcacheEvict, AbortedFillFreesTheLineAndWaitersRetry) {
  PcacheRig rig;
  FillResult first;
  ASSERT_TRUE(rig.pcache->Fill(Page(3), &first).ok());
  auto second = std::async(std::launch::async, [&] {
    FillResult r;
    EXPECT_TRUE(rig.pcache->Fill(Page(3), &r).ok());
    return r;
  });
  EXPECT_EQ(second.wait_for(20ms), std::future_status::timeout);
  rig.pcache->AbortFill(first.line);
  FillResult r = second.get();
  EXPECT_TRUE(r.allocated);  // the waiter now owns a fresh fill
  rig.pcache->CompleteFill(r.line, FillSource::kZeroFill);
  EXPECT_EQ(rig.Count("nr_pcache_fill_aborted"), 1);
  EXPECT_EQ(rig.pcache->lines_used(), 1u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheEvict, OutcomesAddUpToAttempts) {
  PcacheRig rig(RigConfig{.capacity = 16 * kPageSize, .ways = 4});
  for (int p = 0; p < 200; ++p) rig.Load(Page(p * 7 % 61), p % 3 == 0 ? p : -1);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), rig.Count("nr_pcache_eviction_succeed") +
                                                           rig.Count("nr_pcache_eviction_eagain") +
                                                           rig.Count("nr_pcache_eviction_failure"));
  EXPECT_EQ(
      rig.Count("nr_pcache_eviction_succeed"),
      rig.Count("nr_pcache_eviction_to_victim") + rig.Count("nr_pcache_eviction_clean_dropped"));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

}  // namespace
}  // namespace remora
