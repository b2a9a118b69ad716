// An exact LRU cache of a given pcache geometry, used as the yardstick for the
// pcache's replacement: same sets, same ways, same set index, but every
// access moves the page to the front of its set. The pcache itself cannot do
// this in the runtime (hits never reach the manager); `remora sim` reports
// both miss ratios so the approximation can be judged.
#pragma once

#include <cstdint>
#include <vector>

#include "processor/pcache/geometry.h"
#include "remora/types.h"

namespace remora {

class LruReference {
 public:
  explicit LruReference(const PcacheGeometry& geometry);

  // Returns true on a hit. A miss inserts the page, evicting the set's least
  // recently used page if the set is full.
  bool Access(const PageKey& key);

  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }

 private:
  PcacheGeometry geometry_;
  // nr_lines slots; set s uses slots [s*ways, s*ways + used_[s]), MRU first.
  std::vector<PageKey> slots_;
  std::vector<std::uint32_t> used_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace remora
