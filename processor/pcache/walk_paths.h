// The pages strided walks will come back to.
//
// A thread walking down a column of a row-major matrix touches one page per
// row, and the next column lies on the same pages but for the few rows where
// it crosses into the next page. So the column's pages are the walk's coming
// hits, on this column and on the ones after it. The pcache never sees those
// hits, only the walk's misses (the runtime's stride detector finds the walk
// from their exact addresses), and fill-order replacement gives up the
// column's resident pages as readily as the pages the walk has moved past:
// a naive matrix multiply under a quarter of its working set then misses
// twice as often as LRU would, half of its misses refaults of pages evicted
// just before the walk came back.
//
// WalkPaths remembers each confirmed walk as a lattice: the addresses
// anchor + m * stride between the lowest and the highest miss the walk has
// made (the column's extent), in one address space. The eviction scan steps
// over a line whose page holds a point of an active lattice while its set
// has another candidate (Pcache::PickVictimLocked), so a set gives up the
// pages a column has left behind and those no walk uses first.
//
// A lattice stays active until the pcache has evicted a cache's worth of
// lines without the walk missing again (the walk ended, its thread moved
// on, its program exited): stale walks stop sparing lines on their own.
// Misses of one walk a long way outside its extent start a new extent (the
// thread walks another matrix with the same stride).
//
// Thread safety: one leaf mutex. Note() is called once per miss of a
// confirmed walk; Snapshot() once per eviction scan, and only while some
// walk may be active (one atomic word, the clock of the latest miss, keeps
// evictions off the lock when no walk is).
#pragma once

#include <atomic>
#include <cstdint>

#include "common/mutex.h"
#include "remora/types.h"

namespace remora {

class WalkPaths {
 public:
  // Walks remembered at once; the least recently noted gives way.
  static constexpr int kSlots = 8;
  // A miss more than this many strides outside a walk's extent starts a new
  // extent.
  static constexpr std::uint64_t kMaxGapSteps = 1024;

  // ttl: evictions after a walk's last miss that it stays active (the
  // pcache passes its number of lines).
  explicit WalkPaths(std::uint64_t ttl) : ttl_(ttl) {}

  // A miss of a confirmed walk (`walker` tells the walks of one space apart:
  // the thread) at the exact byte `address`, `stride` bytes per step (either
  // sign). `now` is the pcache's eviction clock.
  void Note(Asid asid, std::uint32_t walker, std::uint64_t address, std::int64_t stride,
            std::uint64_t now) EXCLUDES(mu_);

  struct Lattice {
    Asid asid = 0;
    std::uint64_t anchor = 0;  // a point of the lattice (the last miss)
    std::uint64_t stride = 0;  // bytes, > 0
    std::uint64_t lo = 0;      // extent: [lo, hi] bytes
    std::uint64_t hi = 0;
    // Whether the page at `page` (page-aligned) of `asid` holds a point.
    bool Covers(Asid a, std::uint64_t page) const;
  };
  // The lattices active at `now`, copied for one eviction scan: how many
  // (at most kSlots) were written to out.
  int Snapshot(std::uint64_t now, Lattice* out) const EXCLUDES(mu_);
  // Whether a walk may be active at `now`: false before the first Note and
  // once every walk has expired (Snapshot would copy nothing), so callers
  // skip Snapshot.
  bool MayBeActive(std::uint64_t now) const {
    const std::uint64_t last = last_noted_.load(std::memory_order_relaxed);
    return last != kNever && now - last <= ttl_;
  }

 private:
  struct Slot {
    Lattice lattice;
    std::uint32_t walker = 0;
    std::uint64_t noted = 0;  // eviction clock at the last miss
    bool used = false;
  };

  const std::uint64_t ttl_;
  mutable Mutex mu_;  // a leaf lock
  Slot slots_[kSlots] GUARDED_BY(mu_);
  static constexpr std::uint64_t kNever = ~std::uint64_t{0};
  // The latest slot's `noted` (stored under mu_, read without it).
  std::atomic<std::uint64_t> last_noted_{kNever};
};

}  // namespace remora
