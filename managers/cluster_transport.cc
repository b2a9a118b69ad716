#include "managers/cluster_transport.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "common/size.h"
#include "net/auth.h"

namespace remora {
namespace {

void SetGauge(Gauge* g, std::int64_t v) { g->Add(v - g->Value()); }

const char* KindName(TransportKind k) {
  switch (k) {
    case TransportKind::kTcp:
      return "tcp";
    case TransportKind::kShm:
      return "shm";
    case TransportKind::kRdma:
      return "rdma";
  }
  return "?";
}

}  // namespace

ClusterTransport::ClusterTransport(const ClusterOptions& opts,
                                   std::unique_ptr<StatsRegistry> own_stats)
    : policy_(opts.config.policy),
      region_cost_pages_(RegionCostPages(policy_.region_bytes / kPageSize)),
      own_stats_(std::move(own_stats)),
      stats_(opts.stats ? opts.stats : own_stats_.get()),
      pool_(4),
      map_(opts.config.policy.region_bytes),
      rng_(std::random_device{}()) {
  metrics_.Register(stats_);
}

Status ClusterTransport::Connect(const ClusterOptions& opts,
                                 std::unique_ptr<ClusterTransport>* out) {
  REMORA_RETURN_IF_ERROR(opts.config.Validate());
  std::unique_ptr<StatsRegistry> own;
  if (opts.stats == nullptr) own = std::make_unique<StatsRegistry>();
  std::unique_ptr<ClusterTransport> c(new ClusterTransport(opts, std::move(own)));
  const auto& specs = opts.config.nodes;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    NodeLinkOptions lo;
    lo.transport.kind = specs[i].kind;
    lo.transport.address = specs[i].address;
    lo.transport.node_id = opts.processor_id;
    lo.transport.timeout_ms = opts.timeout_ms;
    lo.transport.stats = c->stats_;
    if (i < opts.secrets.size() && !opts.secrets[i].empty()) {
      lo.transport.secret = opts.secrets[i];
    } else {
      if (specs[i].secret_file.empty())
        return {Code::kInvalidArgument,
                fmt::format("memory node {} has no secret_file", specs[i].address)};
      REMORA_RETURN_IF_ERROR(auth::LoadSecretFile(specs[i].secret_file, &lo.transport.secret));
    }
    lo.stall_deadline_ms = opts.config.policy.stall_deadline_ms;
    lo.reconnect_deadline_ms = opts.config.policy.reconnect_deadline_ms;
    NodeLinkHooks hooks;
    ClusterTransport* self = c.get();
    hooks.any_hosted = [self, i](Asid* asid) {
      MutexLock lk(self->map_mu_);
      return self->map_.AnyHosted(i, asid);
    };
    hooks.on_lost = [self, i](const std::string& why) { return self->OnNodeLost(i, why); };
    c->nodes_.push_back(std::make_unique<NodeLink>(specs[i], lo, std::move(hooks), c->stats_));
  }
  int up = 0;
  std::string why;
  for (auto& n : c->nodes_) {
    Status st = n->Start();
    if (st.ok()) {
      ++up;
    } else {
      spdlog::warn("cluster: {} unreachable at start ({}); retried as a new node", n->Describe(),
                   st.ToString());
      why += fmt::format("; {}: {}", n->Describe(), st.ToString());
    }
  }
  if (up < c->policy_.replicas)
    return {Code::kDisconnected,
            fmt::format("{} of {} memory nodes answer, {} replicas need {}{}", up, c->nodes_.size(),
                        c->policy_.replicas, c->policy_.replicas, why)};
  c->repair_thread_ = std::thread([self = c.get()] { self->RepairLoop(); });
  *out = std::move(c);
  return Status::Ok();
}

ClusterTransport::~ClusterTransport() {
  {
    MutexLock lk(repair_mu_);
    stop_ = true;
    repair_cv_.notify_all();
  }
  if (repair_thread_.joinable()) repair_thread_.join();
  nodes_.clear();  // links stop before the map they call into goes
}

std::string ClusterTransport::Describe() const {
  std::string kinds;
  for (const auto& n : nodes_) {
    const char* k = KindName(n->spec().kind);
    if (kinds.find(k) == std::string::npos) kinds += kinds.empty() ? k : std::string("+") + k;
  }
  return fmt::format("{} memory nodes ({}), {} replica{}, regions of {}", nodes_.size(), kinds,
                     policy_.replicas, policy_.replicas == 1 ? "" : "s",
                     FormatSize(policy_.region_bytes));
}

// ---- the map ----

ClusterTransport::View ClusterTransport::Look(Asid asid, std::uint64_t index,
                                              bool in_sync_only) const {
  MutexLock lk(map_mu_);
  return LookLocked(asid, index, in_sync_only);
}

ClusterTransport::View ClusterTransport::LookLocked(Asid asid, std::uint64_t index,
                                                    bool in_sync_only) const {
  View v;
  v.space = map_.HasSpace(asid);
  const Region* r = map_.Find(asid, index);
  if (r == nullptr) return v;
  v.placed = true;
  v.lost = r->lost;
  for (const auto& rep : r->replicas) {
    if (in_sync_only && !rep.in_sync) continue;
    v.nodes.push_back(rep.node);
    v.epochs.push_back(nodes_[rep.node]->epoch());
  }
  return v;
}

std::vector<NodeLoad> ClusterTransport::Loads() const {
  std::vector<NodeLoad> loads(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    bool full = false;
    nodes_[i]->Load(&loads[i].capacity_pages, &loads[i].used_pages, &loads[i].pending_pages, &full);
    loads[i].usable = !full && nodes_[i]->state() == NodeState::kUp;
  }
  return loads;
}

Status ClusterTransport::Host(NodeIndex node, std::uint64_t epoch, Asid asid, std::uint64_t index,
                              bool* gone) {
  NodeLink* link = nodes_[node].get();
  bool hosted;
  {
    MutexLock lk(map_mu_);
    hosted = map_.IsHosted(node, asid);
  }
  if (!hosted) {
    Status st = link->Call(
        epoch,
        [&](Transport* t) {
          Status s = t->CreateSpace(asid);
          if (s.code() != Code::kSpaceExists) return s;
          // Left over from an earlier processor with the same id: its pages
          // are not this space's.
          REMORA_RETURN_IF_ERROR(t->DestroySpace(asid));
          return t->CreateSpace(asid);
        },
        gone);
    if (!st.ok()) return st;
    MutexLock lk(map_mu_);
    map_.MarkHosted(node, asid);
  }
  const std::uint64_t start = Start(index);
  return link->Call(
      epoch, [&](Transport* t) { return t->RegisterRange(asid, start, policy_.region_bytes); },
      gone);
}

Status ClusterTransport::PlaceIfNeeded(Asid asid, std::uint64_t index,
                                       const std::vector<NodeIndex>* like, View* view) {
  *view = Look(asid, index, false);
  if (!view->space) return {Code::kNoSuchSpace, fmt::format("no address space {:#x}", asid)};
  if (view->placed) return Status::Ok();
  MutexLock p(place_mu_);
  std::vector<NodeIndex> chosen;
  {
    MutexLock lk(map_mu_);
    *view = LookLocked(asid, index, false);
    if (!view->space) return {Code::kNoSuchSpace, fmt::format("no address space {:#x}", asid)};
    if (view->placed) return Status::Ok();
    if (like) {
      for (NodeIndex n : *like)
        if (nodes_[n]->state() == NodeState::kUp) chosen.push_back(n);
    }
    if (chosen.empty())
      chosen = ChooseNodes(Loads(), region_cost_pages_, policy_.replicas, {}, &rng_);
  }
  if (chosen.empty()) chosen = ChooseAfterRefresh();
  std::vector<NodeIndex> placed;
  Status last;
  for (NodeIndex n : chosen) {
    bool gone = false;
    Status st = Host(n, nodes_[n]->epoch(), asid, index, &gone);
    if (st.ok()) {
      placed.push_back(n);
      nodes_[n]->NotePlaced(region_cost_pages_);
    } else {
      if (st.code() == Code::kOutOfMemory) nodes_[n]->MarkFull();
      last = st;
    }
  }
  MutexLock lk(map_mu_);
  if (placed.empty()) {
    metrics_.placement_failures->Inc();
    std::string loads;
    const std::vector<NodeLoad> all = Loads();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const NodeLoad& l = all[i];
      loads += fmt::format("{}{}: {} of {} pages free, {}", i ? "; " : "", nodes_[i]->Describe(),
                           l.free_pages(), l.capacity_pages, NodeStateName(nodes_[i]->state()));
    }
    return {last.ok() ? Code::kOutOfMemory : last.code(),
            fmt::format("no memory node has room for another region of {} ({}){}",
                        FormatSize(policy_.region_bytes), loads,
                        last.ok() ? "" : ": " + last.message())};
  }
  map_.Place(asid, index, placed);
  metrics_.regions_placed->Inc();
  if (static_cast<int>(placed.size()) < policy_.replicas) {
    MutexLock r(repair_mu_);
    repair_queue_.push_back({asid, index});
    repair_cv_.notify_all();
  }
  UpdateGauges();
  *view = LookLocked(asid, index, false);
  return Status::Ok();
}

// The estimate charges a whole region for every region placed on a node
// since its last report, so a program that touches many regions at once
// (thread heaps far apart) can make every node look full long before any
// is. Ask the nodes now; if none has room for a whole region even then,
// take nodes with any room at all: the region may never fill, and a node
// that does fill refuses the write (out of memory) rather than losing it.
std::vector<NodeIndex> ClusterTransport::ChooseAfterRefresh() {
  for (auto& n : nodes_) n->Poll();
  MutexLock lk(map_mu_);
  std::vector<NodeIndex> chosen =
      ChooseNodes(Loads(), region_cost_pages_, policy_.replicas, {}, &rng_);
  if (chosen.empty()) chosen = ChooseNodes(Loads(), 1, policy_.replicas, {}, &rng_);
  return chosen;
}

void ClusterTransport::UpdateGauges() {
  SetGauge(metrics_.regions, static_cast<std::int64_t>(map_.regions()));
  SetGauge(metrics_.regions_degraded, static_cast<std::int64_t>(map_.degraded(policy_.replicas)));
  SetGauge(metrics_.regions_lost, static_cast<std::int64_t>(map_.lost()));
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    SetGauge(nodes_[i]->metrics().regions, static_cast<std::int64_t>(map_.regions_on(i)));
}

Status ClusterTransport::LostError(Asid asid, std::uint64_t index) const {
  // Named, so that an operator knows which node to look at.
  const Region* r = map_.Find(asid, index);
  const std::string where = r && r->lost && r->lost_on < nodes_.size()
                                ? nodes_[r->lost_on]->Describe() + ", which is lost"
                                : std::string("memory nodes that are lost");
  return {Code::kDisconnected,
          fmt::format("the pages of [{:#x}, {:#x}) of address space {:#x} were on {}, with no "
                      "other copy (replicas = {})",
                      Start(index), Start(index + 1), asid, where, policy_.replicas)};
}

std::vector<Asid> ClusterTransport::OnNodeLost(NodeIndex node, const std::string& why) {
  std::vector<Asid> spaces;
  std::vector<RegionKey> affected;
  std::uint64_t now_lost = 0;
  {
    MutexLock lk(map_mu_);
    const std::uint64_t lost_before = map_.lost();
    affected = map_.RemoveNode(node, &spaces);
    now_lost = map_.lost() - lost_before;
    UpdateGauges();
  }
  metrics_.nodes_lost->Inc();
  if (now_lost > 0)
    spdlog::error(
        "cluster: {} ({}) held the only copy of {} region(s); reading them fails from now on",
        nodes_[node]->Describe(), why, now_lost);
  if (!affected.empty()) {
    spdlog::warn("cluster: re-replicating {} region(s) that had a replica on {}", affected.size(),
                 nodes_[node]->Describe());
    MutexLock r(repair_mu_);
    for (const auto& k : affected) repair_queue_.push_back(k);
    repair_cv_.notify_all();
  }
  return spaces;
}

// ---- control ----

Status ClusterTransport::CreateSpace(Asid asid) {
  MutexLock lk(map_mu_);
  if (!map_.AddSpace(asid))
    return {Code::kSpaceExists, fmt::format("address space {:#x} exists", asid)};
  return Status::Ok();
}

Status ClusterTransport::OnEveryNode(const std::vector<NodeIndex>& nodes,
                                     const std::function<Status(Transport*)>& fn) {
  std::vector<Status> results(nodes.size());
  std::vector<std::function<void()>> fns;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const std::uint64_t epoch = nodes_[nodes[i]]->epoch();
    fns.push_back([&, i, epoch] {
      bool gone = false, skipped = false;
      // A dead node is not waited for: it will be given up, or counted as
      // lost if it answers again (NodeLink::CallOrSkipIfDead).
      results[i] = nodes_[nodes[i]]->CallOrSkipIfDead(epoch, fn, &gone, &skipped);
      if (gone) results[i] = Status::Ok();  // a lost node holds nothing of ours any more
      if (skipped) metrics_.skipped_dead->Inc();
    });
  }
  pool_.RunAll(fns);
  for (const auto& st : results)
    if (!st.ok()) return st;
  return Status::Ok();
}

Status ClusterTransport::DestroySpace(Asid asid) {
  WriterMutexLock topo(topology_mu_);
  std::vector<NodeIndex> nodes;
  {
    MutexLock lk(map_mu_);
    if (!map_.HasSpace(asid)) return {Code::kNoSuchSpace, fmt::format("no space {:#x}", asid)};
    nodes = map_.RemoveSpace(asid);
    UpdateGauges();
  }
  return OnEveryNode(nodes, [&](Transport* t) {
    Status st = t->DestroySpace(asid);
    return st.code() == Code::kNoSuchSpace ? Status::Ok() : st;
  });
}

Status ClusterTransport::ForkSpace(Asid parent, Asid child) {
  WriterMutexLock topo(topology_mu_);
  std::vector<NodeIndex> nodes;
  {
    MutexLock lk(map_mu_);
    if (!map_.HasSpace(parent))
      return {Code::kNoSuchSpace, fmt::format("no address space {:#x}", parent)};
    if (!map_.ForkSpace(parent, child, &nodes))
      return {Code::kSpaceExists, fmt::format("address space {:#x} exists", child)};
    UpdateGauges();
  }
  return OnEveryNode(nodes, [&](Transport* t) {
    Status st = t->ForkSpace(parent, child);
    if (st.code() != Code::kSpaceExists) return st;
    REMORA_RETURN_IF_ERROR(t->DestroySpace(child));  // an earlier processor's
    return t->ForkSpace(parent, child);
  });
}

Status ClusterTransport::RangeOnEveryNode(Asid asid, std::uint64_t start, std::uint64_t len,
                                          bool forget_written,
                                          const std::function<Status(Transport*)>& fn) {
  ReaderMutexLock topo(topology_mu_);
  std::vector<NodeIndex> nodes;
  {
    MutexLock lk(map_mu_);
    if (!map_.HasSpace(asid)) return {Code::kNoSuchSpace, fmt::format("no space {:#x}", asid)};
    if (forget_written) map_.ClearWritten(asid, start, len);
    nodes = map_.NodesOf(asid);
  }
  return OnEveryNode(nodes, fn);
}

Status ClusterTransport::RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  if (!PageAligned(start) || !PageAligned(len) || len == 0 || start + len < start)
    return {Code::kBadRequest, "range not page-aligned or empty"};
  return RangeOnEveryNode(asid, start, len, /*forget_written=*/false,
                          [&](Transport* t) { return t->RegisterRange(asid, start, len); });
}

Status ClusterTransport::UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  return RangeOnEveryNode(asid, start, len, /*forget_written=*/true,
                          [&](Transport* t) { return t->UnregisterRange(asid, start, len); });
}

Status ClusterTransport::DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  return RangeOnEveryNode(asid, start, len, /*forget_written=*/true,
                          [&](Transport* t) { return t->DiscardRange(asid, start, len); });
}

Status ClusterTransport::Info(MemoryNodeInfo* info) {
  *info = MemoryNodeInfo{};
  for (auto& n : nodes_) {
    MemoryNodeInfo one;
    bool gone = false;
    if (!n->TryOnce(
              n->epoch(), [&](Transport* t) { return t->Info(&one); }, &gone)
             .ok())
      continue;
    info->capacity_pages += one.capacity_pages;
    info->used_pages += one.used_pages;
    info->nr_spaces += one.nr_spaces;
  }
  return Status::Ok();
}

Status ClusterTransport::RemoteStatsJson(std::string* json) {
  std::string out = "{";
  for (auto& n : nodes_) {
    std::string one;
    bool gone = false;
    Status st = n->TryOnce(
        n->epoch(), [&](Transport* t) { return t->RemoteStatsJson(&one); }, &gone);
    if (!st.ok()) continue;
    out += fmt::format("{}\"node{}\": {}", out.size() > 1 ? ", " : "", n->spec().id, one);
  }
  *json = out + "}";
  return Status::Ok();
}

std::vector<ClusterNodeStatus> ClusterTransport::Nodes() const {
  std::vector<ClusterNodeStatus> out;
  MutexLock lk(map_mu_);
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    ClusterNodeStatus s;
    s.spec = nodes_[i]->spec();
    s.state = nodes_[i]->state();
    bool full = false;
    std::uint64_t pending = 0;
    nodes_[i]->Load(&s.capacity_pages, &s.used_pages, &pending, &full);
    s.regions = map_.regions_on(i);
    out.push_back(s);
  }
  return out;
}

// ---- page data ----

Status ClusterTransport::ReadRegion(Asid asid, std::uint64_t index,
                                    std::span<const std::uint64_t> uvas, char* bufs,
                                    bool* present) {
  View v = Look(asid, index, true);
  if (!v.space) return {Code::kNoSuchSpace, fmt::format("no address space {:#x}", asid)};
  if (!v.placed) {
    // Never written back in this space: zeros, as from one memory node.
    std::memset(bufs, 0, uvas.size() * kPageSize);
    if (present) std::fill(present, present + uvas.size(), false);
    return Status::Ok();
  }
  if (v.lost || v.nodes.empty()) {
    MutexLock lk(map_mu_);
    return LostError(asid, index);
  }
  auto read = [&](Transport* t) {
    return uvas.size() == 1 ? t->ReadPage(asid, uvas[0], bufs, present)
                            : t->ReadPages(asid, uvas, bufs, present);
  };
  // Spread reads over the replicas: regions start at different ones.
  const std::size_t n = v.nodes.size();
  const std::size_t first = (index + (uvas[0] >> kPageShift)) % n;
  Status last;
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (first + k) % n;
      NodeLink* link = nodes_[v.nodes[i]].get();
      bool gone = false;
      // First pass: one try on each replica that is up and answering.
      // Second: wait for one.
      if (pass == 0 && !link->healthy()) continue;
      Status st = pass == 0 ? link->TryOnce(v.epochs[i], read, &gone)
                            : link->Call(v.epochs[i], read, &gone);
      if (st.ok()) {
        link->metrics().pages_read->Add(uvas.size());
        if (k > 0 || pass > 0) metrics_.read_failovers->Inc();
        return st;
      }
      if (!gone && st.code() != Code::kDisconnected && st.code() != Code::kTimeout) return st;
      last = st;
    }
  }
  View now = Look(asid, index, true);
  if (now.lost) {
    MutexLock lk(map_mu_);
    return LostError(asid, index);
  }
  return {Code::kDisconnected, fmt::format("no replica of [{:#x}, +{}) answered: {}", uvas[0],
                                           uvas.size(), last.message())};
}

Status ClusterTransport::WriteReplicas(const View& v, std::span<const RegionKey> keys,
                                       std::size_t pages,
                                       const std::function<Status(Transport*)>& write,
                                       const PostFn& post, std::size_t* ok) {
  const std::size_t n = v.nodes.size();
  std::vector<Status> results(n);
  std::vector<char> gone(n, 0), broken(n, 0), settled(n, 0);
  if (post && n > 1) {
    // Every replica that is up gets the batch from this thread, and only
    // then are the answers collected: the nodes store it in parallel and
    // no thread is woken. The first attempt of CallUnlessBroken(), split.
    std::vector<std::shared_ptr<Transport>> links(n);
    std::vector<std::unique_ptr<Transport::PostedWrite>> posted(n);
    for (std::size_t i = 0; i < n; ++i) {
      links[i] = nodes_[v.nodes[i]]->UpTransport(v.epochs[i]);
      if (links[i]) posted[i] = post(links[i].get());
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!posted[i]) continue;
      Status st = posted[i]->Wait();
      nodes_[v.nodes[i]]->NoteOutcome(links[i], st);
      if (NodeLink::TransportFailure(st)) continue;  // retried below, as CallUnlessBroken would
      results[i] = std::move(st);
      settled[i] = 1;
    }
  }
  std::vector<std::function<void()>> fns;
  for (std::size_t i = 0; i < n; ++i) {
    if (settled[i]) continue;
    fns.push_back([&, i] {
      bool g = false, b = false;
      results[i] = nodes_[v.nodes[i]]->CallUnlessBroken(v.epochs[i], write, &g, &b);
      gone[i] = g;
      broken[i] = b;
    });
  }
  pool_.RunAll(fns);
  bool any_ok = false, any_broken = false;
  for (std::size_t i = 0; i < n; ++i) {
    any_ok = any_ok || results[i].ok();
    any_broken = any_broken || broken[i];
  }
  auto took = [&](NodeIndex node) {
    for (std::size_t i = 0; i < n; ++i)
      if (v.nodes[i] == node && results[i].ok()) return true;
    return false;
  };
  bool dropped = false;
  if (any_ok && any_broken) {
    // The broken replicas missed this write: they stop serving these
    // regions now, before the write is acknowledged, so no read can find
    // the old data there; re-replication gives each region its copies back
    // (onto the same node if it reconnects, or another). Only if every
    // region keeps a replica that took the write (a concurrent write-back
    // may have dropped that one for missing its own write).
    MutexLock lk(map_mu_);
    bool safe = true;
    for (const RegionKey& key : keys) {
      const Region* r = map_.Find(key.asid, key.index);
      if (r == nullptr) continue;
      bool kept = false;
      for (const Replica& rep : r->replicas) kept = kept || took(rep.node);
      safe = safe && kept;
    }
    if (safe) {
      for (std::size_t i = 0; i < n; ++i) {
        if (!broken[i] || nodes_[v.nodes[i]]->epoch() != v.epochs[i]) continue;  // lost since
        for (const RegionKey& key : keys) map_.DropReplica(key, v.nodes[i]);
      }
      UpdateGauges();
      dropped = true;
    }
  }
  if (any_broken && !dropped) {
    // Nobody else holds the page: wait for the broken replicas to come
    // back or be given up, as for a node with no other copy.
    fns.clear();
    for (std::size_t i = 0; i < n; ++i) {
      if (!broken[i]) continue;
      broken[i] = 0;
      fns.push_back([&, i] {
        bool g = false;
        results[i] = nodes_[v.nodes[i]]->Call(v.epochs[i], write, &g);
        gone[i] = g;
      });
    }
    pool_.RunAll(fns);
  }
  *ok = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (results[i].ok()) {
      ++*ok;
      nodes_[v.nodes[i]]->metrics().pages_written->Add(pages);
    } else if (!gone[i] && !broken[i]) {
      if (results[i].code() == Code::kOutOfMemory) nodes_[v.nodes[i]]->MarkFull();
      return {results[i].code(), nodes_[v.nodes[i]]->Describe() + ": " + results[i].message()};
    }
  }
  if (!dropped) return Status::Ok();
  metrics_.write_failovers->Inc();
  MutexLock r(repair_mu_);
  for (const RegionKey& key : keys) repair_queue_.push_back(key);
  repair_cv_.notify_all();
  return Status::Ok();
}

Status ClusterTransport::WriteRegion(Asid asid, std::uint64_t index,
                                     std::span<const std::uint64_t> uvas, const char* bufs) {
  View v;
  REMORA_RETURN_IF_ERROR(PlaceIfNeeded(asid, index, nullptr, &v));
  if (v.lost || v.nodes.empty()) {
    MutexLock lk(map_mu_);
    return LostError(asid, index);
  }
  ScopedLatency lat(metrics_.write_ns);
  const RegionKey key{asid, index};
  std::size_t ok = 0;
  REMORA_RETURN_IF_ERROR(WriteReplicas(
      v, {&key, 1}, uvas.size(),
      [&](Transport* t) {
        return uvas.size() == 1 ? t->WritePage(asid, uvas[0], bufs)
                                : t->WritePages(asid, uvas, bufs);
      },
      [&](Transport* t) { return t->PostWritePages(asid, uvas, bufs); }, &ok));
  MutexLock lk(map_mu_);
  if (ok == 0) return LostError(asid, index);
  for (std::uint64_t uva : uvas) map_.MarkWritten(asid, uva);
  return Status::Ok();
}

Status ClusterTransport::ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present) {
  return ReadRegion(asid, Index(uva), {&uva, 1}, static_cast<char*>(buf), present);
}

Status ClusterTransport::WritePage(Asid asid, std::uint64_t uva, const void* buf) {
  ReaderMutexLock topo(topology_mu_);
  return WriteRegion(asid, Index(uva), {&uva, 1}, static_cast<const char*>(buf));
}

Status ClusterTransport::ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                                   bool* present) {
  auto* out = static_cast<char*>(bufs);
  for (std::size_t i = 0; i < uvas.size();) {
    const std::uint64_t index = Index(uvas[i]);
    std::size_t j = i + 1;
    while (j < uvas.size() && Index(uvas[j]) == index) ++j;
    REMORA_RETURN_IF_ERROR(ReadRegion(asid, index, uvas.subspan(i, j - i), out + i * kPageSize,
                                      present ? present + i : nullptr));
    i = j;
  }
  return Status::Ok();
}

Status ClusterTransport::WritePages(Asid asid, std::span<const std::uint64_t> uvas,
                                    const void* bufs) {
  const auto* in = static_cast<const char*>(bufs);
  ReaderMutexLock topo(topology_mu_);
  for (std::size_t i = 0; i < uvas.size();) {
    const std::uint64_t index = Index(uvas[i]);
    std::size_t j = i + 1;
    while (j < uvas.size() && Index(uvas[j]) == index) ++j;
    REMORA_RETURN_IF_ERROR(WriteRegion(asid, index, uvas.subspan(i, j - i), in + i * kPageSize));
    i = j;
  }
  return Status::Ok();
}

Status ClusterTransport::WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                                         const void* buf) {
  if (asids.empty()) return {Code::kBadRequest, "shared write names no address space"};
  const char* data = static_cast<const char*>(buf);
  const std::uint64_t index = Index(uva);
  ReaderMutexLock topo(topology_mu_);
  // Place every space's region, the unplaced ones where the others are, so
  // the page can be stored once per node for all of them.
  std::vector<NodeIndex> like;
  for (Asid a : asids) {
    View v = Look(a, index, false);
    if (v.placed && !v.lost && !v.nodes.empty()) {
      like = v.nodes;
      break;
    }
  }
  std::vector<View> views(asids.size());
  for (std::size_t i = 0; i < asids.size(); ++i) {
    REMORA_RETURN_IF_ERROR(
        PlaceIfNeeded(asids[i], index, like.empty() ? nullptr : &like, &views[i]));
    if (like.empty()) like = views[i].nodes;
  }
  auto same = [&](const View& a, const View& b) {
    auto x = a.nodes, y = b.nodes;
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    return x == y && !a.lost && !b.lost;
  };
  bool all_same = !views[0].nodes.empty();
  for (const auto& v : views) all_same = all_same && same(v, views[0]);
  if (!all_same) {
    // Placed apart: each space gets its own copy.
    for (std::size_t i = 0; i < asids.size(); ++i)
      REMORA_RETURN_IF_ERROR(WriteRegion(asids[i], index, {&uva, 1}, data));
    return Status::Ok();
  }
  const View& v = views[0];
  std::vector<RegionKey> keys;
  for (Asid a : asids) keys.push_back({a, index});
  std::size_t ok = 0;
  REMORA_RETURN_IF_ERROR(WriteReplicas(
      v, keys, 1, [&](Transport* t) { return t->WritePageShared(asids, uva, data); }, nullptr,
      &ok));
  MutexLock lk(map_mu_);
  if (ok == 0) return LostError(asids[0], index);
  for (Asid a : asids) map_.MarkWritten(a, uva);
  return Status::Ok();
}

}  // namespace remora
