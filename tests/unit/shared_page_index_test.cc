#include "memory-node/shared_page_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "memory-node/range_set.h"
#include "memory-node/slot_pool.h"
#include "net/shm/shm_page_reader.h"

namespace remora {
namespace {

constexpr std::uint64_t kBase = 0x10000000ULL;
std::uint64_t Uva(std::uint64_t i) { return kBase + i * kPageSize; }

// An index over a small slot pool, plus a reader attached to both.
struct Fixture {
  explicit Fixture(std::uint64_t initial, std::uint64_t max, std::uint64_t slots = 256) {
    Status st;
    SlotPool::Options po;
    po.nslots = slots;
    pool = SlotPool::Create(po, &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
    index = SharedPageIndex::Create(initial, max, &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
    shm::Layout l{shm::kLayoutMagic,       shm::kLayoutVersion,  kPageSize,
                  sizeof(shm::IndexEntry), pool->nslots(),       pool->file_bytes(),
                  shm::kIndexHeaderBytes,  index->max_entries(), index->file_bytes()};
    reader =
        ShmPageReader::Map(pool->readonly_fd(), index->readonly_fd(), shm::EncodeLayout(l), &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  bool Put(Asid a, std::uint64_t uva, std::uint64_t slot) {
    index->Begin();
    bool ok = index->Put(a, uva, slot);
    index->End();
    return ok;
  }
  void Erase(Asid a, std::uint64_t uva) {
    index->Begin();
    index->Erase(a, uva);
    index->End();
  }
  std::unique_ptr<SlotPool> pool;
  std::unique_ptr<SharedPageIndex> index;
  std::unique_ptr<ShmPageReader> reader;
};

TEST(SharedPageIndexTest, PutFindErase) {
  Fixture f(64, 1024);
  EXPECT_EQ(f.index->Find(1, Uva(0)), -1);
  ASSERT_TRUE(f.Put(1, Uva(0), 5));
  ASSERT_TRUE(f.Put(2, Uva(0), 6));  // same uva, other space
  ASSERT_TRUE(f.Put(1, Uva(1), 7));
  EXPECT_EQ(f.index->Find(1, Uva(0)), 5);
  EXPECT_EQ(f.index->Find(2, Uva(0)), 6);
  EXPECT_EQ(f.index->Find(1, Uva(1)), 7);
  ASSERT_TRUE(f.Put(1, Uva(0), 9));  // replace
  EXPECT_EQ(f.index->Find(1, Uva(0)), 9);
  EXPECT_EQ(f.index->live(), 3u);
  f.Erase(1, Uva(0));
  f.Erase(1, Uva(0));  // erasing twice is harmless
  EXPECT_EQ(f.index->Find(1, Uva(0)), -1);
  EXPECT_EQ(f.index->Find(2, Uva(0)), 6);
  EXPECT_EQ(f.index->live(), 2u);
  EXPECT_EQ(f.index->tombstones(), 1u);
  // Uva 0 is a valid key (its tag is not the empty tag).
  ASSERT_TRUE(f.Put(3, 0, 1));
  EXPECT_EQ(f.index->Find(3, 0), 1);
}

TEST(SharedPageIndexTest, SequenceIsEvenOutsideSections) {
  Fixture f(64, 64);
  const std::uint64_t s0 = f.index->seq();
  EXPECT_EQ(s0 % 2, 0u);
  f.index->Begin();
  EXPECT_EQ(f.index->seq(), s0 + 1);
  f.index->End();
  EXPECT_EQ(f.index->seq(), s0 + 2);
}

TEST(SharedPageIndexTest, GrowsWhileMoreThanHalfLive) {
  Fixture f(64, 4096);
  EXPECT_EQ(f.index->table_entries(), 64u);
  for (std::uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(f.Put(1, Uva(i), i));
  EXPECT_GE(f.index->table_entries(), 2048u);
  for (std::uint64_t i = 0; i < 1000; ++i) ASSERT_EQ(f.index->Find(1, Uva(i)), (std::int64_t)i);
}

TEST(SharedPageIndexTest, TombstonesAreRebuiltAway) {
  Fixture f(256, 256);
  // 100 stable keys, then churn: insert and erase fresh keys.
  for (std::uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(f.Put(1, Uva(i), i));
  for (std::uint64_t i = 0; i < 5000; ++i) {
    ASSERT_TRUE(f.Put(2, Uva(i), 1)) << i;
    f.Erase(2, Uva(i));
    ASSERT_LE(f.index->tombstones(), f.index->table_entries() / 4);
  }
  EXPECT_GT(f.index->rebuilds(), 0u);
  EXPECT_EQ(f.index->live(), 100u);
  for (std::uint64_t i = 0; i < 100; ++i) ASSERT_EQ(f.index->Find(1, Uva(i)), (std::int64_t)i);
}

TEST(SharedPageIndexTest, FullTableStopsIndexingButKeepsWorking) {
  Fixture f(64, 64);
  std::uint64_t indexed = 0;
  for (std::uint64_t i = 0; i < 100; ++i) indexed += f.Put(1, Uva(i), i);
  EXPECT_EQ(indexed, 48u);  // 3/4 of 64
  // Keys already indexed can still be remapped; an erase frees room.
  ASSERT_TRUE(f.Put(1, Uva(0), 77));
  EXPECT_EQ(f.index->Find(1, Uva(0)), 77);
  EXPECT_FALSE(f.Put(1, Uva(200), 1));
  // Erasing frees room once enough tombstones make a rebuild worth it (at
  // the maximum size a rebuild for one entry would repeat every insert).
  for (std::uint64_t i = 1; i <= 8; ++i) f.Erase(1, Uva(i));
  EXPECT_TRUE(f.Put(1, Uva(200), 1));
  EXPECT_EQ(f.index->Find(1, Uva(200)), 1);
  // The reader's "absent" for a left-out key sends it to the memory node.
  std::vector<char> buf(kPageSize);
  EXPECT_EQ(f.reader->Read(1, Uva(99), buf.data()), ShmPageReader::Result::kAbsent);
}

TEST(SharedPageIndexTest, ReaderCopiesTheMappedSlot) {
  Fixture f(64, 64);
  SlotPool::Slot s;
  ASSERT_TRUE(f.pool->Allocate(&s));
  std::memset(f.pool->Data(s), 'k', kPageSize);
  ASSERT_TRUE(f.Put(4, Uva(3), s));
  std::vector<char> buf(kPageSize), want(kPageSize, 'k');
  std::uint64_t retries = 0;
  ASSERT_EQ(f.reader->Read(4, Uva(3), buf.data(), &retries), ShmPageReader::Result::kFound);
  EXPECT_EQ(buf, want);
  EXPECT_EQ(retries, 0u);
  EXPECT_EQ(f.reader->Read(4, Uva(4), buf.data()), ShmPageReader::Result::kAbsent);
  EXPECT_EQ(f.reader->Read(5, Uva(3), buf.data()), ShmPageReader::Result::kAbsent);
}

TEST(SharedPageIndexTest, ReaderGivesUpWhileWriterIsInsideASection) {
  Fixture f(64, 64);
  ASSERT_TRUE(f.Put(1, Uva(0), 0));
  std::vector<char> buf(kPageSize);
  std::uint64_t retries = 0;
  f.index->Begin();
  EXPECT_EQ(f.reader->Read(1, Uva(0), buf.data(), &retries), ShmPageReader::Result::kBusy);
  EXPECT_EQ(retries, static_cast<std::uint64_t>(ShmPageReader::kMaxAttempts - 1));
  f.index->End();
  EXPECT_EQ(f.reader->Read(1, Uva(0), buf.data()), ShmPageReader::Result::kFound);
}

TEST(SharedPageIndexTest, RejectsMismatchedLayout) {
  Fixture f(64, 64);
  shm::Layout l{shm::kLayoutMagic,       shm::kLayoutVersion,    kPageSize,
                sizeof(shm::IndexEntry), f.pool->nslots() * 2,   f.pool->file_bytes() * 2,
                shm::kIndexHeaderBytes,  f.index->max_entries(), f.index->file_bytes()};
  Status st;
  auto r =
      ShmPageReader::Map(f.pool->readonly_fd(), f.index->readonly_fd(), shm::EncodeLayout(l), &st);
  EXPECT_EQ(r, nullptr);
  EXPECT_EQ(st.code(), Code::kBadRequest);
}

// The writer follows the store's protocol by hand (fresh slot, switch, free
// after the section) on a tiny table, so that nearly every section also
// inserts and erases churn keys and rebuilds happen constantly. Readers must
// see only whole pages, each of the right key.
TEST(SharedPageIndexTest, ConcurrentReadersDuringRebuildStorm) {
  Fixture f(64, 64, /*slots=*/64);
  constexpr std::uint64_t kKeys = 8;
  std::vector<SlotPool::Slot> cur(kKeys);
  auto fill = [&](SlotPool::Slot s, std::uint64_t word) {
    std::atomic_thread_fence(std::memory_order_release);
    auto* w = reinterpret_cast<std::uint64_t*>(f.pool->Data(s));
    for (std::size_t i = 0; i < kPageSize / 8; ++i) w[i] = word;
  };
  for (std::uint64_t k = 0; k < kKeys; ++k) {
    ASSERT_TRUE(f.pool->Allocate(&cur[k]));
    fill(cur[k], k << 32 | 1);
    ASSERT_TRUE(f.Put(1, Uva(k), cur[k]));
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, found{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      std::vector<std::uint64_t> buf(kPageSize / 8);
      std::mt19937 rng(t);
      while (!stop.load(std::memory_order_relaxed)) {
        const std::uint64_t k = rng() % kKeys;
        auto r = f.reader->Read(1, Uva(k), buf.data());
        if (r == ShmPageReader::Result::kBusy) continue;
        if (r == ShmPageReader::Result::kAbsent) {
          bad.fetch_add(1);
          continue;
        }
        found.fetch_add(1, std::memory_order_relaxed);
        bool ok = (buf[0] >> 32) == k && (buf[0] & 0xffffffff) != 0;
        for (std::uint64_t w : buf) ok &= w == buf[0];
        if (!ok) bad.fetch_add(1);
      }
    });
  }
  std::mt19937 rng(3);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
  for (std::uint64_t v = 2; std::chrono::steady_clock::now() < deadline; ++v) {
    const std::uint64_t k = rng() % kKeys;
    SlotPool::Slot fresh;
    ASSERT_TRUE(f.pool->Allocate(&fresh));
    fill(fresh, k << 32 | (v & 0xffffffff));
    f.index->Begin();
    ASSERT_TRUE(f.index->Put(1, Uva(k), fresh));
    // Churn: a short-lived key per section leaves a tombstone behind.
    (void)f.index->Put(2, Uva(v), 0);
    f.index->Erase(2, Uva(v));
    f.index->End();
    ASSERT_TRUE(f.pool->Unref(cur[k]));
    cur[k] = fresh;
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(found.load(), 100u);
  EXPECT_GT(f.index->rebuilds(), 10u);
}

// ---- RangeSet, used by the store for registered ranges ----

TEST(RangeSetTest, MergesAndSplits) {
  RangeSet r;
  r.Add(0x1000, 0x3000);
  r.Add(0x3000, 0x5000);  // adjacent: merged
  EXPECT_EQ(r.count(), 1u);
  r.Add(0x8000, 0x9000);
  r.Add(0x2000, 0x8000);  // bridges the gap
  EXPECT_EQ(r.count(), 1u);
  EXPECT_EQ(r.Size(), 0x8000u);
  r.Remove(0x4000, 0x6000);  // split in two
  EXPECT_EQ(r.count(), 2u);
  EXPECT_TRUE(r.Contains(0x1000));
  EXPECT_TRUE(r.Contains(0x3fff));
  EXPECT_FALSE(r.Contains(0x4000));
  EXPECT_FALSE(r.Contains(0x5fff));
  EXPECT_TRUE(r.Contains(0x6000));
  EXPECT_FALSE(r.Contains(0x9000));
  EXPECT_FALSE(r.Contains(0x0fff));
  auto parts = r.Intersect(0x0, 0x10000);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].first, 0x1000u);
  EXPECT_EQ(parts[0].second, 0x4000u);
  EXPECT_EQ(parts[1].first, 0x6000u);
  EXPECT_EQ(parts[1].second, 0x9000u);
  r.Remove(0x0, 0x100000);
  EXPECT_EQ(r.count(), 0u);
}

// ---- SlotPool ----

TEST(SlotPoolTest, InFlightSlotsAreNotAllocated) {
  Status st;
  SlotPool::Options po;
  po.nslots = 8;
  po.backed_free_high = 2;
  po.backed_free_low = 1;
  auto pool = SlotPool::Create(po, &st);
  ASSERT_TRUE(st.ok());
  SlotPool::Slot s[8];
  for (auto& x : s) ASSERT_TRUE(pool->Allocate(&x));
  for (auto x : s) pool->Unref(x);
  auto batch = pool->TakePunchBatch();  // 7 of the 8 (down to 1)
  ASSERT_EQ(batch.size(), 7u);
  SlotPool::Slot a, b;
  ASSERT_TRUE(pool->Allocate(&a));
  EXPECT_FALSE(pool->Allocate(&b));
  pool->PunchSlots(batch);
  pool->FinishPunch(batch);
  EXPECT_TRUE(pool->Allocate(&b));
}

TEST(SlotPoolTest, RefcountsAndReuse) {
  Status st;
  SlotPool::Options po;
  po.nslots = 4;
  auto pool = SlotPool::Create(po, &st);
  ASSERT_TRUE(st.ok());
  SlotPool::Slot s[4], extra;
  for (auto& x : s) ASSERT_TRUE(pool->Allocate(&x));
  EXPECT_FALSE(pool->Allocate(&extra));
  EXPECT_EQ(pool->used(), 4u);
  pool->Ref(s[0]);
  EXPECT_EQ(pool->refcount(s[0]), 2u);
  EXPECT_FALSE(pool->Unref(s[0]));
  EXPECT_TRUE(pool->Unref(s[0]));
  EXPECT_EQ(pool->used(), 3u);
  ASSERT_TRUE(pool->Allocate(&extra));
  EXPECT_EQ(extra, s[0]);  // the freed (still backed) slot comes back first
}

TEST(SlotPoolTest, PunchesColdFreeSlotsBeyondTheWatermark) {
  Status st;
  SlotPool::Options po;
  po.nslots = 1024;
  po.backed_free_high = 64;
  po.backed_free_low = 32;
  auto pool = SlotPool::Create(po, &st);
  ASSERT_TRUE(st.ok());
  std::vector<SlotPool::Slot> slots(1024);
  for (auto& s : slots) {
    ASSERT_TRUE(pool->Allocate(&s));
    std::memset(pool->Data(s), 1, kPageSize);
  }
  for (auto s : slots) pool->Unref(s);
  EXPECT_EQ(pool->used(), 0u);
  EXPECT_EQ(pool->backed_free(), 1024u);  // nothing punched on the free path
  ASSERT_TRUE(pool->NeedsPunch());
  // A batch in flight cannot be allocated.
  auto batch = pool->TakePunchBatch();
  EXPECT_EQ(batch.size(), SlotPool::kPunchBatch);
  EXPECT_TRUE(std::is_sorted(batch.begin(), batch.end()));
  EXPECT_EQ(pool->in_flight(), batch.size());
  pool->PunchSlots(batch);
  pool->FinishPunch(batch);
  pool->PunchNow();
  EXPECT_EQ(pool->backed_free(), 32u);  // down to the low watermark
  EXPECT_EQ(pool->punched_total(), 1024u - 32u);
  EXPECT_EQ(pool->in_flight(), 0u);
  // Runs of neighbouring slots are punched with one call each.
  EXPECT_LT(pool->punch_calls(), pool->punched_total() / 8);
  // A punched slot reads as zeros again.
  bool saw_zero = false;
  for (std::uint64_t i = 0; i < 1024 && !saw_zero; ++i)
    saw_zero = pool->Data(static_cast<SlotPool::Slot>(i))[0] == 0;
  EXPECT_TRUE(saw_zero);
  for (auto& s : slots) ASSERT_TRUE(pool->Allocate(&s));
  EXPECT_EQ(pool->used(), 1024u);
}

}  // namespace
}  // namespace remora
