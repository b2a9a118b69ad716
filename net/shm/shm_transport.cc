// The shared-memory transport: for a memory node on the same machine.
//
// Page reads are one-sided: after attaching, the processor maps the memory
// node's page region and page index read-only and serves ReadPage/ReadPages
// with an index lookup and a memcpy (ShmPageReader) — no message, no lock, no
// thread hand-off, the memory node's CPU never involved. This is the
// analogue of an RDMA READ.
//
// Everything else is two-sided and goes over the memory node's unix socket
// exactly like TCP (StreamTransport): control messages, and page writes.
// Writes cannot be one-sided here: a write-back may need a new slot (first
// write, or a copy-on-write break after fork), may fail for capacity, and
// must switch the index entry only after the data is in place — decisions
// that belong to the memory node, which owns the allocator. The mappings are
// read-only for that reason too: a processor can never corrupt stored pages.
//
// Reads fall back to the socket when the index cannot answer: the page is not
// in the index (never written — the memory node also knows whether the space
// exists and the address is registered, and answers with zeros or the right
// error), the index stayed busy for too long (ShmPageReader::kMaxAttempts),
// or the address space belongs to another processor node (the memory node
// refuses it with kPermissionDenied, as over TCP).
//
// Isolation: the shared region holds every address space's pages, so any
// local process that can connect to the unix socket and knows the secret can
// read all of them. The memory node creates the socket with mode 0600; the
// shared-memory transport is for one machine and one trust domain.
#include <unistd.h>

#include <cstring>

#include <memory>
#include <vector>

#include "net/shm/shm_page_reader.h"
#include "net/stream_transport.h"
#include "net/transport_stats.h"
#include "net/transports.h"
#include "remora/stats.h"

namespace remora {

namespace {

class ShmTransport final : public StreamTransport {
 public:
  ShmTransport(std::unique_ptr<StreamClient> client, std::unique_ptr<ShmPageReader> reader,
               const TransportOptions& opts)
      : StreamTransport("shm", std::move(client)),
        reader_(std::move(reader)),
        node_id_(opts.node_id) {
    if (StatsRegistry* s = opts.stats) {
      metrics_.Register(s);
    }
  }

  Status ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present) override {
    const std::uint64_t t0 = metrics_.read_ns ? MonotonicNs() : 0;
    Status st;
    if (TryOneSided(asid, uva, buf)) {
      if (present) *present = true;
    } else {
      if (metrics_.fallbacks) metrics_.fallbacks->Inc();
      st = StreamTransport::ReadPage(asid, uva, buf, present);
    }
    if (metrics_.read_ns) metrics_.read_ns->Record(MonotonicNs() - t0);
    return st;
  }

  // Every page the index has is copied here; the rest go to the memory node
  // in one batched request.
  Status ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                   bool* present) override {
    auto* out = static_cast<char*>(bufs);
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < uvas.size(); ++i) {
      if (TryOneSided(asid, uvas[i], out + i * kPageSize)) {
        if (present) present[i] = true;
      } else {
        missing.push_back(i);
      }
    }
    if (missing.empty()) return Status::Ok();
    if (metrics_.fallbacks) metrics_.fallbacks->Add(missing.size());
    std::vector<std::uint64_t> miss_uvas(missing.size());
    for (std::size_t j = 0; j < missing.size(); ++j) miss_uvas[j] = uvas[missing[j]];
    std::vector<char> tmp(missing.size() * kPageSize);
    std::unique_ptr<bool[]> miss_present(new bool[missing.size()]);
    REMORA_RETURN_IF_ERROR(
        StreamTransport::ReadPages(asid, miss_uvas, tmp.data(), miss_present.get()));
    for (std::size_t j = 0; j < missing.size(); ++j) {
      std::memcpy(out + missing[j] * kPageSize, tmp.data() + j * kPageSize, kPageSize);
      if (present) present[missing[j]] = miss_present[j];
    }
    return Status::Ok();
  }

 private:
  // True if the page was copied from the shared region.
  bool TryOneSided(Asid asid, std::uint64_t uva, void* buf) {
    // Misaligned addresses and other nodes' spaces get the memory node's
    // error, exactly as over TCP.
    if (!PageAligned(uva) || AsidNode(asid) != node_id_) return false;
    std::uint64_t retries = 0;
    const auto r = reader_->Read(asid, uva, buf, &retries);
    if (retries && metrics_.retries) metrics_.retries->Add(retries);
    if (r != ShmPageReader::Result::kFound) return false;
    if (metrics_.onesided) metrics_.onesided->Inc();
    return true;
  }

  std::unique_ptr<ShmPageReader> reader_;
  const NodeId node_id_;
  ShmTransportMetrics metrics_;  // null handles without stats
};

}  // namespace

std::unique_ptr<Transport> NewShmTransport(const TransportOptions& opts, Status* status) {
  std::unique_ptr<StreamClient> client;
  *status =
      StreamTransport::Dial(opts, /*unix_socket=*/true, std::string(kShmStatsPrefix), &client);
  if (!status->ok()) return nullptr;

  StreamClient::Request req;
  req.type = wire::MsgType::kAttachShm;
  StreamClient::Reply reply;
  *status = client->Call(req, &reply);
  auto close_fds = [&reply] {
    for (int fd : reply.fds) close(fd);
  };
  if (!status->ok()) {
    close_fds();
    *status = {status->code(), "memory node at " + opts.address +
                                   " did not attach shared memory: " + status->message()};
    return nullptr;
  }
  if (reply.fds.size() != 2) {
    close_fds();
    *status = {Code::kBadRequest, "memory node at " + opts.address + " sent " +
                                      std::to_string(reply.fds.size()) +
                                      " descriptors for shared memory, expected 2"};
    return nullptr;
  }
  auto reader = ShmPageReader::Map(reply.fds[0], reply.fds[1], reply.payload, status);
  close_fds();  // the mappings keep the files alive
  if (!reader) {
    *status = {status->code(),
               "shared memory of memory node at " + opts.address + ": " + status->message()};
    return nullptr;
  }
  return std::make_unique<ShmTransport>(std::move(client), std::move(reader), opts);
}

}  // namespace remora
