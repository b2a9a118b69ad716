// PageStore: the memory node's pages, per address space.
//
// * A page costs storage only once it has been written back; a page never
//   written reads as zeros (present = false) and costs nothing.
// * Capacity is a hard limit in pages. A write that needs a new page when the
//   store is full fails with kOutOfMemory and changes nothing.
// * Fork is copy-on-write: the child's page table points at the parent's
//   slots and each slot carries a reference count. A write to a slot with
//   refcount > 1 stores the data in a fresh slot for the writer only, so a
//   child's write-back never changes its parent's page (LegoOS lacked this).
// * Pages live in one memfd-backed region of `capacity_pages` slots. For the
//   shared-memory transport the region and a lock-free page index are mapped
//   read-only by processors on the same machine, which then read pages with a
//   plain memcpy (see shared_page_index.h for the reader protocol).
//
// Thread-safe. Readers that go through the shared index never take its locks.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "remora/status.h"
#include "remora/transport.h"
#include "remora/types.h"

namespace remora {

class StatsRegistry;

class PageStore {
 public:
  struct Options {
    std::uint64_t capacity_pages = 0;
    NodeId node_id = 0;
  };

  static std::unique_ptr<PageStore> Create(const Options& opts, StatsRegistry* stats,
                                           Status* status);
  virtual ~PageStore() = default;

  virtual Status CreateSpace(Asid asid) = 0;
  virtual Status DestroySpace(Asid asid) = 0;
  virtual Status ForkSpace(Asid parent, Asid child) = 0;
  virtual Status RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) = 0;
  virtual Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) = 0;
  virtual Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) = 0;

  virtual Status ReadPage(Asid asid, std::uint64_t uva, void* out, bool* present) = 0;
  virtual Status WritePage(Asid asid, std::uint64_t uva, const void* data) = 0;
  virtual Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                                 const void* data) = 0;

  virtual MemoryNodeInfo Info() const = 0;

  // Shared-memory attach: file descriptors of the page region and the page
  // index (owned by the store) and an opaque layout blob the shm client parses.
  virtual std::vector<int> ShmFds() const = 0;
  virtual std::string ShmLayout() const = 0;
};

}  // namespace remora
