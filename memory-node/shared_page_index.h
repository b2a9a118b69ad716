// SharedPageIndex: the memory node's side of the shared page index — a hash
// table (asid, uva) -> slot in a memfd that processors on this machine map
// read-only and search without asking the memory node (net/shm/shm_page_reader.h
// has the reader protocol, net/shm/shm_format.h the format and the rules the
// writer keeps).
//
// The index is a cache of the page tables, not their source of truth: a page
// missing from it is read through the memory node, which knows. That lets the
// table stop indexing when it is full (many forks share slots, so the number
// of mappings is not bounded by the number of slots) instead of failing a
// write-back.
//
// Sizing: the file reserves `max_entries` (sparse: untouched entries cost no
// memory); the table starts smaller and doubles while more than half of it is
// live. When tombstones push occupancy past 3/4 it is rebuilt in place. Both
// happen inside one write section, so readers simply retry.
//
// Single writer: every method must be called with the PageStore's lock held.
// Mutations are only allowed inside a write section (Begin/End).
#pragma once

#include <cstdint>
#include <memory>

#include "net/shm/shm_format.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora {

class SharedPageIndex {
 public:
  // initial_entries and max_entries are rounded up to powers of two.
  static std::unique_ptr<SharedPageIndex> Create(std::uint64_t initial_entries,
                                                 std::uint64_t max_entries, Status* status);
  ~SharedPageIndex();
  SharedPageIndex(const SharedPageIndex&) = delete;
  SharedPageIndex& operator=(const SharedPageIndex&) = delete;

  // A read-only descriptor of the index file, for processors.
  int readonly_fd() const { return ro_fd_; }
  std::uint64_t max_entries() const { return max_entries_; }
  std::uint64_t file_bytes() const { return shm::IndexBytes(max_entries_); }

  // Write section: seq becomes odd, mutations, seq becomes even. Not nested.
  void Begin();
  void End();
  bool in_section() const { return in_section_; }

  // Maps (asid, uva) to slot, replacing any mapping it had. Returns false if
  // the key had no entry and the table is at its maximum size and full; the
  // key is then simply not indexed (readers fall back to the memory node).
  bool Put(Asid asid, std::uint64_t uva, std::uint64_t slot);
  // Removes the mapping of (asid, uva) if there is one (leaves a tombstone).
  void Erase(Asid asid, std::uint64_t uva);

  // Observers for stats and tests.
  std::uint64_t live() const { return header_->live; }
  std::uint64_t tombstones() const { return header_->tombstones; }
  std::uint64_t table_entries() const { return header_->mask + 1; }
  std::uint64_t rebuilds() const { return header_->rebuilds; }
  std::uint64_t seq() const { return shm::LoadRelaxed(&header_->seq); }
  // Slot of (asid, uva) or -1; a writer-side lookup for tests and asserts.
  std::int64_t Find(Asid asid, std::uint64_t uva) const;

 private:
  SharedPageIndex() = default;
  // Index of the key's live entry, or -1.
  std::int64_t Probe(Asid asid, std::uint64_t uva, std::int64_t* first_free) const;
  // Rehashes every live entry into a table of `entries` (>= current).
  void Rebuild(std::uint64_t entries);
  // Grows or rebuilds if inserting one more entry would break the 3/4 rule.
  // Returns false if the table is at its maximum and cannot take another.
  bool MakeRoomForInsert();

  int fd_ = -1, ro_fd_ = -1;
  std::uint64_t max_entries_ = 0;
  char* base_ = nullptr;
  shm::IndexHeader* header_ = nullptr;
  shm::IndexEntry* entries_ = nullptr;
  bool in_section_ = false;
};

}  // namespace remora
