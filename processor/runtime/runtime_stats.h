// Counters of the runtime's fault path, zaps and sessions, looked up once by
// name. LegoOS names where one exists; docs/stats.md describes each.
#pragma once

#include "remora/stats.h"

namespace remora {

struct RuntimeCounters {
  explicit RuntimeCounters(StatsRegistry* r);

  Counter* pgfault;               // every fault served (missing + wp)
  Counter* pgfault_missing;
  Counter* pgfault_wp;
  Counter* pgfault_wp_cow;        // first write to a line still shared after fork
  Counter* pgfault_wp_reuse;      // first write to a forked line by its last mapper
  Counter* pgfault_deferred;      // held back while the program forked
  Counter* fault_reader_shared;   // sessions switched to shared reading
  Counter* pgfault_range_gone;    // on memory released meanwhile: only woken
  Counter* fork;                  // forks whose child got a session
  Counter* fork_failed;           // forks the manager could not take over
  Counter* pgfault_concurrent_eviction;  // shared with the pcache's counter
  Counter* pgfault_already_filled;       // another fault filled the page first
  Counter* pgfault_stale_line;           // resident line whose page vanished
  Counter* pgfault_failed;
  Counter* zap_pages;
  Counter* refault_activate;
  Counter* refault_writable;
  Counter* readahead_pages;
  Counter* write_ahead_pages;
  Counter* evict_owner_gone;
  Counter* fill_owner_gone;
  Counter* sessions_started;
  Counter* sessions_ended;
  Counter* ranges_mapped;
  Counter* ranges_unmapped;
  Counter* ranges_discarded;
  Gauge* processes_attached;
  Gauge* zaps_pending;
  Histogram* pgfault_service_ns;   // missing fault: read to installed
  Histogram* wp_fault_service_ns;
};

}  // namespace remora
