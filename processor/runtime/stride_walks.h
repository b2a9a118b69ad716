// Strided walks with gaps: a thread that steps through memory a constant
// number of bytes at a time (down a column of a row-major matrix: one row
// per step), of which only some steps miss.
//
// Such a walk is what a cache without hit information serves worst. The
// pcache never sees the walk's hits, only its misses, and those are
// scattered: a page of the column that is still resident is a hit, so two
// consecutive misses of one walk are any number of steps apart. The
// detector of sequential runs (sequential_streams.h), which wants every
// step to miss, never sees a run there, and fill-order replacement
// keeps evicting the pages the walk is about to come back to: a naive
// matrix multiply under a quarter of its working set misses on thousands of
// pages per row of the product where LRU misses on a few hundred.
//
// What the misses do show, when the kernel reports each fault's exact
// address (UFFD_FEATURE_EXACT_ADDRESS) and its thread (THREAD_ID), is the
// stride itself: every miss of one thread's walk is a whole number of
// strides past its previous miss. So, per thread:
//
//   a miss a whole number of strides (1..kMaxSteps) past the thread's last
//     miss fits the walk: the walk's strength grows (up to kMaxStrength);
//   a miss that does not fit is either the start of another walk of the
//     same stride (the next column: a loop keeps its stride), a miss off
//     the walk, or the end of striding. A strong stride only loses
//     strength (and its next fitting miss is followed); a weak one is
//     re-estimated as the greatest common divisor of its stride and the
//     distance just seen, when that divisor is still a plausible stride
//     (more than a page, at most kMaxStride, and the distance at most
//     kMaxSteps of it), and dropped otherwise.
//
// A stride of a page or less is not a walk with gaps: it touches every page,
// and sequential read-ahead follows it. Random misses almost never fit: with
// exact addresses a chance fit needs the distance to be an exact multiple
// of the stride, and the gcd of random distances soon falls under a page.
//
// OnMiss returns the stride for a miss that fits a confirmed walk (strength
// at least kConfirm); the caller then looks ahead along it (readahead.cc): pages
// still resident are the walk's coming hits, and are marked used (the
// access information the pcache lacks), the others are read ahead.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/mutex.h"

namespace remora {

class StrideWalks {
 public:
  // Threads followed at once; the least recently missing one gives way.
  static constexpr int kThreads = 32;
  static constexpr std::int64_t kMaxStride = std::int64_t{4} << 20;
  static constexpr std::int64_t kMaxSteps = 256;
  static constexpr int kConfirm = 2;
  static constexpr int kMaxStrength = 8;

  // A missing fault of thread `tid` at the exact byte `address`. Returns
  // the stride in bytes (negative for a walk downwards) if this miss
  // continues the thread's confirmed strided walk, else 0.
  std::int64_t OnMiss(pid_t tid, std::uint64_t address) EXCLUDES(mu_);

 private:
  struct Walk {
    pid_t tid = 0;
    std::uint64_t last = 0;  // the thread's last miss
    std::int64_t stride = 0;
    int strength = 0;
    std::uint64_t used = 0;  // 0: an empty slot
  };
  Walk& FindLocked(pid_t tid, std::uint64_t address, bool* fresh) REQUIRES(mu_);

  Mutex mu_;  // a leaf lock
  Walk walks_[kThreads] GUARDED_BY(mu_);
  std::uint64_t clock_ GUARDED_BY(mu_) = 0;
};

}  // namespace remora
