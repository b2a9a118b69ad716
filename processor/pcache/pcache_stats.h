// The pcache's and the victim cache's metrics: one table each (see
// remora/metric_table.h), looked up once so hot paths only bump a sharded
// counter. Names follow LegoOS where one exists; docs/stats.md lists each.
#pragma once

#include "remora/metric_table.h"

namespace remora {

// nr_pgfault_due_to_concurrent_eviction is the pcache's (a fault's fill that
// finds its page's line under reclaim waits for it; a read-ahead fill is not
// counted): the runtime binds this entry for the write-protect faults whose
// line went meanwhile.
#define REMORA_PCACHE_METRICS(X)                                                           \
  X(fill_from_memory, Counter, "nr_pcache_fill_from_memory", "lines",                      \
    "lines filled with data read from a memory node")                                      \
  X(fill_from_victim, Counter, "nr_pcache_fill_from_victim", "lines",                      \
    "lines filled from the victim cache")                                                  \
  X(fill_zerofill, Counter, "nr_pcache_fill_zerofill", "lines",                            \
    "lines filled with zeros (page never written back)")                                   \
  X(fill_copy, Counter, "nr_pcache_fill_copy", "lines",                                    \
    "lines filled by copying another line (copy-on-write)")                                \
  X(fill_from_file, Counter, "nr_pcache_fill_from_file", "lines",                          \
    "lines filled from the file of a private file mapping")                                \
  X(fill_aborted, Counter, "nr_pcache_fill_aborted", "fills",                              \
    "fills abandoned after an I/O error")                                                  \
  X(eviction_triggered, Counter, "nr_pcache_eviction_triggered", "attempts",               \
    "eviction attempts (a set had no free line)")                                          \
  X(eviction_succeed, Counter, "nr_pcache_eviction_succeed", "lines", "lines evicted")     \
  X(eviction_eagain, Counter, "nr_pcache_eviction_eagain", "attempts",                     \
    "eviction attempts that found every line busy")                                        \
  X(eviction_failure, Counter, "nr_pcache_eviction_failure", "attempts",                   \
    "evictions abandoned (unmap, copy or victim insert failed)")                           \
  X(eviction_to_victim, Counter, "nr_pcache_eviction_to_victim", "lines",                  \
    "evicted lines handed to the victim cache")                                            \
  X(eviction_writeback_sync, Counter, "nr_pcache_eviction_writeback_sync", "lines",        \
    "dirty evicted lines written back synchronously (no victim cache)")                    \
  X(eviction_clean_dropped, Counter, "nr_pcache_eviction_clean_dropped", "lines",          \
    "clean evicted lines dropped")                                                         \
  X(direct_reclaim, Counter, "nr_pcache_direct_reclaim", "fills",                          \
    "fills that found their set full and evicted a line themselves")                       \
  X(direct_reclaim_lines, Counter, "nr_pcache_direct_reclaim_lines", "lines",              \
    "lines evicted by fills themselves (not by background reclaim)")                       \
  X(second_chance, Counter, "nr_pcache_lru_second_chance", "lines",                        \
    "referenced lines moved back to MRU instead of being evicted")                         \
  X(walk_path_spared, Counter, "nr_pcache_walk_path_spared", "evictions",                  \
    "evictions that passed over lines on a strided walk's path for another line")          \
  X(bimodal_front, Counter, "nr_pcache_bimodal_front", "lines",                            \
    "fills a bimodal set put at the front of its list (one in 32)")                        \
  X(fault_concurrent_eviction, Counter, "nr_pgfault_due_to_concurrent_eviction", "faults", \
    "faults on a page whose line was being evicted at that moment")                        \
  X(lines_used, Gauge, "pcache_lines_used", "lines", "pcache lines holding a page")

struct PcacheCounters {
  explicit PcacheCounters(StatsRegistry* r) { Register(r); }
  REMORA_METRIC_TABLE(REMORA_PCACHE_METRICS)
};

#define REMORA_VICTIM_METRICS(X)                                                                \
  X(hit, Counter, "nr_victim_hit", "lookups", "victim cache lookups that found the page")       \
  X(miss, Counter, "nr_victim_miss", "lookups", "victim cache lookups that missed")             \
  X(insert, Counter, "nr_victim_insert", "lines", "evicted lines stored in the victim cache")   \
  X(insert_wait, Counter, "nr_victim_insert_wait", "inserts",                                   \
    "inserts that waited for a flush (cache full of dirty lines)")                              \
  X(insert_failed, Counter, "nr_victim_insert_failed", "inserts",                               \
    "inserts refused because write-back kept failing")                                          \
  X(eviction_succeed, Counter, "nr_victim_eviction_succeed", "entries",                         \
    "flushed victims dropped to make room")                                                     \
  X(flush_submitted_dirty, Counter, "nr_victim_flush_submitted_dirty", "pages",                 \
    "dirty victims submitted for write-back")                                                   \
  X(flush_finished_dirty, Counter, "nr_victim_flush_finished_dirty", "pages",                   \
    "dirty victims written back")                                                               \
  X(flush_failed, Counter, "nr_victim_flush_failed", "pages", "victim write-backs that failed") \
  X(flush_orphaned, Counter, "nr_victim_flush_orphaned", "pages",                               \
    "failed write-backs of pages every owner had dropped")                                      \
  X(entries_used, Gauge, "victim_entries_used", "entries", "victim cache entries holding a page")

struct VictimCounters {
  explicit VictimCounters(StatsRegistry* r) { Register(r); }
  REMORA_METRIC_TABLE(REMORA_VICTIM_METRICS)
};

}  // namespace remora
