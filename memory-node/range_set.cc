#include "memory-node/range_set.h"

#include <algorithm>
#include <cassert>

namespace remora {

void RangeSet::Add(std::uint64_t start, std::uint64_t end) {
  assert(start < end);
  // First range that could touch [start, end): the one starting at or before
  // start, if it reaches start.
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin() && std::prev(it)->second >= start) --it;
  while (it != ranges_.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(start, end);
}

void RangeSet::Remove(std::uint64_t start, std::uint64_t end) {
  assert(start < end);
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin() && std::prev(it)->second > start) --it;
  while (it != ranges_.end() && it->first < end) {
    const std::uint64_t s = it->first, e = it->second;
    it = ranges_.erase(it);
    if (s < start) ranges_.emplace(s, start);
    if (e > end) {
      ranges_.emplace(end, e);
      break;
    }
  }
}

bool RangeSet::Contains(std::uint64_t addr) const {
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return false;
  --it;
  return addr < it->second;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> RangeSet::Intersect(std::uint64_t start,
                                                                         std::uint64_t end) const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin() && std::prev(it)->second > start) --it;
  for (; it != ranges_.end() && it->first < end; ++it)
    out.emplace_back(std::max(start, it->first), std::min(end, it->second));
  return out;
}

std::uint64_t RangeSet::Size() const {
  std::uint64_t n = 0;
  for (const auto& [s, e] : ranges_) n += e - s;
  return n;
}

}  // namespace remora
