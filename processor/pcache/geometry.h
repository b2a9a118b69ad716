// The shape of the pcache: how many sets, how many ways, which set a page
// belongs to.
//
// Lines are 4 KiB (one page). A page's set comes from its virtual page number
// only, as in LegoOS: set = (uva >> 12) & (nr_sets - 1). The address-space id
// is deliberately left out: after fork the parent and the child share a line
// at the same uva, and the copy made when one of them writes (copy-on-write)
// must land in the same set so that one set scan finds every candidate.
//
// Line ids are the stable indexes 0 .. nr_lines()-1; the lines of set s are
// s*ways .. s*ways+ways-1, so callers can keep side arrays indexed by line id.
#pragma once

#include <cstdint>

#include "remora/status.h"
#include "remora/types.h"

namespace remora {

using LineId = std::uint32_t;

// What the user configures.
struct PcacheConfig {
  std::uint64_t capacity_bytes = 0;
  std::uint32_t ways = 8;  // associativity, 1..kMaxWays
};

class PcacheGeometry {
 public:
  static constexpr std::uint32_t kMaxWays = 64;

  // Checks that `config` gives 1..64 ways and a power-of-two number of sets
  // (capacity = sets * ways * 4 KiB). On error the message names the nearest
  // capacities that would work.
  static Status FromConfig(const PcacheConfig& config, PcacheGeometry* out);

  PcacheGeometry() = default;

  std::uint32_t nr_sets() const { return nr_sets_; }
  std::uint32_t ways() const { return ways_; }
  std::uint32_t nr_lines() const { return nr_sets_ * ways_; }
  std::uint64_t capacity_bytes() const { return std::uint64_t{nr_lines()} * kPageSize; }

  std::uint32_t SetIndex(std::uint64_t uva) const {
    return static_cast<std::uint32_t>((uva >> kPageShift) & (nr_sets_ - 1));
  }
  std::uint32_t SetOfLine(LineId line) const { return line / ways_; }
  LineId FirstLineOfSet(std::uint32_t set) const { return set * ways_; }

 private:
  PcacheGeometry(std::uint32_t nr_sets, std::uint32_t ways) : nr_sets_(nr_sets), ways_(ways) {}

  std::uint32_t nr_sets_ = 1;
  std::uint32_t ways_ = 1;
};

}  // namespace remora
