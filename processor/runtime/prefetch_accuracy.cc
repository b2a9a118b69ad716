#include "processor/runtime/prefetch_accuracy.h"

#include <algorithm>

namespace remora {

bool PrefetchAccuracy::Allow() {
  MutexLock lk(mu_);
  if (backoff_ > 0) {
    --backoff_;
    return false;
  }
  if (issued_ < kEpoch) return true;
  const bool wasteful = wasted_ * 4 > issued_;
  issued_ = wasted_ = 0;
  if (!wasteful) {
    penalty_ = 0;
    return true;
  }
  penalty_ = std::min(kMaxBackoff, penalty_ == 0 ? kEpoch : penalty_ * 2);
  backoff_ = penalty_ - 1;  // this window is the first skipped
  return false;
}

void PrefetchAccuracy::Issued(std::uint64_t page) {
  MutexLock lk(mu_);
  ring_[head_++ % kRing] = page;
  ++issued_;
}

bool PrefetchAccuracy::Missed(std::uint64_t page) {
  if (page == 0) return false;  // 0 marks an empty slot
  MutexLock lk(mu_);
  for (std::uint64_t& p : ring_) {
    if (p != page) continue;
    p = 0;
    ++wasted_;
    ++wasted_total_;
    return true;
  }
  return false;
}

std::uint64_t PrefetchAccuracy::wasted() const {
  MutexLock lk(mu_);
  return wasted_total_;
}

}  // namespace remora
