// The pcache's and the victim cache's metrics, looked up once by name so hot
// paths only bump a sharded counter. Names follow LegoOS where one exists;
// docs/pcache.md lists what each one means.
#pragma once

#include "remora/stats.h"

namespace remora {

struct PcacheCounters {
  explicit PcacheCounters(StatsRegistry* r);

  Counter* fill_from_memory;
  Counter* fill_from_victim;
  Counter* fill_zerofill;
  Counter* fill_copy;
  Counter* fill_from_file;
  Counter* fill_aborted;
  Counter* eviction_triggered;
  Counter* eviction_succeed;
  Counter* eviction_eagain;
  Counter* eviction_failure;
  Counter* eviction_to_victim;
  Counter* eviction_writeback_sync;  // dirty line written straight to the sink
  Counter* eviction_clean_dropped;
  Counter* second_chance;
  Counter* fault_concurrent_eviction;
  Gauge* lines_used;
};

struct VictimCounters {
  explicit VictimCounters(StatsRegistry* r);

  Counter* hit;
  Counter* miss;
  Counter* insert;
  Counter* insert_wait;
  Counter* insert_failed;
  Counter* eviction_succeed;
  Counter* flush_submitted_dirty;
  Counter* flush_finished_dirty;
  Counter* flush_failed;
  Counter* flush_orphaned;
  Gauge* entries_used;
};

}  // namespace remora
