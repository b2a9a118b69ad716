// ClusterTransport: many memory nodes behind the one Transport interface.
// The processor manager and its fault path use it exactly as they use one
// node's transport; they never learn that there are several.
//
// Underneath, one NodeLink per memory node (each wrapping that node's own
// per-node Transport, whichever handshake it speaks) and a RegionMap of every
// address space this processor owns:
//
//  * placement — an address space is divided into aligned regions
//    (ClusterPolicy::region_bytes). A region is placed when its first page is
//    written back, on `replicas` nodes picked by free memory (ChooseNodes:
//    two random choices); a node out of memory gets no new regions;
//  * replication — a write-back goes to every replica of its region at once
//    and is acknowledged when all have it. A read goes to one replica and
//    fails over to the next on an error or a timeout;
//  * control — create is local (a space exists on a node once a region of it
//    is placed there); fork, register, unregister, discard and destroy go to
//    every node the space exists on, so copy-on-write sharing after fork
//    holds on every node and destroy frees everywhere;
//  * failure — a node that is stalled is waited for (NodeLink); one whose
//    process is gone (connection broken, reconnect refused) is not: reads
//    go to another replica at once, and a write-back taken by the other
//    replicas drops the dead one from its region (re-replication restores
//    the copy). A node given up as lost
//    leaves every region's replicas, and a background
//    thread re-replicates its regions onto the remaining nodes until each
//    has `replicas` copies again. A region whose every copy was lost
//    (replicas = 1) reads as an error naming the node, never as zeros.
//
// Locks, in order: topology_mu_ (shared by write-backs and range changes;
// exclusive for fork, destroy and the copy of one region by
// re-replication, so a copy never misses a concurrent write), place_mu_
// (one placement at a time, with its network calls), map_mu_ (the region
// map; never held across a network call), repair_mu_, then each
// NodeLink's own lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "managers/cluster_config.h"
#include "managers/cluster_stats.h"
#include "managers/node_link.h"
#include "managers/placement.h"
#include "managers/region_map.h"
#include "managers/task_pool.h"
#include "remora/stats.h"
#include "remora/transport.h"

namespace remora {

struct ClusterOptions {
  ClusterConfig config;
  NodeId processor_id = 1;  // this processor node (the asids it may use)
  int timeout_ms = 10000;   // per request to one node
  // Each node's secret, in config.nodes order; empty: read its secret_file.
  std::vector<std::string> secrets;
  StatsRegistry* stats = nullptr;  // the cluster's and the per-node transports' metrics
};

struct ClusterNodeStatus {
  ClusterNodeSpec spec;
  NodeState state = NodeState::kLost;
  std::uint64_t capacity_pages = 0;
  std::uint64_t used_pages = 0;
  std::uint64_t regions = 0;  // regions of this processor's spaces with a replica there
};

class ClusterTransport : public Transport {
 public:
  // Connects every node. Nodes that cannot be reached start out lost (they
  // are retried as new nodes); an error if fewer than `replicas` answer.
  static Status Connect(const ClusterOptions& opts, std::unique_ptr<ClusterTransport>* out);
  ~ClusterTransport() override;

  std::string Name() const override { return "cluster"; }
  // One line: "3 memory nodes (tcp), 2 replicas, regions of 4 MiB".
  std::string Describe() const;
  int replicas() const { return policy_.replicas; }

  Status CreateSpace(Asid asid) override;
  Status DestroySpace(Asid asid) override;
  Status ForkSpace(Asid parent, Asid child) override;
  Status RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override;
  Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override;
  Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) override;
  // The nodes' sums (nodes that are not up left out); node_id 0.
  Status Info(MemoryNodeInfo* info) override;
  // {"node<id>": <that node's stats>, ...}
  Status RemoteStatsJson(std::string* json) override;

  Status ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present = nullptr) override;
  Status WritePage(Asid asid, std::uint64_t uva, const void* buf) override;
  Status ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                   bool* present = nullptr) override;
  Status WritePages(Asid asid, std::span<const std::uint64_t> uvas, const void* bufs) override;
  Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva, const void* buf) override;

  std::vector<ClusterNodeStatus> Nodes() const;
  // Regions short of `replicas` in-sync copies that are not lost, and
  // re-replications queued or running: zero when the cluster is whole.
  std::uint64_t RepairsPending() const;

 private:
  // The replicas of one region as a caller saw them under map_mu_.
  struct View {
    bool space = false;   // the address space is known
    bool placed = false;  // the region was placed
    bool lost = false;
    std::vector<NodeIndex> nodes;
    std::vector<std::uint64_t> epochs;
  };

  ClusterTransport(const ClusterOptions& opts, std::unique_ptr<StatsRegistry> own_stats);
  std::uint64_t Index(std::uint64_t uva) const { return uva / policy_.region_bytes; }
  std::uint64_t Start(std::uint64_t index) const { return index * policy_.region_bytes; }
  View Look(Asid asid, std::uint64_t index, bool in_sync_only) const;
  View LookLocked(Asid asid, std::uint64_t index, bool in_sync_only) const REQUIRES(map_mu_);
  // The region's replicas, placing it first if it never was (on the nodes of
  // `like` if given and up, else by ChooseNodes).
  Status PlaceIfNeeded(Asid asid, std::uint64_t index, const std::vector<NodeIndex>* like,
                       View* view) REQUIRES_SHARED(topology_mu_);
  // The space exists on the node and the region's range is registered there.
  Status Host(NodeIndex node, std::uint64_t epoch, Asid asid, std::uint64_t index, bool* gone)
      REQUIRES(place_mu_);
  std::vector<NodeLoad> Loads() const REQUIRES(map_mu_);
  // Placement when the estimate finds no node with room (see the .cc).
  std::vector<NodeIndex> ChooseAfterRefresh() REQUIRES(place_mu_) EXCLUDES(map_mu_);
  Status WriteRegion(Asid asid, std::uint64_t index, std::span<const std::uint64_t> uvas,
                     const char* bufs) REQUIRES_SHARED(topology_mu_);
  // Runs `write` on every replica of `v` at once; *ok: how many took it.
  // `post` (optional) is `write` in two halves (Transport::PostWritePages):
  // where the transport supports it, this thread sends the write to every
  // replica and then collects the answers, with no thread hand-off; the
  // rest, and every retry, go through the pool.
  // A replica whose connection broke is not waited for when another one
  // took the write: it leaves the regions `keys` (it misses this write) and
  // re-replication is asked for. Only when no replica took it are broken
  // ones waited for (reconnected or given up). Returns the first error that
  // is not the loss of a node.
  using PostFn = std::function<std::unique_ptr<Transport::PostedWrite>(Transport*)>;
  Status WriteReplicas(const View& v, std::span<const RegionKey> keys, std::size_t pages,
                       const std::function<Status(Transport*)>& write, const PostFn& post,
                       std::size_t* ok) REQUIRES_SHARED(topology_mu_);
  Status ReadRegion(Asid asid, std::uint64_t index, std::span<const std::uint64_t> uvas, char* bufs,
                    bool* present);
  // Runs fn on every node the space exists on (lost ones skipped; dead ones
  // not waited for: NodeLink::CallOrSkipIfDead).
  Status OnEveryNode(const std::vector<NodeIndex>& nodes,
                     const std::function<Status(Transport*)>& fn);
  // A range operation on every node the space lives on (kNoSuchSpace if it
  // has none); forget_written: its pages read as zero again afterwards
  // (unregister, discard), so the map forgets which of them were written.
  Status RangeOnEveryNode(Asid asid, std::uint64_t start, std::uint64_t len, bool forget_written,
                          const std::function<Status(Transport*)>& fn);
  Status LostError(Asid asid, std::uint64_t index) const REQUIRES(map_mu_);
  std::vector<RegionKey> DegradedRegions() const;
  std::vector<Asid> OnNodeLost(NodeIndex node, const std::string& why);
  void UpdateGauges() REQUIRES(map_mu_);

  // Re-replication (cluster_repair.cc).
  void RepairLoop();
  void Repair(const RegionKey& key);
  Status CopyRegion(const RegionKey& key, const View& sources, NodeIndex target,
                    std::uint64_t target_epoch, std::uint64_t* pages);

  const ClusterPolicy policy_;
  // What placing one region takes from a node (RegionCostPages): fixed by
  // the policy, so read without any lock.
  const std::uint64_t region_cost_pages_;
  std::unique_ptr<StatsRegistry> own_stats_;
  StatsRegistry* stats_;
  ClusterMetrics metrics_;
  std::vector<std::unique_ptr<NodeLink>> nodes_;
  TaskPool pool_;

  mutable SharedMutex topology_mu_;
  Mutex place_mu_ ACQUIRED_AFTER(topology_mu_);
  mutable Mutex map_mu_ ACQUIRED_AFTER(place_mu_);
  RegionMap map_ GUARDED_BY(map_mu_);
  std::mt19937_64 rng_ GUARDED_BY(place_mu_);

  mutable Mutex repair_mu_ ACQUIRED_AFTER(map_mu_);
  CondVar repair_cv_;
  std::deque<RegionKey> repair_queue_ GUARDED_BY(repair_mu_);
  int repairing_ GUARDED_BY(repair_mu_) = 0;
  bool stop_ GUARDED_BY(repair_mu_) = false;
  std::thread repair_thread_;
};

}  // namespace remora
