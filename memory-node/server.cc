#include "memory-node/server.h"

#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "memory-node/page_store.h"
#include "net/auth.h"
#include "net/wire.h"
#include "remora/stats.h"

namespace remora {

using wire::MsgType;

struct MemoryNodeService::Session : StreamServer::Context {
  auth::Nonce nonce{};
  bool authenticated = false;
  NodeId node_id = 0;
  std::uint64_t incarnation = 0;  // the processor's, from kAuth (0: an observer)
  // kAttachShm served on this connection: each pins the node's view in the
  // store until the connection closes.
  mutable std::uint64_t shm_attaches = 0;
};

NodeId MemoryNodeService::SessionNode(const Session& s) { return s.node_id; }
std::uint64_t MemoryNodeService::SessionIncarnation(const Session& s) { return s.incarnation; }

namespace {

std::string CounterSuffix(std::string_view name) {
  std::string s(name);
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

spdlog::level::level_enum ConnectionLogLevel(const MemoryNodeService::Options& o) {
  return o.log_connections ? spdlog::level::info : spdlog::level::debug;
}

}  // namespace

MemoryNodeService::MemoryNodeService(PageStore* store, StatsRegistry* stats, Options options)
    : store_(store), stats_(stats), options_(std::move(options)) {
  m_.Register(stats_);
  for (std::uint16_t t = 0; t < req_counters_.size(); ++t) {
    if (!wire::IsKnownRequestType(t)) continue;
    req_counters_[t] = m_.requests.Get(wire::TypeName(t));
  }
  for (int c = 1; c <= static_cast<int>(Code::kInternal); ++c)
    err_counters_[c] = m_.errors.Get(CounterSuffix(CodeName(static_cast<Code>(c))));
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
}

MemoryNodeService::~MemoryNodeService() {
  worker_.reset();  // finishes the running operation first
  if (timer_fd_ >= 0) close(timer_fd_);
}

Status MemoryNodeService::Attach(StreamServer* server) {
  server_ = server;
  worker_ = std::make_unique<LoopWorker>();
  REMORA_RETURN_IF_ERROR(server->Watch(timer_fd_, [this] { OnTimer(); }));
  return server->Watch(worker_->done_fd(), [this] { worker_->RunCompletions(); });
}

void MemoryNodeService::OnOpen(StreamServer::Connection& conn) {
  if (unauthenticated_ >= static_cast<std::size_t>(options_.max_unauthenticated)) {
    // No hello, no nonce, no deadline: the cheapest way to say no.
    if (!refused_logged_)
      spdlog::warn("{}: too many connections in the handshake; closed", conn.peer());
    refused_logged_ = true;
    m_.refused->Inc();
    conn.CloseAfterFlush();
    return;
  }
  refused_logged_ = false;
  auto s = std::make_unique<Session>();
  Status st = auth::NewNonce(&s->nonce);
  if (!st.ok()) {  // no randomness: refusing is the only safe answer
    spdlog::error("cannot make a nonce: {}", st.ToString());
    conn.CloseAfterFlush();
    return;
  }
  // Counted only with a session attached: OnClose uncounts exactly those.
  ++unauthenticated_;
  wire::Header hello = wire::MakeRequest(MsgType::kHello, 0, 0, options_.node_id);
  conn.Send(hello, std::string(reinterpret_cast<const char*>(s->nonce.data()), s->nonce.size()));
  conn.SetDeadline(MonotonicNs() + static_cast<std::uint64_t>(options_.auth_timeout_ms) * 1000000);
  conn.SetMaxPayload(wire::kAuthPayloadLocal);  // only kAuth fits until then
  conn.set_context(std::move(s));
}

void MemoryNodeService::OnClose(StreamServer::Connection& conn, StreamServer::CloseReason reason) {
  auto* s = static_cast<Session*>(conn.context());
  pending_.erase(conn.id());  // its operation finishes unanswered
  authenticated_.erase(conn.id());
  if (s)
    for (; s->shm_attaches > 0; --s->shm_attaches) store_->DetachShm(s->node_id);
  if (s && !s->authenticated) --unauthenticated_;
  if (s && s->authenticated) NodeDisconnected(s->node_id);
  if (s && !s->authenticated && reason == StreamServer::CloseReason::kDeadline) {
    m_.auth_timeouts->Inc();
    m_.auth_failures->Inc();
    spdlog::warn("{}: did not authenticate within {} ms; dropped", conn.peer(),
                 options_.auth_timeout_ms);
  } else if (s && s->authenticated) {
    spdlog::log(ConnectionLogLevel(options_), "processor node {} ({}) disconnected: {}", s->node_id,
                conn.peer(), StreamServer::CloseReasonName(reason));
  }
}

void MemoryNodeService::RefuseAuth(StreamServer::Connection& conn, const wire::Header& h,
                                   const std::string& why) {
  m_.auth_failures->Inc();
  err_counters_[static_cast<int>(Code::kAuthFailed)]->Inc();
  spdlog::warn("{}: authentication refused: {}", conn.peer(), why);
  conn.Send(wire::MakeReply(h, Code::kAuthFailed), why);
  conn.CloseAfterFlush();
}

void MemoryNodeService::Authenticate(StreamServer::Connection& conn, Session& s,
                                     const wire::Header& h, std::string_view payload) {
  if (h.type != static_cast<std::uint16_t>(MsgType::kAuth))
    return RefuseAuth(conn, h,
                      "authenticate first (got " + std::string(wire::TypeName(h.type)) + ")");
  if (!wire::ValidateRequest(h).ok()) return RefuseAuth(conn, h, "malformed auth message");
  if (h.arg0 > UINT32_MAX) return RefuseAuth(conn, h, "node id out of range");
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  // F: the client asks for untagged frames (auth.h, "Local connections").
  const bool asked_untagged = payload.size() == wire::kAuthPayloadLocal;
  if (asked_untagged && p[wire::kAuthPayload] != 1)
    return RefuseAuth(conn, h, "malformed auth message");
  auth::Transcript t;
  t.untagged_requested = asked_untagged;
  t.processor_node = static_cast<NodeId>(h.arg0);
  t.memory_node = options_.node_id;
  t.incarnation = h.arg1;
  t.server_nonce = s.nonce;
  std::memcpy(t.client_nonce.data(), p + wire::kMacLen, t.client_nonce.size());
  // The proof is made with the claimed node's own key, over its id: only a
  // holder of that key (or of the cluster secret) passes as that node.
  const auth::Key key = auth::DeriveNodeKey(options_.secret, t.processor_node);
  auth::Mac expect = auth::ClientProof(key, t);
  if (!auth::MacEqual(expect.data(), p))
    return RefuseAuth(conn, h, "wrong key for processor node " + std::to_string(t.processor_node));

  // G: granted only over a unix socket to a client running as this node's
  // uid or as root; the kernel then guards the stream as the tags would.
  t.untagged_granted = asked_untagged && conn.trusted_local_peer();
  auth::Mac proof = auth::ServerProof(key, t);
  s.authenticated = true;
  s.node_id = t.processor_node;
  s.incarnation = t.incarnation;
  --unauthenticated_;
  NodeConnected(s.node_id, t.incarnation);
  SupersedeOlder(conn.id(), s.node_id, t.incarnation);
  authenticated_[conn.id()] = {s.node_id, t.incarnation};
  conn.SetDeadline(0);
  conn.SetMaxPayload(wire::kMaxPayload);
  wire::Header reply = wire::MakeReply(h, Code::kOk);
  reply.arg0 = options_.node_id;
  reply.arg1 = t.untagged_granted ? 1 : 0;
  conn.Send(reply, std::string(reinterpret_cast<const char*>(proof.data()), proof.size()));
  // Everything after the proof is tagged both ways (auth.h, "Frames"),
  // unless untagged frames were granted.
  if (t.untagged_granted)
    m_.untagged_connections->Inc();
  else
    conn.EnableFrameAuth(auth::DeriveFrameKeys(key, t));
  spdlog::log(ConnectionLogLevel(options_), "processor node {} connected from {}{}", s.node_id,
              conn.peer(), t.untagged_granted ? " (local: untagged frames)" : "");
}

void MemoryNodeService::OnMessage(StreamServer::Connection& conn, const wire::Header& h,
                                  std::string_view payload) {
  auto* s = static_cast<Session*>(conn.context());
  if (!s) return;  // OnOpen failed; the connection is closing
  if (!s->authenticated) return Authenticate(conn, *s, h, payload);

  std::uint64_t start = MonotonicNs();
  Reply reply;
  Status st;
  auto pit = pending_.find(conn.id());
  if (pit != pending_.end() && pit->second.result) {
    // The request of a finished long operation, handed back (Defer).
    start = pit->second.start_ns;
    st = std::move(*pit->second.result);
    pending_.erase(pit);
  } else {
    if (Blocked(*s, h, payload)) {
      conn.Defer();
      waiting_.push_back(conn.id());
      m_.deferred->Inc();
      return;
    }
    if (h.type < req_counters_.size() && req_counters_[h.type])
      req_counters_[h.type]->Inc();
    else
      m_.req_unknown->Inc();
    st = wire::ValidateRequest(h);
    if (st.ok()) st = Execute(conn, *s, h, payload, &reply);
    if (st.ok() && reply.off_loop) {
      conn.Defer();
      return;
    }
  }
  if (st.ok()) {
    wire::Header rh = wire::MakeReply(h, Code::kOk);
    rh.arg0 = reply.arg0;
    rh.arg1 = reply.arg1;
    conn.Send(rh, std::move(reply.body), std::move(reply.fds));
  } else {
    auto code = static_cast<std::size_t>(st.code());
    if (code < err_counters_.size() && err_counters_[code]) err_counters_[code]->Inc();
    spdlog::debug("{} node {}: {} failed: {}", conn.peer(), s->node_id, wire::TypeName(h.type),
                  st.ToString());
    conn.Send(wire::MakeReply(h, st.code()), st.message());
  }
  m_.latency->Record(MonotonicNs() - start);
}

void MemoryNodeService::SupersedeOlder(std::uint64_t keep, NodeId node, std::uint64_t incarnation) {
  if (incarnation == 0 || server_ == nullptr) return;  // observers are not one processor
  std::vector<std::uint64_t> older;
  for (const auto& [id, peer] : authenticated_)
    if (id != keep && peer.node == node && peer.incarnation == incarnation) older.push_back(id);
  for (std::uint64_t id : older) {
    m_.superseded->Inc();
    spdlog::info(
        "processor node {} authenticated again: its older connection {} is closed, with "
        "whatever it had not read",
        node, id);
    server_->Close(id, StreamServer::CloseReason::kSuperseded);  // OnClose runs here
  }
}

void MemoryNodeService::NodeConnected(NodeId node, std::uint64_t incarnation) {
  if (live_[node]++ > 0) return;
  // The node's only connection (the rules are in server.h, "Leases").
  const bool had_lease = leases_.erase(node) > 0;
  if (had_lease) ArmTimer();
  auto owner = owners_.find(node);
  if (owner != owners_.end() && (incarnation == 0 || incarnation == owner->second)) {
    if (incarnation != 0) {
      m_.resumes->Inc();
      spdlog::log(ConnectionLogLevel(options_),
                  "processor node {} reconnected: its {} address spaces are kept", node,
                  store_->NodeSpaces(node) + ExtraNodeSpaces(node));
    }
    return;
  }
  // Spaces left from before belong to a processor that is gone, whether or
  // not its lease has run out: destroy them, so the new one starts clean and
  // may reuse the same address space ids.
  if (incarnation != 0) owners_[node] = incarnation;
  DestroyNodeSpaces(node, false);
}

// Takeover or lease expiry; the node's requests wait until it is done.
void MemoryNodeService::DestroyNodeSpaces(NodeId node, bool lease_expired) {
  const std::uint64_t extra = DestroyExtraNodeSpaces(node);
  auto done = [this, node, lease_expired, extra](std::uint64_t n) {
    n += extra;
    if (lease_expired) {
      m_.lease_expiries->Inc();
      if (n > 0)
        spdlog::warn(
            "processor node {} has had no connection for {} ms: destroyed its {} address "
            "spaces",
            node, options_.lease_ms, n);
    } else if (n > 0) {
      m_.takeovers->Inc();
      spdlog::warn(
          "processor node {} connected again: destroyed {} address spaces its previous "
          "processor left",
          node, n);
    }
    m_.reclaimed_spaces->Add(n);
  };
  if (!worker_ || store_->NodeSpaces(node) == 0) return done(store_->DestroyNodeSpaces(node));
  ++busy_nodes_[node];
  m_.offloaded->Inc();
  auto n = std::make_shared<std::uint64_t>(0);
  PageStore* store = store_;
  worker_->Submit([store, node, n] { *n = store->DestroyNodeSpaces(node); },
                  [this, node, n, done] {
                    if (--busy_nodes_[node] == 0) busy_nodes_.erase(node);
                    done(*n);
                    WakeWaiters();
                  });
}

bool MemoryNodeService::OffLoop(StreamServer::Connection& conn, std::vector<Asid> asids,
                                std::function<Status()> op, Reply* reply) {
  if (!worker_) return false;
  for (Asid a : asids) ++busy_spaces_[a];
  m_.offloaded->Inc();
  pending_[conn.id()].start_ns = MonotonicNs();
  auto result = std::make_shared<Status>();
  const std::uint64_t id = conn.id();
  worker_->Submit([op = std::move(op), result] { *result = op(); },
                  [this, id, asids = std::move(asids), result] {
                    for (Asid a : asids)
                      if (--busy_spaces_[a] == 0) busy_spaces_.erase(a);
                    auto it = pending_.find(id);
                    if (it != pending_.end()) {  // still connected: answer it
                      it->second.result = std::move(*result);
                      server_->Resume(id);
                    }
                    WakeWaiters();
                  });
  reply->off_loop = true;
  return true;
}

bool MemoryNodeService::Blocked(const Session& s, const wire::Header& h,
                                std::string_view payload) const {
  switch (static_cast<MsgType>(h.type)) {
    case MsgType::kPing:
    case MsgType::kInfo:
    case MsgType::kStats:
    case MsgType::kAttachShm:
      return false;
    default:
      break;
  }
  if (busy_nodes_.count(s.node_id)) return true;
  if (busy_spaces_.empty()) return false;
  if (busy_spaces_.count(h.asid)) return true;
  if (h.type == static_cast<std::uint16_t>(MsgType::kForkSpace) && busy_spaces_.count(h.arg0))
    return true;
  if (h.type == static_cast<std::uint16_t>(MsgType::kWritePageShared)) {
    const std::size_t n = std::min<std::size_t>(h.arg1, payload.size() / 8);
    for (std::size_t i = 0; i < n; ++i)
      if (busy_spaces_.count(
              wire::GetU64(reinterpret_cast<const std::uint8_t*>(payload.data()) + 8 * i)))
        return true;
  }
  return false;
}

void MemoryNodeService::WakeWaiters() {
  std::vector<std::uint64_t> ids;
  ids.swap(waiting_);
  // Each is handed its request again; one still blocked waits again.
  for (std::uint64_t id : ids) server_->Resume(id);
}

void MemoryNodeService::NodeDisconnected(NodeId node) {
  auto it = live_.find(node);
  if (it == live_.end() || --it->second > 0) return;
  live_.erase(it);
  leases_[node] = MonotonicNs() + static_cast<std::uint64_t>(options_.lease_ms) * 1000000ull;
  ArmTimer();
}

void MemoryNodeService::ArmTimer() {
  if (timer_fd_ < 0) return;
  std::uint64_t next = 0;
  for (const auto& [node, expiry] : leases_)
    if (next == 0 || expiry < next) next = expiry;
  itimerspec its{};
  if (next) {
    const std::uint64_t now = MonotonicNs();
    const std::uint64_t wait = next > now ? next - now : 1;
    its.it_value.tv_sec = static_cast<time_t>(wait / 1000000000ull);
    its.it_value.tv_nsec = static_cast<long>(wait % 1000000000ull);
  }
  timerfd_settime(timer_fd_, 0, &its, nullptr);
}

void MemoryNodeService::OnTimer() {
  std::uint64_t ticks;
  while (read(timer_fd_, &ticks, sizeof ticks) > 0) {
  }
  const std::uint64_t now = MonotonicNs();
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    const NodeId node = it->first;
    it = leases_.erase(it);
    owners_.erase(node);
    DestroyNodeSpaces(node, true);
  }
  ArmTimer();
}

Status MemoryNodeService::CheckOwner(const Session& s, Asid asid) const {
  if (AsidNode(asid) == s.node_id) return Status::Ok();
  return {Code::kPermissionDenied,
          "address space " + std::to_string(asid) + " belongs to processor node " +
              std::to_string(AsidNode(asid)) + ", not to node " + std::to_string(s.node_id)};
}

Status MemoryNodeService::Execute(StreamServer::Connection& conn, const Session& s,
                                  const wire::Header& h, std::string_view payload, Reply* reply) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  switch (static_cast<MsgType>(h.type)) {
    case MsgType::kCreateSpace:
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      return store_->CreateSpace(h.asid);
    case MsgType::kDestroySpace: {
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      const Asid asid = h.asid;
      auto op = [store = store_, asid] { return store->DestroySpace(asid); };
      return OffLoop(conn, {asid}, op, reply) ? Status::Ok() : op();
    }
    case MsgType::kForkSpace: {
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.arg0));
      const Asid parent = h.asid, child = h.arg0;
      auto op = [store = store_, parent, child] { return store->ForkSpace(parent, child); };
      return OffLoop(conn, {parent, child}, op, reply) ? Status::Ok() : op();
    }
    case MsgType::kRegisterRange:
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      return store_->RegisterRange(h.asid, h.arg0, h.arg1);
    case MsgType::kUnregisterRange:
    case MsgType::kDiscardRange: {
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      const bool discard = h.type == static_cast<std::uint16_t>(MsgType::kDiscardRange);
      const Asid asid = h.asid;
      const std::uint64_t start = h.arg0, len = h.arg1;
      auto op = [store = store_, discard, asid, start, len] {
        return discard ? store->DiscardRange(asid, start, len)
                       : store->UnregisterRange(asid, start, len);
      };
      if (len / kPageSize > kInlinePages && OffLoop(conn, {asid}, op, reply)) return Status::Ok();
      return op();
    }
    case MsgType::kInfo: {
      MemoryNodeInfo info = store_->Info();
      wire::InfoPayload ip{};
      ip.capacity_pages = info.capacity_pages;
      ip.used_pages = info.used_pages;
      ip.nr_spaces = info.nr_spaces;
      ip.node_id = options_.node_id;
      reply->body.assign(reinterpret_cast<const char*>(&ip), sizeof ip);
      return Status::Ok();
    }
    case MsgType::kStats:
      reply->body = stats_->Snapshot().ToJson();
      return Status::Ok();
    case MsgType::kPing:
      reply->body.assign(payload);
      return Status::Ok();
    case MsgType::kAttachShm:
      if (!conn.is_unix())
        return {Code::kUnsupported, "shared memory is offered only on the unix socket"};
      // Only this node's own view: the region and index hold no page of any
      // other processor node.
      REMORA_RETURN_IF_ERROR(store_->AttachShm(s.node_id, &reply->fds, &reply->body));
      ++s.shm_attaches;
      return Status::Ok();
    case MsgType::kReadPage: {
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      reply->body.assign(kPageSize, '\0');
      bool present = false;
      REMORA_RETURN_IF_ERROR(store_->ReadPage(h.asid, h.arg0, reply->body.data(), &present));
      if (!present) reply->body.clear();
      reply->arg1 = present ? 1 : 0;
      return Status::Ok();
    }
    case MsgType::kWritePage:
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      return store_->WritePage(h.asid, h.arg0, p);
    case MsgType::kReadPages:
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      return ReadPages(h, p, reply);
    case MsgType::kWritePages:
      REMORA_RETURN_IF_ERROR(CheckOwner(s, h.asid));
      return WritePages(h, p);
    case MsgType::kWritePageShared:
      return WriteShared(s, h, p);
    case MsgType::kRdmaAttach:
    case MsgType::kRdmaMap:
      return {Code::kUnsupported,
              "this memory node serves no RDMA (start it with --transport rdma)"};
    case MsgType::kAuth:
      return {Code::kBadRequest, "already authenticated"};
    case MsgType::kHello:
      break;
  }
  return {Code::kBadRequest, "unexpected message type " + std::to_string(h.type)};
}

Status MemoryNodeService::ReadPages(const wire::Header& h, const std::uint8_t* uvas, Reply* reply) {
  REMORA_RETURN_IF_ERROR(wire::ValidateBatchUvas(h, uvas));
  const std::size_t n = h.arg1;
  reply->body.assign(wire::ReadPagesReplyLen(n), '\0');
  char* presence = reply->body.data();
  char* pages = presence + wire::PresenceBytes(n);
  for (std::size_t i = 0; i < n; ++i) {
    bool present = false;
    REMORA_RETURN_IF_ERROR(
        store_->ReadPage(h.asid, wire::GetU64(uvas + 8 * i), pages + i * kPageSize, &present));
    presence[i] = present ? 1 : 0;
  }
  reply->arg1 = n;
  return Status::Ok();
}

// Not atomic: pages before a failing one stay written (the failure says which).
Status MemoryNodeService::WritePages(const wire::Header& h, const std::uint8_t* payload) {
  REMORA_RETURN_IF_ERROR(wire::ValidateBatchUvas(h, payload));
  const std::size_t n = h.arg1;
  const std::uint8_t* pages = payload + 8 * n;
  for (std::size_t i = 0; i < n; ++i) {
    Status st = store_->WritePage(h.asid, wire::GetU64(payload + 8 * i), pages + i * kPageSize);
    if (!st.ok())
      return {st.code(),
              "page " + std::to_string(i) + " of " + std::to_string(n) + ": " + st.message()};
  }
  return Status::Ok();
}

Status MemoryNodeService::WriteShared(const Session& s, const wire::Header& h,
                                      const std::uint8_t* payload) {
  std::vector<Asid> asids(h.arg1);
  for (std::size_t i = 0; i < asids.size(); ++i) {
    asids[i] = wire::GetU64(payload + 8 * i);
    REMORA_RETURN_IF_ERROR(CheckOwner(s, asids[i]));
  }
  return store_->WritePageShared(asids, h.arg0, payload + 8 * asids.size());
}

}  // namespace remora
