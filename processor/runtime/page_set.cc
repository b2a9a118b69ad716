#include "processor/runtime/page_set.h"

#include <algorithm>
#include <iterator>

namespace remora {

bool PageSet::Contains(std::uint64_t page) const {
  auto it = chunks_.find(ChunkOf(page));
  return it != chunks_.end() && it->second.test(BitOf(page));
}

void PageSet::Insert(std::uint64_t page) {
  Chunk& c = chunks_[ChunkOf(page)];
  const unsigned bit = BitOf(page);
  if (c.test(bit)) return;
  c.set(bit);
  ++size_;
}

void PageSet::EraseRange(std::uint64_t start, std::uint64_t end) {
  if (start >= end || chunks_.empty()) return;
  const std::uint64_t first = ChunkOf(start), last = ChunkOf(end - 1);
  // Clears the part of chunk `it` inside [start, end); drops it if empty.
  auto clip = [&](std::unordered_map<std::uint64_t, Chunk>::iterator it) {
    const std::uint64_t base = it->first * kChunkBytes;
    const std::uint64_t lo = std::max(start, base);
    const std::uint64_t hi = std::min(end, base + kChunkBytes);
    Chunk& c = it->second;
    if (lo == base && hi == base + kChunkBytes) {
      size_ -= c.count();
      return chunks_.erase(it);
    }
    for (std::uint64_t p = lo; p < hi; p += kPageSize) {
      if (c.test(BitOf(p))) {
        c.reset(BitOf(p));
        --size_;
      }
    }
    return c.none() ? chunks_.erase(it) : std::next(it);
  };
  // A range wider than the set (an munmap of a large reservation) walks the
  // set's chunks, not the range's.
  if (last - first + 1 > chunks_.size()) {
    for (auto it = chunks_.begin(); it != chunks_.end();) {
      if (it->first >= first && it->first <= last)
        it = clip(it);
      else
        ++it;
    }
    return;
  }
  for (std::uint64_t k = first; k <= last; ++k) {
    auto it = chunks_.find(k);
    if (it != chunks_.end()) clip(it);
  }
}

}  // namespace remora
