// The pcache simulator behind `remora sim`: replays an address trace through
// the real Pcache and VictimCache, the way the runtime drives them.
//
//   hit   -> policy runtime: nothing, as in the runtime (a resident page
//            does not fault), except a write to a clean line, which is the
//            write-protect fault the runtime serves with OnWrite;
//            policy clock: MarkReferenced (a hint for every hit, as if
//            page tables were sampled: optimistic);
//            policy lru: Touch (every access seen, recency replacement:
//            exact LRU)
//   miss  -> Fill, which may evict (unmap + dirty data to the victim cache);
//            then data from the victim cache, else from the store (a
//            "memory node" fed by the flush thread), else zero-fill: the
//            order FillPlan decides for the runtime too. Policy runtime
//            also keeps the refault shadow as the runtime does: an evicted
//            page is remembered, and a fill of a remembered page is a
//            refault, marked referenced (and installed dirty if it was
//            dirty when evicted, so its next write does not fault)
//   write -> SetDirty
//
// Every access also goes through an exact LRU of the same geometry
// (LruReference), so the result reports both miss ratios; with
// SimOptions::belady, also the optimum (BeladyMin). Page contents are
// versioned patterns (sim_store.h) checked at every fill: data_errors
// counts pages that came back wrong.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "processor/pcache/pcache.h"
#include "processor/pcache/refault_shadow.h"
#include "processor/pcache/victim_cache.h"
#include "processor/sim/belady.h"
#include "processor/sim/lru_reference.h"
#include "processor/sim/sim_store.h"
#include "processor/sim/trace_reader.h"
#include "remora/stats.h"

namespace remora {

// How much of the access stream the pcache sees (see above).
enum class SimPolicy { kRuntime, kClock, kLru };

Status ParseSimPolicy(const std::string& s, SimPolicy* policy);
const char* SimPolicyName(SimPolicy policy);

struct SimOptions {
  PcacheConfig pcache;
  // Victim cache entries; 0 means no victim cache (dirty lines are written
  // back synchronously at eviction).
  std::uint32_t victim_entries = 16;
  bool victim_clean = false;
  SimPolicy policy = SimPolicy::kRuntime;
  // The pcache's replacement policy (replacement.h); policy lru always
  // uses recency, to be exact LRU.
  Replacement replacement = Replacement::kAdaptive;
  // Also count Belady's MIN (fully associative, same number of lines): the
  // fewest misses any policy could have. Keeps the whole trace in memory
  // (4 bytes per access).
  bool belady = false;
};

struct SimResult {
  std::uint32_t sets = 0, ways = 0;
  std::uint64_t accesses = 0, reads = 0, writes = 0;
  std::uint64_t hits = 0, misses = 0;
  std::uint64_t lru_misses = 0;
  bool has_min = false;
  std::uint64_t min_misses = 0;  // Belady's MIN (SimOptions::belady)
  std::uint64_t evictions = 0;
  std::uint64_t victim_hits = 0;
  std::uint64_t fills_memory = 0, fills_zero = 0;
  std::uint64_t writebacks = 0;
  std::uint64_t data_errors = 0;
  std::uint64_t wp_faults = 0;  // policy runtime: writes to clean resident lines
  std::uint64_t refaults = 0;   // policy runtime: fills of pages in the shadow
  StatsSnapshot stats;          // every pcache and victim cache counter of the run
  double miss_ratio() const { return accesses ? double(misses) / double(accesses) : 0.0; }
  double lru_miss_ratio() const { return accesses ? double(lru_misses) / double(accesses) : 0.0; }
  double min_miss_ratio() const { return accesses ? double(min_misses) / double(accesses) : 0.0; }
  // Misses relative to MIN's (1.0: optimal), for the pcache and exact LRU.
  double gap() const { return min_misses ? double(misses) / double(min_misses) : 0.0; }
  double lru_gap() const { return min_misses ? double(lru_misses) / double(min_misses) : 0.0; }
};

class PcacheSim {
 public:
  static Status Create(const SimOptions& options, std::unique_ptr<PcacheSim>* out);
  ~PcacheSim();

  Status Access(const TraceRecord& rec);
  // Flushes the victim cache, checks the pcache's invariants and reports.
  Status Finish(SimResult* result);

 private:
  explicit PcacheSim(const SimOptions& options) : options_(options) {}
  Status Miss(const PageKey& key, bool write);
  Status WriteProtectFault(LineId line, const PageKey& key);
  Status HookCopyOut(LineId line, void* dst);

  // What a line holds: the simulator's page data (see sim_store.h).
  struct Frame {
    PageKey key;
    std::uint64_t version = 0;
  };

  const SimOptions options_;
  StatsRegistry stats_;
  SimStore store_;
  std::unique_ptr<VictimCache> victim_;
  std::unique_ptr<Pcache> pcache_;
  std::unique_ptr<LruReference> lru_;
  std::unique_ptr<RefaultShadow> shadow_;  // policy runtime only
  BeladyMin min_;
  std::vector<Frame> frames_;                                       // by line id
  std::unordered_map<PageKey, std::uint64_t, PageKeyHash> latest_;  // last written version
  alignas(64) std::array<std::byte, kPageSize> page_;
  SimResult r_;
};

// Replays a whole trace.
Status ReplayTrace(TraceReader* reader, const SimOptions& options, SimResult* result);

}  // namespace remora
