// RdmaMemoryNodeService: the memory node's side of the RDMA transport.
//
// It is the ordinary MemoryNodeService (same TCP listener, handshake, secret
// and per-node ownership rules) plus kRdmaAttach and kRdmaMap. A processor
// connects over TCP, authenticates, and attaches: it sends the addresses of
// its queue pairs, and the memory node connects one queue pair of its own to
// each (allowing remote READ and WRITE). From then on the processor's address
// spaces live in page frames registered for its queue pairs (RdmaFrames), its
// control messages act on them (RdmaSpaces), and page data moves by one-sided
// RDMA READ/WRITE that the memory node's CPU never sees. Connections that do
// not attach are served from the PageStore exactly as without RDMA.
//
// What an attached processor has here lives as long as one of two things:
//
//  * its *residence* — a protection domain, the frames registered in it and
//    the address spaces over them — belongs to the processor node, like its
//    page-store spaces (server.h, "Leases"): it outlives a broken connection,
//    so the same processor reconnecting (same incarnation) finds its pages
//    where they were, under the same rkeys; it goes on a takeover by a new
//    incarnation or when the node's lease expires. One protection domain per
//    processor node keeps an rkey handed to one node worthless on another's
//    queue pairs;
//  * its *attachment* — a completion queue and the queue pairs — belongs to
//    one connection and goes with it. A new attachment by the same
//    incarnation moves the queue pairs of its older ones to the error state
//    first and refuses their later requests: a write still in flight on a
//    connection the processor gave up cannot land after the writes it
//    retries on the new one.
#pragma once

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

 protected:
  std::uint64_t ExtraNodeSpaces(NodeId node) const override;
  std::uint64_t DestroyExtraNodeSpaces(NodeId node) override;

 private:
  struct Residence;
  struct Attachment;
  Status Attach(StreamServer::Connection& conn, const Session& s, const wire::Header& h,
                std::string_view payload, Reply* reply);
  // The node's residence, made if it has none.
  Status ResidenceOf(NodeId node, Residence** out);
  // Error state for the queue pairs of `node`'s other attachments with this
  // incarnation: the processor has moved on to a new connection.
  void Supersede(NodeId node, std::uint64_t incarnation, std::uint64_t keep_conn);
  Status ExecuteAttached(Residence& r, const Session& s, const wire::Header& h,
                         std::string_view payload, Reply* reply);
  Status Info(Reply* reply) const;
  void SyncGauges();

  PageStore* store_;
  const rdma::Endpoint* ep_;
  FrameBudget budget_;
  // Invariant: a residence is destroyed only with no attachment left on it
  // (its queue pairs are in its protection domain).
  std::unordered_map<NodeId, std::unique_ptr<Residence>> residences_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Attachment>> attachments_;  // by connection id
  RdmaServiceMetrics rdma_m_;
  std::int64_t reported_used_ = 0, reported_peers_ = 0;
};

}  // namespace remora
