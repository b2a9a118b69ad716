// One set of the pcache: its lock, its LRU list and its free list.
//
// The LRU list runs from most protected (front, "MRU") to next victim
// (back, "LRU"). Which end a fill goes to is the replacement policy's choice
// (replacement.h): the recency policy puts it at the front, the bimodal one
// at the back. Lines under reclaim are on neither list. Sets are cache-line
// aligned so two sets' locks never share a cache line: different sets never
// contend, not even falsely.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/mutex.h"
#include "processor/pcache/line.h"

namespace remora {

struct alignas(64) PcacheSet {
  Mutex mu;
  // Signalled whenever a line of this set is unlocked, unpinned, freed or
  // finishes reclaim: everyone waiting for a line of this set rechecks.
  CondVar cv;
  LineList lru GUARDED_BY(mu);
  LineList free GUARDED_BY(mu);
  // Fills inserted by the bimodal policy, so that one in kBimodalThrottle
  // goes to the front (replacement.h).
  std::uint32_t bimodal_fills GUARDED_BY(mu) = 0;
  // Victims picked in this set so far (wrapping): the set's clock, by which
  // a refault's distance is measured (Pcache::SetEvictions). Written under
  // mu, read without it.
  std::atomic<std::uint32_t> evictions{0};
};

}  // namespace remora
