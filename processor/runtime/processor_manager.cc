#include "processor/runtime/processor_manager.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>
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
  Watermarks watermarks;
  REMORA_RETURN_IF_ERROR(
      ResolveWatermarks(geometry, options.reclaim_low, options.reclaim_high, &watermarks));
  if (options.reclaim_batch == 0)
    return {Code::kInvalidArgument, "the reclaim batch must be at least one line"};
  std::unique_ptr<ProcessorManager> m(new ProcessorManager(options));
  if (options.victim_entries > 0) {
    VictimCacheOptions vo;
    vo.entries = options.victim_entries;
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
  // within 128 bytes per line (80 for the line, 18 for its share of the
  // shadow, 24 for its share of its set with 8 ways).
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
  REMORA_RETURN_IF_ERROR(m->Listen());
  m->acceptor_ = std::thread([p = m.get()] { p->AcceptLoop(); });
  *out = std::move(m);
  return Status::Ok();
}

Status ProcessorManager::Listen() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.socket_path.size() >= sizeof(addr.sun_path))
    return {Code::kInvalidArgument, "socket path too long: " + options_.socket_path};
  std::strcpy(addr.sun_path, options_.socket_path.c_str());
  listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return {Code::kIoError, std::string("socket: ") + std::strerror(errno)};
  // A stale socket file from a manager that died is replaced; a live one is
  // not (connect succeeds) — two managers on one socket would split programs.
  if (int probe = ConnectSeqpacket(options_.socket_path); probe >= 0) {
    ::close(probe);
    return {Code::kBusy, "a processor manager already listens on " + options_.socket_path};
  }
  ::unlink(options_.socket_path.c_str());
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    return {Code::kIoError,
            "cannot listen on " + options_.socket_path + ": " + std::strerror(errno)};
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
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
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(options_.socket_path.c_str());
  }
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

void ProcessorManager::AcceptLoop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents) break;
    ReapRetired();
    if (n > 0 && (fds[0].revents & POLLIN)) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) Accept(fd);
    }
  }
}

// Reads a new connection's first message and acts on it. A client that
// sends nothing within a second is dropped so one stuck peer cannot stall
// the others.
void ProcessorManager::Accept(int fd) {
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  rt::Request req;
  int passed = -1;
  ssize_t n = RecvWithFd(fd, &req, sizeof(req), &passed);
  auto drop = [&](const std::string& why) {
    if (!why.empty()) {
      spdlog::warn("processor manager: refused a connection: {}", why);
      (void)SendReply(fd, Code::kInvalidArgument, 0, 0, why);
    }
    if (passed >= 0) ::close(passed);
    ::close(fd);
  };
  if (n != static_cast<ssize_t>(sizeof(req)) || req.magic != rt::kMagic)
    return drop("malformed hello");
  if (req.version != rt::kVersion)
    return drop("protocol version mismatch (shim and manager from different builds)");
  timeval none{0, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));

  switch (req.op) {
    case rt::Op::kHello: {
      if (passed < 0) return drop("hello without a userfaultfd");
      std::uint64_t id;
      Asid asid;
      NewSessionIds(&id, &asid);
      Status st = options_.transport->CreateSpace(asid);
      if (!st.ok()) {
        spdlog::error("processor manager: cannot create an address space for pid {}: {}", req.pid,
                      st.ToString());
        (void)SendReply(fd, st.code(), 0, 0, st.ToString());
        ::close(passed);
        ::close(fd);
        return;
      }
      Register(std::make_shared<ProcessSession>(this, id, asid, req.pid, fd, passed));
      (void)SendReply(fd, Code::kOk, id, asid, "");
      return;
    }
    case rt::Op::kAgentHello: {
      std::shared_ptr<ProcessSession> s;
      {
        ReaderMutexLock lk(sessions_mu_);
        auto it = by_id_.find(req.session);
        if (it != by_id_.end()) s = it->second;
      }
      if (!s || s->pid() != req.pid) return drop("agent for an unknown program");
      (void)SendReply(fd, Code::kOk, s->id(), s->asid(), "");
      s->Start(fd, options_.fault_threads);
      return;
    }
    case rt::Op::kStats: {
      (void)SendReply(fd, Code::kOk, 0, 0, Snapshot().ToJson());
      ::close(fd);
      return;
    }
    default:
      return drop("unexpected first message");
  }
}

void ProcessorManager::NewSessionIds(std::uint64_t* id, Asid* asid) {
  WriterMutexLock lk(sessions_mu_);
  *id = ++next_id_;
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

}  // namespace remora
