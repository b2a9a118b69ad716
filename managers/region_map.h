// RegionMap: where each address space's memory lives in the cluster. An
// address space is divided into aligned regions of one size; a region is
// placed, when its first page is written back, on the memory nodes that hold
// its replicas. A region never placed was never written: its pages read as
// zeros without asking anyone. The map lives with the processor that owns the
// spaces (LegoOS keeps a process's vRegion table with its manager too); no
// other processor ever needs it.
//
// Besides the replicas the map keeps, per region, which pages were written
// back (what re-replication must copy), and per node which spaces exist
// there. A region whose every replica was on nodes now lost is
// kept, marked lost: its pages must read as an error, never as zeros.
//
// Not thread-safe: ClusterTransport's map lock covers it.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "remora/types.h"

namespace remora {

using NodeIndex = std::size_t;

struct Replica {
  NodeIndex node = 0;
  // False while re-replication copies the region there: it takes writes
  // but serves no reads.
  bool in_sync = true;
};

struct Region {
  std::vector<Replica> replicas;
  bool lost = false;
  NodeIndex lost_on = 0;               // when lost: the node whose loss took its last copy
  std::vector<std::uint64_t> written;  // bitmap, one bit per page of the region

  int in_sync() const;
  bool HasReplica(NodeIndex n) const;
};

struct RegionKey {
  Asid asid = 0;
  std::uint64_t index = 0;
  bool operator==(const RegionKey&) const = default;
};

class RegionMap {
 public:
  explicit RegionMap(std::uint64_t region_bytes);

  std::uint64_t region_bytes() const { return region_bytes_; }
  std::uint64_t region_pages() const { return region_bytes_ / kPageSize; }
  std::uint64_t IndexOf(std::uint64_t uva) const { return uva / region_bytes_; }
  std::uint64_t StartOf(std::uint64_t index) const { return index * region_bytes_; }

  // ---- spaces ----
  bool AddSpace(Asid asid);  // false if it exists
  bool HasSpace(Asid asid) const { return spaces_.count(asid) > 0; }
  // Forgets the space and its regions; returns the nodes it exists on.
  std::vector<NodeIndex> RemoveSpace(Asid asid);
  // `child` gets `parent`'s regions (same replicas: it shares the parent's
  // pages on those nodes until either writes them) and exists
  // wherever the parent does; returns those nodes. False if `parent` is
  // unknown or `child` exists.
  bool ForkSpace(Asid parent, Asid child, std::vector<NodeIndex>* nodes);
  std::vector<NodeIndex> NodesOf(Asid asid) const;
  bool IsHosted(NodeIndex node, Asid asid) const;
  void MarkHosted(NodeIndex node, Asid asid) { hosted_[node].insert(asid); }
  // Some space that exists on `node`, to tell a reconnect from a restart.
  bool AnyHosted(NodeIndex node, Asid* asid) const;

  // ---- regions ----
  // Null if the region was never placed (or the space is unknown).
  const Region* Find(Asid asid, std::uint64_t index) const;
  // Places a never-placed region on `nodes` (in sync).
  void Place(Asid asid, std::uint64_t index, const std::vector<NodeIndex>& nodes);
  // Re-replication: a new replica that takes writes before it serves reads.
  void AddReplica(const RegionKey& key, NodeIndex node);
  void SetInSync(const RegionKey& key, NodeIndex node);
  void DropReplica(const RegionKey& key, NodeIndex node);

  // The node is gone with everything on it: it leaves every region's
  // replicas (a region left with none is marked lost) and its spaces. Returns the regions that had
  // a replica there; *spaces gets the spaces that existed on it.
  std::vector<RegionKey> RemoveNode(NodeIndex node, std::vector<Asid>* spaces);

  // ---- written pages ----
  void MarkWritten(Asid asid, std::uint64_t uva);
  // Discard / unregister: the pages of [start, start+len) hold nothing now.
  void ClearWritten(Asid asid, std::uint64_t start, std::uint64_t len);
  std::vector<std::uint64_t> WrittenPages(const RegionKey& key) const;

  // ---- accounting ----
  std::uint64_t regions_on(NodeIndex node) const;
  std::uint64_t regions() const;
  // Regions with fewer in-sync replicas than `replicas` (lost ones included).
  std::uint64_t degraded(int replicas) const;
  std::uint64_t lost() const;
  // The regions short of `replicas` in-sync copies that are not lost.
  std::vector<RegionKey> DegradedKeys(int replicas) const;

 private:
  using Space = std::map<std::uint64_t, Region>;
  Region* FindMutable(const RegionKey& key);

  std::uint64_t region_bytes_;
  std::map<Asid, Space> spaces_;
  std::map<NodeIndex, std::set<Asid>> hosted_;
};

}  // namespace remora
