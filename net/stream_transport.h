// StreamTransport: the Transport interface spoken as request/reply messages
// over one authenticated stream connection (StreamClient).
//
// The TCP transport is exactly this over a TCP socket. The shared-memory
// transport can reuse it over the memory node's unix socket for everything it
// does not serve from the shared region itself (control, and writes).
//
// Batched reads and writes go out as one kReadPages / kWritePages message per
// wire::kMaxBatchPages pages.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <string>
#include <vector>

#include "net/stream_client.h"
#include "remora/transport.h"

namespace remora {

class StreamTransport : public Transport {
 public:
  StreamTransport(std::string name, std::unique_ptr<StreamClient> client);

  // Connects to opts.address (TCP "host:port" or, with unix_socket, a socket
  // path), runs the client handshake, and wraps the socket in a StreamClient
  // with opts' timeout and stats (prefix `stats_prefix`).
  static Status Dial(const TransportOptions& opts, bool unix_socket,
                     const std::string& stats_prefix, std::unique_ptr<StreamClient>* client);

  std::string Name() const override { return name_; }
  StreamClient* client() { return client_.get(); }

  Status CreateSpace(Asid asid) override;
  Status DestroySpace(Asid asid) override;
  Status ForkSpace(Asid parent, Asid child) override;
  Status RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override;
  Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override;
  Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) override;
  Status Info(MemoryNodeInfo* info) override;
  Status RemoteStatsJson(std::string* json) override;
  Status Ping();

  Status ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present = nullptr) override;
  Status WritePage(Asid asid, std::uint64_t uva, const void* buf) override;
  Status ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                   bool* present = nullptr) override;
  Status WritePages(Asid asid, std::span<const std::uint64_t> uvas, const void* bufs) override;
  Status WritePagesGather(Asid asid, std::span<const std::uint64_t> uvas,
                          std::span<const void* const> pages) override;
  // Every batch is sent before this returns; Wait() collects the replies.
  std::unique_ptr<PostedWrite> PostWritePages(Asid asid, std::span<const std::uint64_t> uvas,
                                              const void* bufs) override;
  Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva, const void* buf) override;

 private:
  Status Simple(wire::MsgType type, Asid asid, std::uint64_t arg0 = 0, std::uint64_t arg1 = 0);
  Status ReadBatch(Asid asid, std::span<const std::uint64_t> uvas, char* out, bool* present);
  // The kWritePages request for one batch; `addrs` holds its encoded
  // addresses and `payload` gets the two pieces it points to.
  static StreamClient::Request WriteBatchRequest(Asid asid, std::span<const std::uint64_t> uvas,
                                                 const char* in, std::vector<std::uint8_t>* addrs,
                                                 iovec (&payload)[2]);
  Status WriteBatch(Asid asid, std::span<const std::uint64_t> uvas, const char* in);

  std::string name_;
  std::unique_ptr<StreamClient> client_;
};

}  // namespace remora
