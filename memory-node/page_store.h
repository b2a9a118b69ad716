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
// * Capacity also pays for the store's own bookkeeping: address spaces,
//   page-table entries (a fork copies its parent's) and registered ranges
//   are charged in bytes, floor(bytes / page) pages beside the stored pages
//   (memnode_meta_pages), so no request can grow the node's memory without
//   bound through metadata.
// * Each processor node's pages live in its own memfd-backed region with its
//   own lock-free page index (a "view"), created with the node's first
//   address space and dropped — all of its memory given back — once the node
//   has no space left and no shared-memory client attached. For the
//   shared-memory transport a node's region and index are sealed against
//   writes and mapped read-only by that node's processors on the same
//   machine, which then read pages with a plain memcpy (see
//   shared_page_index.h for the reader protocol) and see no other node's
//   pages. Slots never cross views: fork and shared writes stay within one
//   node (AsidNode).
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

  // Destroys every address space of processor node `node` (a processor that
  // died: its lease expired). Returns how many there were.
  virtual std::uint64_t DestroyNodeSpaces(NodeId node) = 0;
  // Address spaces of processor node `node`, counting those being forked
  // into or destroyed.
  virtual std::uint64_t NodeSpaces(NodeId node) const = 0;

  // Shared-memory attach for processor node `node`: seals its view (creating
  // it if needed) and returns the read-only descriptors of its page region
  // and index (owned by the store; valid until the matching DetachShm) and
  // an opaque layout blob the shm client parses. Each successful attach pins
  // the view until DetachShm(node).
  virtual Status AttachShm(NodeId node, std::vector<int>* fds, std::string* layout) = 0;
  virtual void DetachShm(NodeId node) = 0;
};

}  // namespace remora
