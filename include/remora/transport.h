// Transport: how a processor node talks to one memory node.
//
// One interface, several implementations (net/): TCP between any two machines,
// shared memory on one machine, RDMA verbs on an InfiniBand cluster. The
// interface is split the way RDMA splits it:
//
//  * page data — ReadPage / WritePage and their batched forms — is what a
//    one-sided RDMA READ/WRITE (or a memcpy from a shared region) can serve
//    without the memory node's CPU;
//  * control — create / fork / destroy address spaces, register ranges — always
//    needs the memory node to act and is two-sided.
//
// Every method is thread-safe; several threads may have requests in flight on
// one Transport at once (they are multiplexed over one connection by request
// id). Methods block until the memory node answered or the timeout expired.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "remora/status.h"
#include "remora/types.h"

namespace remora {

class StatsRegistry;

struct MemoryNodeInfo {
  std::uint64_t capacity_pages = 0;
  std::uint64_t used_pages = 0;  // distinct stored pages (a COW-shared page counts once)
  std::uint64_t nr_spaces = 0;
  NodeId node_id = 0;  // the memory node's own id
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string Name() const = 0;  // "tcp", "shm", "rdma"

  // ---- control (two-sided) ----
  virtual Status CreateSpace(Asid asid) = 0;
  // Frees every page of the space; the id may be reused afterwards.
  virtual Status DestroySpace(Asid asid) = 0;
  // `child` becomes a copy-on-write copy of `parent`: pages are shared until
  // either side writes one back, which copies it first.
  virtual Status ForkSpace(Asid parent, Asid child) = 0;
  // Pages may only be read or written inside registered ranges.
  virtual Status RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) = 0;
  // Unregisters and frees the pages in [start, start+len).
  virtual Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) = 0;
  // Frees the pages in [start, start+len) but keeps the range registered
  // (madvise(MADV_DONTNEED) semantics: the pages read as zero afterwards).
  virtual Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) = 0;
  virtual Status Info(MemoryNodeInfo* info) = 0;
  // The memory node's own stats snapshot, as JSON text.
  virtual Status RemoteStatsJson(std::string* json) = 0;

  // ---- page data (one-sided where the transport can) ----
  // Reads one page into buf (kPageSize bytes). A page never written back reads
  // as zeros and *present (if given) is set to false.
  virtual Status ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present = nullptr) = 0;
  virtual Status WritePage(Asid asid, std::uint64_t uva, const void* buf) = 0;
  // Batched forms: page i is uvas[i] <-> (char*)bufs + i * kPageSize.
  // present (optional) receives one flag per page.
  virtual Status ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                           bool* present = nullptr);
  virtual Status WritePages(Asid asid, std::span<const std::uint64_t> uvas, const void* bufs);
  // The same with the pages where they are: page i is uvas[i] <- pages[i]
  // (kPageSize bytes each, anywhere). Stream transports send them straight
  // from there; the default stages them contiguously for WritePages.
  virtual Status WritePagesGather(Asid asid, std::span<const std::uint64_t> uvas,
                                  std::span<const void* const> pages);
  // WritePages() in two halves, so that one thread can have the same batch
  // in flight to several memory nodes (a replicated write-back) without a
  // thread per node: PostWritePages() sends it, and Wait() on the result
  // returns what WritePages() would have. `uvas` and `bufs` may go once
  // PostWritePages() returned. Transports that cannot send without waiting
  // return null (the default); the caller then uses WritePages().
  class PostedWrite {
   public:
    virtual ~PostedWrite() = default;
    virtual Status Wait() = 0;
  };
  virtual std::unique_ptr<PostedWrite> PostWritePages(Asid asid,
                                                      std::span<const std::uint64_t> uvas,
                                                      const void* bufs);
  // Writes one page that several address spaces share (a pcache line mapped by
  // parent and child after fork): stored once, referenced by every asid.
  virtual Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                                 const void* buf) = 0;
};

enum class TransportKind { kTcp, kShm, kRdma };

struct TransportOptions {
  TransportKind kind = TransportKind::kTcp;
  // tcp/rdma: "host:port"; shm: path of the memory node's unix socket.
  std::string address;
  std::string secret;  // shared secret for the HMAC challenge
  NodeId node_id = 1;  // this processor node's id (asids it may use)
  // This processor's run: a random nonzero number it keeps for its life and
  // sends with every connection, so the memory node tells this processor
  // reconnecting (its address spaces are kept) from a new one with the same
  // node id (they are destroyed: a takeover). 0: an observer (`remora
  // stats`), which never takes over a processor's spaces.
  std::uint64_t incarnation = 0;
  int timeout_ms = 10000;          // per request; a dead peer is an error after this
  StatsRegistry* stats = nullptr;  // transport counters go here if set
  // rdma: the local device and GID to use. Empty device / gid_index -1: the
  // device and RoCE GID bound to the IP address the control connection
  // leaves from (else the first active device, GID 0). rdma_qps queue pairs
  // serve that many page requests at once.
  std::string rdma_device;
  int rdma_port = 1;
  int rdma_gid_index = -1;
  int rdma_qps = 4;
};

// Connects and authenticates. On failure returns nullptr and sets *status.
std::unique_ptr<Transport> ConnectTransport(const TransportOptions& opts, Status* status);

Status ParseTransportKind(const std::string& s, TransportKind* kind);

}  // namespace remora
