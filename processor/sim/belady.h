// Belady's MIN: the fewest misses any replacement policy can have on a
// reference string, with a fully associative cache of a given number of
// pages. It evicts the page whose next use is farthest in the future, so it
// needs the whole string first: `remora sim --opt` records the trace and
// asks at the end. The bound also holds for the unfiltered reference string
// of a fault trace (fault_trace.h): removing references never adds misses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "remora/types.h"

namespace remora {

class BeladyMin {
 public:
  // Appends a reference to `key`'s page.
  void Add(const PageKey& key);
  std::size_t references() const { return refs_.size(); }
  std::size_t distinct() const { return ids_.size(); }
  // Misses of MIN with `capacity` pages (cold misses included).
  std::uint64_t Misses(std::size_t capacity) const;

 private:
  std::unordered_map<PageKey, std::uint32_t, PageKeyHash> ids_;
  std::vector<std::uint32_t> refs_;  // page ids, in reference order
};

}  // namespace remora
