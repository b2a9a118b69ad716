// Several threads faulting, writing, hinting and evicting at once, on
// different and on the same sets. Each thread behaves like a program plus
// the runtime: it writes a page only while it holds a pin on its line (the
// runtime's wrprotect hook is what stops a real program), and checks at every
// fill that the page came back with the last data written to it.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <unordered_map>

#include "pcache_test_util.h"

namespace remora {
namespace {

using testing::Page;
using testing::PcacheRig;
using testing::RigConfig;

// Page content: its key and a version, repeated.
void Stamp(void* frame, const PageKey& key, std::uint64_t version) {
  std::uint64_t words[kPageSize / 8];
  for (std::size_t i = 0; i < kPageSize / 8; i += 4) {
    words[i] = key.asid;
    words[i + 1] = key.uva;
    words[i + 2] = version;
    words[i + 3] = ~version;
  }
  std::memcpy(frame, words, kPageSize);
}

bool HasStamp(const void* frame, const PageKey& key, std::uint64_t version) {
  if (version == 0) return testing::AllBytes(frame, std::byte{0});
  std::array<std::byte, kPageSize> want;
  Stamp(want.data(), key, version);
  return std::memcmp(frame, want.data(), kPageSize) == 0;
}

struct Worker {
  Asid asid;
  std::vector<PageKey> pages;
  std::unordered_map<std::uint64_t, std::uint64_t> version;  // uva -> last written
  std::uint64_t bad = 0, busy = 0, ops = 0;
};

// One access: fault the page in if needed, maybe write it, maybe hint.
void Access(PcacheRig& rig, Worker& w, const PageKey& key, bool write, bool hint) {
  for (;;) {
    FillResult r;
    Status st = rig.pcache->Fill(key, &r);
    if (st.code() == Code::kBusy) {  // every line of the set held: try again
      ++w.busy;
      std::this_thread::yield();
      continue;
    }
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (r.allocated) {
      auto& frame = rig.frames[r.line];
      bool dirty = false;
      FillSource src = FillSource::kZeroFill;
      if (rig.victim->Take(key, frame.data(), &dirty))
        src = FillSource::kVictimCache;
      else if (rig.sink.Read(key, frame.data()))
        src = FillSource::kMemoryNode;
      else
        frame.fill(std::byte{0});
      if (!HasStamp(frame.data(), key, w.version[key.uva])) ++w.bad;
      rig.pcache->CompleteFill(r.line, src, dirty);
    }
    LineId line;
    if (!rig.pcache->Pin(key, &line)) continue;  // evicted already: fault again
    if (write) {
      Stamp(rig.frames[line].data(), key, ++w.version[key.uva]);
      ASSERT_TRUE(rig.pcache->SetDirty(key));
    }
    if (hint) rig.pcache->MarkReferenced(line);
    rig.pcache->Unpin(line);
    ++w.ops;
    return;
  }
}

void RunWorkers(PcacheRig& rig, std::vector<Worker>& workers, int iterations,
                bool background_evictor) {
  std::atomic<bool> stop{false};
  std::thread evictor;
  if (background_evictor) {
    evictor = std::thread([&] {
      std::uint32_t set = 0;
      while (!stop.load()) {
        Status why;
        EvictOutcome o = rig.pcache->EvictOne(set, &why);
        EXPECT_NE(o, EvictOutcome::kFailed) << why.ToString();
        set = (set + 1) % rig.pcache->geometry().nr_sets();
        std::this_thread::yield();
      }
    });
  }
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < workers.size(); ++t) {
    threads.emplace_back([&, t] {
      Worker& w = workers[t];
      std::mt19937 rng(static_cast<unsigned>(t) * 7919 + 1);
      for (int i = 0; i < iterations; ++i) {
        const PageKey& key = w.pages[rng() % w.pages.size()];
        Access(rig, w, key, rng() % 3 == 0, rng() % 2 == 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  stop = true;
  if (evictor.joinable()) evictor.join();
}

void CheckAndTearDown(PcacheRig& rig, std::vector<Worker>& workers) {
  for (const Worker& w : workers) EXPECT_EQ(w.bad, 0u) << "asid " << w.asid << " lost data";
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok()) << rig.pcache->CheckInvariants().ToString();
  EXPECT_EQ(rig.Count("nr_pcache_eviction_triggered"), rig.Count("nr_pcache_eviction_succeed") +
                                                           rig.Count("nr_pcache_eviction_eagain") +
                                                           rig.Count("nr_pcache_eviction_failure"));
  EXPECT_EQ(rig.Count("nr_pcache_eviction_failure"), 0);
  // Leak check: once every address space is gone, no line is in use.
  for (const Worker& w : workers) rig.pcache->RemoveSpace(w.asid);
  EXPECT_EQ(rig.pcache->lines_used(), 0u);
  EXPECT_EQ(rig.Count("pcache_lines_used"), 0);
  ASSERT_TRUE(rig.pcache->CheckInvariants().ok());
  ASSERT_TRUE(rig.victim->Flush().ok());
  for (const Worker& w : workers) rig.victim->DropSpace(w.asid);
  EXPECT_EQ(rig.victim->used(), 0u);
}

TEST(PcacheConcurrency, ThreadsOnDifferentSets) {
  // 8 sets x 4 ways; thread t uses only pages of sets 2t and 2t+1.
  PcacheRig rig(RigConfig{.capacity = 32 * kPageSize, .ways = 4, .victim_entries = 8});
  std::vector<Worker> workers(4);
  for (std::uint32_t t = 0; t < 4; ++t) {
    workers[t].asid = 100 + t;
    for (std::uint64_t k = 0; k < 6; ++k) {
      workers[t].pages.push_back(Page(k * 8 + 2 * t, 100 + t));
      workers[t].pages.push_back(Page(k * 8 + 2 * t + 1, 100 + t));
    }
  }
  RunWorkers(rig, workers, 3000, /*background_evictor=*/false);
  CheckAndTearDown(rig, workers);
  EXPECT_GT(rig.Count("nr_pcache_eviction_succeed"), 0);
}

TEST(PcacheConcurrency, ThreadsOnOneSet) {
  // Everyone fights over one set of 4 ways, with a background evictor too.
  PcacheRig rig(RigConfig{.capacity = 4 * kPageSize, .ways = 4, .victim_entries = 4});
  std::vector<Worker> workers(4);
  for (std::uint32_t t = 0; t < 4; ++t) {
    workers[t].asid = 200 + t;
    for (std::uint64_t k = 0; k < 5; ++k) workers[t].pages.push_back(Page(k, 200 + t));
  }
  RunWorkers(rig, workers, 2000, /*background_evictor=*/true);
  CheckAndTearDown(rig, workers);
  EXPECT_GT(rig.Count("nr_victim_hit"), 0);
}

TEST(PcacheConcurrency, ThreadsSharingPages) {
  // All threads read the same pages of one address space (fills of one page
  // race and must share a line); writes go to each thread's private pages.
  PcacheRig rig(RigConfig{.capacity = 16 * kPageSize, .ways = 4, .victim_entries = 4});
  constexpr Asid kShared = 300;
  std::vector<Worker> workers(4);
  for (std::uint32_t t = 0; t < 4; ++t) {
    workers[t].asid = 400 + t;
    for (std::uint64_t k = 0; k < 6; ++k) workers[t].pages.push_back(Page(k, 400 + t));
  }
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      Worker reader{kShared, {}, {}, 0, 0, 0};
      for (std::uint64_t k = 0; k < 12; ++k) reader.pages.push_back(Page(k, kShared));
      std::mt19937 rng(t + 99);
      for (int i = 0; i < 3000; ++i)
        Access(rig, reader, reader.pages[rng() % reader.pages.size()], false, rng() % 2 == 0);
      bad += static_cast<int>(reader.bad);
    });
  }
  RunWorkers(rig, workers, 2000, /*background_evictor=*/false);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  rig.pcache->RemoveSpace(kShared);
  CheckAndTearDown(rig, workers);
  rig.victim->DropSpace(kShared);
  EXPECT_EQ(rig.victim->used(), 0u);
}

}  // namespace
}  // namespace remora
