#include "memory-node/rdma_service.h"

#include <spdlog/spdlog.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <vector>

#include "memory-node/page_store.h"
#include "memory-node/rdma_spaces.h"
#include "net/rdma/rdma_wire.h"
#include "net/wire.h"
#include "remora/stats.h"

namespace remora {

using wire::MsgType;

namespace {

// Memory regions in one connection's protection domain.
class VerbsRegistrar final : public FrameRegistrar {
 public:
  explicit VerbsRegistrar(ibv_pd* pd) : pd_(pd) {}
  Status Register(char* base, std::size_t len, std::uint32_t* rkey, void** handle) override {
    ibv_mr* mr = ibv_reg_mr(
        pd_, base, len, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
    if (!mr)
      return {Code::kIoError,
              std::string("cannot register page frames for RDMA: ") + std::strerror(errno)};
    *rkey = mr->rkey;
    *handle = mr;
    return Status::Ok();
  }
  void Deregister(void* handle) override { ibv_dereg_mr(static_cast<ibv_mr*>(handle)); }

 private:
  ibv_pd* pd_;
};

}  // namespace

// A processor node's protection domain, frames and address spaces (see the
// header). Declared so that destruction runs top-down: spaces release frames,
// frames deregister their regions, then the protection domain goes.
struct RdmaMemoryNodeService::Residence {
  rdma::VerbsPtr<ibv_pd> pd;
  std::unique_ptr<VerbsRegistrar> registrar;
  std::unique_ptr<RdmaFrames> frames;
  std::unique_ptr<RdmaSpaces> spaces;
  std::size_t attachments = 0;  // connections attached to it now

  ~Residence() {
    assert(attachments == 0);
    spaces.reset();
    frames.reset();
    registrar.reset();
    pd.reset();
  }
};

// One connection's queue pairs (in its residence's protection domain) and
// their completion queue.
struct RdmaMemoryNodeService::Attachment {
  NodeId node = 0;
  std::uint64_t incarnation = 0;
  bool superseded = false;  // the same processor attached again since
  rdma::VerbsPtr<ibv_cq> cq;
  std::vector<rdma::VerbsPtr<ibv_qp>> qps;

  ~Attachment() {
    qps.clear();
    cq.reset();
  }
};

RdmaMemoryNodeService::RdmaMemoryNodeService(PageStore* store, StatsRegistry* stats,
                                             Options options, const rdma::Endpoint* endpoint,
                                             std::uint64_t capacity_pages)
    : MemoryNodeService(store, stats, std::move(options)),
      store_(store),
      ep_(endpoint),
      budget_(capacity_pages) {
  rdma_m_.Register(stats);
}

RdmaMemoryNodeService::~RdmaMemoryNodeService() {
  for (auto& [id, a] : attachments_) residences_.at(a->node)->attachments--;
  attachments_.clear();
  residences_.clear();
  SyncGauges();
}

void RdmaMemoryNodeService::SyncGauges() {
  auto sync = [](Gauge* g, std::int64_t now, std::int64_t* reported) {
    if (now != *reported) g->Add(now - *reported);
    *reported = now;
  };
  sync(rdma_m_.frames_used, static_cast<std::int64_t>(budget_.used()), &reported_used_);
  sync(rdma_m_.peers, static_cast<std::int64_t>(attachments_.size()), &reported_peers_);
}

void RdmaMemoryNodeService::OnClose(StreamServer::Connection& conn,
                                    StreamServer::CloseReason reason) {
  if (auto it = attachments_.find(conn.id()); it != attachments_.end()) {
    const NodeId node = it->second->node;
    attachments_.erase(it);
    auto r = residences_.find(node);
    assert(r != residences_.end() && r->second->attachments > 0);
    const std::size_t spaces = r->second->spaces->spaces();
    if (--r->second->attachments == 0 && spaces == 0) {
      residences_.erase(r);  // nothing to keep: its frames and domain go now
    } else {
      spdlog::debug("{}: RDMA detached; processor node {} keeps {} address spaces here",
                    conn.peer(), node, spaces);
    }
    SyncGauges();
  }
  // Last: this may start the node's lease, whose expiry destroys the residence.
  MemoryNodeService::OnClose(conn, reason);
}

std::uint64_t RdmaMemoryNodeService::ExtraNodeSpaces(NodeId node) const {
  auto it = residences_.find(node);
  return it == residences_.end() ? 0 : it->second->spaces->spaces();
}

std::uint64_t RdmaMemoryNodeService::DestroyExtraNodeSpaces(NodeId node) {
  auto it = residences_.find(node);
  if (it == residences_.end()) return 0;
  // Takeover and lease expiry come only with no other connection of the
  // node open (server.cc), so no attachment is left on the residence.
  if (it->second->attachments > 0) {
    spdlog::error("processor node {}: RDMA frames kept: {} connections still attached", node,
                  it->second->attachments);
    return 0;
  }
  const std::uint64_t n = it->second->spaces->spaces();
  residences_.erase(it);
  SyncGauges();
  return n;
}

Status RdmaMemoryNodeService::ResidenceOf(NodeId node, Residence** out) {
  std::unique_ptr<Residence>& slot = residences_[node];
  if (!slot) {
    auto r = std::make_unique<Residence>();
    r->pd.reset(ibv_alloc_pd(ep_->ctx.get()));
    if (!r->pd) {
      residences_.erase(node);
      return {Code::kIoError, std::string("ibv_alloc_pd: ") + std::strerror(errno)};
    }
    r->registrar = std::make_unique<VerbsRegistrar>(r->pd.get());
    r->frames = std::make_unique<RdmaFrames>(&budget_, r->registrar.get());
    r->spaces = std::make_unique<RdmaSpaces>(r->frames.get());
    slot = std::move(r);
  } else {
    rdma_m_.reattaches->Inc();
  }
  *out = slot.get();
  return Status::Ok();
}

void RdmaMemoryNodeService::Supersede(NodeId node, std::uint64_t incarnation,
                                      std::uint64_t keep_conn) {
  if (incarnation == 0) return;  // observers are not one processor
  for (auto& [id, a] : attachments_) {
    if (id == keep_conn || a->superseded || a->node != node || a->incarnation != incarnation)
      continue;
    for (auto& qp : a->qps) {
      ibv_qp_attr attr{};
      attr.qp_state = IBV_QPS_ERR;
      ibv_modify_qp(qp.get(), &attr, IBV_QP_STATE);
    }
    a->superseded = true;
    spdlog::info(
        "processor node {} attached again over RDMA: its older connection's {} queue "
        "pairs are stopped",
        node, a->qps.size());
  }
}

Status RdmaMemoryNodeService::Attach(StreamServer::Connection& conn, const Session& s,
                                     const wire::Header& h, std::string_view payload,
                                     Reply* reply) {
  if (attachments_.count(conn.id())) return {Code::kBadRequest, "already attached over RDMA"};
  std::vector<rdma::QpInfo> remote;
  REMORA_RETURN_IF_ERROR(rdma::DecodeQpInfos(payload, h.arg1, &remote));
  const NodeId node = SessionNode(s);
  Residence* r = nullptr;
  REMORA_RETURN_IF_ERROR(ResidenceOf(node, &r));
  auto a = std::make_unique<Attachment>();
  a->node = node;
  a->incarnation = SessionIncarnation(s);
  a->cq.reset(
      ibv_create_cq(ep_->ctx.get(), static_cast<int>(2 * remote.size()), nullptr, nullptr, 0));
  if (!a->cq) return {Code::kIoError, std::string("ibv_create_cq: ") + std::strerror(errno)};
  std::vector<rdma::QpInfo> local;
  for (const rdma::QpInfo& q : remote) {
    rdma::VerbsPtr<ibv_qp> qp;
    REMORA_RETURN_IF_ERROR(rdma::CreateRcQp(*ep_, r->pd.get(), a->cq.get(), 1,
                                            IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE, &qp));
    const std::uint32_t psn = rdma::RandomPsn();
    REMORA_RETURN_IF_ERROR(rdma::ConnectRcQp(*ep_, qp.get(), psn, q));
    local.push_back(rdma::LocalQpInfo(*ep_, qp.get(), psn));
    a->qps.push_back(std::move(qp));
  }
  Supersede(node, a->incarnation, conn.id());
  reply->body = rdma::EncodeQpInfos(local);
  reply->arg1 = local.size();
  spdlog::info(
      "{}: attached over RDMA with {} queue pairs (peer GID {}); processor node {} has {} "
      "address spaces here",
      conn.peer(), local.size(), rdma::GidToString(remote[0].gid), node, r->spaces->spaces());
  ++r->attachments;
  attachments_.emplace(conn.id(), std::move(a));
  rdma_m_.attaches->Inc();
  SyncGauges();
  return Status::Ok();
}

Status RdmaMemoryNodeService::Info(Reply* reply) const {
  MemoryNodeInfo info = store_->Info();
  std::uint64_t spaces = 0;
  for (const auto& [node, r] : residences_) spaces += r->spaces->spaces();
  wire::InfoPayload ip{};
  ip.capacity_pages = info.capacity_pages;
  ip.used_pages = info.used_pages + budget_.used();
  ip.nr_spaces = info.nr_spaces + spaces;
  ip.node_id = info.node_id;
  reply->body.assign(reinterpret_cast<const char*>(&ip), sizeof ip);
  return Status::Ok();
}

Status RdmaMemoryNodeService::Execute(StreamServer::Connection& conn, const Session& s,
                                      const wire::Header& h, std::string_view payload,
                                      Reply* reply) {
  const auto type = static_cast<MsgType>(h.type);
  if (type == MsgType::kRdmaAttach) return Attach(conn, s, h, payload, reply);
  if (type == MsgType::kInfo) return Info(reply);
  auto it = attachments_.find(conn.id());
  if (it == attachments_.end() && type == MsgType::kRdmaMap)
    return {Code::kBadRequest, "rdma_map before rdma_attach"};
  // Messages that touch no address space are the same either way.
  if (it == attachments_.end() || type == MsgType::kStats || type == MsgType::kPing ||
      type == MsgType::kAttachShm)
    return MemoryNodeService::Execute(conn, s, h, payload, reply);
  // A request left over from before the processor reconnected must not be
  // applied after the ones it sends now.
  if (it->second->superseded)
    return {Code::kDisconnected,
            "this connection was superseded by a newer one of the same processor"};
  Residence& r = *residences_.at(it->second->node);
  const std::uint64_t cow_before = r.spaces->metrics().cow_breaks;
  Status st = ExecuteAttached(r, s, h, payload, reply);
  rdma_m_.cow_breaks->Add(r.spaces->metrics().cow_breaks - cow_before);
  SyncGauges();
  return st;
}

Status RdmaMemoryNodeService::ExecuteAttached(Residence& r, const Session& s, const wire::Header& h,
                                              std::string_view payload, Reply* reply) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(payload.data());
  RdmaSpaces& sp = *r.spaces;
  const auto type = static_cast<MsgType>(h.type);
  if (type != MsgType::kWritePageShared) REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
  switch (type) {
    case MsgType::kCreateSpace:
      return sp.CreateSpace(h.asid);
    case MsgType::kDestroySpace:
      return sp.DestroySpace(h.asid);
    case MsgType::kForkSpace:
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.arg0));
      return sp.ForkSpace(h.asid, h.arg0);
    case MsgType::kRegisterRange:
      return sp.RegisterRange(h.asid, h.arg0, h.arg1);
    case MsgType::kUnregisterRange:
      return sp.UnregisterRange(h.asid, h.arg0, h.arg1);
    case MsgType::kDiscardRange:
      return sp.DiscardRange(h.asid, h.arg0, h.arg1);
    case MsgType::kRdmaMap: {
      std::vector<std::uint64_t> uvas(h.arg1);
      for (std::size_t i = 0; i < uvas.size(); ++i) uvas[i] = wire::GetU64(b + 8 * i);
      std::vector<rdma::Mapping> maps;
      REMORA_RETURN_IF_ERROR(sp.Map(h.asid, uvas, h.arg0 == 1, &maps));
      rdma_m_.map_pages->Add(maps.size());
      reply->body = rdma::EncodeMappings(maps);
      reply->arg1 = maps.size();
      return Status::Ok();
    }
    case MsgType::kReadPage: {
      reply->body.assign(kPageSize, '\0');
      bool present = false;
      REMORA_RETURN_IF_ERROR(sp.ReadPage(h.asid, h.arg0, reply->body.data(), &present));
      if (!present) reply->body.clear();
      reply->arg1 = present ? 1 : 0;
      return Status::Ok();
    }
    case MsgType::kWritePage:
      return sp.WritePage(h.asid, h.arg0, b);
    case MsgType::kReadPages: {
      const std::size_t n = h.arg1;
      reply->body.assign(wire::ReadPagesReplyLen(n), '\0');
      char* presence = reply->body.data();
      char* pages = presence + wire::PresenceBytes(n);
      for (std::size_t i = 0; i < n; ++i) {
        bool present = false;
        REMORA_RETURN_IF_ERROR(
            sp.ReadPage(h.asid, wire::GetU64(b + 8 * i), pages + i * kPageSize, &present));
        presence[i] = present ? 1 : 0;
      }
      reply->arg1 = n;
      return Status::Ok();
    }
    case MsgType::kWritePages: {
      const std::size_t n = h.arg1;
      for (std::size_t i = 0; i < n; ++i)
        REMORA_RETURN_IF_ERROR(
            sp.WritePage(h.asid, wire::GetU64(b + 8 * i), b + 8 * n + i * kPageSize));
      return Status::Ok();
    }
    case MsgType::kWritePageShared: {
      std::vector<Asid> asids(h.arg1);
      for (std::size_t i = 0; i < asids.size(); ++i) {
        asids[i] = wire::GetU64(b + 8 * i);
        REMORA_RETURN_IF_ERROR(CheckOwner(s, asids[i]));
      }
      return sp.WritePageShared(asids, h.arg0, b + 8 * asids.size());
    }
    default:
      break;
  }
  return {Code::kBadRequest, "unexpected message type " + std::to_string(h.type)};
}

}  // namespace remora
