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
#include <string>

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

  // Choosing a geometry for a size a person typed ("48M", "100M", "1000000").
  // Without a fixed associativity the pcache gets the largest capacity that
  // does not exceed `capacity_bytes` among kMinAutoWays..kMaxAutoWays ways
  // with a power-of-two number of sets. Ties go to kDefaultWays, then to the
  // fewest ways above it (a set scan stays short, the associativity does not
  // drop), then to the most ways below it. Such a geometry is always within
  // 1/16 of the size asked for (for sizes of 128 KiB and more).
  static constexpr std::uint32_t kDefaultWays = 8;
  static constexpr std::uint32_t kMinAutoWays = 4;
  static constexpr std::uint32_t kMaxAutoWays = 32;
  // The smallest size accepted without a fixed associativity: 16 lines
  // (4 sets of 4 ways).
  static constexpr std::uint64_t kMinAutoCapacity = 64 * 1024;
  // ways == 0: choose as above. ways > 0: exactly FromConfig's rules, with
  // its error (naming the nearest valid sizes) when the pair does not fit.
  static Status ForCapacity(std::uint64_t capacity_bytes, std::uint32_t ways, PcacheGeometry* out);

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

  // The configuration that gives this geometry back through FromConfig.
  PcacheConfig config() const { return {capacity_bytes(), ways_}; }
  // "48 MiB = 1024 sets x 12 ways".
  std::string ToString() const;

 private:
  PcacheGeometry(std::uint32_t nr_sets, std::uint32_t ways) : nr_sets_(nr_sets), ways_(ways) {}

  std::uint32_t nr_sets_ = 1;
  std::uint32_t ways_ = 1;
};

}  // namespace remora
