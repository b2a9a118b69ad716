// Where dirty pages go when they leave the processor node: the write-back
// sink of the victim cache's flush thread (and of eviction itself when there
// is no victim cache).
//
// The runtime writes to a memory node (runtime/transport_writeback_sink.h);
// the simulator into its SimStore; unit tests into an in-memory store
// (tests/unit/testing/memory_writeback_sink.h).
#pragma once

#include <span>

#include "processor/pcache/rmap.h"
#include "remora/status.h"

namespace remora {

class WritebackSink {
 public:
  virtual ~WritebackSink() = default;

  // Stores `data` (kPageSize bytes) as the page of every owner. A line shared
  // after fork has several owners; they get one copy, stored once where the
  // sink can. Blocks until stored or failed. Must be thread-safe.
  virtual Status WriteBack(std::span<const Rmap> owners, const void* data) = 0;

  // Stores several pages of one address space: page i is uvas[i] <- pages[i]
  // (kPageSize bytes each, wherever they are: the victim cache hands its
  // entries over in place, without staging them). One round trip where the
  // sink can; the default writes them one by one.
  virtual Status WriteBackMany(Asid asid, std::span<const std::uint64_t> uvas,
                               std::span<const void* const> pages);
};

}  // namespace remora
