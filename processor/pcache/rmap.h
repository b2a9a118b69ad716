// Reverse maps: which (address space, virtual address) pairs map a pcache line.
//
// A line normally has one rmap. After fork the parent and the child map the
// same line at the same uva (two rmaps, mapcount 2) until one of them writes
// and gets its own copy. Eviction walks the rmaps to unmap the page from every
// process that maps it ("rmap walk"), and lookup of (asid, uva) is a scan of a
// set's lines' rmaps, so no separate page table is needed.
//
// RmapList keeps two rmaps inline (the single-owner and the just-forked cases)
// and spills to the heap only for lines shared by three or more mappings, so a
// line's metadata stays small. Not thread-safe: the pcache guards each list
// with its set's lock.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "remora/types.h"

namespace remora {

// One mapping of a line: the address space and the page-aligned uva.
using Rmap = PageKey;

class RmapList {
 public:
  RmapList() = default;
  RmapList(const RmapList&) = delete;
  RmapList& operator=(const RmapList&) = delete;

  // The number of mappings; this is the line's mapcount.
  std::uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  bool Contains(const Rmap& r) const;
  bool ContainsSpace(Asid asid) const;
  // Adds r. Requires !Contains(r): a mapping is recorded once.
  void Add(const Rmap& r);
  // Removes r; false if it was not there.
  bool Remove(const Rmap& r);
  // Removes every rmap of `asid`; returns how many.
  std::uint32_t RemoveSpace(Asid asid);
  void Clear();

  // Calls fn(const Rmap&) for each rmap, in insertion order.
  template <typename Fn>
  void Walk(Fn&& fn) const {
    for (std::uint32_t i = 0; i < size_; ++i) fn(At(i));
  }
  // Appends every rmap to *out.
  void CopyTo(std::vector<Rmap>* out) const;

 private:
  static constexpr std::uint32_t kInline = 2;

  const Rmap& At(std::uint32_t i) const {
    return i < kInline ? inline_[i] : (*spill_)[i - kInline];
  }
  Rmap& At(std::uint32_t i) { return i < kInline ? inline_[i] : (*spill_)[i - kInline]; }
  void RemoveAt(std::uint32_t i);

  Rmap inline_[kInline];
  std::unique_ptr<std::vector<Rmap>> spill_;  // rmaps beyond the inline ones
  std::uint32_t size_ = 0;
};

}  // namespace remora
