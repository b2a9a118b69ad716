// The RDMA verbs transport: page data by one-sided RDMA READ/WRITE on
// reliable-connected queue pairs, everything else over the authenticated TCP
// control connection (StreamTransport), which also carries the queue pair
// addresses (kRdmaAttach) and the page mappings (kRdmaMap).
//
// A page's mapping (remote address, rkey, writable) is learned once with
// kRdmaMap and cached; from then on the page is read and written without the
// memory node's CPU. The memory node changes a mapping only when this
// connection asks (memory-node/rdma_spaces.h), so the cache is kept exact by
// dropping entries before sending those requests: fork, destroy, unregister,
// discard and shared writes run under an exclusive lock that page transfers
// hold shared, so no transfer can use a mapping those requests invalidate.
//
// Lanes: each queue pair has its own completion queue, completion channel and
// a registered bounce buffer of one batch (wire::kMaxBatchPages pages). A
// request takes a whole lane for its duration, posts its work requests as
// one chain and reaps its own completions — no completions to route between
// threads, no thread hand-off. Waiting spins on the completion queue for a
// few microseconds and then sleeps on the completion channel until the
// deadline (TransportOptions::timeout_ms).
//
// Failures: a failed completion moves its queue pair to the error state, so
// that lane is retired; a peer that stopped answering (retries exhausted) or
// a lost control connection breaks the whole transport, and every later call
// fails with kDisconnected. A request that times out is flushed (its queue
// pair is forced into the error state) before it returns, so the hardware can
// never write into a buffer after the caller gave up. Data reaches the
// caller's buffer only from a successful completion: an error never leaves
// zeros or a partial page behind as if it were the page.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "net/rdma/verbs.h"
#include "net/rdma/rdma_wire.h"
#include "net/socket_util.h"
#include "net/stream_transport.h"
#include "net/transports.h"
#include "net/wire.h"
#include "remora/stats.h"

namespace remora {
namespace {

using wire::MsgType;

constexpr std::size_t kLanePages = wire::kMaxBatchPages;
constexpr int kSpinPolls = 4000;  // ~10-20 us of polling before sleeping

// One queue pair and what only its current user touches. Destroyed in
// reverse order: region, queue pair, completion queue, channel, buffer.
struct Lane {
  struct Unmap {
    void operator()(char* p) const { munmap(p, kLanePages * kPageSize); }
  };
  std::unique_ptr<char, Unmap> buf;
  rdma::VerbsPtr<ibv_comp_channel> channel;
  rdma::VerbsPtr<ibv_cq> cq;
  rdma::VerbsPtr<ibv_qp> qp;
  rdma::VerbsPtr<ibv_mr> mr;
  std::uint32_t psn = 0;
  bool armed = false;  // a notification was requested and not yet consumed
  bool dead = false;
};

struct Work {
  std::size_t slot;     // page index in the lane buffer
  std::uint64_t raddr;
  std::uint32_t rkey;
};

// A shared/exclusive lock that lets a waiting writer in before new readers:
// page transfers take it shared all the time, and a fork or discard waiting
// behind them must not starve (glibc's rwlock prefers readers).
class WriterFirstLock {
 public:
  void lock_shared() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return !writer_ && writers_waiting_ == 0; });
    ++readers_;
  }
  void unlock_shared() {
    std::lock_guard<std::mutex> l(mu_);
    if (--readers_ == 0) cv_.notify_all();
  }
  void lock() {
    std::unique_lock<std::mutex> l(mu_);
    ++writers_waiting_;
    cv_.wait(l, [this] { return !writer_ && readers_ == 0; });
    --writers_waiting_;
    writer_ = true;
  }
  void unlock() {
    std::lock_guard<std::mutex> l(mu_);
    writer_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int readers_ = 0, writers_waiting_ = 0;
  bool writer_ = false;
};

// The local IPv4 address the kernel would use to reach host:port (a UDP
// connect sends nothing).
Status LocalIpv4Toward(const std::string& host_port, std::uint32_t* ip) {
  std::string host;
  std::uint16_t port = 0;
  REMORA_RETURN_IF_ERROR(net::ParseHostPort(host_port, &host, &port));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return {Code::kInvalidArgument, "cannot resolve " + host + " to an IPv4 address"};
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  Status st{Code::kIoError, "no local route to " + host};
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      *ip = local.sin_addr.s_addr;
      st = Status::Ok();
    }
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  return st;
}

class RdmaTransport final : public StreamTransport {
 public:
  RdmaTransport(std::unique_ptr<StreamClient> client, const TransportOptions& opts)
      : StreamTransport("rdma", std::move(client)),
        peer_(opts.address),
        timeout_ms_(opts.timeout_ms) {
    if (StatsRegistry* s = opts.stats) {
      m_.read_ops = s->GetCounter("rdma_read_ops", "RDMA READs of pages");
      m_.read_bytes = s->GetCounter("rdma_read_bytes", "bytes read by RDMA READ");
      m_.write_ops = s->GetCounter("rdma_write_ops", "RDMA WRITEs of pages");
      m_.write_bytes = s->GetCounter("rdma_write_bytes", "bytes written by RDMA WRITE");
      m_.zero_reads = s->GetCounter("rdma_absent_reads",
                                    "pages read as zeros: never written (no transfer)");
      m_.map_requests = s->GetCounter("rdma_map_requests", "kRdmaMap round trips");
      m_.map_pages = s->GetCounter("rdma_map_pages", "page mappings fetched");
      m_.map_hits = s->GetCounter("rdma_map_hits", "page transfers served by a cached mapping");
      m_.cq_sleeps = s->GetCounter("rdma_cq_sleeps",
                                   "waits that slept on the completion channel");
      m_.errors = s->GetCounter("rdma_errors", "failed work completions");
      m_.timeouts = s->GetCounter("rdma_timeouts", "requests without completion in time");
      m_.read_ns = s->GetHistogram("rdma_read_ns", "ns", "page read request latency");
      m_.write_ns = s->GetHistogram("rdma_write_ns", "ns", "page write request latency");
    }
  }

  ~RdmaTransport() override {
    // Lanes hold verbs objects of the endpoint's context: free them first.
    lanes_.clear();
    pd_.reset();
  }

  Status Setup(const TransportOptions& opts);

  // ---- control that changes mappings: drop them first, exclusively ----
  Status DestroySpace(Asid asid) override {
    std::unique_lock<WriterFirstLock> l(space_mu_);
    Forget(asid, 0, ~std::uint64_t{0});
    return StreamTransport::DestroySpace(asid);
  }
  Status ForkSpace(Asid parent, Asid child) override {
    std::unique_lock<WriterFirstLock> l(space_mu_);
    Forget(parent, 0, ~std::uint64_t{0});  // its pages become shared, not writable
    Forget(child, 0, ~std::uint64_t{0});
    return StreamTransport::ForkSpace(parent, child);
  }
  Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override {
    std::unique_lock<WriterFirstLock> l(space_mu_);
    Forget(asid, start, start + len);
    return StreamTransport::UnregisterRange(asid, start, len);
  }
  Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) override {
    std::unique_lock<WriterFirstLock> l(space_mu_);
    Forget(asid, start, start + len);
    return StreamTransport::DiscardRange(asid, start, len);
  }
  Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                         const void* buf) override {
    std::unique_lock<WriterFirstLock> l(space_mu_);
    for (Asid a : asids) Forget(a, uva, uva + kPageSize);
    return StreamTransport::WritePageShared(asids, uva, buf);
  }

  // ---- page data ----
  Status ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present) override {
    bool p = false;
    Status st = ReadPages(asid, std::span<const std::uint64_t>(&uva, 1), buf, &p);
    if (st.ok() && present) *present = p;
    return st;
  }
  Status WritePage(Asid asid, std::uint64_t uva, const void* buf) override {
    return WritePages(asid, std::span<const std::uint64_t>(&uva, 1), buf);
  }
  Status ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                   bool* present) override {
    for (std::size_t i = 0; i < uvas.size(); i += kLanePages) {
      const std::size_t n = std::min(kLanePages, uvas.size() - i);
      REMORA_RETURN_IF_ERROR(ReadBatch(asid, uvas.subspan(i, n),
                                       static_cast<char*>(bufs) + i * kPageSize,
                                       present ? present + i : nullptr));
    }
    return Status::Ok();
  }
  Status WritePages(Asid asid, std::span<const std::uint64_t> uvas, const void* bufs) override {
    for (std::size_t i = 0; i < uvas.size(); i += kLanePages) {
      const std::size_t n = std::min(kLanePages, uvas.size() - i);
      REMORA_RETURN_IF_ERROR(WriteBatch(asid, uvas.subspan(i, n),
                                        static_cast<const char*>(bufs) + i * kPageSize));
    }
    return Status::Ok();
  }

 private:
  struct Metrics {
    Counter *read_ops = nullptr, *read_bytes = nullptr, *write_ops = nullptr,
            *write_bytes = nullptr, *zero_reads = nullptr, *map_requests = nullptr,
            *map_pages = nullptr, *map_hits = nullptr, *cq_sleeps = nullptr, *errors = nullptr,
            *timeouts = nullptr;
    Histogram *read_ns = nullptr, *write_ns = nullptr;
  };
  static void Add(Counter* c, std::uint64_t n) {
    if (c && n) c->Add(n);
  }

  Status ReadBatch(Asid asid, std::span<const std::uint64_t> uvas, char* out, bool* present);
  // A memory node that dies releases its memory regions, and in-flight
  // requests may then fail with a remote access error before the queue pair
  // goes: ask the control connection whether the node is still there.
  Status Explain(Status st);
  Status WriteBatch(Asid asid, std::span<const std::uint64_t> uvas, const char* in);
  // Mappings for every uva, from the cache or one kRdmaMap. `for_write`:
  // only writable cached mappings count, and fetched ones are made writable.
  Status Resolve(Asid asid, std::span<const std::uint64_t> uvas, bool for_write,
                 std::vector<rdma::Mapping>* maps);
  void Forget(Asid asid, std::uint64_t start, std::uint64_t end);

  Status Usable();
  Status AcquireLane(std::uint64_t deadline, Lane** lane);
  void ReleaseLane(Lane* lane);
  void Break(const Status& why);
  // Posts one chain of `op` work requests on `lane` and waits for all of them.
  Status Transfer(Lane* lane, ibv_wr_opcode op, const std::vector<Work>& work,
                  std::uint64_t deadline);
  // Reaps `n` completions; the first failure (or kTimeout) is returned.
  Status Reap(Lane* lane, std::size_t n, const char* op, std::uint64_t deadline);

  const std::string peer_;
  const int timeout_ms_;
  Metrics m_;
  rdma::Endpoint ep_;
  rdma::VerbsPtr<ibv_pd> pd_;
  std::vector<std::unique_ptr<Lane>> lanes_;

  std::mutex lanes_mu_;
  std::condition_variable lanes_cv_;
  std::vector<Lane*> free_lanes_;
  std::size_t live_lanes_ = 0;
  Status broken_;  // not ok once the transport is unusable

  WriterFirstLock space_mu_;  // shared: page transfers; exclusive: invalidating control
  std::mutex cache_mu_;
  std::unordered_map<Asid, std::unordered_map<std::uint64_t, rdma::Mapping>> cache_;
};

Status RdmaTransport::Setup(const TransportOptions& opts) {
  const int nqps = std::clamp(opts.rdma_qps, 1, static_cast<int>(wire::kRdmaMaxQps));
  Status st;
  if (!opts.rdma_device.empty()) {
    st = rdma::OpenEndpoint(opts.rdma_device, static_cast<std::uint8_t>(opts.rdma_port),
                            opts.rdma_gid_index, &ep_);
  } else {
    std::uint32_t ip = 0;
    st = LocalIpv4Toward(opts.address, &ip);
    if (st.ok()) st = rdma::FindEndpointForIpv4(ip, &ep_);
    if (!st.ok())  // InfiniBand proper, or no RoCE GID for that address
      st = rdma::OpenEndpoint("", static_cast<std::uint8_t>(opts.rdma_port),
                              opts.rdma_gid_index, &ep_);
  }
  REMORA_RETURN_IF_ERROR(st);
  pd_.reset(ibv_alloc_pd(ep_.ctx.get()));
  if (!pd_) return {Code::kIoError, std::string("ibv_alloc_pd: ") + std::strerror(errno)};

  std::vector<rdma::QpInfo> local;
  for (int i = 0; i < nqps; ++i) {
    auto lane = std::make_unique<Lane>();
    void* mem = mmap(nullptr, kLanePages * kPageSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return {Code::kIoError, "cannot map an RDMA bounce buffer"};
    lane->buf.reset(static_cast<char*>(mem));
    lane->channel.reset(ibv_create_comp_channel(ep_.ctx.get()));
    if (!lane->channel)
      return {Code::kIoError, std::string("ibv_create_comp_channel: ") + std::strerror(errno)};
    lane->cq.reset(ibv_create_cq(ep_.ctx.get(), static_cast<int>(kLanePages) + 1, nullptr,
                                 lane->channel.get(), 0));
    if (!lane->cq) return {Code::kIoError, std::string("ibv_create_cq: ") + std::strerror(errno)};
    REMORA_RETURN_IF_ERROR(rdma::CreateRcQp(ep_, pd_.get(), lane->cq.get(), kLanePages,
                                            /*remote_access=*/0, &lane->qp));
    lane->mr.reset(ibv_reg_mr(pd_.get(), lane->buf.get(), kLanePages * kPageSize,
                              IBV_ACCESS_LOCAL_WRITE));
    if (!lane->mr) return {Code::kIoError, std::string("ibv_reg_mr: ") + std::strerror(errno)};
    lane->psn = rdma::RandomPsn();
    local.push_back(rdma::LocalQpInfo(ep_, lane->qp.get(), lane->psn));
    lanes_.push_back(std::move(lane));
  }

  const std::string body = rdma::EncodeQpInfos(local);
  iovec iov{const_cast<char*>(body.data()), body.size()};
  StreamClient::Request req;
  req.type = MsgType::kRdmaAttach;
  req.arg1 = local.size();
  req.payload = std::span<const iovec>(&iov, 1);
  StreamClient::Reply reply;
  st = client()->Call(req, &reply);
  if (!st.ok())
    return {st.code(), "memory node at " + peer_ + " refused RDMA: " + st.message()};
  std::vector<rdma::QpInfo> remote;
  REMORA_RETURN_IF_ERROR(rdma::DecodeQpInfos(reply.payload, local.size(), &remote));
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    REMORA_RETURN_IF_ERROR(rdma::ConnectRcQp(ep_, lanes_[i]->qp.get(), lanes_[i]->psn, remote[i]));
    free_lanes_.push_back(lanes_[i].get());
  }
  live_lanes_ = lanes_.size();
  return Status::Ok();
}

void RdmaTransport::Forget(Asid asid, std::uint64_t start, std::uint64_t end) {
  std::lock_guard<std::mutex> l(cache_mu_);
  auto it = cache_.find(asid);
  if (it == cache_.end()) return;
  if (start == 0 && end == ~std::uint64_t{0}) {
    cache_.erase(it);
    return;
  }
  auto& pages = it->second;
  for (auto p = pages.begin(); p != pages.end();)
    p = (p->first >= start && p->first < end) ? pages.erase(p) : std::next(p);
}

Status RdmaTransport::Resolve(Asid asid, std::span<const std::uint64_t> uvas, bool for_write,
                              std::vector<rdma::Mapping>* maps) {
  maps->assign(uvas.size(), rdma::Mapping{});
  std::vector<std::uint64_t> miss;
  std::vector<std::size_t> miss_idx;
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto sp = cache_.find(asid);
    for (std::size_t i = 0; i < uvas.size(); ++i) {
      if (!PageAligned(uvas[i])) return {Code::kBadRequest, "page address is not page aligned"};
      if (sp != cache_.end()) {
        auto it = sp->second.find(uvas[i]);
        if (it != sp->second.end() && (!for_write || it->second.writable)) {
          (*maps)[i] = it->second;
          continue;
        }
      }
      miss.push_back(uvas[i]);
      miss_idx.push_back(i);
    }
  }
  Add(m_.map_hits, uvas.size() - miss.size());
  if (miss.empty()) return Status::Ok();

  std::vector<std::uint8_t> body(miss.size() * 8);
  for (std::size_t j = 0; j < miss.size(); ++j) wire::PutU64(body.data() + 8 * j, miss[j]);
  iovec iov{body.data(), body.size()};
  StreamClient::Request req;
  req.type = MsgType::kRdmaMap;
  req.asid = asid;
  req.arg0 = for_write ? 1 : 0;
  req.arg1 = miss.size();
  req.payload = std::span<const iovec>(&iov, 1);
  StreamClient::Reply reply;
  Add(m_.map_requests, 1);
  REMORA_RETURN_IF_ERROR(client()->Call(req, &reply));
  std::vector<rdma::Mapping> got;
  REMORA_RETURN_IF_ERROR(rdma::DecodeMappings(reply.payload, miss.size(), &got));
  Add(m_.map_pages, got.size());
  std::lock_guard<std::mutex> l(cache_mu_);
  auto& pages = cache_[asid];
  for (std::size_t j = 0; j < got.size(); ++j) {
    if (for_write && !got[j].writable)
      return {Code::kInternal, "memory node returned a read-only mapping for a write"};
    (*maps)[miss_idx[j]] = got[j];
    if (got[j].present) pages[miss[j]] = got[j];
  }
  return Status::Ok();
}

Status RdmaTransport::ReadBatch(Asid asid, std::span<const std::uint64_t> uvas, char* out,
                                bool* present) {
  const std::uint64_t t0 = MonotonicNs();
  const std::uint64_t deadline = net::DeadlineAfterMs(timeout_ms_);
  std::shared_lock<WriterFirstLock> sl(space_mu_);
  REMORA_RETURN_IF_ERROR(Usable());
  std::vector<rdma::Mapping> maps;
  REMORA_RETURN_IF_ERROR(Resolve(asid, uvas, /*for_write=*/false, &maps));
  std::vector<Work> work;
  for (std::size_t i = 0; i < maps.size(); ++i)
    if (maps[i].present) work.push_back({i, maps[i].addr, maps[i].rkey});
  if (!work.empty()) {
    Lane* lane = nullptr;
    REMORA_RETURN_IF_ERROR(AcquireLane(deadline, &lane));
    Status st = Transfer(lane, IBV_WR_RDMA_READ, work, deadline);
    if (st.ok())
      for (const Work& w : work)
        std::memcpy(out + w.slot * kPageSize, lane->buf.get() + w.slot * kPageSize, kPageSize);
    ReleaseLane(lane);
    REMORA_RETURN_IF_ERROR(Explain(st));
    Add(m_.read_ops, work.size());
    Add(m_.read_bytes, work.size() * kPageSize);
  }
  for (std::size_t i = 0; i < maps.size(); ++i) {
    if (!maps[i].present) std::memset(out + i * kPageSize, 0, kPageSize);
    if (present) present[i] = maps[i].present;
  }
  Add(m_.zero_reads, maps.size() - work.size());
  if (m_.read_ns) m_.read_ns->Record(MonotonicNs() - t0);
  return Status::Ok();
}

Status RdmaTransport::WriteBatch(Asid asid, std::span<const std::uint64_t> uvas,
                                 const char* in) {
  const std::uint64_t t0 = MonotonicNs();
  const std::uint64_t deadline = net::DeadlineAfterMs(timeout_ms_);
  std::shared_lock<WriterFirstLock> sl(space_mu_);
  REMORA_RETURN_IF_ERROR(Usable());
  std::vector<rdma::Mapping> maps;
  REMORA_RETURN_IF_ERROR(Resolve(asid, uvas, /*for_write=*/true, &maps));
  std::vector<Work> work(maps.size());
  for (std::size_t i = 0; i < maps.size(); ++i) work[i] = {i, maps[i].addr, maps[i].rkey};
  Lane* lane = nullptr;
  REMORA_RETURN_IF_ERROR(AcquireLane(deadline, &lane));
  std::memcpy(lane->buf.get(), in, uvas.size() * kPageSize);
  Status st = Transfer(lane, IBV_WR_RDMA_WRITE, work, deadline);
  ReleaseLane(lane);
  REMORA_RETURN_IF_ERROR(Explain(st));
  Add(m_.write_ops, work.size());
  Add(m_.write_bytes, work.size() * kPageSize);
  if (m_.write_ns) m_.write_ns->Record(MonotonicNs() - t0);
  return Status::Ok();
}

Status RdmaTransport::Explain(Status st) {
  if (st.code() != Code::kPermissionDenied) return st;
  Status alive = Ping();
  if (alive.ok()) return st;
  Status gone{Code::kDisconnected, "memory node " + peer_ + " is gone (" + alive.message() +
                                       "); " + st.message()};
  Break(gone);
  return gone;
}

Status RdmaTransport::Usable() {
  {
    std::lock_guard<std::mutex> l(lanes_mu_);
    if (!broken_.ok()) return broken_;
  }
  if (!client()->connected()) {
    Status why{Code::kDisconnected, "control connection to memory node " + peer_ + " lost"};
    Break(why);
    return why;
  }
  return Status::Ok();
}

void RdmaTransport::Break(const Status& why) {
  std::lock_guard<std::mutex> l(lanes_mu_);
  if (broken_.ok()) broken_ = {Code::kDisconnected, why.message()};
  lanes_cv_.notify_all();
}

Status RdmaTransport::AcquireLane(std::uint64_t deadline, Lane** lane) {
  std::unique_lock<std::mutex> l(lanes_mu_);
  for (;;) {
    if (!broken_.ok()) return broken_;
    if (!free_lanes_.empty()) break;
    const auto left = std::chrono::nanoseconds(
        static_cast<std::int64_t>(deadline) - static_cast<std::int64_t>(MonotonicNs()));
    if (left.count() <= 0 || lanes_cv_.wait_for(l, left) == std::cv_status::timeout) {
      if (!free_lanes_.empty()) break;
      return {Code::kTimeout, "all " + std::to_string(live_lanes_) +
                                  " RDMA queue pairs to " + peer_ + " stayed busy for " +
                                  std::to_string(timeout_ms_) + " ms"};
    }
  }
  *lane = free_lanes_.back();
  free_lanes_.pop_back();
  return Status::Ok();
}

void RdmaTransport::ReleaseLane(Lane* lane) {
  std::lock_guard<std::mutex> l(lanes_mu_);
  if (lane->dead) {
    if (--live_lanes_ == 0 && broken_.ok())
      broken_ = {Code::kDisconnected,
                 "every RDMA queue pair to memory node " + peer_ + " failed"};
  } else {
    free_lanes_.push_back(lane);
  }
  lanes_cv_.notify_one();
}

Status RdmaTransport::Transfer(Lane* lane, ibv_wr_opcode op, const std::vector<Work>& work,
                               std::uint64_t deadline) {
  const char* name = op == IBV_WR_RDMA_READ ? "RDMA READ" : "RDMA WRITE";
  std::vector<ibv_sge> sge(work.size());
  std::vector<ibv_send_wr> wr(work.size());
  for (std::size_t i = 0; i < work.size(); ++i) {
    sge[i].addr = reinterpret_cast<std::uint64_t>(lane->buf.get() + work[i].slot * kPageSize);
    sge[i].length = kPageSize;
    sge[i].lkey = lane->mr->lkey;
    wr[i].wr_id = i;
    wr[i].sg_list = &sge[i];
    wr[i].num_sge = 1;
    wr[i].opcode = op;
    wr[i].send_flags = IBV_SEND_SIGNALED;
    wr[i].wr.rdma.remote_addr = work[i].raddr;
    wr[i].wr.rdma.rkey = work[i].rkey;
    wr[i].next = i + 1 < work.size() ? &wr[i + 1] : nullptr;
  }
  ibv_send_wr* bad = nullptr;
  const int rc = ibv_post_send(lane->qp.get(), wr.data(), &bad);
  std::size_t posted = work.size();
  Status post_error;
  if (rc != 0) {
    posted = bad ? static_cast<std::size_t>(bad - wr.data()) : 0;
    post_error = {Code::kIoError, std::string("cannot post ") + name + ": " + std::strerror(rc)};
  }
  Status st = posted ? Reap(lane, posted, name, deadline) : Status::Ok();
  if (!post_error.ok()) {
    lane->dead = true;
    return st.ok() ? post_error : st;
  }
  return st;
}

Status RdmaTransport::Reap(Lane* lane, std::size_t n, const char* op, std::uint64_t deadline) {
  Status first;
  bool timed_out = false;
  int spins = 0;
  ibv_wc wc[16];
  while (n > 0) {
    const int got = ibv_poll_cq(lane->cq.get(), 16, wc);
    if (got < 0) {
      lane->dead = true;
      Break({Code::kIoError, "polling the completion queue failed"});
      return {Code::kIoError, std::string("polling the completion queue of ") + op + " failed"};
    }
    if (got > 0) {
      for (int i = 0; i < got; ++i)
        if (wc[i].status != IBV_WC_SUCCESS && first.ok() && !timed_out) {
          first = rdma::CompletionError(wc[i], op, peer_);
          Add(m_.errors, 1);
        }
      n -= static_cast<std::size_t>(got);
      spins = 0;
      continue;
    }
    if (++spins < kSpinPolls) continue;
    if (!lane->armed) {  // arm, then poll once more before sleeping
      if (ibv_req_notify_cq(lane->cq.get(), 0) != 0) {
        lane->dead = true;
        return {Code::kIoError, "cannot arm the completion queue"};
      }
      lane->armed = true;
      continue;
    }
    if (MonotonicNs() >= deadline) {
      if (timed_out) {  // even the flush did not complete: never reuse this lane
        lane->dead = true;
        Break({Code::kTimeout, "queue pair to " + peer_ + " does not flush"});
        return first;
      }
      // Force the queue pair into the error state: every outstanding request
      // completes (flushed) promptly, and then its buffer is ours again.
      timed_out = true;
      Add(m_.timeouts, 1);
      first = {Code::kTimeout, std::string(op) + " to memory node " + peer_ +
                                   " not completed within " + std::to_string(timeout_ms_) +
                                   " ms"};
      ibv_qp_attr a{};
      a.qp_state = IBV_QPS_ERR;
      ibv_modify_qp(lane->qp.get(), &a, IBV_QP_STATE);
      deadline = MonotonicNs() + 2'000'000'000ull;
      continue;
    }
    pollfd pfd{lane->channel->fd, POLLIN, 0};
    Add(m_.cq_sleeps, 1);
    const int pr = poll(&pfd, 1, std::max(1, net::MsUntil(deadline)));
    if (pr > 0) {
      ibv_cq* cq = nullptr;
      void* ctx = nullptr;
      if (ibv_get_cq_event(lane->channel.get(), &cq, &ctx) == 0) ibv_ack_cq_events(cq, 1);
      lane->armed = false;
    }
  }
  if (!first.ok()) {
    lane->dead = true;  // a failed completion leaves the queue pair in error
    if (first.code() == Code::kDisconnected || first.code() == Code::kTimeout) Break(first);
  }
  return first;
}

}  // namespace

std::unique_ptr<Transport> NewRdmaTransport(const TransportOptions& opts, Status* status) {
  std::unique_ptr<StreamClient> client;
  *status = StreamTransport::Dial(opts, /*unix_socket=*/false, "rdma_ctl", &client);
  if (!status->ok()) return nullptr;
  auto t = std::make_unique<RdmaTransport>(std::move(client), opts);
  *status = t->Setup(opts);
  if (!status->ok()) {
    *status = {status->code(), "RDMA to memory node at " + opts.address + ": " +
                                   status->message()};
    return nullptr;
  }
  return t;
}

}  // namespace remora
