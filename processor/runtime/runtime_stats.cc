#include "processor/runtime/runtime_stats.h"

namespace remora {

RuntimeCounters::RuntimeCounters(StatsRegistry* r)
    : pgfault(r->GetCounter("nr_pgfault", "page faults served (missing + write-protect)")),
      pgfault_missing(r->GetCounter("nr_pgfault_missing", "missing-page faults (pcache misses)")),
      pgfault_wp(r->GetCounter("nr_pgfault_wp", "write-protect faults (first write of a clean line)")),
      pgfault_wp_cow(r->GetCounter(
          "nr_pgfault_wp_cow",
          "first writes to a line still shared after fork: the writer got its own line (COW)")),
      pgfault_wp_reuse(r->GetCounter(
          "nr_pgfault_wp_reuse",
          "first writes to a line shared at fork by the only process still mapping it")),
      pgfault_deferred(r->GetCounter("nr_pgfault_deferred_by_fork",
                                     "faults held back until the program's fork was set up")),
      fault_reader_shared(r->GetCounter(
          "nr_fault_reader_shared",
          "programs whose faults came from a second thread: fault threads switched to shared waits")),
      pgfault_range_gone(r->GetCounter(
          "nr_pgfault_range_gone",
          "faults on memory the program was releasing (munmap, madvise): woken, not filled")),
      fork(r->GetCounter("nr_fork", "forks taken over: the child got its own session")),
      fork_failed(r->GetCounter("nr_fork_failed",
                                "forks the manager could not take over (the child was stopped)")),
      pgfault_concurrent_eviction(r->GetCounter(
          "nr_pgfault_due_to_concurrent_eviction",
          "faults on a page that was being evicted at that moment")),
      pgfault_already_filled(r->GetCounter(
          "nr_pgfault_already_filled", "faults resolved by another fault on the same page")),
      pgfault_stale_line(r->GetCounter(
          "nr_pgfault_stale_line", "resident lines found without their page (dropped, refilled)")),
      pgfault_failed(r->GetCounter("nr_pgfault_failed", "faults that could not be served")),
      zap_pages(r->GetCounter("nr_zap_pages", "pages sent to agents to be dropped")),
      refault_activate(r->GetCounter(
          "nr_pcache_refault_activate",
          "fills of pages evicted within a quarter cache's worth of evictions (start referenced)")),
      refault_writable(r->GetCounter(
          "nr_pcache_refault_writable",
          "refaults of pages dirty when evicted, installed writable (no write-protect fault)")),
      readahead_pages(r->GetCounter("nr_pcache_readahead",
                                    "pages filled ahead of a sequential run of misses")),
      write_ahead_pages(r->GetCounter(
          "nr_pcache_write_ahead",
          "resident clean pages un-protected (and dirtied) ahead of a sequential write run")),
      evict_owner_gone(r->GetCounter("nr_evict_owner_gone",
                                     "evicted pages whose process or range was already gone")),
      fill_owner_gone(r->GetCounter(
          "nr_pcache_fill_owner_gone",
          "fills abandoned because the process exited or unmapped the page meanwhile")),
      sessions_started(r->GetCounter("nr_processes_attached", "programs attached")),
      sessions_ended(r->GetCounter("nr_processes_exited", "programs torn down")),
      ranges_mapped(r->GetCounter("nr_ranges_mapped", "ranges registered (mmap)")),
      ranges_unmapped(r->GetCounter("nr_ranges_unmapped", "ranges released (munmap)")),
      ranges_discarded(r->GetCounter("nr_ranges_discarded", "ranges discarded (madvise)")),
      processes_attached(r->GetGauge("processes_attached", "programs attached now")),
      zaps_pending(r->GetGauge("zaps_pending", "zaps queued or sent and not yet acknowledged (at the last snapshot)")),
      pgfault_service_ns(r->GetHistogram("pgfault_service_ns", "ns",
                                         "missing fault: message read to page installed")),
      wp_fault_service_ns(r->GetHistogram("wp_fault_service_ns", "ns",
                                          "write-protect fault: message read to page writable")) {}

}  // namespace remora
