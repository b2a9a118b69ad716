// A set of page addresses, kept as bitmaps of 2 MiB chunks.
//
// The runtime remembers which of a program's pages have a copy on the
// memory node (ProcessSession::HasRemoteCopy): one lookup per page filled,
// one insert per dirty eviction. A hash set of addresses costs a node per
// page (about 40 bytes, and a cache miss on every lookup of a scattered
// table); the pages a program writes back come in runs, so one bitmap of
// 512 pages per 2 MiB they touch holds them in 64 bytes, and the pages of
// a run share their chunk's cache line. Not thread-safe: the owner locks.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "remora/types.h"

namespace remora {

class PageSet {
 public:
  static constexpr unsigned kPagesPerChunk = 512;

  bool Contains(std::uint64_t page) const;
  void Insert(std::uint64_t page);
  // Removes every page in [start, end) (page-aligned).
  void EraseRange(std::uint64_t start, std::uint64_t end);
  // Pages in the set.
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  using Chunk = std::bitset<kPagesPerChunk>;
  static constexpr std::uint64_t kChunkBytes = std::uint64_t{kPagesPerChunk} << kPageShift;
  static std::uint64_t ChunkOf(std::uint64_t page) { return page / kChunkBytes; }
  static unsigned BitOf(std::uint64_t page) {
    return static_cast<unsigned>((page >> kPageShift) & (kPagesPerChunk - 1));
  }

  std::unordered_map<std::uint64_t, Chunk> chunks_;
  std::size_t size_ = 0;
};

}  // namespace remora
