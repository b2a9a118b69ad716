#include "processor/pcache/writeback_sink.h"

namespace remora {

Status WritebackSink::WriteBackMany(Asid asid, std::span<const std::uint64_t> uvas,
                                    std::span<const void* const> pages) {
  for (std::size_t i = 0; i < uvas.size(); ++i) {
    const Rmap owner{asid, uvas[i]};
    REMORA_RETURN_IF_ERROR(WriteBack({&owner, 1}, pages[i]));
  }
  return Status::Ok();
}

}  // namespace remora
