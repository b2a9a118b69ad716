// Refault detection: which pages come back soon after they were evicted.
//
// Without hardware accessed bits (no idle-page tracking, and PAGEMAP_SCAN
// reports writes, not reads), a resident page's reads are invisible to user
// space. What the manager does see for real is a page faulting back in. Like
// Linux's workingset shadow entries, the shadow remembers the last N evicted
// pages (N = a quarter of the pcache's lines); a fill of a page still remembered is a
// refault within a quarter cache's worth of evictions — the page is part of the
// working set — and its new line starts referenced, so the CLOCK walk gives
// it a second chance over lines that were used once. Writes (write-protect
// faults) are the other real access signal; they move a line to the MRU end.
//
// A refaulting page that was dirty when it was evicted is likely to be
// written again soon (a program's hot data; in CPython every object access
// writes its reference count), so the fault handler installs it writable and
// dirty right away and saves the write-protect fault that would follow.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "remora/types.h"

namespace remora {

// What the shadow remembers of an evicted page.
struct ShadowEntry {
  bool dirty = false;  // it was dirty when evicted
  // Background reclaim held lines of its set free then (reclaimer.h,
  // "Backing off"): the set had fewer lines for the program than its ways.
  bool reserve = false;
  // Its set's eviction number at that eviction (Pcache::SetEvictions): the
  // set's evictions since say how close to staying the page came.
  std::uint32_t set_eviction = 0;
};

class RefaultShadow {
 public:
  explicit RefaultShadow(std::size_t capacity) : ring_(capacity) { seq_of_.reserve(capacity); }

  // Memory per remembered page: the ring slot, the hash node (key, seq and
  // set eviction, next pointer, cached hash, allocator rounding) and its
  // bucket.
  static constexpr std::size_t kBytesPerEntry = sizeof(PageKey) + 56 + sizeof(void*);

  // Remembers an evicted page (forgetting the oldest one when full).
  void Evicted(const PageKey& key, const ShadowEntry& entry = {}) EXCLUDES(mu_);
  // True (and forgets it) if `key` was evicted within the last `capacity`
  // evictions; *entry then says what was remembered of it.
  bool Refault(const PageKey& key, ShadowEntry* entry = nullptr) EXCLUDES(mu_);
  std::size_t size() const EXCLUDES(mu_);

 private:
  struct Remembered {
    std::uint64_t seq;  // which eviction this was (seq_)
    ShadowEntry entry;
  };
  static_assert(sizeof(Remembered) == 16, "kBytesPerEntry counts a 16-byte value");
  // A leaf lock (the zap hook and fills take it, nothing else under it).
  mutable Mutex mu_;
  std::vector<PageKey> ring_ GUARDED_BY(mu_);
  std::size_t next_ GUARDED_BY(mu_) = 0;
  std::uint64_t seq_ GUARDED_BY(mu_) = 0;
  std::unordered_map<PageKey, Remembered, PageKeyHash> seq_of_ GUARDED_BY(mu_);
};

}  // namespace remora
