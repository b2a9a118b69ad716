// RdmaMemoryNodeService: the memory node's side of the RDMA transport.
//
// It is the ordinary MemoryNodeService (same TCP listener, handshake, secret
// and per-node ownership rules) plus kRdmaAttach and kRdmaMap. A processor
// connects over TCP, authenticates, and attaches: it sends the addresses of
// its queue pairs, and the memory node creates for this connection alone a
// protection domain, one queue pair per processor queue pair (allowing remote
// READ and WRITE), and — as pages are written — memory regions in that
// protection domain (RdmaFrames). From then on the connection's address
// spaces live in those frames, its control messages act on them
// (RdmaSpaces), and page data moves by one-sided RDMA READ/WRITE that the
// memory node's CPU never sees. Connections that do not attach are served
// from the PageStore exactly as without RDMA.
//
// When the connection closes, its queue pairs, memory regions, protection
// domain and address spaces go with it.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "memory-node/memnode_stats.h"
#include "memory-node/rdma_frames.h"
#include "memory-node/server.h"
#include "net/rdma/rdma_verbs.h"

namespace remora {

class RdmaMemoryNodeService final : public MemoryNodeService {
 public:
  // `endpoint` is the opened device port the node serves RDMA on; it and
  // `store`/`stats` must outlive the service. capacity_pages bounds the
  // frames of all attached connections together.
  RdmaMemoryNodeService(PageStore* store, StatsRegistry* stats, Options options,
                        const rdma::Endpoint* endpoint, std::uint64_t capacity_pages);
  ~RdmaMemoryNodeService() override;

  void OnClose(StreamServer::Connection& conn, StreamServer::CloseReason reason) override;

 protected:
  Status Execute(StreamServer::Connection& conn, const Session& s, const wire::Header& h,
                 std::string_view payload, Reply* reply) override;

 private:
  struct Peer;
  Status Attach(StreamServer::Connection& conn, const wire::Header& h, std::string_view payload,
                Reply* reply);
  Status ExecuteAttached(Peer& p, const Session& s, const wire::Header& h, std::string_view payload,
                         Reply* reply);
  Status Info(Reply* reply) const;
  void SyncGauges();

  PageStore* store_;
  const rdma::Endpoint* ep_;
  FrameBudget budget_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Peer>> peers_;  // by connection id
  RdmaServiceMetrics rdma_m_;
  std::int64_t reported_used_ = 0, reported_peers_ = 0;
};

}  // namespace remora
