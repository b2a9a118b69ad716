// Whether strided read-ahead is paying off for one program, measured, and
// a back-off when it is not.
//
// A strided read-ahead page is a guess made on a few misses, and it takes a
// line that something else held. What the runtime can see of a guess is
// only its failure: a missing fault on a page read ahead a little earlier
// means its line was evicted before the program got to it (a page that
// stayed until it was used is a hit, which never faults). So the pages read
// ahead last are kept in a ring, and a miss on one of them counts that page
// as wasted (once).
//
// Every kEpoch pages read ahead, the epoch is judged: if more than a
// quarter were wasted, strided read-ahead skips its next windows — one
// epoch's worth at first, twice as many after each bad epoch in a row, at
// most kMaxBackoff — and then tries again. A good epoch ends the back-off.
#pragma once

#include <cstdint>

#include "common/mutex.h"

namespace remora {

class PrefetchAccuracy {
 public:
  static constexpr int kRing = 64;
  static constexpr std::uint32_t kEpoch = 64;
  static constexpr std::uint32_t kMaxBackoff = 4096;

  // Whether to read ahead on the strided window at hand; false while
  // backing off (the window is counted off the back-off).
  bool Allow() EXCLUDES(mu_);
  // `page` was read ahead.
  void Issued(std::uint64_t page) EXCLUDES(mu_);
  // A missing fault on `page`: true if it was read ahead recently, i.e. its
  // line was evicted unused (counted once per page read ahead).
  bool Missed(std::uint64_t page) EXCLUDES(mu_);

  std::uint64_t wasted() const EXCLUDES(mu_);

 private:
  mutable Mutex mu_;  // a leaf lock
  std::uint64_t ring_[kRing] GUARDED_BY(mu_) = {};
  std::uint32_t head_ GUARDED_BY(mu_) = 0;
  std::uint32_t issued_ GUARDED_BY(mu_) = 0;  // this epoch
  std::uint32_t wasted_ GUARDED_BY(mu_) = 0;  // this epoch
  std::uint64_t wasted_total_ GUARDED_BY(mu_) = 0;
  std::uint32_t backoff_ GUARDED_BY(mu_) = 0;  // windows still to skip
  std::uint32_t penalty_ GUARDED_BY(mu_) = 0;  // the last back-off (0: none)
};

}  // namespace remora
