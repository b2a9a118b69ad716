// The victim cache on its own, writing into a real in-memory sink.
#include "processor/pcache/victim_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <future>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "tests/unit/testing/memory_writeback_sink.h"

namespace remora {
namespace {

using namespace std::chrono_literals;
using Buf = std::array<std::byte, kPageSize>;

Buf Pattern(std::uint32_t seed) {
  Buf b;
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : b) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<std::byte>(x);
  }
  return b;
}

PageKey Key(std::uint64_t vpn, Asid asid = 1) { return {asid, vpn << kPageShift}; }

void WaitFor(const std::function<bool()>& cond) {
  for (int i = 0; i < 5000 && !cond(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(cond());
}

// A victim cache writing into a Sink, with quick retries; Put inserts a
// page of a seeded pattern.
template <class Sink>
class VictimCacheFixture : public ::testing::Test {
 protected:
  void Make(std::uint32_t entries, std::chrono::microseconds flush_delay = 2000us) {
    VictimCacheOptions o;
    o.entries = entries;
    o.flush_delay = flush_delay;
    o.sink = &sink;
    o.stats = &stats;
    o.retry_backoff = 1ms;
    o.max_retry_backoff = 5ms;
    ASSERT_TRUE(VictimCache::Create(o, &vc).ok());
  }
  Status Put(const PageKey& k, std::uint32_t seed, bool dirty) {
    Buf b = Pattern(seed);
    const Rmap owners[] = {k};
    return vc->Insert(owners, dirty, b.data());
  }
  std::int64_t Count(const char* name) { return stats.Snapshot().Counter(name); }

  Sink sink;
  StatsRegistry stats;
  std::unique_ptr<VictimCache> vc;
};

using VictimCacheTest = VictimCacheFixture<MemoryWritebackSink>;

TEST_F(VictimCacheTest, CreateChecksOptions) {
  VictimCacheOptions o;
  o.sink = &sink;
  o.entries = 0;
  EXPECT_EQ(VictimCache::Create(o, &vc).code(), Code::kInvalidArgument);
  o.entries = 4;
  o.sink = nullptr;
  EXPECT_EQ(VictimCache::Create(o, &vc).code(), Code::kInvalidArgument);
}

TEST_F(VictimCacheTest, DirtyEntriesWaitForABatchUnlessAFlushIsAskedFor) {
  // Half the entries make a batch (4 of 8); the gathering wait is made
  // endless so that only a full batch or Flush() can end it.
  Make(8, std::chrono::hours(1));
  for (std::uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(Put(Key(i), 10 + i, true).ok());
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(sink.pages(), 0u);  // three dirty pages wait for a fourth
  EXPECT_EQ(vc->dirty(), 3u);
  ASSERT_TRUE(Put(Key(3), 13, true).ok());
  WaitFor([&] { return sink.pages() == 4; });
  WaitFor([&] { return vc->dirty() == 0; });
  EXPECT_EQ(Count("nr_victim_flush_finished_dirty"), 4);

  for (std::uint64_t i = 4; i < 6; ++i) ASSERT_TRUE(Put(Key(i), 10 + i, true).ok());
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sink.pages(), 4u);
  ASSERT_TRUE(vc->Flush().ok());  // ends the wait at once
  EXPECT_EQ(sink.pages(), 6u);
  for (std::uint64_t i = 0; i < 6; ++i) {
    Buf got;
    ASSERT_TRUE(sink.Read(Key(i), got.data()));
    EXPECT_EQ(got, Pattern(static_cast<std::uint32_t>(10 + i))) << i;
  }
}

TEST_F(VictimCacheTest, HitCopiesDataOutAndRemovesTheEntry) {
  Make(4);
  ASSERT_TRUE(Put(Key(1), 1, false).ok());
  EXPECT_TRUE(vc->Contains(Key(1)));
  EXPECT_EQ(vc->used(), 1u);
  Buf got;
  bool dirty = true;
  ASSERT_TRUE(vc->Take(Key(1), got.data(), &dirty));
  EXPECT_EQ(got, Pattern(1));
  EXPECT_FALSE(dirty);
  EXPECT_FALSE(vc->Contains(Key(1)));
  EXPECT_EQ(vc->used(), 0u);
  EXPECT_FALSE(vc->Take(Key(1), got.data(), &dirty));
  EXPECT_FALSE(vc->Take(Key(1, 2), got.data(), &dirty));  // other address space
  EXPECT_EQ(Count("nr_victim_hit"), 1);
  EXPECT_EQ(Count("nr_victim_miss"), 2);
  EXPECT_EQ(Count("victim_entries_used"), 0);
}

TEST_F(VictimCacheTest, UnflushedHitIsDirtyAndNeverWritten) {
  Make(4);
  sink.Pause();
  ASSERT_TRUE(Put(Key(1), 1, true).ok());  // the flush thread blocks on this one
  WaitFor([&] { return sink.blocked_writers() == 1; });
  ASSERT_TRUE(Put(Key(2), 2, true).ok());  // waits in the queue
  Buf got;
  bool dirty = false;
  ASSERT_TRUE(vc->Take(Key(2), got.data(), &dirty));
  EXPECT_TRUE(dirty);  // the caller's line now holds the only new copy
  EXPECT_EQ(got, Pattern(2));
  ASSERT_TRUE(vc->Take(Key(1), got.data(), &dirty));
  EXPECT_TRUE(dirty);  // being written, not known to be written
  sink.Resume();
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.WritesOf(Key(2)), 0u);
  EXPECT_EQ(vc->used(), 0u);  // freed when its write returned
}

TEST_F(VictimCacheTest, SharedEntryStaysUntilEveryOwnerLeft) {
  Make(4);
  Buf b = Pattern(7);
  const Rmap owners[] = {Key(3, 10), Key(3, 11)};
  ASSERT_TRUE(vc->Insert(owners, true, b.data()).ok());
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.writes(), 1u);
  Buf got;
  EXPECT_TRUE(sink.Read(Key(3, 11), got.data()));
  EXPECT_EQ(got, b);
  bool dirty;
  ASSERT_TRUE(vc->Take(Key(3, 10), got.data(), &dirty));
  EXPECT_EQ(got, b);
  EXPECT_FALSE(vc->Contains(Key(3, 10)));
  EXPECT_TRUE(vc->Contains(Key(3, 11)));
  EXPECT_EQ(vc->used(), 1u);
  ASSERT_TRUE(vc->Take(Key(3, 11), got.data(), &dirty));
  EXPECT_EQ(vc->used(), 0u);
}

TEST_F(VictimCacheTest, ReplacesOldestFlushedEntryFirst) {
  Make(3);
  ASSERT_TRUE(Put(Key(1), 1, false).ok());
  ASSERT_TRUE(Put(Key(2), 2, false).ok());
  ASSERT_TRUE(Put(Key(3), 3, false).ok());
  ASSERT_TRUE(Put(Key(4), 4, false).ok());
  EXPECT_FALSE(vc->Contains(Key(1)));
  EXPECT_TRUE(vc->Contains(Key(2)) && vc->Contains(Key(3)) && vc->Contains(Key(4)));
  EXPECT_EQ(Count("nr_victim_eviction_succeed"), 1);
}

TEST_F(VictimCacheTest, FifoSkipsEntriesNotYetFlushed) {
  Make(3);
  sink.Pause();
  ASSERT_TRUE(Put(Key(1), 1, false).ok());
  ASSERT_TRUE(Put(Key(2), 2, true).ok());  // stuck in write-back
  ASSERT_TRUE(Put(Key(3), 3, false).ok());
  ASSERT_TRUE(Put(Key(4), 4, false).ok());  // replaces 1, the oldest flushed
  EXPECT_FALSE(vc->Contains(Key(1)));
  ASSERT_TRUE(Put(Key(5), 5, false).ok());  // replaces 3: 2 is not flushed
  EXPECT_FALSE(vc->Contains(Key(3)));
  EXPECT_TRUE(vc->Contains(Key(2)));
  sink.Resume();
  ASSERT_TRUE(vc->Flush().ok());
  ASSERT_TRUE(Put(Key(6), 6, false).ok());  // now 2 is the oldest flushed
  EXPECT_FALSE(vc->Contains(Key(2)));
  EXPECT_EQ(sink.WritesOf(Key(2)), 1u);
}

TEST_F(VictimCacheTest, FlushWritesEveryDirtyPageExactlyOnceByteExact) {
  Make(16);
  for (std::uint32_t i = 0; i < 12; ++i) ASSERT_TRUE(Put(Key(i), 100 + i, i % 4 != 0).ok());
  ASSERT_TRUE(vc->Flush().ok());
  for (std::uint32_t i = 0; i < 12; ++i) {
    Buf got;
    if (i % 4 == 0) {
      EXPECT_FALSE(sink.Contains(Key(i))) << "clean page " << i << " was written";
      continue;
    }
    EXPECT_EQ(sink.WritesOf(Key(i)), 1u) << "page " << i;
    ASSERT_TRUE(sink.Read(Key(i), got.data()));
    EXPECT_EQ(got, Pattern(100 + i)) << "page " << i;
  }
  ASSERT_TRUE(vc->Flush().ok());
  vc.reset();  // shutting down writes nothing more
  EXPECT_EQ(sink.writes(), 9u);
  EXPECT_EQ(Count("nr_victim_flush_submitted_dirty"), 9);
  EXPECT_EQ(Count("nr_victim_flush_finished_dirty"), 9);
}

TEST_F(VictimCacheTest, FullOfDirtyDataInsertWaitsAndDropsNothing) {
  Make(2);
  sink.Pause();
  ASSERT_TRUE(Put(Key(1), 1, true).ok());
  ASSERT_TRUE(Put(Key(2), 2, true).ok());
  auto third = std::async(std::launch::async, [&] { return Put(Key(3), 3, true); });
  EXPECT_EQ(third.wait_for(50ms), std::future_status::timeout);
  WaitFor([&] { return Count("nr_victim_insert_wait") == 1; });
  sink.Resume();
  ASSERT_TRUE(third.get().ok());
  ASSERT_TRUE(vc->Flush().ok());
  for (std::uint32_t i = 1; i <= 3; ++i) {
    Buf got;
    ASSERT_TRUE(sink.Read(Key(i), got.data())) << "page " << i << " was dropped";
    EXPECT_EQ(got, Pattern(i));
    EXPECT_EQ(sink.WritesOf(Key(i)), 1u);
  }
}

TEST_F(VictimCacheTest, FailingWriteBackRefusesInsertAndRetriesLater) {
  Make(1);
  sink.SetFailing(true);
  ASSERT_TRUE(Put(Key(1), 1, true).ok());
  Status st = Put(Key(2), 2, true);
  EXPECT_EQ(st.code(), Code::kIoError) << st.ToString();
  EXPECT_EQ(Count("nr_victim_insert_failed"), 1);
  EXPECT_GE(Count("nr_victim_flush_failed"), 1);
  EXPECT_TRUE(vc->Contains(Key(1)));  // kept, still dirty
  EXPECT_EQ(vc->Flush().code(), Code::kIoError);

  sink.SetFailing(false);
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.WritesOf(Key(1)), 1u);
  ASSERT_TRUE(Put(Key(2), 2, true).ok());  // replaces the flushed page 1
  ASSERT_TRUE(vc->Flush().ok());
  Buf got;
  ASSERT_TRUE(sink.Read(Key(1), got.data()));
  EXPECT_EQ(got, Pattern(1));
}

TEST_F(VictimCacheTest, OneFailedWriteIsRetried) {
  Make(4);
  sink.FailNextWrites(1);
  ASSERT_TRUE(Put(Key(1), 1, true).ok());
  WaitFor([&] { return sink.WritesOf(Key(1)) == 1; });
  EXPECT_EQ(Count("nr_victim_flush_failed"), 1);
  EXPECT_EQ(Count("nr_victim_flush_submitted_dirty"), 2);
  EXPECT_EQ(Count("nr_victim_flush_finished_dirty"), 1);
}

TEST_F(VictimCacheTest, ForkDuringWriteBackRedirtiesTheEntry) {
  Make(4);
  sink.Pause();
  ASSERT_TRUE(Put(Key(1, 10), 1, true).ok());
  WaitFor([&] { return sink.blocked_writers() == 1; });  // writing for asid 10 only
  vc->ShareSpace(10, 11);
  EXPECT_TRUE(vc->Contains(Key(1, 11)));
  sink.Resume();
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.WritesOf(Key(1, 11)), 1u);  // the child's copy was written too
  EXPECT_EQ(sink.WritesOf(Key(1, 10)), 2u);
  Buf got;
  bool dirty;
  ASSERT_TRUE(vc->Take(Key(1, 11), got.data(), &dirty));
  EXPECT_EQ(got, Pattern(1));
  EXPECT_FALSE(dirty);
}

TEST_F(VictimCacheTest, ForkSharesFlushedAndQueuedEntries) {
  Make(4);
  ASSERT_TRUE(Put(Key(1, 10), 1, false).ok());
  ASSERT_TRUE(Put(Key(2, 10), 2, false).ok());
  ASSERT_TRUE(Put(Key(3, 12), 3, false).ok());
  vc->ShareSpace(10, 11);
  EXPECT_TRUE(vc->Contains(Key(1, 11)));
  EXPECT_TRUE(vc->Contains(Key(2, 11)));
  EXPECT_FALSE(vc->Contains(Key(3, 11)));
  EXPECT_EQ(vc->used(), 3u);
}

TEST_F(VictimCacheTest, DropForgetsWithoutWriting) {
  Make(8);
  sink.Pause();
  ASSERT_TRUE(Put(Key(9, 3), 9, true).ok());  // blocks the flush thread
  WaitFor([&] { return sink.blocked_writers() == 1; });
  ASSERT_TRUE(Put(Key(1, 1), 1, true).ok());
  ASSERT_TRUE(Put(Key(2, 2), 2, true).ok());
  ASSERT_TRUE(Put(Key(3, 1), 3, true).ok());
  EXPECT_EQ(vc->DropSpace(1), 2u);
  EXPECT_TRUE(vc->Drop(Key(2, 2)));
  EXPECT_FALSE(vc->Drop(Key(2, 2)));
  sink.Resume();
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.writes(), 1u);  // only the page that was already being written
  EXPECT_EQ(vc->used(), 1u);
}

TEST_F(VictimCacheTest, DropRangeForgetsOnlyThatRangeOfThatSpace) {
  Make(8);
  for (std::uint64_t vpn = 0; vpn < 6; ++vpn) ASSERT_TRUE(Put(Key(vpn, 1), 1, vpn % 2 == 0).ok());
  ASSERT_TRUE(Put(Key(3, 2), 2, false).ok());
  EXPECT_EQ(vc->DropRange(1, Key(2).uva, Key(5).uva), 3u);
  for (std::uint64_t vpn = 0; vpn < 6; ++vpn)
    EXPECT_EQ(vc->Contains(Key(vpn, 1)), vpn < 2 || vpn >= 5) << vpn;
  EXPECT_TRUE(vc->Contains(Key(3, 2)));
  EXPECT_EQ(vc->DropRange(1, 0, std::uint64_t{1} << 47), 3u);
  EXPECT_EQ(vc->used(), 1u);
}

TEST_F(VictimCacheTest, NewerCopyOfAPageSupersedesTheOlder) {
  Make(4);
  ASSERT_TRUE(Put(Key(1), 1, false).ok());
  ASSERT_TRUE(Put(Key(1), 2, true).ok());
  EXPECT_EQ(vc->used(), 1u);
  Buf got;
  bool dirty;
  ASSERT_TRUE(vc->Take(Key(1), got.data(), &dirty));
  EXPECT_EQ(got, Pattern(2));
  EXPECT_FALSE(vc->Contains(Key(1)));
}

TEST_F(VictimCacheTest, CopyFailureLeavesNoEntry) {
  Make(2);
  const Rmap owners[] = {Key(1)};
  Status st = vc->Insert(owners, true, [](void*) { return Status(Code::kIoError, "gone"); });
  EXPECT_EQ(st.code(), Code::kIoError);
  EXPECT_EQ(vc->used(), 0u);
  EXPECT_FALSE(vc->Contains(Key(1)));
}

TEST_F(VictimCacheTest, ShutdownWritesWhatIsStillDirty) {
  Make(8);
  sink.Pause();
  for (std::uint32_t i = 0; i < 5; ++i) ASSERT_TRUE(Put(Key(i), i, true).ok());
  sink.Resume();
  vc.reset();
  for (std::uint32_t i = 0; i < 5; ++i) EXPECT_EQ(sink.WritesOf(Key(i)), 1u) << "page " << i;
  EXPECT_EQ(Count("victim_entries_used"), 0);
}

// The entry of `key` among Entries(); fails the test if there is none.
VictimEntryInfo EntryOf(VictimCache& vc, const PageKey& key) {
  for (const VictimEntryInfo& e : vc.Entries()) {
    if (std::find(e.owners.begin(), e.owners.end(), key) != e.owners.end()) return e;
  }
  ADD_FAILURE() << "no victim entry for asid " << key.asid << " uva " << key.uva;
  return {VictimState::kFree, false, {}};
}

TEST_F(VictimCacheTest, ForkSharesAQueuedEntryWrittenOnceForBoth) {
  Make(4);
  sink.Pause();
  ASSERT_TRUE(Put(Key(9, 3), 9, true).ok());  // blocks the flush thread
  WaitFor([&] { return sink.blocked_writers() == 1; });
  ASSERT_TRUE(Put(Key(1, 10), 1, true).ok());  // queued behind it
  vc->ShareSpace(10, 11);
  EXPECT_TRUE(vc->Contains(Key(1, 10)));
  EXPECT_TRUE(vc->Contains(Key(1, 11)));
  EXPECT_FALSE(vc->Contains(Key(9, 11)));
  VictimEntryInfo e = EntryOf(*vc, Key(1, 11));
  EXPECT_EQ(e.state, VictimState::kHasData);
  EXPECT_TRUE(e.dirty);
  EXPECT_EQ(e.owners, (std::vector<Rmap>{Key(1, 10), Key(1, 11)}));
  EXPECT_EQ(vc->used(), 2u);  // shared, not copied

  sink.Resume();
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.writes(), 2u);  // the blocker, and one write naming both owners
  EXPECT_EQ(sink.WritesOf(Key(1, 10)), 1u);
  EXPECT_EQ(sink.WritesOf(Key(1, 11)), 1u);
  Buf got;
  ASSERT_TRUE(sink.Read(Key(1, 10), got.data()));
  EXPECT_EQ(got, Pattern(1));
  ASSERT_TRUE(sink.Read(Key(1, 11), got.data()));
  EXPECT_EQ(got, Pattern(1));
  EXPECT_EQ(EntryOf(*vc, Key(1, 10)).state, VictimState::kFlushed);
}

TEST_F(VictimCacheTest, ForkLeavesAFlushedEntryCleanUnlessAsked) {
  Make(4);
  ASSERT_TRUE(Put(Key(1, 10), 1, true).ok());
  ASSERT_TRUE(Put(Key(2, 10), 2, false).ok());  // inserted clean
  ASSERT_TRUE(vc->Flush().ok());
  ASSERT_EQ(sink.writes(), 1u);
  vc->ShareSpace(10, 11, /*redirty_flushed=*/false);
  for (std::uint64_t vpn : {1, 2}) {
    SCOPED_TRACE(vpn);
    EXPECT_TRUE(vc->Contains(Key(vpn, 11)));
    VictimEntryInfo e = EntryOf(*vc, Key(vpn, 11));
    EXPECT_EQ(e.state, VictimState::kFlushed);
    EXPECT_FALSE(e.dirty);
    EXPECT_EQ(e.owners, (std::vector<Rmap>{Key(vpn, 10), Key(vpn, 11)}));
  }
  EXPECT_EQ(vc->dirty(), 0u);
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.writes(), 1u);  // nothing written again
  EXPECT_FALSE(sink.Contains(Key(1, 11)));
  Buf got;
  bool dirty = true;
  ASSERT_TRUE(vc->Take(Key(1, 11), got.data(), &dirty));
  EXPECT_EQ(got, Pattern(1));
  EXPECT_FALSE(dirty);
  EXPECT_TRUE(vc->Contains(Key(1, 10)));
}

TEST_F(VictimCacheTest, ForkRedirtiesAFlushedEntryForBothOwners) {
  Make(4);
  ASSERT_TRUE(Put(Key(1, 10), 1, true).ok());
  ASSERT_TRUE(Put(Key(2, 12), 2, true).ok());  // another space's
  ASSERT_TRUE(vc->Flush().ok());
  ASSERT_EQ(sink.WritesOf(Key(1, 10)), 1u);
  sink.Pause();  // look at the entry before it is written again
  vc->ShareSpace(10, 11, /*redirty_flushed=*/true);
  VictimEntryInfo e = EntryOf(*vc, Key(1, 11));
  EXPECT_TRUE(e.dirty);  // queued or being written: not flushed
  EXPECT_NE(e.state, VictimState::kFlushed);
  EXPECT_EQ(e.owners, (std::vector<Rmap>{Key(1, 10), Key(1, 11)}));
  EXPECT_EQ(vc->dirty(), 1u);
  EXPECT_EQ(EntryOf(*vc, Key(2, 12)).state, VictimState::kFlushed);  // untouched

  sink.Resume();
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.writes(), 3u);
  EXPECT_EQ(sink.WritesOf(Key(1, 10)), 2u);
  EXPECT_EQ(sink.WritesOf(Key(1, 11)), 1u);
  EXPECT_EQ(sink.WritesOf(Key(2, 12)), 1u);
  Buf got;
  ASSERT_TRUE(sink.Read(Key(1, 11), got.data()));
  EXPECT_EQ(got, Pattern(1));
  EXPECT_EQ(EntryOf(*vc, Key(1, 10)).state, VictimState::kFlushed);
  // Sharing again adds nothing and writes nothing.
  vc->ShareSpace(10, 11, /*redirty_flushed=*/true);
  EXPECT_EQ(vc->dirty(), 0u);
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.writes(), 3u);
}

TEST_F(VictimCacheTest, ChildTakesARedirtiedEntryDirtyAndTheParentKeepsIt) {
  Make(4);
  ASSERT_TRUE(Put(Key(1, 10), 1, true).ok());
  ASSERT_TRUE(vc->Flush().ok());
  sink.Pause();
  ASSERT_TRUE(Put(Key(9, 3), 9, true).ok());  // blocks the flush thread
  WaitFor([&] { return sink.blocked_writers() == 1; });
  vc->ShareSpace(10, 11, /*redirty_flushed=*/true);
  EXPECT_EQ(EntryOf(*vc, Key(1, 11)).state, VictimState::kHasData);

  Buf got;
  bool dirty = false;
  ASSERT_TRUE(vc->Take(Key(1, 11), got.data(), &dirty));
  EXPECT_EQ(got, Pattern(1));
  EXPECT_TRUE(dirty);  // the child's line must be written back later
  EXPECT_FALSE(vc->Contains(Key(1, 11)));
  EXPECT_TRUE(vc->Contains(Key(1, 10)));
  VictimEntryInfo e = EntryOf(*vc, Key(1, 10));
  EXPECT_EQ(e.owners, std::vector<Rmap>{Key(1, 10)});
  EXPECT_TRUE(e.dirty);

  sink.Resume();
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.WritesOf(Key(1, 10)), 2u);
  ASSERT_TRUE(vc->Take(Key(1, 10), got.data(), &dirty));
  EXPECT_EQ(got, Pattern(1));
  EXPECT_FALSE(dirty);        // written since
  EXPECT_EQ(vc->used(), 1u);  // the blocker's entry only
}

// A sink that takes a batch in one call, as the memory node's transports do,
// and can refuse a whole batch.
class BatchSink : public MemoryWritebackSink {
 public:
  Status WriteBackMany(Asid asid, std::span<const std::uint64_t> uvas,
                       std::span<const void* const> pages) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      batch_sizes_.push_back(uvas.size());
      if (fail_batches_ > 0) {
        --fail_batches_;
        return {Code::kIoError, "batch refused"};
      }
    }
    for (std::size_t i = 0; i < uvas.size(); ++i) {
      const Rmap owner{asid, uvas[i]};
      REMORA_RETURN_IF_ERROR(WriteBack({&owner, 1}, pages[i]));
    }
    return Status::Ok();
  }
  void FailNextBatches(int n) {
    std::lock_guard<std::mutex> lk(mu_);
    fail_batches_ = n;
  }
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard<std::mutex> lk(mu_);
    return batch_sizes_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::size_t> batch_sizes_;
  int fail_batches_ = 0;
};

class VictimCacheBatchTest : public VictimCacheFixture<BatchSink> {
 protected:
  // Batches go only when asked for (Flush).
  void Make(std::uint32_t entries) { VictimCacheFixture::Make(entries, 10s); }
};

// The entries of a batch are scattered in the cache's buffer (clean ones in
// between, entries reused out of order); the sink gets each page from its
// entry, byte exact, in one call.
TEST_F(VictimCacheBatchTest, ABatchOfScatteredEntriesGoesInOneCallByteExact) {
  Make(16);
  for (std::uint32_t i = 0; i < 6; ++i) ASSERT_TRUE(Put(Key(100 + i), 500 + i, false).ok());
  Buf scratch;
  bool dirty;
  // Free entries 1 and 4 so that the dirty pages land around the clean ones.
  ASSERT_TRUE(vc->Take(Key(101), scratch.data(), &dirty));
  ASSERT_TRUE(vc->Take(Key(104), scratch.data(), &dirty));
  for (std::uint32_t i = 0; i < 5; ++i) ASSERT_TRUE(Put(Key(i * 3), 10 + i, true).ok());
  ASSERT_TRUE(vc->Flush().ok());
  EXPECT_EQ(sink.batch_sizes(), (std::vector<std::size_t>{5}));
  for (std::uint32_t i = 0; i < 5; ++i) {
    Buf got;
    ASSERT_TRUE(sink.Read(Key(i * 3), got.data())) << "page " << i;
    EXPECT_EQ(got, Pattern(10 + i)) << "page " << i;
    EXPECT_EQ(sink.WritesOf(Key(i * 3)), 1u);
  }
  for (std::uint32_t i : {0u, 2u, 3u, 5u}) EXPECT_FALSE(sink.Contains(Key(100 + i)));
}

// A batch the memory node refuses loses nothing: every page of it stays in
// the cache, dirty, readable by a fill, and is written on the retry.
TEST_F(VictimCacheBatchTest, AFailedBatchKeepsEveryPageDirtyAndResident) {
  Make(16);
  sink.FailNextBatches(1);
  for (std::uint32_t i = 0; i < 8; ++i) ASSERT_TRUE(Put(Key(i), 40 + i, true).ok());
  // The first Flush sees the refusal; the flush thread retries after the
  // back-off and the second one succeeds.
  Status first = vc->Flush();
  if (first.ok()) {
    // The retry may already have landed before Flush looked.
    EXPECT_GE(Count("nr_victim_flush_failed"), 1);
  } else {
    EXPECT_EQ(first.code(), Code::kIoError) << first.ToString();
    for (std::uint32_t i = 0; i < 8; ++i) EXPECT_TRUE(vc->Contains(Key(i))) << "page " << i;
  }
  ASSERT_TRUE(vc->Flush().ok());
  const std::vector<std::size_t> sizes = sink.batch_sizes();
  ASSERT_GE(sizes.size(), 2u);
  EXPECT_EQ(sizes[0], 8u);
  EXPECT_EQ(Count("nr_victim_flush_failed"), 8);  // one per page of the batch
  for (std::uint32_t i = 0; i < 8; ++i) {
    Buf got;
    ASSERT_TRUE(sink.Read(Key(i), got.data())) << "page " << i;
    EXPECT_EQ(got, Pattern(40 + i));
    EXPECT_EQ(sink.WritesOf(Key(i)), 1u);
  }
}

// While a batch keeps failing, its pages are still the cache's: a fill takes
// each back dirty (its line must be written back again later).
TEST_F(VictimCacheBatchTest, PagesOfAFailingBatchAreTakenBackDirty) {
  Make(16);
  sink.FailNextBatches(1000000);
  for (std::uint32_t i = 0; i < 4; ++i) ASSERT_TRUE(Put(Key(i), 70 + i, true).ok());
  EXPECT_EQ(vc->Flush().code(), Code::kIoError);
  for (std::uint32_t i = 0; i < 4; ++i) {
    Buf got;
    bool dirty = false;
    ASSERT_TRUE(vc->Take(Key(i), got.data(), &dirty)) << "page " << i;
    EXPECT_TRUE(dirty) << "page " << i;
    EXPECT_EQ(got, Pattern(70 + i));
  }
  EXPECT_FALSE(sink.Contains(Key(0)));
  sink.FailNextBatches(0);
}

}  // namespace
}  // namespace remora
