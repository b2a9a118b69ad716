#include "processor/runtime/stride_walks.h"

#include <numeric>

#include "remora/types.h"

namespace remora {
namespace {

std::int64_t Magnitude(std::int64_t v) { return v < 0 ? -v : v; }

// Whether `stride` may be a walk's stride, with `distance` a whole number
// of strides within reach.
bool Plausible(std::int64_t stride, std::int64_t distance) {
  const std::int64_t s = Magnitude(stride);
  return s > static_cast<std::int64_t>(kPageSize) && s <= StrideWalks::kMaxStride &&
         Magnitude(distance) / s <= StrideWalks::kMaxSteps;
}

}  // namespace

StrideWalks::Walk& StrideWalks::FindLocked(pid_t tid, std::uint64_t address, bool* fresh) {
  Walk* oldest = &walks_[0];
  for (Walk& w : walks_) {
    if (w.used != 0 && w.tid == tid) {
      *fresh = false;
      return w;
    }
    if (w.used < oldest->used) oldest = &w;
  }
  *oldest = Walk{tid, address, 0, 0, 0};
  *fresh = true;
  return *oldest;
}

std::int64_t StrideWalks::OnMiss(pid_t tid, std::uint64_t address) {
  MutexLock lk(mu_);
  bool fresh;
  Walk& w = FindLocked(tid, address, &fresh);
  w.used = ++clock_;
  if (fresh) return 0;
  const auto d = static_cast<std::int64_t>(address - w.last);
  if (d == 0) return 0;  // the same miss again: no step of the walk
  w.last = address;
  if (w.stride != 0 && d % w.stride == 0 && d / w.stride > 0 && d / w.stride <= kMaxSteps) {
    if (w.strength < kMaxStrength) ++w.strength;
    return w.strength >= kConfirm ? w.stride : 0;
  }
  if (w.strength >= kConfirm) {
    // Another walk of the same stride may start here (the next column): it
    // is followed from its second miss. This one may as well be a miss off
    // any walk (the row of the product a multiply stores to).
    --w.strength;
    return 0;
  }
  const std::int64_t g = w.stride == 0 ? Magnitude(d) : std::gcd(Magnitude(d), Magnitude(w.stride));
  if (Plausible(g, d)) {
    // A refined stride fits this miss and the ones before: the last
    // distance seen is a multiple of both.
    const bool refined = w.stride != 0;
    w.stride = d < 0 ? -g : g;
    w.strength = refined ? 1 : 0;
  } else {
    w.stride = Plausible(d, d) ? d : 0;
    w.strength = 0;
  }
  return 0;  // not confirmed yet: strength is at most 1
}

}  // namespace remora
