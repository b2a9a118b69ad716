// FillPlan: where the pages of a fill come from — one decision for every
// filler: the runtime's missing faults and read-ahead, the demo's paged
// region and `remora sim`.
//
// A page missing from the pcache is, in this order of preference:
//
//   kVictimCache  in the victim cache (evicted recently): taken from there
//                 at once, into the caller's buffer, with its dirtiness;
//                 the entry gives the page up (the two caches are exclusive)
//   kMemoryNode   on the memory node: it has a copy (written back before)
//   kFile         in the file of a private file mapping (never written back)
//   kZeroFill     nowhere: never written back, so zeros, with no round trip
//
// What backs a page besides the victim cache is the caller's knowledge (the
// runtime's per-session record of pages handed off, the simulator's store):
// Decide asks has_remote_copy(uva) for each page the victim cache did not
// have, in address order.
//
// Then consecutive pages with the same source are grouped into stretches,
// in address order, so that the caller reads each at once: one ReadPages for
// a stretch of memory-node pages, one pread for file pages. The reads, the
// zero-filling and the install stay with the caller; the plan only decides.
//
// A plan covers 1..kMaxPages pages (a single-page fill is a run of one),
// lives on the caller's stack and allocates nothing.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>

#include "processor/pcache/pcache.h"
#include "processor/pcache/victim_cache.h"
#include "remora/types.h"

namespace remora {

class FillPlan {
 public:
  // The most pages one plan covers (a read-ahead batch).
  static constexpr std::uint32_t kMaxPages = 32;

  // Consecutive pages [first, first + count) of the run, by index, that come
  // from the same place.
  struct Stretch {
    FillSource source;
    std::uint32_t first;
    std::uint32_t count;
  };

  // Decides where each of the n (1..kMaxPages) pages of first.asid from
  // first.uva comes from. A page the victim cache has is taken into
  // bufs + i * kPageSize (page i of the run); bufs is left alone otherwise.
  // victim may be null (no victim cache). has_remote_copy: bool(uint64_t
  // uva), whether the memory node holds a copy of that page. file: the pages
  // are those of a private file mapping (no copy: the file's, not zeros).
  template <typename HasRemoteCopy>
  void Decide(VictimCache* victim, const PageKey& first, std::uint32_t n, std::byte* bufs,
              bool file, HasRemoteCopy&& has_remote_copy) {
    assert(n >= 1 && n <= kMaxPages);
    n_ = n;
    for (std::uint32_t i = 0; i < n; ++i) {
      const PageKey key{first.asid, first.uva + std::uint64_t{i} * kPageSize};
      dirty_[i] = false;
      if (victim != nullptr && victim->Take(key, bufs + std::size_t{i} * kPageSize, &dirty_[i])) {
        source_[i] = FillSource::kVictimCache;
      } else if (has_remote_copy(key.uva)) {
        source_[i] = FillSource::kMemoryNode;
      } else if (file) {
        source_[i] = FillSource::kFile;
      } else {
        source_[i] = FillSource::kZeroFill;
      }
    }
    Group();
  }

  std::uint32_t size() const { return n_; }
  FillSource source(std::uint32_t i) const { return source_[i]; }
  // The page's data is newer than the memory node's (a victim entry not
  // written back yet): its line must be completed dirty.
  bool dirty(std::uint32_t i) const { return dirty_[i]; }
  // The run as stretches of one source each, in address order.
  std::span<const Stretch> stretches() const { return {stretches_, nr_stretches_}; }

 private:
  void Group();

  std::uint32_t n_ = 0;
  std::uint32_t nr_stretches_ = 0;
  FillSource source_[kMaxPages];
  bool dirty_[kMaxPages];
  Stretch stretches_[kMaxPages];
};

}  // namespace remora
