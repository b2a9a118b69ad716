#include "processor/runtime/stream_detector.h"

#include <algorithm>

#include "remora/types.h"

namespace remora {

std::uint32_t StreamDetector::OnAccess(std::uint64_t page, std::uint32_t max, int* slot) {
  MutexLock lk(mu_);
  ++clock_;
  int lru = 0;
  for (int i = 0; i < kStreams; ++i) {
    Stream& s = streams_[i];
    if (s.next == page && s.used != 0) {
      s.window = s.window == 0 ? std::min<std::uint32_t>(4, max) : std::min(s.window * 2, max);
      s.next = page + kPageSize;
      s.used = clock_;
      *slot = i;
      return s.window;
    }
    if (s.used < streams_[lru].used) lru = i;
  }
  streams_[lru] = Stream{page + kPageSize, 0, clock_};
  *slot = lru;
  return 0;
}

void StreamDetector::Advance(int slot, std::uint64_t last) {
  MutexLock lk(mu_);
  Stream& s = streams_[slot];
  if (s.next <= last) s.next = last + kPageSize;
}

}  // namespace remora
