#include "processor/shim/shim_ranges.h"

#include <cstring>

namespace remora::shim {

ShimRanges& Ranges() {
  static ShimRanges ranges;  // zero-initialised, in .bss
  return ranges;
}

std::size_t ShimRanges::LowerBound(std::uint64_t addr) const {
  std::size_t lo = 0, hi = n_;
  while (lo < hi) {
    std::size_t mid = (lo + hi) / 2;
    if (r_[mid].end <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bool ShimRanges::InsertAt(std::size_t i, const ShimRange& r) {
  if (n_ == kCapacity) return false;
  std::memmove(&r_[i + 1], &r_[i], (n_ - i) * sizeof(ShimRange));
  r_[i] = r;
  ++n_;
  return true;
}

void ShimRanges::EraseAt(std::size_t i) {
  std::memmove(&r_[i], &r_[i + 1], (n_ - i - 1) * sizeof(ShimRange));
  --n_;
}

bool ShimRanges::Add(std::uint64_t start, std::uint64_t end, int prot) {
  if (start >= end || Overlaps(start, end)) return false;
  return InsertAt(LowerBound(start), ShimRange{start, end, prot});
}

bool ShimRanges::Remove(std::uint64_t start, std::uint64_t end) {
  bool any = false;
  std::size_t i = LowerBound(start);
  while (i < n_ && r_[i].start < end) {
    any = true;
    ShimRange cur = r_[i];
    EraseAt(i);
    if (cur.start < start) InsertAt(i++, ShimRange{cur.start, start, cur.prot});
    if (cur.end > end) {
      InsertAt(i++, ShimRange{end, cur.end, cur.prot});
      break;
    }
  }
  return any;
}

bool ShimRanges::Overlaps(std::uint64_t start, std::uint64_t end) const {
  std::size_t i = LowerBound(start);
  return i < n_ && r_[i].start < end;
}

const ShimRange* ShimRanges::Find(std::uint64_t addr) const {
  std::size_t i = LowerBound(addr);
  return (i < n_ && r_[i].start <= addr) ? &r_[i] : nullptr;
}

}  // namespace remora::shim
