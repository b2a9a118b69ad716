// One pcache line's metadata (the data itself lives elsewhere: in the
// program's page in the real runtime, in a caller-owned frame array in tests).
//
// Every field is guarded by the lock of the line's set (see pcache.h for the
// lock order). A line is in exactly one of these situations:
//
//   free       on the set's free list; flags == 0, refcount 0, no rmaps
//   resident   kValid; on the set's LRU list; refcount >= 1
//   reclaim    kValid|kReclaim; off both lists while eviction unmaps it and
//              hands its data to the victim cache; key lookups wait for it
//
// kLocked is the line lock held across I/O (LegoOS lock_pcache): set while a
// fill copies data in, or while a caller that pinned the line copies it.
// Eviction skips locked and pinned lines; waiting for them
// happens on the set's condition variable, never with the set lock held.
#pragma once

#include <boost/intrusive/list.hpp>
#include <cstdint>

#include "processor/pcache/geometry.h"
#include "processor/pcache/rmap.h"

namespace remora {

enum LineFlag : std::uint16_t {
  kLineValid = 1 << 0,       // allocated to a page (resident or under reclaim)
  kLineDirty = 1 << 1,       // differs from the memory node's copy
  kLineLocked = 1 << 2,      // line lock: data I/O in progress
  kLineReclaim = 1 << 3,     // being evicted
  kLineReferenced = 1 << 4,  // accessed since it was last considered for eviction
  // Shared by a fork and not written since: the first write by a mapper is
  // a COW if others still map the line, a reuse if it is the last one.
  kLineForked = 1 << 5,
};

struct PcacheLine {
  boost::intrusive::list_member_hook<> hook;  // in the set's LRU or free list
  RmapList rmaps;                             // mapcount == rmaps.size()
  LineId id = 0;
  // References that keep the line from being evicted or freed: 1 while it is
  // valid (the cache's own) plus one per Pin().
  std::uint32_t refcount = 0;
  std::uint16_t flags = 0;

  bool Test(std::uint16_t f) const { return (flags & f) != 0; }
  void Set(std::uint16_t f) { flags = static_cast<std::uint16_t>(flags | f); }
  void Clear(std::uint16_t f) { flags = static_cast<std::uint16_t>(flags & ~f); }
  std::uint32_t mapcount() const { return rmaps.size(); }
  // Nobody but the cache holds it: eviction or freeing may proceed.
  bool Idle() const { return refcount == 1 && !Test(kLineLocked | kLineReclaim); }
};

// Manager metadata per line must stay small: it is paid for every 4 KiB page
// of pcache.
static_assert(sizeof(PcacheLine) <= 128, "pcache line metadata grew past 128 bytes");

using LineList = boost::intrusive::list<
    PcacheLine, boost::intrusive::member_hook<PcacheLine, boost::intrusive::list_member_hook<>,
                                              &PcacheLine::hook>>;

}  // namespace remora
