// RdmaTransport: the RDMA verbs transport of a processor node. Page data
// moves by one-sided RDMA READ/WRITE on reliable-connected (RC) queue pairs;
// everything else goes over the authenticated TCP control connection
// (StreamTransport), which also carries the queue pair addresses (kRdmaAttach)
// and the page mappings (kRdmaMap). Built by NewRdmaTransport (net/transports.h).
//
// The implementation is in two files, one job each:
//   rdma_setup.cc      connecting: the control connection, the device and GID,
//                      the protection domain, each lane's queue pair,
//                      completion queue and registered buffer, kRdmaAttach;
//                      and their teardown.
//   rdma_data_path.cc  serving pages: the mapping cache (kRdmaMap), lanes,
//                      posting work requests and polling for their completions,
//                      and what a failure does to a lane or the transport.
//
// Mappings: a page's mapping (remote address, rkey, writable) is learned once
// with kRdmaMap and cached; from then on the page is read and written without
// the memory node's CPU. The memory node changes a mapping only when this
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
// Errors: a failed work completion becomes a Status by rdma::CompletionError
// (net/rdma/rdma_verbs.h): remote access errors are kPermissionDenied, a peer
// that stopped answering (retries exhausted) and flushed requests are
// kDisconnected, the rest kIoError. Memory node errors (no such space, not
// registered, out of memory) come back from kRdmaMap with the same codes as
// over TCP.
//  * A failed completion moves its queue pair to the error state, so that
//    lane is retired; when no lane is left the transport is broken.
//  * A request without completions within the deadline is flushed — its
//    queue pair is forced into the error state and drained — before it
//    returns kTimeout, so the hardware can never write into a buffer after
//    the caller gave up.
//  * All lanes busy until the deadline is kTimeout too, and harmless.
//  * A peer that stopped answering, a lost control connection, a timed-out
//    transfer, or a remote access error while the control connection no
//    longer answers a ping (a memory node that dies releases its memory
//    regions first) breaks the whole transport: every later call fails with
//    kDisconnected. There is no reconnect.
// Data reaches the caller's buffer only from a successful completion: an
// error never leaves zeros or a partial page behind as if it were the page.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/rdma/rdma_verbs.h"
#include "net/rdma/rdma_wire.h"
#include "net/stream_transport.h"
#include "net/transport_stats.h"
#include "net/wire.h"
#include "remora/stats.h"

namespace remora {

namespace rdma {

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

}  // namespace rdma

class RdmaTransport final : public StreamTransport {
 public:
  // Pages per lane: one batch request's worth.
  static constexpr std::size_t kLanePages = wire::kMaxBatchPages;

  // Takes the authenticated control connection; registers the rdma_* stats
  // in opts.stats. Setup() must succeed before the transport is used.
  RdmaTransport(std::unique_ptr<StreamClient> client, const TransportOptions& opts);
  ~RdmaTransport() override;

  // Opens the device, creates opts.rdma_qps lanes and connects their queue
  // pairs to the memory node's (kRdmaAttach). rdma_setup.cc
  Status Setup(const TransportOptions& opts);

  // ---- control that changes mappings: drop them first, exclusively ----
  Status DestroySpace(Asid asid) override;
  Status ForkSpace(Asid parent, Asid child) override;
  Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override;
  Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) override;
  Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva, const void* buf) override;

  // ---- page data: one-sided, rdma_data_path.cc ----
  Status ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present) override;
  Status WritePage(Asid asid, std::uint64_t uva, const void* buf) override;
  Status ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                   bool* present) override;
  Status WritePages(Asid asid, std::span<const std::uint64_t> uvas, const void* bufs) override;
  // Page writes never go as messages on the control connection, as the
  // stream transport's would: they must resolve and lock their mappings
  // (a write after fork moves the page to a frame of its own). Gathered
  // pages are staged for WritePages; a write cannot be posted without
  // waiting (a replicated write-back uses a thread per replica).
  Status WritePagesGather(Asid asid, std::span<const std::uint64_t> uvas,
                          std::span<const void* const> pages) override {
    return Transport::WritePagesGather(asid, uvas, pages);
  }
  std::unique_ptr<PostedWrite> PostWritePages(Asid, std::span<const std::uint64_t>,
                                              const void*) override {
    return nullptr;
  }

 private:
  // One queue pair and what only its current user touches. Destroyed in
  // reverse order: region, queue pair, completion queue, channel, buffer.
  struct Lane {
    struct Unmap {
      void operator()(char* p) const;
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

  // One page of a transfer.
  struct Work {
    std::size_t slot;  // page index in the lane buffer
    std::uint64_t raddr;
    std::uint32_t rkey;
  };

  static void Add(Counter* c, std::uint64_t n) {
    if (c && n) c->Add(n);
  }

  Status ReadBatch(Asid asid, std::span<const std::uint64_t> uvas, char* out, bool* present);
  Status WriteBatch(Asid asid, std::span<const std::uint64_t> uvas, const char* in);
  // A memory node that dies releases its memory regions, and in-flight
  // requests may then fail with a remote access error before the queue pair
  // goes: ask the control connection whether the node is still there.
  Status Explain(Status st);
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
  RdmaTransportMetrics m_;  // null handles without stats
  rdma::Endpoint ep_;
  rdma::VerbsPtr<ibv_pd> pd_;
  std::vector<std::unique_ptr<Lane>> lanes_;

  std::mutex lanes_mu_;
  std::condition_variable lanes_cv_;
  std::vector<Lane*> free_lanes_;
  std::size_t live_lanes_ = 0;
  Status broken_;  // not ok once the transport is unusable

  rdma::WriterFirstLock space_mu_;  // shared: page transfers; exclusive: invalidating control
  std::mutex cache_mu_;
  std::unordered_map<Asid, std::unordered_map<std::uint64_t, rdma::Mapping>> cache_;
};

}  // namespace remora
