// RdmaSpaces: the address spaces of one RDMA-attached processor node, their
// page tables over that node's RdmaFrames, and the answers to kRdmaMap.
//
// Same semantics as the PageStore (absent pages read as zero and cost
// nothing, fork is copy-on-write, destroy frees everything), arranged for
// one-sided access instead of messages:
//
//  * A page is written in place: its frame stays the same across write-backs,
//    so a processor that once learned where a page lives reads and writes it
//    with RDMA, without the memory node, for as long as the page exists.
//  * Map(read) tells where pages live (or that they are absent). Map(write)
//    makes each page writable first: it allocates a zeroed frame for a page
//    never written, and breaks copy-on-write sharing by copying a shared
//    frame for this address space alone — the only page copies the memory
//    node's CPU makes.
//  * Frames change or go away only through the processor's own control
//    messages (fork, destroy, unregister, discard, shared write), so a
//    processor keeps its cached mappings valid by dropping the affected ones
//    when it sends those; the processor's transport does exactly that.
//
// Address spaces belong to the processor node, across its reconnects, until
// its lease ends (rdma_service.h).
//
// Not thread-safe: served by the memory node's event-loop thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "memory-node/range_set.h"
#include "memory-node/rdma_frames.h"
#include "net/rdma/rdma_wire.h"
#include "remora/status.h"

namespace remora {

class RdmaSpaces {
 public:
  struct Metrics {
    std::uint64_t cow_breaks = 0;    // frames copied for a writer after fork
    std::uint64_t pages_mapped = 0;  // pages answered by Map
  };

  explicit RdmaSpaces(RdmaFrames* frames) : frames_(frames) {}
  ~RdmaSpaces();  // releases every frame

  Status CreateSpace(Asid asid);
  Status DestroySpace(Asid asid);
  Status ForkSpace(Asid parent, Asid child);
  Status RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len);
  Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len);
  Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len);

  // One mapping per uva. With `for_write` every page comes back present and
  // writable (see the file comment). Pages before a failing one keep what was
  // done for them (like a failed kWritePages); nothing is returned then.
  Status Map(Asid asid, std::span<const std::uint64_t> uvas, bool for_write,
             std::vector<rdma::Mapping>* out);

  // Two-sided page access (the plain page messages on an attached connection).
  Status ReadPage(Asid asid, std::uint64_t uva, void* out, bool* present);
  Status WritePage(Asid asid, std::uint64_t uva, const void* data);
  Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva, const void* data);

  std::size_t spaces() const { return spaces_.size(); }
  const Metrics& metrics() const { return m_; }

 private:
  using Frame = RdmaFrames::Frame;
  struct Space {
    RangeSet ranges;
    std::unordered_map<std::uint64_t, Frame> pages;
  };

  Status Check(Asid asid, std::uint64_t uva, Space** sp);
  // Makes (sp, uva) own a writable frame and returns it.
  Status MakeWritable(Space* sp, std::uint64_t uva, Frame* f);
  void Drop(Space* sp, std::uint64_t start, std::uint64_t end);
  // Checks the range and finds the space, for the range operations.
  Status SpaceForRange(Asid asid, std::uint64_t start, std::uint64_t len, Space** sp);
  rdma::Mapping MappingOf(Frame f) const;

  RdmaFrames* frames_;
  std::unordered_map<Asid, std::unique_ptr<Space>> spaces_;
  Metrics m_;
};

}  // namespace remora
