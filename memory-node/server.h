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
//    (memnode_lease_expiries). Every processor sends its incarnation (a
//    random number it keeps for its life, covered by the handshake's proofs;
//    TransportOptions::incarnation). When a node authenticates while it has
//    no other open connection:
//      - with the incarnation that owns its spaces: the same processor
//        reconnecting after its connection broke. The lease is cancelled and
//        the spaces kept (memnode_resumes);
//      - with incarnation 0 (an observer such as `remora stats`): nothing
//        is taken over, and the lease restarts when it leaves;
//      - with another incarnation: a new processor with that node id (the
//        old one crashed and was restarted), so the spaces left from before
//        are destroyed first (memnode_takeovers) and it starts clean, as its
//        incarnation now owns the node's spaces.
//    The same rules hold for the spaces an RDMA-attached processor keeps in
//    its frames (rdma_service.h): they outlive the connection, not the lease.
//  * Reconnects fence. When a processor authenticates with the incarnation
//    of connections it still has open here, it has given them up (its
//    client broke them after a failure or a stall, and the node has not
//    seen them close yet): they are closed at once, dropping what they
//    have not read (memnode_connections_superseded). So a request the node
//    had received on one but not yet served when the processor gave up can
//    never be applied after the requests the processor sends on the new
//    one: everything an older connection delivered was served, or started,
//    before the new one's handshake, and nothing of it starts after. A long
//    operation it started finishes on its worker, and the new connection's
//    requests on those spaces wait for it (below).
//
// Long operations. Forking or destroying an address space, discarding or
// unregistering more than kInlinePages pages, and destroying a node's spaces
// (takeover, lease expiry) cost time in proportion to a page table, so they
// run on a LoopWorker thread (loop_worker.h), not on the event loop, which
// keeps serving every other peer meanwhile. The page store takes them a chunk
// at a time and lets the loop's requests in between (page_store.cc). Their
// spaces (a fork's parent and child; for a node's spaces, the whole node) are
// busy until the operation is done, and a request naming a busy space waits,
// unread, behind it (StreamServer::Connection::Defer) — it is never refused,
// and never reaches the store where it would block the loop. The connection
// that asked is deferred too, so it gets the reply when the work is done and
// its later replies stay in order. Requests naming no space (ping, info,
// stats, shared-memory attach) are never held. Without Attach() (a service
// that no loop drives) everything runs inline, as the store allows.
//
// Counters: memnode_req_<type> per request type, memnode_err_<code> per error
// code, memnode_auth_failures, memnode_auth_timeouts, memnode_offloaded and
// memnode_deferred, and the latency histogram memnode_request_ns (time from a
// request's arrival to its reply, excluding the network; for a long
// operation, its whole run).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "memory-node/loop_worker.h"
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
    // Processor connects and disconnects at info (a daemon's operator wants
    // them); false: at debug (a node embedded in `remora run` serves only
    // its own processor, and those lines would be noise in every run).
    bool log_connections = true;
  };

  // `store` and `stats` must outlive the service.
  MemoryNodeService(PageStore* store, StatsRegistry* stats, Options options);

  void OnOpen(StreamServer::Connection& conn) override;
  void OnMessage(StreamServer::Connection& conn, const wire::Header& header,
                 std::string_view payload) override;
  void OnClose(StreamServer::Connection& conn, StreamServer::CloseReason reason) override;

  // Serve in `server`'s loop: watches the lease timer and the completions of
  // long operations there. Call once, before the loop runs; the service must
  // be destroyed after `server`.
  Status Attach(StreamServer* server);
  ~MemoryNodeService() override;

  // A range operation of more pages than this is a long operation.
  static constexpr std::uint64_t kInlinePages = 1024;

 protected:
  struct Session;
  struct Reply {
    std::uint64_t arg0 = 0;
    std::uint64_t arg1 = 0;
    std::string body;
    std::vector<int> fds;
    bool off_loop = false;  // handed to the worker: answered when it is done
  };
  // Serves one request of an authenticated peer. A subclass (the RDMA
  // service) may take over some messages and hand the rest back here.
  virtual Status Execute(StreamServer::Connection& conn, const Session& s, const wire::Header& h,
                         std::string_view payload, Reply* reply);
  Status CheckOwner(const Session& s, Asid asid) const;
  static NodeId SessionNode(const Session& s);
  static std::uint64_t SessionIncarnation(const Session& s);
  // Address spaces of processor node `node` that a subclass keeps outside
  // the page store (the RDMA service's frames), and their destruction with
  // the store's on a takeover or a lease expiry (loop thread; returns how
  // many went).
  virtual std::uint64_t ExtraNodeSpaces(NodeId /*node*/) const { return 0; }
  virtual std::uint64_t DestroyExtraNodeSpaces(NodeId /*node*/) { return 0; }

 private:
  void Authenticate(StreamServer::Connection& conn, Session& s, const wire::Header& h,
                    std::string_view payload);
  void RefuseAuth(StreamServer::Connection& conn, const wire::Header& h, const std::string& why);
  Status ReadPages(const wire::Header& h, const std::uint8_t* uvas, Reply* reply);
  Status WritePages(const wire::Header& h, const std::uint8_t* payload);
  Status WriteShared(const Session& s, const wire::Header& h, const std::uint8_t* payload);

  // Long operations (see the file comment). OffLoop runs `op` on the worker
  // with `asids` busy, unless no loop is attached (then it returns false and
  // the caller runs it inline).
  bool OffLoop(StreamServer::Connection& conn, std::vector<Asid> asids, std::function<Status()> op,
               Reply* reply);
  bool Blocked(const Session& s, const wire::Header& h, std::string_view payload) const;
  void DestroyNodeSpaces(NodeId node, bool lease_expired);
  void WakeWaiters();

  // Lease bookkeeping (see the file comment). The timer is watched by the
  // attached loop.
  void NodeConnected(NodeId node, std::uint64_t incarnation);
  // Closes the other connections of processor `node` under `incarnation`
  // (not an observer's): the processor authenticated again on `keep`.
  void SupersedeOlder(std::uint64_t keep, NodeId node, std::uint64_t incarnation);
  void NodeDisconnected(NodeId node);
  void ArmTimer();
  void OnTimer();

  PageStore* store_;
  StatsRegistry* stats_;
  Options options_;
  std::size_t unauthenticated_ = 0;
  bool refused_logged_ = false;                   // one warning per burst of refusals
  std::unordered_map<NodeId, std::size_t> live_;  // authenticated connections per node
  struct Peer {
    NodeId node = 0;
    std::uint64_t incarnation = 0;
  };
  std::unordered_map<std::uint64_t, Peer> authenticated_;  // by connection id
  std::map<NodeId, std::uint64_t> leases_;                 // node -> expiry (monotonic ns)
  // node -> the incarnation its spaces belong to (nonzero; none: no
  // processor has claimed them since they were last destroyed).
  std::unordered_map<NodeId, std::uint64_t> owners_;
  int timer_fd_ = -1;

  // Long operations; loop thread only, like everything above.
  StreamServer* server_ = nullptr;
  std::unique_ptr<LoopWorker> worker_;
  struct Pending {  // a connection's long operation
    std::uint64_t start_ns = 0;
    std::optional<Status> result;  // set when the worker is done
  };
  std::unordered_map<std::uint64_t, Pending> pending_;  // by connection id
  std::unordered_map<Asid, int> busy_spaces_;
  std::unordered_map<NodeId, int> busy_nodes_;
  std::vector<std::uint64_t> waiting_;  // deferred behind a busy space

  std::array<Counter*, 32> req_counters_{};  // by MsgType value
  std::array<Counter*, 16> err_counters_{};  // by Code value
  MemoryNodeServiceMetrics m_;
};

}  // namespace remora
