#include "processor/runtime/transport_writeback_sink.h"

#include <algorithm>
#include <vector>

#include "remora/transport.h"

namespace remora {

Status TransportWritebackSink::WriteBackMany(Asid asid, std::span<const std::uint64_t> uvas,
                                             std::span<const void* const> pages) {
  return transport_->WritePagesGather(asid, uvas, pages);
}

Status TransportWritebackSink::WriteBack(std::span<const Rmap> owners, const void* data) {
  // Owners normally share one uva; group by uva in case a mapping was moved.
  std::vector<Rmap> sorted(owners.begin(), owners.end());
  std::sort(sorted.begin(), sorted.end(), [](const Rmap& a, const Rmap& b) {
    return a.uva != b.uva ? a.uva < b.uva : a.asid < b.asid;
  });
  std::vector<Asid> asids;
  for (std::size_t i = 0; i < sorted.size();) {
    const std::uint64_t uva = sorted[i].uva;
    asids.clear();
    for (; i < sorted.size() && sorted[i].uva == uva; ++i) asids.push_back(sorted[i].asid);
    if (asids.size() == 1) {
      REMORA_RETURN_IF_ERROR(transport_->WritePage(asids[0], uva, data));
    } else {
      REMORA_RETURN_IF_ERROR(transport_->WritePageShared(asids, uva, data));
    }
  }
  return Status::Ok();
}

}  // namespace remora
