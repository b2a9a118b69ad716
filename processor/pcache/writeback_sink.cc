#include "processor/pcache/writeback_sink.h"

namespace remora {

Status WritebackSink::WriteBackMany(Asid asid, std::span<const std::uint64_t> uvas,
                                    const void* data) {
  const auto* p = static_cast<const std::byte*>(data);
  for (std::size_t i = 0; i < uvas.size(); ++i) {
    const Rmap owner{asid, uvas[i]};
    REMORA_RETURN_IF_ERROR(WriteBack({&owner, 1}, p + i * kPageSize));
  }
  return Status::Ok();
}

}  // namespace remora
