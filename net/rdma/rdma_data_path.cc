// The RDMA transport's data path (rdma_transport.h): page reads and writes
// as chains of one-sided RDMA READ/WRITE on a lane, the cache of page
// mappings they use (kRdmaMap) and the control requests that invalidate it,
// completion polling with its deadline, and what a failure does to a lane or
// to the whole transport.
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <shared_mutex>

#include "net/rdma/rdma_transport.h"
#include "net/socket_util.h"

namespace remora {
namespace {

using wire::MsgType;

constexpr int kSpinPolls = 4000;  // ~10-20 us of polling before sleeping

}  // namespace

// ---- control that changes mappings: drop them first, exclusively ----

Status RdmaTransport::DestroySpace(Asid asid) {
  std::unique_lock<rdma::WriterFirstLock> l(space_mu_);
  Forget(asid, 0, ~std::uint64_t{0});
  return StreamTransport::DestroySpace(asid);
}

Status RdmaTransport::ForkSpace(Asid parent, Asid child) {
  std::unique_lock<rdma::WriterFirstLock> l(space_mu_);
  Forget(parent, 0, ~std::uint64_t{0});  // its pages become shared, not writable
  Forget(child, 0, ~std::uint64_t{0});
  return StreamTransport::ForkSpace(parent, child);
}

Status RdmaTransport::UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  std::unique_lock<rdma::WriterFirstLock> l(space_mu_);
  Forget(asid, start, start + len);
  return StreamTransport::UnregisterRange(asid, start, len);
}

Status RdmaTransport::DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  std::unique_lock<rdma::WriterFirstLock> l(space_mu_);
  Forget(asid, start, start + len);
  return StreamTransport::DiscardRange(asid, start, len);
}

Status RdmaTransport::WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                                      const void* buf) {
  std::unique_lock<rdma::WriterFirstLock> l(space_mu_);
  for (Asid a : asids) Forget(a, uva, uva + kPageSize);
  return StreamTransport::WritePageShared(asids, uva, buf);
}

// ---- page data ----

Status RdmaTransport::ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present) {
  bool p = false;
  Status st = ReadPages(asid, std::span<const std::uint64_t>(&uva, 1), buf, &p);
  if (st.ok() && present) *present = p;
  return st;
}

Status RdmaTransport::WritePage(Asid asid, std::uint64_t uva, const void* buf) {
  return WritePages(asid, std::span<const std::uint64_t>(&uva, 1), buf);
}

Status RdmaTransport::ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                                bool* present) {
  for (std::size_t i = 0; i < uvas.size(); i += kLanePages) {
    const std::size_t n = std::min(kLanePages, uvas.size() - i);
    REMORA_RETURN_IF_ERROR(ReadBatch(asid, uvas.subspan(i, n),
                                     static_cast<char*>(bufs) + i * kPageSize,
                                     present ? present + i : nullptr));
  }
  return Status::Ok();
}

Status RdmaTransport::WritePages(Asid asid, std::span<const std::uint64_t> uvas, const void* bufs) {
  for (std::size_t i = 0; i < uvas.size(); i += kLanePages) {
    const std::size_t n = std::min(kLanePages, uvas.size() - i);
    REMORA_RETURN_IF_ERROR(
        WriteBatch(asid, uvas.subspan(i, n), static_cast<const char*>(bufs) + i * kPageSize));
  }
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
  std::shared_lock<rdma::WriterFirstLock> sl(space_mu_);
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

Status RdmaTransport::WriteBatch(Asid asid, std::span<const std::uint64_t> uvas, const char* in) {
  const std::uint64_t t0 = MonotonicNs();
  const std::uint64_t deadline = net::DeadlineAfterMs(timeout_ms_);
  std::shared_lock<rdma::WriterFirstLock> sl(space_mu_);
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
  Status gone{Code::kDisconnected,
              "memory node " + peer_ + " is gone (" + alive.message() + "); " + st.message()};
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
    const auto left = std::chrono::nanoseconds(static_cast<std::int64_t>(deadline) -
                                               static_cast<std::int64_t>(MonotonicNs()));
    if (left.count() <= 0 || lanes_cv_.wait_for(l, left) == std::cv_status::timeout) {
      if (!free_lanes_.empty()) break;
      return {Code::kTimeout, "all " + std::to_string(live_lanes_) + " RDMA queue pairs to " +
                                  peer_ + " stayed busy for " + std::to_string(timeout_ms_) +
                                  " ms"};
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
      broken_ = {Code::kDisconnected, "every RDMA queue pair to memory node " + peer_ + " failed"};
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
                                   " not completed within " + std::to_string(timeout_ms_) + " ms"};
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

}  // namespace remora
