#include "processor/pcache/pcache_stats.h"

namespace remora {

PcacheCounters::PcacheCounters(StatsRegistry* r)
    : fill_from_memory(r->GetCounter("nr_pcache_fill_from_memory",
                                     "lines filled with data read from a memory node")),
      fill_from_victim(r->GetCounter("nr_pcache_fill_from_victim",
                                     "lines filled from the victim cache")),
      fill_zerofill(r->GetCounter("nr_pcache_fill_zerofill",
                                  "lines filled with zeros (page never written back)")),
      fill_copy(r->GetCounter("nr_pcache_fill_copy",
                              "lines filled by copying another line (copy-on-write)")),
      fill_from_file(r->GetCounter("nr_pcache_fill_from_file",
                                   "lines filled from the file of a private file mapping")),
      fill_aborted(r->GetCounter("nr_pcache_fill_aborted", "fills abandoned after an I/O error")),
      eviction_triggered(r->GetCounter("nr_pcache_eviction_triggered",
                                       "eviction attempts (a set had no free line)")),
      eviction_succeed(r->GetCounter("nr_pcache_eviction_succeed", "lines evicted")),
      eviction_eagain(r->GetCounter("nr_pcache_eviction_eagain",
                                    "eviction attempts that found every line busy")),
      eviction_failure(r->GetCounter("nr_pcache_eviction_failure",
                                     "evictions abandoned (unmap, copy or victim insert failed)")),
      eviction_to_victim(r->GetCounter("nr_pcache_eviction_to_victim",
                                       "evicted lines handed to the victim cache")),
      eviction_writeback_sync(r->GetCounter("nr_pcache_eviction_writeback_sync",
                                            "dirty evicted lines written back synchronously "
                                            "(no victim cache)")),
      eviction_clean_dropped(r->GetCounter("nr_pcache_eviction_clean_dropped",
                                           "clean evicted lines dropped")),
      second_chance(r->GetCounter("nr_pcache_lru_second_chance",
                                  "referenced lines moved back to MRU instead of being evicted")),
      fault_concurrent_eviction(r->GetCounter("nr_pgfault_due_to_concurrent_eviction",
                                              "fills that waited for the same page's eviction")),
      lines_used(r->GetGauge("pcache_lines_used", "pcache lines holding a page")) {}

VictimCounters::VictimCounters(StatsRegistry* r)
    : hit(r->GetCounter("nr_victim_hit", "victim cache lookups that found the page")),
      miss(r->GetCounter("nr_victim_miss", "victim cache lookups that missed")),
      insert(r->GetCounter("nr_victim_insert", "evicted lines stored in the victim cache")),
      insert_wait(r->GetCounter("nr_victim_insert_wait",
                                "inserts that waited for a flush (cache full of dirty lines)")),
      insert_failed(r->GetCounter("nr_victim_insert_failed",
                                  "inserts refused because write-back kept failing")),
      eviction_succeed(r->GetCounter("nr_victim_eviction_succeed",
                                     "flushed victims dropped to make room")),
      flush_submitted_dirty(r->GetCounter("nr_victim_flush_submitted_dirty",
                                          "dirty victims submitted for write-back")),
      flush_finished_dirty(r->GetCounter("nr_victim_flush_finished_dirty",
                                         "dirty victims written back")),
      flush_failed(r->GetCounter("nr_victim_flush_failed", "victim write-backs that failed")),
      flush_orphaned(r->GetCounter("nr_victim_flush_orphaned",
                                   "failed write-backs of pages every owner had dropped")),
      entries_used(r->GetGauge("victim_entries_used", "victim cache entries holding a page")) {}

}  // namespace remora
