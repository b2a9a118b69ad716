// RangeSet: the registered address ranges of one address space, as sorted,
// disjoint, non-adjacent [start, end) intervals (adjacent ones are merged, so
// registering a range twice or in pieces gives the same set).
//
// Not thread-safe: the PageStore's lock covers it.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace remora {

class RangeSet {
 public:
  // Both take [start, end) with start < end.
  void Add(std::uint64_t start, std::uint64_t end);
  void Remove(std::uint64_t start, std::uint64_t end);

  bool Contains(std::uint64_t addr) const;
  // The parts of [start, end) that are in the set, in order.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> Intersect(std::uint64_t start,
                                                                 std::uint64_t end) const;
  // Bytes covered.
  std::uint64_t Size() const;
  std::size_t count() const { return ranges_.size(); }
  const std::map<std::uint64_t, std::uint64_t>& ranges() const { return ranges_; }

 private:
  std::map<std::uint64_t, std::uint64_t> ranges_;  // start -> end
};

}  // namespace remora
