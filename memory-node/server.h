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
//    machine and can map the page region; elsewhere it is kUnsupported. It
//    hands out the connection's own node's view only (PageStore::AttachShm).
//  * At most max_unauthenticated connections may be in the handshake at
//    once; a connection beyond that is closed at once, without a hello.
//  * Leases: a processor node's address spaces belong to its connections.
//    When its last connection closes, a lease of lease_ms starts; if the
//    node has not reconnected when it expires, its spaces are destroyed
//    (memnode_lease_expiries). When a node authenticates while it has no
//    other open connection and spaces are left from before, its previous
//    processor is gone (a processor never reconnects), so those spaces are
//    destroyed first (memnode_takeovers): a restarted processor starts clean.
//
// Counters: memnode_req_<type> per request type, memnode_err_<code> per error
// code, memnode_auth_failures, memnode_auth_timeouts, and the latency
// histogram memnode_request_ns (time spent serving, excluding the network).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
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
    int lease_ms = 30000;
    int max_unauthenticated = 256;
  };

  // `store` and `stats` must outlive the service.
  MemoryNodeService(PageStore* store, StatsRegistry* stats, Options options);

  void OnOpen(StreamServer::Connection& conn) override;
  void OnMessage(StreamServer::Connection& conn, const wire::Header& header,
                 std::string_view payload) override;
  void OnClose(StreamServer::Connection& conn, StreamServer::CloseReason reason) override;

  // A timerfd that becomes readable when a lease may have expired; the owner
  // of the event loop watches it and calls OnTimer() (daemon.cc).
  int timer_fd() const { return timer_fd_; }
  void OnTimer();
  ~MemoryNodeService() override;

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

  // Lease bookkeeping (see the file comment).
  void NodeConnected(NodeId node);
  void NodeDisconnected(NodeId node);
  void ArmTimer();

  PageStore* store_;
  StatsRegistry* stats_;
  Options options_;
  std::size_t unauthenticated_ = 0;
  bool refused_logged_ = false;                   // one warning per burst of refusals
  std::unordered_map<NodeId, std::size_t> live_;  // authenticated connections per node
  std::map<NodeId, std::uint64_t> leases_;        // node -> expiry (monotonic ns)
  int timer_fd_ = -1;

  std::array<Counter*, 32> req_counters_{};  // by MsgType value
  std::array<Counter*, 16> err_counters_{};  // by Code value
  MemoryNodeServiceMetrics m_;
};

}  // namespace remora
