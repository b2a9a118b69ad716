// AddressSpace: what the memory node knows about one program's memory — the
// ranges it registered and its page table, virtual page -> slot.
//
// A page absent from the table was never written back (or was discarded) and
// reads as zeros. Slots may be shared with other address spaces after a fork;
// the slot's reference count (SlotPool) says by how many.
//
// Plain data: the PageStore keeps the page tables, the slot reference counts
// and the shared index consistent under its lock.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "memory-node/range_set.h"
#include "memory-node/slot_pool.h"

namespace remora {

struct AddressSpace {
  RangeSet ranges;
  std::unordered_map<std::uint64_t, SlotPool::Slot> pages;  // page-aligned uva -> slot
};

}  // namespace remora
