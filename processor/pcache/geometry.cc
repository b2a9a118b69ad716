#include "processor/pcache/geometry.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <string>

#include "common/size.h"

namespace remora {
namespace {

// FormatSize rounds; a capacity that is not a whole number of KiB is shown in
// bytes too so the user sees why it was rejected.
std::string Describe(std::uint64_t bytes) {
  std::string s = FormatSize(bytes);
  if (bytes % 1024 != 0) s += " (" + std::to_string(bytes) + " bytes)";
  return s;
}

}  // namespace

Status PcacheGeometry::FromConfig(const PcacheConfig& config, PcacheGeometry* out) {
  const std::uint32_t ways = config.ways;
  if (ways < 1 || ways > kMaxWays) {
    return {Code::kInvalidArgument, "pcache associativity must be 1.." + std::to_string(kMaxWays) +
                                        " ways, got " + std::to_string(ways)};
  }
  const std::uint64_t set_bytes = std::uint64_t{ways} * kPageSize;
  const std::uint64_t cap = config.capacity_bytes;
  if (cap < set_bytes) {
    return {Code::kInvalidArgument, "pcache capacity " + Describe(cap) +
                                        " is smaller than one set (" + std::to_string(ways) +
                                        " ways x 4 KiB = " + FormatSize(set_bytes) + ")"};
  }
  const std::uint64_t sets = cap / set_bytes;
  if (cap % set_bytes != 0 || !std::has_single_bit(sets)) {
    // Name the two valid capacities around the requested one.
    const std::uint64_t lower = std::bit_floor(sets) * set_bytes;
    const std::uint64_t upper = lower * 2;
    return {Code::kInvalidArgument,
            "pcache capacity " + Describe(cap) + " with " + std::to_string(ways) +
                " ways does not give a power-of-two number of sets (capacity = sets x ways x 4 "
                "KiB); try " +
                FormatSize(lower) + " or " + FormatSize(upper)};
  }
  // Line ids are 32-bit.
  if (sets * ways > std::numeric_limits<std::uint32_t>::max()) {
    return {Code::kInvalidArgument, "pcache capacity " + Describe(cap) + " is too large"};
  }
  *out = PcacheGeometry(static_cast<std::uint32_t>(sets), ways);
  return Status::Ok();
}

namespace {

// Lower is better among geometries of the same capacity.
std::uint32_t TieRank(std::uint32_t ways) {
  constexpr std::uint32_t d = PcacheGeometry::kDefaultWays;
  if (ways == d) return 0;
  if (ways > d) return ways - d;
  return PcacheGeometry::kMaxWays + (d - ways);
}

}  // namespace

Status PcacheGeometry::ForCapacity(std::uint64_t capacity_bytes, std::uint32_t ways,
                                   PcacheGeometry* out) {
  if (ways != 0) return FromConfig({capacity_bytes, ways}, out);
  if (capacity_bytes < kMinAutoCapacity) {
    return {Code::kInvalidArgument, "pcache capacity " + Describe(capacity_bytes) +
                                        " is below the minimum of " + FormatSize(kMinAutoCapacity)};
  }
  // Line ids are 32-bit: larger sizes get the largest pcache that has them.
  const std::uint64_t pages = std::min<std::uint64_t>(capacity_bytes / kPageSize,
                                                      std::numeric_limits<std::uint32_t>::max());
  std::uint64_t best_lines = 0;
  std::uint32_t best_ways = 0;
  for (std::uint32_t w = kMinAutoWays; w <= kMaxAutoWays; ++w) {
    if (pages / w == 0) continue;
    const std::uint64_t lines = std::bit_floor(pages / w) * w;
    if (lines > best_lines || (lines == best_lines && TieRank(w) < TieRank(best_ways))) {
      best_lines = lines;
      best_ways = w;
    }
  }
  return FromConfig({best_lines * kPageSize, best_ways}, out);
}

std::string PcacheGeometry::ToString() const {
  // Exact, unlike FormatSize's one decimal: 3.75 MiB is 3840 KiB, not "3.8 MiB".
  const std::uint64_t b = capacity_bytes();
  std::string size = FormatSize(b);
  if (b % (1u << 20) != 0)
    size = std::to_string(b >> 10) + " KiB";
  else if (b >= (1u << 30) && b % (1u << 30) != 0)
    size = std::to_string(b >> 20) + " MiB";
  return size + " = " + std::to_string(nr_sets_) + " sets x " + std::to_string(ways_) + " ways";
}

}  // namespace remora
