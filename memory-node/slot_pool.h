// SlotPool: the memory node's page frames. A memfd of `nslots` 4 KiB slots,
// each with a reference count (address spaces that share it after a fork).
//
// Memory follows use, not capacity: the file is sparse, so a slot costs memory
// only once data was written into it. A freed slot's memory is given back to
// the kernel (fallocate PUNCH_HOLE), but not at once: punching costs ~5 µs per
// scattered page and refaulting a punched slot another ~3 µs (measured, see
// docs/page-store.md), while a write-back to an existing page frees a slot
// and needs one in the same breath. So freed slots first go to a LIFO of
// still-backed slots that allocation prefers; only when that list exceeds a
// high watermark are its coldest entries punched, in sorted, coalesced runs,
// down to a low watermark. Memory held beyond the stored pages is bounded by
// the high watermark.
//
// Not thread-safe: the PageStore's lock covers it.
#pragma once

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

  // Takes a free slot; its reference count is 1. False when all are in use.
  // The slot's previous contents are unspecified.
  bool Allocate(Slot* s);
  void Ref(Slot s);
  // Drops a reference; returns true if that was the last and the slot is free.
  bool Unref(Slot s);
  std::uint32_t refcount(Slot s) const { return refs_[s]; }

  // Counters for stats and tests.
  std::uint64_t backed_free() const { return backed_free_.size(); }
  std::uint64_t punched_total() const { return punched_total_; }
  std::uint64_t punch_calls() const { return punch_calls_; }

 private:
  SlotPool() = default;
  void assert_valid([[maybe_unused]] Slot s) const;
  // Punches the coldest backed free slots down to the low watermark.
  void Trim();

  SharedFile file_;
  std::uint64_t nslots_ = 0, used_ = 0;
  std::uint64_t high_ = 0, low_ = 0;
  std::vector<std::uint32_t> refs_;
  std::deque<Slot> backed_free_;  // back = most recently freed (hot)
  std::vector<Slot> holes_;       // punched: no memory behind them
  std::uint64_t next_untouched_ = 0;  // slots >= this were never used
  std::uint64_t punched_total_ = 0, punch_calls_ = 0;
};

}  // namespace remora
