// Fork in the pcache: sharing a space's lines with its child (ShareSpace),
// what a first write to a line means (OnWrite), the copy-on-write sequence of
// the fault handler, the rmap count, pausing evictions around a fork, and
// evicting a line two spaces share.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "pcache_test_util.h"

namespace remora {
namespace {

using namespace std::chrono_literals;
using testing::AllBytes;
using testing::HeldEviction;
using testing::Page;
using testing::PcacheRig;
using testing::RigConfig;

constexpr Asid kParent = 10, kChild = 11, kOther = 12, kThird = 13;

bool Has(std::uint16_t flags, std::uint16_t f) { return (flags & f) != 0; }

// The sum of every line's mapcount, line by line: what CountRmaps must say.
std::uint64_t SumOfMapcounts(Pcache& pcache) {
  std::uint64_t n = 0;
  for (LineId id = 0; id < pcache.geometry().nr_lines(); ++id) n += pcache.Inspect(id).mapcount;
  return n;
}

// Pins and locks the line of `key` as the write-protect fault handler does.
LineId PinAndLock(Pcache& pcache, const PageKey& key) {
  LineId line = 0;
  if (!pcache.Pin(key, &line)) throw std::runtime_error("page not resident");
  pcache.Lock(line);
  return line;
}

void UnlockAndUnpin(Pcache& pcache, LineId line) {
  pcache.Unlock(line);
  pcache.Unpin(line);
}

// ---- ShareSpace ----

TEST(PcacheFork, ShareSpaceMapsEveryParentLineInTheChild) {
  PcacheRig rig(RigConfig{.capacity = 16 * kPageSize, .ways = 4});  // 4 sets
  for (int p = 0; p < 6; ++p) rig.Load(Page(p, kParent), p % 2 ? 0x30 + p : -1);
  for (int p = 6; p < 8; ++p) rig.Load(Page(p, kOther), 0x40 + p);
  ASSERT_EQ(rig.pcache->lines_used(), 8u);

  EXPECT_EQ(rig.pcache->ShareSpace(kParent, kChild), 6u);

  for (int p = 0; p < 6; ++p) {
    SCOPED_TRACE(p);
    auto line = rig.pcache->Lookup(Page(p, kParent));
    ASSERT_TRUE(line);
    EXPECT_EQ(rig.pcache->Lookup(Page(p, kChild)), line);
    LineInfo info = rig.pcache->Inspect(*line);
    EXPECT_EQ(info.mapcount, 2u);
    EXPECT_EQ(info.rmaps, (std::vector<Rmap>{Page(p, kParent), Page(p, kChild)}));
    EXPECT_TRUE(Has(info.flags, kLineForked));
    EXPECT_EQ(Has(info.flags, kLineDirty), p % 2 == 1);  // the dirty bit is kept
    EXPECT_EQ(info.refcount, 1u);
  }
  for (int p = 6; p < 8; ++p) {
    SCOPED_TRACE(p);
    auto line = rig.pcache->Lookup(Page(p, kOther));
    ASSERT_TRUE(line);
    EXPECT_FALSE(rig.pcache->Lookup(Page(p, kChild)));
    LineInfo info = rig.pcache->Inspect(*line);
    EXPECT_EQ(info.mapcount, 1u);
    EXPECT_EQ(info.rmaps, std::vector<Rmap>{Page(p, kOther)});
    EXPECT_FALSE(Has(info.flags, kLineForked));
    EXPECT_TRUE(Has(info.flags, kLineDirty));
  }
  EXPECT_EQ(rig.pcache->lines_used(), 8u);  // shared, not copied
  EXPECT_EQ(rig.pcache->CountRmaps(), 14u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFork, ShareSpaceTwiceAddsNoDuplicateRmap) {
  PcacheRig rig(RigConfig{.capacity = 16 * kPageSize, .ways = 4});
  for (int p = 0; p < 5; ++p) rig.Load(Page(p, kParent));
  EXPECT_EQ(rig.pcache->ShareSpace(kParent, kChild), 5u);
  EXPECT_EQ(rig.pcache->ShareSpace(kParent, kChild), 5u);
  for (int p = 0; p < 5; ++p) {
    auto line = rig.pcache->Lookup(Page(p, kParent));
    ASSERT_TRUE(line);
    EXPECT_EQ(rig.pcache->Inspect(*line).rmaps,
              (std::vector<Rmap>{Page(p, kParent), Page(p, kChild)}));
  }
  EXPECT_EQ(rig.pcache->CountRmaps(), 10u);
  // A space with no resident line shares nothing.
  EXPECT_EQ(rig.pcache->ShareSpace(kOther, kThird), 0u);
  EXPECT_EQ(rig.pcache->CountRmaps(), 10u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFork, ShareSpaceOfLinesThatSpillTheirRmapsToTheHeap) {
  PcacheRig rig;  // 1 set of 4 ways: any two pages share a set
  LineId a = rig.Load(Page(5, kParent), 0x55);
  LineId b = rig.Load(Page(7, kParent));
  // Earlier forks: the parent forked kThird, kThird forked kOther, and
  // kOther unmapped page 5. Line a is shared by three spaces after the next
  // fork, line b by four.
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kThird), 2u);
  ASSERT_EQ(rig.pcache->ShareSpace(kThird, kOther), 2u);
  ASSERT_EQ(rig.pcache->RemoveRmap(Page(5, kOther)), RemoveResult::kRemoved);

  EXPECT_EQ(rig.pcache->ShareSpace(kParent, kChild), 2u);
  LineInfo ia = rig.pcache->Inspect(a);
  EXPECT_EQ(ia.mapcount, 3u);
  EXPECT_EQ(ia.rmaps, (std::vector<Rmap>{Page(5, kParent), Page(5, kThird), Page(5, kChild)}));
  EXPECT_TRUE(Has(ia.flags, kLineForked));
  LineInfo ib = rig.pcache->Inspect(b);
  EXPECT_EQ(ib.mapcount, 4u);
  EXPECT_EQ(ib.rmaps, (std::vector<Rmap>{Page(7, kParent), Page(7, kThird), Page(7, kOther),
                                         Page(7, kChild)}));
  for (const PageKey& k : {Page(5, kChild), Page(5, kThird)}) EXPECT_EQ(rig.pcache->Lookup(k), a);
  for (const PageKey& k : {Page(7, kChild), Page(7, kOther)}) EXPECT_EQ(rig.pcache->Lookup(k), b);

  // Again: the spilled lists gain nothing.
  EXPECT_EQ(rig.pcache->ShareSpace(kParent, kChild), 2u);
  EXPECT_EQ(rig.pcache->Inspect(a).mapcount, 3u);
  EXPECT_EQ(rig.pcache->Inspect(b).mapcount, 4u);
  EXPECT_EQ(rig.pcache->CountRmaps(), 7u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());

  // Back to the inline rmaps, in order.
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(5, kThird)), RemoveResult::kRemoved);
  EXPECT_EQ(rig.pcache->Inspect(a).rmaps, (std::vector<Rmap>{Page(5, kParent), Page(5, kChild)}));
  EXPECT_EQ(rig.pcache->RemoveSpace(kChild), 2u);
  EXPECT_EQ(rig.pcache->RemoveSpace(kOther), 1u);
  EXPECT_EQ(rig.pcache->Inspect(b).rmaps, (std::vector<Rmap>{Page(7, kParent), Page(7, kThird)}));
  EXPECT_EQ(rig.pcache->CountRmaps(), 3u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

// ---- OnWrite ----

TEST(PcacheFork, OnWriteToASharedLineChangesNothing) {
  PcacheRig rig;
  rig.Load(Page(3, kParent));
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  LineId line = PinAndLock(*rig.pcache, Page(3, kChild));
  const LineInfo before = rig.pcache->Inspect(line);
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(3, kChild)), WriteOutcome::kShared);
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(3, kParent)), WriteOutcome::kShared);
  LineInfo after = rig.pcache->Inspect(line);
  EXPECT_EQ(after.flags, before.flags);
  EXPECT_FALSE(Has(after.flags, kLineDirty));
  EXPECT_TRUE(Has(after.flags, kLineForked));
  EXPECT_EQ(after.rmaps, (std::vector<Rmap>{Page(3, kParent), Page(3, kChild)}));
  UnlockAndUnpin(*rig.pcache, line);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFork, OnWriteByTheLastMapperLeftReusesTheLine) {
  PcacheRig rig;
  rig.Load(Page(3, kParent));
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(3, kChild)), RemoveResult::kRemoved);  // the child exited
  LineId line = PinAndLock(*rig.pcache, Page(3, kParent));
  EXPECT_TRUE(Has(rig.pcache->Inspect(line).flags, kLineForked));
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(3, kParent)), WriteOutcome::kReused);
  LineInfo info = rig.pcache->Inspect(line);
  EXPECT_TRUE(Has(info.flags, kLineDirty));
  EXPECT_FALSE(Has(info.flags, kLineForked));
  EXPECT_EQ(info.rmaps, std::vector<Rmap>{Page(3, kParent)});
  // The line is the parent's own again: the next write is an ordinary one.
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(3, kParent)), WriteOutcome::kDirtied);
  UnlockAndUnpin(*rig.pcache, line);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFork, OnWriteToALineNeverForkedDirtiesIt) {
  PcacheRig rig;
  rig.Load(Page(3, kParent));
  LineId line = PinAndLock(*rig.pcache, Page(3, kParent));
  EXPECT_FALSE(Has(rig.pcache->Inspect(line).flags, kLineDirty));
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(3, kParent)), WriteOutcome::kDirtied);
  LineInfo info = rig.pcache->Inspect(line);
  EXPECT_TRUE(Has(info.flags, kLineDirty));
  EXPECT_FALSE(Has(info.flags, kLineForked));
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(3, kParent), /*allow_reuse=*/false),
            WriteOutcome::kDirtied);  // wp fault-around takes plain lines
  UnlockAndUnpin(*rig.pcache, line);
}

TEST(PcacheFork, OnWriteWithoutReuseLeavesAForkedLineAlone) {
  PcacheRig rig;
  rig.Load(Page(3, kParent));
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(3, kChild)), RemoveResult::kRemoved);
  LineId line = PinAndLock(*rig.pcache, Page(3, kParent));
  const LineInfo before = rig.pcache->Inspect(line);
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(3, kParent), /*allow_reuse=*/false),
            WriteOutcome::kShared);
  LineInfo after = rig.pcache->Inspect(line);
  EXPECT_EQ(after.flags, before.flags);
  EXPECT_TRUE(Has(after.flags, kLineForked));
  EXPECT_FALSE(Has(after.flags, kLineDirty));
  // The fault handler itself may reuse it.
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(3, kParent)), WriteOutcome::kReused);
  UnlockAndUnpin(*rig.pcache, line);
}

TEST(PcacheFork, OnWriteMakesTheLineMostRecentlyUsed) {
  // An ordinary write: page 0 was the LRU line, page 1 goes instead.
  {
    PcacheRig rig;
    for (int p = 0; p < 4; ++p) rig.Load(Page(p, kParent));
    rig.pcache->MarkReferenced(Page(0, kParent));
    LineId line = PinAndLock(*rig.pcache, Page(0, kParent));
    EXPECT_EQ(rig.pcache->OnWrite(line, Page(0, kParent)), WriteOutcome::kDirtied);
    UnlockAndUnpin(*rig.pcache, line);
    EXPECT_FALSE(Has(rig.pcache->Inspect(line).flags, kLineReferenced));  // recency is in the list
    EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
    ASSERT_EQ(rig.Wrprotected().size(), 1u);
    EXPECT_EQ(rig.Wrprotected()[0].second, Page(1, kParent));
    EXPECT_EQ(rig.pcache->Lookup(Page(0, kParent)), line);
  }
  // A reuse too.
  {
    PcacheRig rig;
    for (int p = 0; p < 4; ++p) rig.Load(Page(p, kParent));
    ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 4u);
    ASSERT_EQ(rig.pcache->RemoveSpace(kChild), 4u);
    LineId line = PinAndLock(*rig.pcache, Page(0, kParent));
    EXPECT_EQ(rig.pcache->OnWrite(line, Page(0, kParent)), WriteOutcome::kReused);
    UnlockAndUnpin(*rig.pcache, line);
    EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
    ASSERT_EQ(rig.Wrprotected().size(), 1u);
    EXPECT_EQ(rig.Wrprotected()[0].second, Page(1, kParent));
  }
  // A shared line is not written: it keeps its place and goes first.
  {
    PcacheRig rig;
    for (int p = 0; p < 4; ++p) rig.Load(Page(p, kParent));
    ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 4u);
    LineId line = PinAndLock(*rig.pcache, Page(0, kChild));
    EXPECT_EQ(rig.pcache->OnWrite(line, Page(0, kChild)), WriteOutcome::kShared);
    UnlockAndUnpin(*rig.pcache, line);
    EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);
    ASSERT_EQ(rig.Wrprotected().size(), 2u);
    EXPECT_EQ(rig.Wrprotected()[0].second, Page(0, kParent));
    EXPECT_EQ(rig.Wrprotected()[1].second, Page(0, kChild));
  }
}

// ---- the copy-on-write sequence of the write-protect fault handler ----

// The writer `key` breaks COW on the shared line it has pinned and locked:
// its rmap leaves for a new line of the same set. Returns the new line.
LineId BreakCow(PcacheRig& rig, LineId old, const PageKey& key) {
  EXPECT_EQ(rig.pcache->OnWrite(old, key), WriteOutcome::kShared);
  EXPECT_EQ(rig.pcache->RemoveRmap(key), RemoveResult::kRemoved);
  FillResult r;
  Status st = rig.pcache->Fill(key, &r);
  if (!st.ok()) throw std::runtime_error(st.ToString());
  EXPECT_TRUE(r.allocated);
  rig.frames[r.line] = rig.frames[old];
  rig.pcache->CompleteFill(r.line, FillSource::kCowBreak, /*dirty=*/true);
  return r.line;
}

TEST(PcacheFork, CopyOnWriteMovesTheWriterToANewLineInTheSameSet) {
  PcacheRig rig(RigConfig{.capacity = 16 * kPageSize, .ways = 4});  // 4 sets
  LineId old = rig.Load(Page(9, kParent), 0x11);
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);

  LineId pinned = PinAndLock(*rig.pcache, Page(9, kChild));
  ASSERT_EQ(pinned, old);
  LineId fresh = BreakCow(rig, old, Page(9, kChild));
  UnlockAndUnpin(*rig.pcache, old);

  EXPECT_NE(fresh, old);
  const PcacheGeometry& g = rig.pcache->geometry();
  EXPECT_EQ(g.SetOfLine(fresh), g.SetOfLine(old));
  LineInfo o = rig.pcache->Inspect(old);
  EXPECT_EQ(o.mapcount, 1u);
  EXPECT_EQ(o.rmaps, std::vector<Rmap>{Page(9, kParent)});
  EXPECT_TRUE(Has(o.flags, kLineForked));  // the parent's first write is still to come
  EXPECT_FALSE(Has(o.flags, kLineLocked));
  EXPECT_EQ(o.refcount, 1u);
  LineInfo n = rig.pcache->Inspect(fresh);
  EXPECT_EQ(n.mapcount, 1u);
  EXPECT_EQ(n.rmaps, std::vector<Rmap>{Page(9, kChild)});
  EXPECT_TRUE(Has(n.flags, kLineDirty));
  EXPECT_FALSE(Has(n.flags, kLineForked | kLineLocked));
  EXPECT_EQ(n.refcount, 1u);
  EXPECT_EQ(rig.pcache->Lookup(Page(9, kParent)), old);
  EXPECT_EQ(rig.pcache->Lookup(Page(9, kChild)), fresh);
  EXPECT_EQ(rig.Count("nr_pcache_fill_copy"), 1);
  EXPECT_EQ(rig.pcache->lines_used(), 2u);
  EXPECT_EQ(rig.pcache->CountRmaps(), 2u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());

  // The parent, last mapper of the old line, writes it: a reuse, no copy.
  LineId line = PinAndLock(*rig.pcache, Page(9, kParent));
  EXPECT_EQ(rig.pcache->OnWrite(line, Page(9, kParent)), WriteOutcome::kReused);
  UnlockAndUnpin(*rig.pcache, line);
  EXPECT_EQ(rig.Count("nr_pcache_fill_copy"), 1);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFork, CopyOnWriteInAFullSetEvictsAnotherLineNeverThePinnedOne) {
  PcacheRig rig;                                  // 1 set of 4 ways
  LineId old = rig.Load(Page(0, kParent), 0x11);  // the LRU line
  for (int p = 1; p < 4; ++p) rig.Load(Page(p, kParent));
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 4u);

  LineId pinned = PinAndLock(*rig.pcache, Page(0, kChild));
  ASSERT_EQ(pinned, old);
  LineId fresh = BreakCow(rig, old, Page(0, kChild));
  EXPECT_NE(fresh, old);

  // The oldest idle line (page 1, shared too) made room: unmapped in both.
  EXPECT_EQ(rig.Count("nr_pcache_eviction_succeed"), 1);
  auto unmapped = rig.Wrprotected();
  ASSERT_EQ(unmapped.size(), 2u);
  for (const auto& [line, r] : unmapped) {
    EXPECT_NE(line, old);
    EXPECT_EQ(r.uva, Page(1).uva);
  }
  EXPECT_FALSE(rig.pcache->Lookup(Page(1, kParent)));
  EXPECT_FALSE(rig.pcache->Lookup(Page(1, kChild)));
  EXPECT_EQ(rig.pcache->Lookup(Page(0, kParent)), old);
  EXPECT_TRUE(Has(rig.pcache->Inspect(old).flags, kLineLocked));  // still ours
  UnlockAndUnpin(*rig.pcache, old);

  EXPECT_EQ(rig.pcache->Lookup(Page(0, kChild)), fresh);
  EXPECT_EQ(rig.pcache->Inspect(old).rmaps, std::vector<Rmap>{Page(0, kParent)});
  EXPECT_TRUE(AllBytes(rig.frames[old].data(), std::byte{0x11}));
  EXPECT_EQ(rig.pcache->lines_used(), 4u);
  EXPECT_EQ(rig.Count("nr_pcache_fill_copy"), 1);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

// ---- CountRmaps ----

TEST(PcacheFork, CountRmapsIsTheSumOfMapcounts) {
  PcacheRig rig(RigConfig{.capacity = 32 * kPageSize, .ways = 4});  // 8 sets
  auto expect_count = [&](std::uint64_t n) {
    EXPECT_EQ(rig.pcache->CountRmaps(), n);
    EXPECT_EQ(SumOfMapcounts(*rig.pcache), n);
  };
  expect_count(0);
  for (int p = 0; p < 10; ++p) rig.Load(Page(p, kParent), p % 3 ? -1 : p);
  expect_count(10);
  EXPECT_EQ(rig.pcache->ShareSpace(kParent, kChild), 10u);
  expect_count(20);

  // The child breaks COW on page 4: its rmap moves, the count stays.
  LineId old = PinAndLock(*rig.pcache, Page(4, kChild));
  BreakCow(rig, old, Page(4, kChild));
  UnlockAndUnpin(*rig.pcache, old);
  expect_count(20);
  EXPECT_EQ(rig.pcache->lines_used(), 11u);
  // The child unmaps page 7; unmapping a page nobody maps changes nothing.
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(7, kChild)), RemoveResult::kRemoved);
  expect_count(19);
  EXPECT_EQ(rig.pcache->RemoveRmap(Page(40, kParent)), RemoveResult::kNotMapped);
  expect_count(19);

  // The child exits: back to the parent's own count.
  EXPECT_EQ(rig.pcache->RemoveSpace(kChild), 9u);
  expect_count(10);
  EXPECT_EQ(rig.pcache->lines_used(), 10u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());

  EXPECT_EQ(rig.pcache->RemoveSpace(kParent), 10u);
  expect_count(0);
  EXPECT_EQ(rig.pcache->lines_used(), 0u);
  EXPECT_EQ(rig.Count("pcache_lines_used"), 0);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

// ---- PauseEvictions ----

TEST(PcacheFork, PauseEvictionsHoldsOffAFillThatMustEvict) {
  PcacheRig rig;  // 1 set of 4 ways
  for (int p = 0; p < 4; ++p) rig.Load(Page(p, kParent));
  std::future<FillResult> fill;
  {
    auto paused = rig.pcache->PauseEvictions();
    fill = std::async(std::launch::async, [&] {
      FillResult r;
      Status st = rig.pcache->Fill(Page(4, kParent), &r);
      EXPECT_TRUE(st.ok()) << st.ToString();
      return r;
    });
    EXPECT_EQ(fill.wait_for(100ms), std::future_status::timeout);
    EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), 0);
    EXPECT_TRUE(rig.Wrprotected().empty());
    EXPECT_EQ(rig.pcache->lines_used(), 4u);
  }  // released here
  FillResult r = fill.get();
  ASSERT_TRUE(r.allocated);
  rig.pcache->CompleteFill(r.line, FillSource::kZeroFill);
  EXPECT_EQ(rig.Count("nr_pcache_eviction_succeed"), 1);
  ASSERT_EQ(rig.Wrprotected().size(), 1u);
  EXPECT_EQ(rig.Wrprotected()[0].second, Page(0, kParent));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFork, PauseEvictionsWaitsForAnEvictionInFlight) {
  PcacheRig rig;
  rig.Load(Page(0, kParent), 0x21);
  HeldEviction held(rig);

  // What the pauser sees the moment it holds the pause.
  auto pauser = std::async(std::launch::async, [&] {
    auto paused = rig.pcache->PauseEvictions();
    return std::make_pair(rig.Count("nr_pcache_eviction_succeed"), rig.pcache->lines_used());
  });
  EXPECT_EQ(pauser.wait_for(100ms), std::future_status::timeout);
  held.Release();
  auto [succeeded, used] = pauser.get();
  EXPECT_EQ(succeeded, 1);  // the eviction was over before the pause began
  EXPECT_EQ(used, 0u);
  EXPECT_TRUE(rig.victim->Contains(Page(0, kParent)));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFork, ShareSpaceWaitsForAnEvictionInFlight) {
  PcacheRig rig;
  rig.Load(Page(0, kParent), 0x21);
  rig.Load(Page(1, kParent));
  HeldEviction held(rig);  // page 0 is under reclaim

  auto share =
      std::async(std::launch::async, [&] { return rig.pcache->ShareSpace(kParent, kChild); });
  EXPECT_EQ(share.wait_for(100ms), std::future_status::timeout);
  held.Release();
  EXPECT_EQ(share.get(), 1u);  // page 1 only: page 0 went to the victim cache
  EXPECT_FALSE(rig.pcache->Lookup(Page(0, kChild)));
  EXPECT_EQ(rig.pcache->Inspect(*rig.pcache->Lookup(Page(1, kParent))).mapcount, 2u);
  EXPECT_TRUE(rig.victim->Contains(Page(0, kParent)));
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

// ---- evicting a line shared by two spaces ----

// A pcache whose hooks count every call, over a victim cache or straight
// over the sink.
class CountingRig {
 public:
  explicit CountingRig(bool with_victim) {
    if (with_victim) {
      VictimCacheOptions vo;
      vo.entries = 4;
      vo.sink = &sink;
      vo.stats = &stats;
      if (!VictimCache::Create(vo, &victim).ok()) throw std::runtime_error("victim cache");
    }
    PcacheOptions po;
    po.hooks.wrprotect = [this](EvictionContext& ctx, std::size_t i) {
      std::lock_guard lk(mu);
      wrprotected.emplace_back(ctx.line(), ctx.rmaps()[i]);
      return Status::Ok();
    };
    po.hooks.copy_out = [this](const EvictionContext& ctx, void* dst) {
      std::lock_guard lk(mu);
      ++copy_outs;
      std::memcpy(dst, frames[ctx.line()].data(), kPageSize);
      return Status::Ok();
    };
    po.hooks.zap = [this](const EvictionContext& ctx) {
      std::lock_guard lk(mu);
      zaps.emplace_back(ctx.rmaps().begin(), ctx.rmaps().end());
    };
    po.victim = victim.get();
    po.sink = &sink;
    po.stats = &stats;
    if (!Pcache::Create({4 * kPageSize, 4}, std::move(po), &pcache).ok())
      throw std::runtime_error("pcache");
    frames.resize(pcache->geometry().nr_lines());
  }

  LineId LoadDirty(const PageKey& key, std::byte fill) {
    FillResult r;
    if (!pcache->Fill(key, &r).ok() || !r.allocated) throw std::runtime_error("fill");
    frames[r.line].fill(fill);
    pcache->CompleteFill(r.line, FillSource::kZeroFill, /*dirty=*/true);
    return r.line;
  }

  MemoryWritebackSink sink;
  StatsRegistry stats;
  std::unique_ptr<VictimCache> victim;
  std::unique_ptr<Pcache> pcache;
  std::vector<std::array<std::byte, kPageSize>> frames;

  std::mutex mu;
  std::vector<std::pair<LineId, Rmap>> wrprotected;
  int copy_outs = 0;
  std::vector<std::vector<Rmap>> zaps;
};

TEST(PcacheFork, EvictingASharedDirtyLineToTheVictimCache) {
  CountingRig rig(/*with_victim=*/true);
  rig.sink.Pause();  // hold the write-back to look at the entry first
  LineId line = rig.LoadDirty(Page(5, kParent), std::byte{0x42});
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);

  const std::vector<Rmap> both{Page(5, kParent), Page(5, kChild)};
  {
    std::lock_guard lk(rig.mu);
    ASSERT_EQ(rig.wrprotected.size(), 2u);  // one wrprotect per rmap
    EXPECT_EQ(rig.wrprotected[0], std::make_pair(line, Page(5, kParent)));
    EXPECT_EQ(rig.wrprotected[1], std::make_pair(line, Page(5, kChild)));
    EXPECT_EQ(rig.copy_outs, 1);  // the data is copied once
    ASSERT_EQ(rig.zaps.size(), 1u);
    EXPECT_EQ(rig.zaps[0], both);
  }
  auto entries = rig.victim->Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].owners, both);
  EXPECT_TRUE(entries[0].dirty);
  EXPECT_TRUE(rig.victim->Contains(Page(5, kParent)));
  EXPECT_TRUE(rig.victim->Contains(Page(5, kChild)));

  rig.sink.Resume();
  ASSERT_TRUE(rig.victim->Flush().ok());
  EXPECT_EQ(rig.sink.writes(), 1u);  // one write-back names both owners
  std::array<std::byte, kPageSize> got;
  for (const PageKey& k : both) {
    EXPECT_EQ(rig.sink.WritesOf(k), 1u);
    ASSERT_TRUE(rig.sink.Read(k, got.data()));
    EXPECT_TRUE(AllBytes(got.data(), std::byte{0x42}));
  }
  EXPECT_EQ(rig.stats.Snapshot().Counter("nr_pcache_eviction_to_victim"), 1);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

TEST(PcacheFork, EvictingASharedDirtyLineWithoutAVictimCache) {
  CountingRig rig(/*with_victim=*/false);
  LineId line = rig.LoadDirty(Page(5, kParent), std::byte{0x42});
  ASSERT_EQ(rig.pcache->ShareSpace(kParent, kChild), 1u);
  EXPECT_EQ(rig.pcache->EvictOne(0), EvictOutcome::kSucceed);

  const std::vector<Rmap> both{Page(5, kParent), Page(5, kChild)};
  {
    std::lock_guard lk(rig.mu);
    ASSERT_EQ(rig.wrprotected.size(), 2u);
    EXPECT_EQ(rig.wrprotected[0], std::make_pair(line, Page(5, kParent)));
    EXPECT_EQ(rig.wrprotected[1], std::make_pair(line, Page(5, kChild)));
    EXPECT_EQ(rig.copy_outs, 1);
    ASSERT_EQ(rig.zaps.size(), 1u);
    EXPECT_EQ(rig.zaps[0], both);
  }
  EXPECT_EQ(rig.sink.writes(), 1u);
  std::array<std::byte, kPageSize> got;
  for (const PageKey& k : both) {
    EXPECT_EQ(rig.sink.WritesOf(k), 1u);
    ASSERT_TRUE(rig.sink.Read(k, got.data()));
    EXPECT_TRUE(AllBytes(got.data(), std::byte{0x42}));
  }
  EXPECT_EQ(rig.stats.Snapshot().Counter("nr_pcache_eviction_writeback_sync"), 1);
  EXPECT_EQ(rig.pcache->lines_used(), 0u);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
}

}  // namespace
}  // namespace remora
