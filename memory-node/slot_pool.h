// SlotPool: the memory node's page frames. A memfd of `nslots` 4 KiB slots,
// each with a reference count (address spaces that share it after a fork).
//
// Memory follows use, not capacity: the file is sparse, so a slot costs memory
// only once data was written into it. A freed slot's memory is given back to
// the kernel (fallocate PUNCH_HOLE), but not at once: punching costs ~5 µs per
// scattered page and refaulting a punched slot another ~3 µs (measured, see
// docs/page-store.md), while a write-back to an existing page frees a slot
// and needs one in the same breath. So freed slots first go to a LIFO of
// still-backed slots that allocation prefers; only beyond a high watermark
// are the coldest ones punched, in sorted, coalesced runs, down to a low
// watermark.
//
// Punching is slow enough (destroying a 1 GiB space punches 262 144 pages)
// that it must not run under the lock that serves requests, so it is split
// in three steps: TakePunchBatch() (under the owner's lock) removes a batch
// of cold free slots from the free lists — nobody can allocate them now —;
// PunchSlots() (no lock needed: it only calls fallocate on the file) returns
// their memory; FinishPunch() (under the lock) makes them allocatable again.
// Up to kPunchBatch slots can be in flight, so a pool meant to hold
// `capacity` pages plus one spare is created with kPunchBatch more slots
// (address space only: the file is sparse).
//
// Not thread-safe except PunchSlots(): the PageStore's lock covers the rest.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "memory-node/memfd.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora {

class SlotPool {
 public:
  using Slot = std::uint32_t;
  static constexpr std::uint64_t kMaxSlots = 0xFFFFFFFFull;
  static constexpr std::size_t kPunchBatch = 256;

  // Watermarks of freed-but-backed slots; 0 picks defaults scaled to nslots.
  struct Options {
    std::uint64_t nslots = 0;
    std::uint64_t backed_free_high = 0;
    std::uint64_t backed_free_low = 0;
  };
  static std::unique_ptr<SlotPool> Create(const Options& opts, Status* status);
  ~SlotPool();
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  std::uint64_t nslots() const { return nslots_; }
  std::uint64_t used() const { return used_; }
  int readonly_fd() const { return file_.ro_fd; }
  std::uint64_t file_bytes() const { return file_.bytes; }

  char* Data(Slot s) {
    assert_valid(s);
    return file_.base + static_cast<std::uint64_t>(s) * kPageSize;
  }
  const char* Data(Slot s) const {
    assert_valid(s);
    return file_.base + static_cast<std::uint64_t>(s) * kPageSize;
  }

  // Takes a free slot; its reference count is 1. False when none is free
  // (in use, or in flight to be punched). Previous contents unspecified.
  bool Allocate(Slot* s);
  void Ref(Slot s);
  // Drops a reference; returns true if that was the last and the slot is free.
  bool Unref(Slot s);
  std::uint32_t refcount(Slot s) const { return refs_[s]; }

  // Seals the file against writes by anyone but this pool's own mapping
  // (memfd.h), so that its read-only descriptor may be handed to a client.
  // From then on freed slots keep their memory (a sealed file cannot be
  // punched) and are reused by later allocations instead. Idempotent.
  Status SealForSharing();
  bool sealed() const { return sealed_; }

  // ---- returning memory ----
  // Above the high watermark: time to start punching (never once sealed).
  bool NeedsPunch() const { return !sealed_ && backed_free_.size() > high_; }
  // Up to kPunchBatch of the coldest backed free slots, sorted, taken out of
  // the free lists; empty once at or below the low watermark. Call it until
  // empty after NeedsPunch() said so.
  std::vector<Slot> TakePunchBatch();
  // Gives the slots' memory back to the kernel. Safe without the lock.
  void PunchSlots(const std::vector<Slot>& sorted_slots);
  void FinishPunch(const std::vector<Slot>& slots);
  // If NeedsPunch(), all three steps down to the low watermark, synchronously.
  void PunchNow();

  // Counters for stats and tests.
  std::uint64_t backed_free() const { return backed_free_.size(); }
  std::uint64_t punched_total() const { return punched_total_; }
  std::uint64_t punch_calls() const { return punch_calls_.load(std::memory_order_relaxed); }
  std::uint64_t in_flight() const { return in_flight_; }

 private:
  SlotPool() = default;
  void assert_valid([[maybe_unused]] Slot s) const;

  SharedFile file_;
  std::uint64_t nslots_ = 0, used_ = 0;
  std::uint64_t high_ = 0, low_ = 0;
  bool sealed_ = false;
  // Grows with next_untouched_: a pool costs memory for the slots it used,
  // not for its capacity.
  std::vector<std::uint32_t> refs_;
  std::deque<Slot> backed_free_;      // back = most recently freed (hot)
  std::vector<Slot> holes_;           // punched: no memory behind them
  std::uint64_t next_untouched_ = 0;  // slots >= this were never used
  std::uint64_t in_flight_ = 0;       // taken for punching, not yet finished
  std::uint64_t punched_total_ = 0;
  std::atomic<std::uint64_t> punch_calls_{0};
};

}  // namespace remora
