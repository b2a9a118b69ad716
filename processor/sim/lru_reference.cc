#include "processor/sim/lru_reference.h"

#include <algorithm>

namespace remora {

LruReference::LruReference(const PcacheGeometry& geometry)
    : geometry_(geometry), slots_(geometry.nr_lines()), used_(geometry.nr_sets(), 0) {}

bool LruReference::Access(const PageKey& key) {
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  const auto begin = slots_.begin() + geometry_.FirstLineOfSet(set);
  const auto end = begin + used_[set];
  auto it = std::find(begin, end, key);
  const bool hit = it != end;
  if (hit) {
    ++hits_;
  } else {
    ++misses_;
    if (used_[set] < geometry_.ways()) {
      it = end;  // a free slot
      ++used_[set];
    } else {
      it = end - 1;  // the least recently used page goes
    }
    *it = key;
  }
  std::rotate(begin, it, it + 1);  // to the front: most recently used
  return hit;
}

}  // namespace remora
