// The ranges this program registered with the manager, kept by the shim so
// that munmap, madvise and mremap of memory Remora does not manage cost no
// round trip. A fixed, statically allocated sorted array: the shim must not
// allocate (the allocator calls into it).
//
// Not thread-safe: callers hold the shim's control lock.
#pragma once

#include <cstddef>
#include <cstdint>

namespace remora::shim {

struct ShimRange {
  std::uint64_t start;
  std::uint64_t end;  // exclusive
  int prot;           // protection at map time (mremap re-creates it)
};

class ShimRanges {
 public:
  // Adds [start, end); it must not overlap a recorded range. False if full.
  bool Add(std::uint64_t start, std::uint64_t end, int prot);
  // Removes [start, end) from every range it overlaps, splitting at the
  // edges. Returns true if anything overlapped.
  bool Remove(std::uint64_t start, std::uint64_t end);
  bool Overlaps(std::uint64_t start, std::uint64_t end) const;
  // The range containing addr, or null.
  const ShimRange* Find(std::uint64_t addr) const;
  std::size_t size() const { return n_; }

  static constexpr std::size_t kCapacity = 1 << 16;

 private:
  // First index whose range ends after addr.
  std::size_t LowerBound(std::uint64_t addr) const;
  bool InsertAt(std::size_t i, const ShimRange& r);
  void EraseAt(std::size_t i);

  ShimRange r_[kCapacity];
  std::size_t n_ = 0;
};

ShimRanges& Ranges();

}  // namespace remora::shim
