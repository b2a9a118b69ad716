// PagedRegion: memory of one address space accessed through explicit loads
// and stores that go through the pcache, the victim cache and a transport.
//
// This is the whole miss path of Remora without the kernel in the middle:
// where the runtime learns of a miss from a userfaultfd fault, PagedRegion
// learns of it from a Read/Write call; the rest — fill from the victim cache,
// from the memory node, or zero-fill for a page never written back (FillPlan
// decides, as for the runtime); eviction of the set's LRU line; write-back of
// dirty lines through the victim cache's flush thread — is the same code.
// `remora demo` runs a workload on it, and benchmarks use it to measure the
// pcache without fault costs.
//
// Page data of resident lines lives in a frame array indexed by line id.
// Hits pin the line while copying, so a concurrent eviction waits; several
// threads may call Read/Write at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "processor/pcache/pcache.h"
#include "processor/pcache/victim_cache.h"
#include "processor/runtime/runtime_stats.h"
#include "processor/runtime/transport_writeback_sink.h"
#include "remora/metric_table.h"
#include "remora/stats.h"
#include "remora/status.h"
#include "remora/transport.h"

namespace remora {

struct PagedRegionOptions {
  PcacheConfig pcache;
  std::uint32_t victim_entries = 16;
  Transport* transport = nullptr;  // required; not owned
  Asid asid = 0;
  std::uint64_t base = 0;          // page aligned
  std::uint64_t length = 0;        // bytes; rounded up to pages
  StatsRegistry* stats = nullptr;  // required; not owned
};

// The region's own metrics. Its misses are its faults: it counts them in
// the runtime's nr_pgfault entry, which means the same thing.
#define REMORA_PAGED_REGION_METRICS(X)                     \
  X(fault_service_ns, Histogram, "fault_service_ns", "ns", \
    "time to serve a pcache miss, fill to ready")

struct PagedRegionMetrics {
  REMORA_METRIC_TABLE(REMORA_PAGED_REGION_METRICS)
};

class PagedRegion {
 public:
  // Creates the address space on the memory node and registers the range.
  static Status Create(const PagedRegionOptions& options, std::unique_ptr<PagedRegion>* out);
  // Release() if the caller did not.
  ~PagedRegion();

  Status Read(std::uint64_t uva, void* dst, std::size_t len);
  Status Write(std::uint64_t uva, const void* src, std::size_t len);

  // Drops every line and victim entry of the space and destroys it on the
  // memory node. Nothing is written back: the data is being discarded.
  Status Release();

  Pcache* pcache() { return pcache_.get(); }
  VictimCache* victim() { return victim_.get(); }

 private:
  explicit PagedRegion(const PagedRegionOptions& options);
  // Pins the page of `uva`, filling it first on a miss. *line is pinned.
  Status Acquire(std::uint64_t page, bool write, LineId* line);
  Status FillLine(const PageKey& key, LineId line);
  template <typename CopyFn>
  Status ForEachPage(std::uint64_t uva, std::size_t len, bool write, CopyFn copy);

  PagedRegionOptions opts_;
  std::unique_ptr<std::byte[]> frames_;
  TransportWritebackSink sink_;
  std::unique_ptr<VictimCache> victim_;
  std::unique_ptr<Pcache> pcache_;
  // True until Create succeeded: a half-built region must not destroy an
  // address space it never created (the id may belong to someone else).
  bool released_ = true;

  // Pages that were ever dirtied. Any other page has never been written back,
  // so a miss on it zero-fills locally with no round trip to the memory node.
  std::mutex written_mu_;
  std::unordered_set<std::uint64_t> written_;

  Counter* nr_pgfault_;
  Histogram* fault_service_ns_;
};

}  // namespace remora
