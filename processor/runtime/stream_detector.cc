#include "processor/runtime/stream_detector.h"

#include <algorithm>
#include <cmath>

#include "remora/types.h"

namespace remora {
namespace {

// A strided (not sequential) stream needs this many steps seen before it
// gets a window, and its window stays at most kMaxStridedWindow steps: a
// loop the pcache mostly holds misses sparsely, sometimes at a regular
// distance, and reading ahead on such a stride evicts the lines the loop is
// about to hit. (Measured on a naive matrix multiply with a 4 MiB pcache:
// opening after one confirming access, up to 32 steps, made 6x the faults
// of no read-ahead at all.)
constexpr std::uint64_t kConfirmSteps = 4;
constexpr std::uint32_t kMaxStridedWindow = 8;

std::int64_t Distance(std::uint64_t a, std::uint64_t b) {
  return static_cast<std::int64_t>(a - b);  // pages are far below 2^63
}

}  // namespace

bool StreamDetector::Stream::Sequential() const {
  return Distance(last, first) == static_cast<std::int64_t>(seen * kPageSize);
}

std::uint64_t StreamDetector::Stream::Predict(std::uint64_t k) const {
  if (Sequential()) return first + k * kPageSize;
  const double at = static_cast<double>(last) + (offset_lo + offset_hi) / 2 +
                    Stride() * (static_cast<double>(k) - static_cast<double>(seen));
  if (at < 0) return 0;
  return PageDown(static_cast<std::uint64_t>(at));
}

void StreamDetector::Stream::Observe(std::uint64_t step, std::uint64_t page) {
  constexpr double kSlack = kPageSize - 1;
  const double span = static_cast<double>(Distance(page, first));
  const double k = static_cast<double>(step);
  // Both ends are somewhere in their pages: the stride is within a page of
  // span / k. A bound that contradicts the others (the stride changed)
  // starts the bounds over.
  const double lo = (span - kSlack) / k, hi = (span + kSlack) / k;
  if (seen == 0 || lo > stride_hi || hi < stride_lo) {
    stride_lo = lo;
    stride_hi = hi;
  } else {
    stride_lo = std::max(stride_lo, lo);
    stride_hi = std::min(stride_hi, hi);
  }
  // The offset moves by the steps taken less the pages moved, and must lie
  // in the page seen.
  const double moved =
      Stride() * (k - static_cast<double>(seen)) - static_cast<double>(Distance(page, last));
  double olo = seen == 0 ? 0 : std::max(0.0, offset_lo + moved);
  double ohi = seen == 0 ? kSlack : std::min(kSlack, offset_hi + moved);
  if (olo > ohi) {
    olo = 0;
    ohi = kSlack;
  }
  offset_lo = olo;
  offset_hi = ohi;
  seen = step;
  last = page;
  next = step + 1;
}

bool StreamDetector::Stream::Extends(std::uint64_t page) const {
  const std::uint64_t expected = Predict(next);
  if (Sequential()) return page == expected;
  return std::abs(Distance(page, expected)) <= static_cast<std::int64_t>(kPageSize);
}

std::uint32_t StreamDetector::OnAccessLocked(std::uint64_t page, std::uint32_t max, int* slot) {
  ++clock_;
  const std::uint32_t opening = std::min<std::uint32_t>(4, max);
  for (int i = 0; i < kStreams; ++i) {
    Stream& s = streams_[i];
    if (s.used == 0 || s.seen == 0 || !s.Extends(page)) continue;
    s.Observe(s.next, page);
    // A stride other than one page: see kConfirmSteps.
    if (!s.Sequential() && s.seen < kConfirmSteps) {
      s.used = clock_;
      *slot = i;
      return 0;
    }
    const std::uint32_t cap = s.Sequential() ? max : std::min(max, kMaxStridedWindow);
    s.window = s.window == 0 ? std::min(opening, cap) : std::min(s.window * 2, cap);
    s.used = clock_;
    *slot = i;
    return s.window;
  }
  // Pair with the nearest lone access: the previous access of this stream
  // is the nearest one in an interleaving of streams over different data.
  int nearest = -1;
  std::int64_t best = kMaxStride + 1;
  for (int i = 0; i < kStreams; ++i) {
    const Stream& s = streams_[i];
    if (s.used == 0 || s.seen != 0 || s.last == page) continue;
    const std::int64_t d = std::abs(Distance(page, s.last));
    if (d < best) {
      best = d;
      nearest = i;
    }
  }
  if (nearest >= 0) {
    Stream& s = streams_[nearest];
    const std::uint64_t first = s.last;
    s = Stream();
    s.first = s.last = first;
    s.used = clock_;
    s.Observe(1, page);
    // A sequential pair opens a window at once; another stride waits for a
    // third access to confirm it.
    if (s.Sequential()) s.window = opening;
    *slot = nearest;
    return s.window;
  }
  *slot = StartLoneLocked(page);
  return 0;
}

int StreamDetector::StartLoneLocked(std::uint64_t page) {
  int lru = 0;
  for (int i = 1; i < kStreams; ++i)
    if (streams_[i].used < streams_[lru].used) lru = i;
  Stream& lone = streams_[lru];
  lone = Stream();
  lone.first = lone.last = page;
  lone.next = 1;
  lone.used = clock_;
  return lru;
}

std::uint32_t StreamDetector::OnAccessStrided(std::uint64_t page, std::uint32_t max, int* slot,
                                              std::int64_t* stride) {
  MutexLock lk(mu_);
  const std::uint32_t window = OnAccessLocked(page, max, slot);
  const Stream& s = streams_[*slot];
  *stride = s.seen == 0      ? 0
            : s.Sequential() ? static_cast<std::int64_t>(kPageSize)
                             : static_cast<std::int64_t>(std::llround(s.Stride()));
  return window;
}

std::uint64_t StreamDetector::Ahead(int slot, std::uint32_t i) {
  MutexLock lk(mu_);
  const Stream& s = streams_[slot];
  return s.Predict(s.next - 1 + i);
}

void StreamDetector::Advance(int slot, std::uint64_t last) {
  MutexLock lk(mu_);
  Stream& s = streams_[slot];
  if (!s.Sequential() || last < s.first) return;
  const std::uint64_t step = (last - s.first) / kPageSize;
  if (s.next <= step) s.next = step + 1;
}

void StreamDetector::AdvanceSteps(int slot, std::uint32_t steps) {
  MutexLock lk(mu_);
  streams_[slot].next += steps;
}

}  // namespace remora
