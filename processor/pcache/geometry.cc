#include "processor/pcache/geometry.h"

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

}  // namespace remora
