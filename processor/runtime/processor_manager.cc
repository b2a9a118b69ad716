#include "processor/runtime/processor_manager.h"

#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/thread_name.h"
#include "processor/abi/runtime_protocol.h"
#include "processor/runtime/process_session.h"
#include "processor/runtime/runtime_socket.h"

namespace remora {

ProcessorManager::ProcessorManager(const ProcessorManagerOptions& options)
    : options_(options),
      counters_(options.stats),
      memory_node_used_pages_(counters_.memory_node_used_pages),
      rmaps_(counters_.pcache_rmaps),
      sink_(options.transport) {}

Status ProcessorManager::Create(const ProcessorManagerOptions& options,
                                std::unique_ptr<ProcessorManager>* out) {
  if (!options.transport || !options.stats)
    return {Code::kInvalidArgument, "the processor manager needs a transport and stats"};
  if (options.socket_path.empty())
    return {Code::kInvalidArgument, "the processor manager needs a socket path"};
  PcacheGeometry geometry;
  REMORA_RETURN_IF_ERROR(PcacheGeometry::FromConfig(options.pcache, &geometry));
  // Both background reclaim and the CPU latency QoS request stay off by
  // default when the manager may run on one CPU only.
  const unsigned cpus = CpusAllowed();
  Watermarks watermarks;
  REMORA_RETURN_IF_ERROR(
      ResolveWatermarks(geometry, cpus, options.reclaim_low, options.reclaim_high, &watermarks));
  if (options.reclaim_batch == 0)
    return {Code::kInvalidArgument, "the reclaim batch must be at least one line"};
  std::unique_ptr<ProcessorManager> m(new ProcessorManager(options));
  if (options.victim_entries > 0) {
    VictimCacheOptions vo;
    vo.entries = options.victim_entries;
    // Dirty victims wait up to 10 ms for a batch of 16 rather than 2: a
    // program that evicts slowly (a loaded machine, a random-access program
    // between bursts) otherwise sends batches of two or three pages, each a
    // flush-thread wake-up and a round trip. Nothing waits for them
    // meanwhile: a fill takes a queued page from the cache, and an insert
    // that finds no room ends the wait.
    vo.flush_delay = std::chrono::milliseconds(10);
    vo.sink = &m->sink_;
    vo.stats = options.stats;
    REMORA_RETURN_IF_ERROR(VictimCache::Create(vo, &m->victim_));
  }
  PcacheOptions po;
  po.hooks = m->MakeEvictHooks();
  po.victim = m->victim_.get();
  po.sink = &m->sink_;
  po.stats = options.stats;
  po.replacement = options.replacement;
  if (watermarks.enabled()) {
    // Set below, before any program can attach and fill.
    po.on_allocate = [p = m.get()](std::uint32_t set, std::uint32_t free_left) {
      p->reclaimer_->OnAllocate(set, free_left);
    };
  }
  REMORA_RETURN_IF_ERROR(Pcache::Create(options.pcache, std::move(po), &m->pcache_));
  ReclaimerOptions ro;
  ro.watermarks = watermarks;
  ro.batch = options.reclaim_batch;
  ro.end_batch = [p = m.get()] { p->FlushZaps(); };
  ro.counters = &m->counters_;
  m->reclaimer_ = std::make_unique<Reclaimer>(m->pcache_.get(), std::move(ro));
  m->counters_.reclaim_free_lines_reserved->Add(static_cast<std::int64_t>(geometry.nr_sets()) *
                                                watermarks.low);
  // A quarter cache's worth of shadow entries: refaults within that
  // distance mark a page as part of the working set, and the metadata stays
  // within 128 bytes per line (80 for the line, 16 for its share of the
  // shadow's table, 24 for its share of its set with 8 ways).
  const std::uint32_t lines = m->pcache_->geometry().nr_lines();
  m->shadow_ = std::make_unique<RefaultShadow>(std::max<std::uint32_t>(1, lines / 4));
  if (!options.fault_trace.empty()) {
    Status st = FaultTrace::Open(options.fault_trace, &m->fault_trace_);
    if (!st.ok()) return st;
  }
  const std::size_t per_line = sizeof(PcacheLine) +
                               (lines / 4) * RefaultShadow::kBytesPerEntry / std::max(1u, lines) +
                               sizeof(PcacheSet) / std::max(1u, m->pcache_->geometry().ways());
  m->counters_.pcache_metadata_bytes_per_line->Add(static_cast<std::int64_t>(per_line));
  CpuLatencyQosOptions qo;
  qo.mode = options.cpu_latency_qos;
  qo.counters = &m->counters_;
  qo.cpus_allowed = cpus;
  m->cpu_latency_qos_ = CpuLatencyQos::Create(std::move(qo));
  REMORA_RETURN_IF_ERROR(m->Listen());
  m->acceptor_ = std::thread([p = m.get()] {
    NameThisThread("remora-accept");
    p->AcceptLoop();
  });
  *out = std::move(m);
  return Status::Ok();
}

ProcessorManager::~ProcessorManager() {
  // No background eviction while the sessions go: what is left to evict,
  // their faults evict themselves.
  if (reclaimer_) reclaimer_->Stop();
  if (stop_fd_ >= 0) {
    std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof(one));
  }
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (bound_) ::unlink(options_.socket_path.c_str());
  // Programs still attached lose their manager: closing our ends makes
  // their agents stop them, and the sessions tear down.
  std::vector<std::shared_ptr<ProcessSession>> live;
  {
    ReaderMutexLock lk(sessions_mu_);
    for (auto& [id, s] : by_id_) live.push_back(s);
  }
  for (auto& s : live) s->Fail({Code::kDisconnected, "the processor manager is shutting down"});
  WaitIdle(std::chrono::seconds(10));
  ReapRetired();
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void ProcessorManager::NewSessionIds(std::uint64_t* id, Asid* asid) {
  // A session id is what an agent presents to join its session: random,
  // so one program cannot name another's (the agent's credentials must
  // match the session's too, greeter.cc).
  std::uint64_t r = 0;
  WriterMutexLock lk(sessions_mu_);
  do {
    while (::getrandom(&r, sizeof(r), 0) != static_cast<ssize_t>(sizeof(r))) {
    }
  } while (r == 0 || by_id_.count(r) != 0);
  *id = r;
  *asid = MakeAsid(options_.node_id, ++next_local_asid_);
}

void ProcessorManager::Register(std::shared_ptr<ProcessSession> session) {
  {
    WriterMutexLock lk(sessions_mu_);
    by_asid_[session->asid()] = session;
    by_id_[session->id()] = std::move(session);
  }
  counters_.sessions_started->Inc();
  counters_.processes_attached->Add(1);
}

void ProcessorManager::Retire(std::uint64_t id) {
  WriterMutexLock lk(sessions_mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  by_asid_.erase(it->second->asid());
  retired_.push_back(std::move(it->second));
  by_id_.erase(it);
  counters_.sessions_ended->Inc();
  counters_.processes_attached->Sub(1);
  idle_cv_.notify_all();
}

void ProcessorManager::ReapRetired() {
  std::vector<std::shared_ptr<ProcessSession>> done;
  {
    WriterMutexLock lk(sessions_mu_);
    done.swap(retired_);
  }
  for (auto& s : done) s->Join();
}

std::size_t ProcessorManager::sessions() const {
  ReaderMutexLock lk(sessions_mu_);
  return by_id_.size();
}

bool ProcessorManager::WaitIdle(std::chrono::milliseconds timeout) {
  WriterMutexLock lk(sessions_mu_);
  return idle_cv_.wait_for(sessions_mu_, timeout,
                           [&]() REQUIRES(sessions_mu_) { return by_id_.empty(); });
}

std::shared_ptr<ProcessSession> ProcessorManager::FindSession(Asid asid) const {
  ReaderMutexLock lk(sessions_mu_);
  auto it = by_asid_.find(asid);
  return it == by_asid_.end() ? nullptr : it->second;
}

void ProcessorManager::FlushZaps() {
  std::vector<std::shared_ptr<ProcessSession>> queued;
  {
    ReaderMutexLock lk(sessions_mu_);
    for (auto& [id, s] : by_id_) {
      // zaps_pending() > 0: the agent is attached and its queue exists.
      if (s->zaps_pending() > 0 && s->zaps().has_queued()) queued.push_back(s);
    }
  }
  // Without sessions_mu_: a send may block on a full socket.
  for (auto& s : queued) (void)s->zaps().Flush();
}

StatsSnapshot ProcessorManager::Snapshot() {
  {
    MutexLock lk(snapshot_mu_);
    MemoryNodeInfo info;
    if (options_.transport->Info(&info).ok()) {
      const auto used = static_cast<std::int64_t>(info.used_pages);
      memory_node_used_pages_->Add(used - memory_node_used_reported_);
      memory_node_used_reported_ = used;
    }
    // Zaps queued or sent and not yet acknowledged: pages still mapped in
    // programs beyond the pcache's capacity (the asynchronous zap's overshoot).
    std::int64_t pending = 0;
    {
      ReaderMutexLock lk(sessions_mu_);
      for (auto& [id, s] : by_id_) pending += static_cast<std::int64_t>(s->zaps_pending());
    }
    counters_.zaps_pending->Add(pending - zaps_pending_reported_);
    zaps_pending_reported_ = pending;
    const auto rmaps = static_cast<std::int64_t>(pcache_->CountRmaps());
    rmaps_->Add(rmaps - rmaps_reported_);
    rmaps_reported_ = rmaps;
  }
  return options_.stats->Snapshot();
}

std::string ProcessorManager::StatsFor(const Peer& peer) {
  StatsSnapshot snap = Snapshot();
  nlohmann::json sessions = nlohmann::json::array();
  std::int64_t visible = 0;
  {
    ReaderMutexLock lk(sessions_mu_);
    for (auto& [id, s] : by_id_) {
      if (!peer.MaySee(s->uid())) continue;
      ++visible;
      sessions.push_back({{"id", id},
                          {"pid", s->pid()},
                          {"uid", s->uid()},
                          {"asid", s->asid()},
                          {"ranges", s->vmas().size()}});
    }
  }
  // Another user's programs are not this peer's business, not even their
  // number; node-wide totals (faults, evictions) stay, as /proc/vmstat does.
  if (!peer.root()) snap.counters["processes_attached"] = visible;
  // The snapshot's own JSON, as every other reader gets it, plus the list.
  std::string json = snap.ToJson();
  const auto end = json.rfind('}');
  if (end == std::string::npos) return json;
  json.insert(end, ", \"sessions\": " + sessions.dump() + "\n");
  return json;
}

}  // namespace remora
