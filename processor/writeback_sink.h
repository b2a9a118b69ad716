// Where dirty pages go when they leave the processor node: the write-back
// sink of the victim cache's flush thread (and of eviction itself when there
// is no victim cache).
//
// The real runtime writes to a memory node through a Transport; the simulator
// and the tests use MemoryWritebackSink (memory_writeback_sink.h), a small
// real in-memory store that can also be told to fail.
#pragma once

#include <span>

#include "processor/rmap.h"
#include "remora/status.h"

namespace remora {

class Transport;

class WritebackSink {
 public:
  virtual ~WritebackSink() = default;

  // Stores `data` (kPageSize bytes) as the page of every owner. A line shared
  // after fork has several owners; they get one copy, stored once where the
  // sink can. Blocks until stored or failed. Must be thread-safe.
  virtual Status WriteBack(std::span<const Rmap> owners, const void* data) = 0;

  // Stores several pages of one address space: page i is uvas[i] <->
  // (char*)data + i * kPageSize. One round trip where the sink can; the
  // default writes them one by one.
  virtual Status WriteBackMany(Asid asid, std::span<const std::uint64_t> uvas, const void* data);
};

// Writes through a Transport: WritePage for a single owner, WritePageShared
// for the owners that share one uva (parent and child after fork).
class TransportWritebackSink : public WritebackSink {
 public:
  explicit TransportWritebackSink(Transport* transport) : transport_(transport) {}
  Status WriteBack(std::span<const Rmap> owners, const void* data) override;
  Status WriteBackMany(Asid asid, std::span<const std::uint64_t> uvas, const void* data) override;

 private:
  Transport* transport_;  // not owned
};

}  // namespace remora
