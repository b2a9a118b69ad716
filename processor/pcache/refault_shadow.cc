#include "processor/pcache/refault_shadow.h"

#include <algorithm>
#include <bit>

namespace remora {

RefaultShadow::RefaultShadow(std::size_t capacity)
    : capacity_(static_cast<std::uint32_t>(std::max<std::size_t>(1, capacity))) {
  const std::size_t buckets =
      std::bit_ceil(std::max<std::size_t>(1, capacity_ * kSlotsPerEntry / kWays));
  MutexLock lk(mu_);
  buckets_.assign(buckets, Bucket{});
}

// splitmix64's finaliser over the space and the page number; never 0, the
// two low bits left for the flags.
std::uint64_t RefaultShadow::Fingerprint(const PageKey& key) {
  std::uint64_t h = key.asid * 0x9e3779b97f4a7c15ULL + (key.uva >> kPageShift);
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return (h | 4) & ~kFlags;
}

void RefaultShadow::Evicted(const PageKey& key, const ShadowEntry& entry) {
  const std::uint64_t fp = Fingerprint(key);
  MutexLock lk(mu_);
  const std::uint32_t seq = ++seq_;
  Bucket& b = BucketOf(fp);
  // The page's own slot if it is remembered already (evicted again: the
  // latest eviction counts), else the oldest (AgeLocked).
  Slot* take = &b.slots[0];
  for (Slot& s : b.slots) {
    if ((s.word & ~kFlags) == fp) {
      take = &s;
      break;
    }
    if (AgeLocked(s) > AgeLocked(*take)) take = &s;
  }
  take->word = fp | (entry.dirty ? kDirty : 0) | (entry.reserve ? kReserve : 0);
  take->seq = seq;
  take->set_eviction = entry.set_eviction;
}

bool RefaultShadow::Refault(const PageKey& key, ShadowEntry* entry) {
  const std::uint64_t fp = Fingerprint(key);
  MutexLock lk(mu_);
  for (Slot& s : BucketOf(fp).slots) {
    if ((s.word & ~kFlags) != fp) continue;
    const bool fresh = FreshLocked(s);
    if (fresh && entry != nullptr) {
      entry->dirty = (s.word & kDirty) != 0;
      entry->reserve = (s.word & kReserve) != 0;
      entry->set_eviction = s.set_eviction;
    }
    s.word = 0;  // forgotten once reported, or stale anyway
    return fresh;
  }
  return false;
}

std::size_t RefaultShadow::size() const {
  MutexLock lk(mu_);
  std::size_t n = 0;
  for (const Bucket& b : buckets_) {
    for (const Slot& s : b.slots) n += FreshLocked(s) ? 1 : 0;
  }
  return n;
}

}  // namespace remora
