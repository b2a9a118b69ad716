// MemoryNodeService: what a memory node does with each message — the bridge
// between StreamServer connections and the PageStore.
//
// Per connection it keeps whether the peer has authenticated and as which
// processor node. The rules:
//
//  * The server greets every connection with kHello and expects kAuth next
//    (auth.h). Anything else first, a wrong proof, or no proof within
//    auth_timeout_ms ends the connection after a kAuthFailed reply; each such
//    peer is counted in memnode_auth_failures (timeouts also in
//    memnode_auth_timeouts).
//  * A connection authenticated as processor node N may only name address
//    spaces with AsidNode(asid) == N; others get kPermissionDenied. This keeps
//    two processor nodes sharing a memory node out of each other's memory.
//  * A malformed request (unknown type, payload length that does not fit the
//    type, misaligned address) is answered with kBadRequest and the
//    connection stays: the stream is still in sync.
//  * kAttachShm is served only on the unix socket, where the peer is on this
//    machine and can map the page region; elsewhere it is kUnsupported.
//
// Counters: memnode_req_<type> per request type, memnode_err_<code> per error
// code, memnode_auth_failures, memnode_auth_timeouts, and the latency
// histogram memnode_request_ns (time spent serving, excluding the network).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "memory-node/memnode_stats.h"
#include "net/stream_server.h"
#include "remora/protocol.h"
#include "remora/types.h"

namespace remora {

class PageStore;
class StatsRegistry;

class MemoryNodeService : public StreamServer::Handler {
 public:
  struct Options {
    std::string secret;  // shared with every processor node
    NodeId node_id = 0;  // this memory node's id (kHello, kInfo)
    int auth_timeout_ms = 5000;
  };

  // `store` and `stats` must outlive the service.
  MemoryNodeService(PageStore* store, StatsRegistry* stats, Options options);

  void OnOpen(StreamServer::Connection& conn) override;
  void OnMessage(StreamServer::Connection& conn, const wire::Header& header,
                 std::string_view payload) override;
  void OnClose(StreamServer::Connection& conn, StreamServer::CloseReason reason) override;

 protected:
  struct Session;
  struct Reply {
    std::uint64_t arg0 = 0;
    std::uint64_t arg1 = 0;
    std::string body;
    std::vector<int> fds;
  };
  // Serves one request of an authenticated peer. A subclass (the RDMA
  // service) may take over some messages and hand the rest back here.
  virtual Status Execute(StreamServer::Connection& conn, const Session& s, const wire::Header& h,
                         std::string_view payload, Reply* reply);
  Status CheckOwner(const Session& s, Asid asid) const;
  static NodeId SessionNode(const Session& s);

 private:
  void Authenticate(StreamServer::Connection& conn, Session& s, const wire::Header& h,
                    std::string_view payload);
  void RefuseAuth(StreamServer::Connection& conn, const wire::Header& h, const std::string& why);
  Status ReadPages(const wire::Header& h, const std::uint8_t* uvas, Reply* reply);
  Status WritePages(const wire::Header& h, const std::uint8_t* payload);
  Status WriteShared(const Session& s, const wire::Header& h, const std::uint8_t* payload);

  PageStore* store_;
  StatsRegistry* stats_;
  Options options_;

  std::array<Counter*, 32> req_counters_{};  // by MsgType value
  std::array<Counter*, 16> err_counters_{};  // by Code value
  MemoryNodeServiceMetrics m_;
};

}  // namespace remora
