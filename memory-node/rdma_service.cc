#include "memory-node/rdma_service.h"

#include <spdlog/spdlog.h>

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

// Declared so that destruction runs top-down: spaces release frames, frames
// deregister their regions, then queue pairs, completion queue, protection
// domain.
struct RdmaMemoryNodeService::Peer {
  rdma::VerbsPtr<ibv_pd> pd;
  rdma::VerbsPtr<ibv_cq> cq;
  std::vector<rdma::VerbsPtr<ibv_qp>> qps;
  std::unique_ptr<VerbsRegistrar> registrar;
  std::unique_ptr<RdmaFrames> frames;
  std::unique_ptr<RdmaSpaces> spaces;

  ~Peer() {
    spaces.reset();
    frames.reset();
    qps.clear();
    cq.reset();
    pd.reset();
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
  peers_.clear();
  SyncGauges();
}

void RdmaMemoryNodeService::SyncGauges() {
  auto sync = [](Gauge* g, std::int64_t now, std::int64_t* reported) {
    if (now != *reported) g->Add(now - *reported);
    *reported = now;
  };
  sync(rdma_m_.frames_used, static_cast<std::int64_t>(budget_.used()), &reported_used_);
  sync(rdma_m_.peers, static_cast<std::int64_t>(peers_.size()), &reported_peers_);
}

void RdmaMemoryNodeService::OnClose(StreamServer::Connection& conn,
                                    StreamServer::CloseReason reason) {
  if (auto it = peers_.find(conn.id()); it != peers_.end()) {
    spdlog::info("{}: RDMA detached; {} address spaces and their frames freed", conn.peer(),
                 it->second->spaces->spaces());
    peers_.erase(it);
    SyncGauges();
  }
  MemoryNodeService::OnClose(conn, reason);
}

Status RdmaMemoryNodeService::Attach(StreamServer::Connection& conn, const wire::Header& h,
                                     std::string_view payload, Reply* reply) {
  if (peers_.count(conn.id())) return {Code::kBadRequest, "already attached over RDMA"};
  std::vector<rdma::QpInfo> remote;
  REMORA_RETURN_IF_ERROR(rdma::DecodeQpInfos(payload, h.arg1, &remote));
  auto p = std::make_unique<Peer>();
  p->pd.reset(ibv_alloc_pd(ep_->ctx.get()));
  if (!p->pd) return {Code::kIoError, std::string("ibv_alloc_pd: ") + std::strerror(errno)};
  p->cq.reset(
      ibv_create_cq(ep_->ctx.get(), static_cast<int>(2 * remote.size()), nullptr, nullptr, 0));
  if (!p->cq) return {Code::kIoError, std::string("ibv_create_cq: ") + std::strerror(errno)};
  std::vector<rdma::QpInfo> local;
  for (const rdma::QpInfo& r : remote) {
    rdma::VerbsPtr<ibv_qp> qp;
    REMORA_RETURN_IF_ERROR(rdma::CreateRcQp(*ep_, p->pd.get(), p->cq.get(), 1,
                                            IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE, &qp));
    const std::uint32_t psn = rdma::RandomPsn();
    REMORA_RETURN_IF_ERROR(rdma::ConnectRcQp(*ep_, qp.get(), psn, r));
    local.push_back(rdma::LocalQpInfo(*ep_, qp.get(), psn));
    p->qps.push_back(std::move(qp));
  }
  p->registrar = std::make_unique<VerbsRegistrar>(p->pd.get());
  p->frames = std::make_unique<RdmaFrames>(&budget_, p->registrar.get());
  p->spaces = std::make_unique<RdmaSpaces>(p->frames.get());
  reply->body = rdma::EncodeQpInfos(local);
  reply->arg1 = local.size();
  spdlog::info("{}: attached over RDMA with {} queue pairs (peer GID {})", conn.peer(),
               local.size(), rdma::GidToString(remote[0].gid));
  peers_.emplace(conn.id(), std::move(p));
  rdma_m_.attaches->Inc();
  SyncGauges();
  return Status::Ok();
}

Status RdmaMemoryNodeService::Info(Reply* reply) const {
  MemoryNodeInfo info = store_->Info();
  std::uint64_t spaces = 0;
  for (const auto& [id, p] : peers_) spaces += p->spaces->spaces();
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
  if (type == MsgType::kRdmaAttach) return Attach(conn, h, payload, reply);
  if (type == MsgType::kInfo) return Info(reply);
  auto it = peers_.find(conn.id());
  if (it == peers_.end() && type == MsgType::kRdmaMap)
    return {Code::kBadRequest, "rdma_map before rdma_attach"};
  // Messages that touch no address space are the same either way.
  if (it == peers_.end() || type == MsgType::kStats || type == MsgType::kPing ||
      type == MsgType::kAttachShm)
    return MemoryNodeService::Execute(conn, s, h, payload, reply);
  const std::uint64_t cow_before = it->second->spaces->metrics().cow_breaks;
  Status st = ExecuteAttached(*it->second, s, h, payload, reply);
  rdma_m_.cow_breaks->Add(it->second->spaces->metrics().cow_breaks - cow_before);
  SyncGauges();
  return st;
}

Status RdmaMemoryNodeService::ExecuteAttached(Peer& p, const Session& s, const wire::Header& h,
                                              std::string_view payload, Reply* reply) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(payload.data());
  RdmaSpaces& sp = *p.spaces;
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
