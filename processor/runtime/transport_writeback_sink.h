// The runtime's write-back sink: dirty pages leave the processor node for the
// memory node through a Transport.
#pragma once

#include "processor/pcache/writeback_sink.h"

namespace remora {

class Transport;

// Writes through a Transport: WritePage for a single owner, WritePageShared
// for the owners that share one uva (parent and child after fork).
class TransportWritebackSink : public WritebackSink {
 public:
  explicit TransportWritebackSink(Transport* transport) : transport_(transport) {}
  Status WriteBack(std::span<const Rmap> owners, const void* data) override;
  Status WriteBackMany(Asid asid, std::span<const std::uint64_t> uvas,
                       std::span<const void* const> pages) override;

 private:
  Transport* transport_;  // not owned
};

}  // namespace remora
