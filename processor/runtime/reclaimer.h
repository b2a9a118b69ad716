// Background reclaim: evicts pcache lines ahead of need, so that a fault
// usually finds a free line in its set and only fills and installs it (Linux's
// kswapd against direct reclaim; LegoOS evicts on the fault path only).
//
// Each set has two watermarks of free lines, the same for every set:
//
//   low   a fill that leaves its set with fewer free lines than this queues
//         the set (Pcache's on_allocate hook calls OnAllocate)
//   high  the reclaimer evicts lines of a queued set until it has this many
//         free lines again
//
// A set the reclaimer has caught up with has at least `low` free lines (it
// holds at most ways - low pages; the fill that takes it below low queues it),
// so in steady state a pcache of N lines in S sets holds at most N - S * low
// pages. A fill that still finds its set full evicts a line itself (direct
// reclaim, counted by the pcache as nr_pcache_direct_reclaim). The pcache's
// capacity is never exceeded either way: the watermarks only keep lines free
// inside it.
//
// The reclaimer thread works in batches of up to `batch` evicted lines, taken
// from the queued sets in the order they were queued (a set still below its
// high watermark when the budget runs out goes to the back). Each line goes
// through Pcache::EvictOne, so the pcache's replacement policy picks the
// victim and its hooks do the rest: dirty data to the victim cache (whose
// flush thread writes it to the memory node in batches) and zaps queued for
// the programs' agents. After a batch, end_batch() sends what the batch
// queued: one zap message per program instead of one per timer tick.
//
// Evictions go through the pcache's evict gate, so a fork's PauseEvictions
// holds the reclaimer off like any other eviction. The thread sleeps on a
// condition variable while nothing is queued and stops at Stop().
//
// Backing off: the free lines are capacity the program cannot use. A loop
// that just fits its sets (a matrix column taking 23-27 of 29 ways) misses
// on every access once a line or two of each set is kept free, and the
// reserve then costs a fault for each eviction it takes off the fault path.
// The refault shadow tells such misses apart (Linux's refault distance,
// per set): a page evicted while the reserve was held that faults back
// before its set evicted `high` more lines would likely have stayed had
// those lines been the program's (nr_reclaim_reserve_misses; OnRefault).
// Every kEpochLines background evictions the reclaimer judges its epoch:
// more reserve misses than a quarter of them (a miss costs several
// evictions) and it stops holding lines free for a while
// (nr_reclaim_pauses): kFirstPause, twice as long after each bad epoch that
// follows one, at most kMaxPause; a good epoch ends the doubling. While it
// pauses, fills queue nothing and every eviction is the fault's own; what
// it judges after the pause is the reserve held again. Only adaptive
// watermarks (the default) back off.
//
// Locking: mu_ is a leaf. OnAllocate takes it with no pcache lock held (the
// caller may hold a line lock and a session's fault gate); the thread drops it
// before every eviction and before end_batch().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "processor/pcache/pcache.h"
#include "processor/runtime/runtime_stats.h"
#include "remora/status.h"

namespace remora {

// Free lines per set (see the header). low == 0: no background reclaim.
struct Watermarks {
  std::uint32_t low = 0;
  std::uint32_t high = 0;
  // Back off when the free lines cost more misses than they save (see
  // "Backing off"). The default watermarks do; configured ones are a
  // reserve the user chose and are kept as given.
  bool adaptive = false;
  bool enabled() const { return low > 0; }
};

// The default for a geometry: for kMinReclaimWays ways or more and at least
// kMinReclaimLines lines, low = ways / 16 and high = 2 * low (16 ways: one
// line kept free, two after a reclaim). Below that, 0. A line kept free per
// set is capacity the program cannot use: with 8 ways it is an eighth of the
// pcache, and a loop that just fits in 8 ways thrashes in 7. Measured with
// matmul (N=800, 4 MiB pcache, 8 ways, about 27% of its working set): with
// watermarks 1/2 it did not finish in 300 s; without background reclaim it
// took under 100 s. Capacity beats fault latency when the pcache is tight.
//
// And none when the manager may run on one CPU only (`cpus`, what its
// affinity allows: `taskset -c 0 remora run ...`): the reclaimer would
// only move the eviction work from the fault thread to another thread of
// the same CPU, and still keep lines free. Measured at a quarter of each
// working set with everything on one CPU, three runs each: pca 5.9-6.5 s
// without against 6.3-7.9 s with, wordcount_mr 5.3-6.4 s against
// 5.8-6.5 s, kmeans 1.25-1.47 s against 1.46-1.68 s, and matmul (N=800,
// 29 ways) 50 s against 169-198 s. With two CPUs it pays on the first two
// (pca 4.1-4.5 s against 5.1-5.4 s without, wordcount_mr 4.9-5.2 s against
// 5.3-6.6 s), so it stays on there.
inline constexpr std::uint32_t kMinReclaimWays = 16;
inline constexpr std::uint32_t kMinReclaimLines = 256;
Watermarks DefaultWatermarks(const PcacheGeometry& geometry, unsigned cpus);

// The CPUs this process may run on (its affinity mask), at least 1.
unsigned CpusAllowed();

// The watermarks to use: `low` and `high` as configured (negative: the
// default of DefaultWatermarks for `cpus`, adaptive; high alone negative:
// 2 * low). A configured low is not adaptive.
// Fails unless low <= high < ways, or both are 0.
Status ResolveWatermarks(const PcacheGeometry& geometry, unsigned cpus, int low, int high,
                         Watermarks* out);

struct ReclaimerOptions {
  Watermarks watermarks;
  // Lines evicted per batch (one end_batch() each).
  std::uint32_t batch = 32;
  // Called by the reclaimer after a batch that evicted something, with no
  // lock held: sends the zaps the batch queued. May be empty.
  std::function<void()> end_batch;
  RuntimeCounters* counters = nullptr;  // required; not owned
  // False: no thread; the owner calls RunBatch() (tests).
  bool background = true;
};

class Reclaimer {
 public:
  // Starts the thread if options.background and the watermarks are enabled.
  Reclaimer(Pcache* pcache, ReclaimerOptions options);
  ~Reclaimer();  // Stop()

  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;

  const Watermarks& watermarks() const { return options_.watermarks; }

  // The pcache allocated a line of `set`, leaving `free_left` free lines:
  // queues the set if that is below the low watermark. Cheap when it is not.
  void OnAllocate(std::uint32_t set, std::uint32_t free_left) EXCLUDES(mu_);

  // One batch on the calling thread: reclaims queued sets until `batch`
  // lines went or nothing is queued. Returns the lines evicted.
  std::uint32_t RunBatch() EXCLUDES(mu_);

  // Whether lines are kept free now (enabled and not paused): the
  // eviction hooks tell the refault shadow (ShadowEntry::reserve).
  bool Holding() const;
  // A page evicted while lines were held free faulted back after
  // `set_distance` more evictions of its set (see "Backing off").
  void OnRefault(std::uint32_t set_distance);
  // Whether background reclaim is paused now.
  bool Paused() const;

  static constexpr std::uint32_t kEpochLines = 1024;
  static constexpr std::chrono::milliseconds kFirstPause{500};
  static constexpr std::chrono::milliseconds kMaxPause{16000};

  // The sets queued now, in order (tests).
  std::vector<std::uint32_t> QueuedSets() const EXCLUDES(mu_);
  // Waits until nothing is queued and no batch runs; false on timeout.
  bool WaitIdle(std::chrono::milliseconds timeout) EXCLUDES(mu_);

  // Ends the thread after the eviction in flight; queued sets are dropped.
  void Stop() EXCLUDES(mu_);

 private:
  void Loop() EXCLUDES(mu_);
  // Evicts lines of `set` until it has the high watermark free, the budget
  // is spent, or no line can go (all busy, or an eviction failed). *done:
  // the set needs nothing more now.
  std::uint32_t ReclaimSet(std::uint32_t set, std::uint32_t budget, bool* done);
  // Counts `evicted` background evictions into the epoch and judges it
  // when it is complete.
  void EndOfBatch(std::uint32_t evicted) EXCLUDES(mu_);

  Pcache* const pcache_;
  const ReclaimerOptions options_;
  RuntimeCounters& counters_;

  mutable Mutex mu_;
  CondVar wake_cv_;  // a set was queued, or Stop()
  CondVar idle_cv_;  // a batch ended with nothing queued
  std::deque<std::uint32_t> queue_ GUARDED_BY(mu_);
  std::vector<bool> queued_ GUARDED_BY(mu_);   // per set: in queue_
  std::uint32_t running_ GUARDED_BY(mu_) = 0;  // batches in progress
  bool stop_ GUARDED_BY(mu_) = false;
  // The epoch (see "Backing off"): background evictions and reserve
  // misses; those come from fault threads without mu_.
  std::uint32_t epoch_evicted_ GUARDED_BY(mu_) = 0;
  std::atomic<std::uint32_t> epoch_misses_{0};
  std::chrono::nanoseconds pause_ GUARDED_BY(mu_){0};  // the last pause (0: none)
  // steady_clock nanoseconds until which reclaim pauses.
  std::atomic<std::int64_t> paused_until_ns_{0};
  std::thread thread_;
};

}  // namespace remora
