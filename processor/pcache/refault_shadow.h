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

// A fixed table, allocated once: buckets of kWays slots, one cache line
// each, kSlotsPerEntry slots per page remembered. An evicted page takes a
// slot of its bucket that is free or forgotten (evicted more than
// `capacity` evictions ago), else the oldest; so the shadow is lossy where
// Linux's is too (a full bucket forgets early, about one bucket in 270 at
// a quarter's load), and a fill's lookup reads one cache line. The node
// based map it replaces cost a Phoenix-shaped streaming program 4% of its
// time in cache misses and allocation.
//
// Pages are told apart by a 62-bit fingerprint of (space, address), not
// the key itself: two pages sharing one in a bucket would make a fill
// look like a refault, which only gives a line a second chance or
// installs it writable (and so dirty): never wrong data. Eviction numbers
// are kept to 32 bits; an entry untouched for 2^32 evictions could look
// fresh again, with the same harmless outcome.
class RefaultShadow {
 public:
  explicit RefaultShadow(std::size_t capacity);

  static constexpr std::size_t kWays = 4;
  static constexpr std::size_t kSlotsPerEntry = 4;
  // Memory per remembered page: its share of the table.
  static constexpr std::size_t kBytesPerEntry = kSlotsPerEntry * 16;

  // Remembers an evicted page (forgetting the oldest one when full).
  void Evicted(const PageKey& key, const ShadowEntry& entry = {}) EXCLUDES(mu_);
  // True (and forgets it) if `key` was evicted within the last `capacity`
  // evictions; *entry then says what was remembered of it.
  bool Refault(const PageKey& key, ShadowEntry* entry = nullptr) EXCLUDES(mu_);
  // Pages remembered now (counts the table: for tests).
  std::size_t size() const EXCLUDES(mu_);

 private:
  // The fingerprint's two low bits are the entry's flags.
  static constexpr std::uint64_t kDirty = 1, kReserve = 2, kFlags = kDirty | kReserve;
  struct Slot {
    std::uint64_t word;          // fingerprint | flags; 0: free
    std::uint32_t seq;           // which eviction this was (low 32 bits of seq_)
    std::uint32_t set_eviction;  // ShadowEntry::set_eviction
  };
  static_assert(sizeof(Slot) == kBytesPerEntry / kSlotsPerEntry,
                "kBytesPerEntry counts 16-byte slots");
  struct alignas(64) Bucket {
    Slot slots[kWays];
  };

  static std::uint64_t Fingerprint(const PageKey& key);
  bool FreshLocked(const Slot& s) const REQUIRES(mu_) {
    return s.word != 0 && seq_ - s.seq < capacity_;
  }
  // Evictions since the slot's; a free or forgotten slot counts as older
  // than any fresh one (a fresh age is below capacity_).
  std::uint32_t AgeLocked(const Slot& s) const REQUIRES(mu_) {
    return FreshLocked(s) ? seq_ - s.seq : ~std::uint32_t{0};
  }
  Bucket& BucketOf(std::uint64_t fingerprint) REQUIRES(mu_) {
    return buckets_[(fingerprint >> 32) & (buckets_.size() - 1)];
  }

  const std::uint32_t capacity_;
  // A leaf lock (the zap hook and fills take it, nothing else under it).
  mutable Mutex mu_;
  std::vector<Bucket> buckets_ GUARDED_BY(mu_);  // a power of two of them
  std::uint32_t seq_ GUARDED_BY(mu_) = 0;
};

}  // namespace remora
