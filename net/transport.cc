// Transport defaults shared by every implementation, and the factory.
#include <cstring>
#include <memory>

#include "net/transports.h"
#include "remora/transport.h"

namespace remora {

Status Transport::ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                            bool* present) {
  auto* out = static_cast<char*>(bufs);
  for (std::size_t i = 0; i < uvas.size(); ++i) {
    bool p = false;
    REMORA_RETURN_IF_ERROR(ReadPage(asid, uvas[i], out + i * kPageSize, &p));
    if (present) present[i] = p;
  }
  return Status::Ok();
}

Status Transport::WritePages(Asid asid, std::span<const std::uint64_t> uvas, const void* bufs) {
  const auto* in = static_cast<const char*>(bufs);
  for (std::size_t i = 0; i < uvas.size(); ++i)
    REMORA_RETURN_IF_ERROR(WritePage(asid, uvas[i], in + i * kPageSize));
  return Status::Ok();
}

std::unique_ptr<Transport::PostedWrite> Transport::PostWritePages(Asid,
                                                                  std::span<const std::uint64_t>,
                                                                  const void*) {
  return nullptr;
}

Status Transport::WritePagesGather(Asid asid, std::span<const std::uint64_t> uvas,
                                   std::span<const void* const> pages) {
  std::unique_ptr<char[]> staging(new char[pages.size() * kPageSize]);
  for (std::size_t i = 0; i < pages.size(); ++i)
    std::memcpy(staging.get() + i * kPageSize, pages[i], kPageSize);
  return WritePages(asid, uvas, staging.get());
}

Status ParseTransportKind(const std::string& s, TransportKind* kind) {
  if (s == "tcp")
    *kind = TransportKind::kTcp;
  else if (s == "shm")
    *kind = TransportKind::kShm;
  else if (s == "rdma")
    *kind = TransportKind::kRdma;
  else
    return {Code::kInvalidArgument, "unknown transport '" + s + "' (tcp, shm, rdma)"};
  return Status::Ok();
}

std::unique_ptr<Transport> ConnectTransport(const TransportOptions& opts, Status* status) {
  switch (opts.kind) {
    case TransportKind::kTcp:
      return NewTcpTransport(opts, status);
    case TransportKind::kShm:
      return NewShmTransport(opts, status);
    case TransportKind::kRdma:
      return NewRdmaTransport(opts, status);
  }
  *status = {Code::kInvalidArgument, "bad transport kind"};
  return nullptr;
}

}  // namespace remora
