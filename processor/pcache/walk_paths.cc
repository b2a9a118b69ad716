#include "processor/pcache/walk_paths.h"

#include <algorithm>

namespace remora {

bool WalkPaths::Lattice::Covers(Asid a, std::uint64_t page) const {
  if (a != asid || page + kPageSize <= lo || page > hi) return false;
  // The lowest point at or above `page` is page + ((anchor - page) mod
  // stride); the page holds a point if that is inside it. Unsigned
  // arithmetic wraps, so for an anchor below the page the remainder is
  // computed from the distance's magnitude instead.
  std::uint64_t r;
  if (anchor >= page) {
    r = (anchor - page) % stride;
  } else {
    const std::uint64_t back = (page - anchor) % stride;
    r = back == 0 ? 0 : stride - back;
  }
  return r < kPageSize;
}

void WalkPaths::Note(Asid asid, std::uint32_t walker, std::uint64_t address, std::int64_t stride,
                     std::uint64_t now) {
  if (stride == 0) return;
  const std::uint64_t step = static_cast<std::uint64_t>(stride < 0 ? -stride : stride);
  MutexLock lk(mu_);
  Slot* slot = nullptr;
  Slot* oldest = &slots_[0];
  for (Slot& s : slots_) {
    if (s.used && s.lattice.asid == asid && s.walker == walker) {
      slot = &s;
      break;
    }
    if (!s.used || (oldest->used && s.noted < oldest->noted)) oldest = &s;
  }
  const bool found = slot != nullptr;
  if (!found) slot = oldest;
  Lattice& l = slot->lattice;
  const std::uint64_t gap = kMaxGapSteps * step;
  const bool same_walk = found && l.stride == step && address + gap >= l.lo &&
                         address <= l.hi + gap && now - slot->noted <= ttl_;
  if (same_walk) {
    l.lo = std::min(l.lo, address);
    l.hi = std::max(l.hi, address);
  } else {
    l.asid = asid;
    l.stride = step;
    l.lo = l.hi = address;
  }
  l.anchor = address;
  slot->walker = walker;
  slot->noted = now;
  slot->used = true;
  // Notes are serialised by mu_, but `now` was read before it: keep the
  // latest.
  const std::uint64_t last = last_noted_.load(std::memory_order_relaxed);
  if (last == kNever || now > last) last_noted_.store(now, std::memory_order_relaxed);
}

int WalkPaths::Snapshot(std::uint64_t now, Lattice* out) const {
  MutexLock lk(mu_);
  int n = 0;
  for (const Slot& s : slots_) {
    // A walk whose extent is still one point spares nothing yet.
    if (s.used && now - s.noted <= ttl_ && s.lattice.hi > s.lattice.lo) out[n++] = s.lattice;
  }
  return n;
}

}  // namespace remora
