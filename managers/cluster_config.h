// The cluster description: which memory nodes make up the pool a processor
// draws on, and the policy it places and replicates memory by. One TOML file
// (configs/cluster.example.toml) describes the whole cluster:
//
//   [policy]
//   region_size = "16M"        # unit of placement: a few MiB to 1 GiB
//   replicas = 2               # copies of every written-back page (1..3)
//
//   [[memory_node]]
//   id = 1                     # the node's identity (metric names, logs)
//   address = "10.0.0.2:7400"  # tcp/rdma: HOST:PORT; shm: its unix socket
//   transport = "tcp"
//   secret_file = "/etc/remora/secret"
//   capacity = "64G"           # for `remora memory-node --cluster`: what it offers
//
// The same file boots each memory node (`remora memory-node --cluster FILE
// --id N` takes its entry's address and capacity) and tells every processor
// where they are (`remora run|processor --cluster FILE`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "remora/status.h"
#include "remora/transport.h"
#include "remora/types.h"

namespace remora {

struct ClusterNodeSpec {
  NodeId id = 0;
  std::string address;
  TransportKind kind = TransportKind::kTcp;
  std::string secret_file;  // empty: the cluster's [policy] secret_file
  std::string capacity;     // for booting the node; empty: the node's default
};

struct ClusterPolicy {
  static constexpr std::uint64_t kMinRegionBytes = 1ull << 20;
  static constexpr std::uint64_t kMaxRegionBytes = 1ull << 30;
  std::uint64_t region_bytes = 16ull << 20;  // a power of two in [1 MiB, 1 GiB]
  int replicas = 1;                          // 1..3, at most the number of nodes
  // A node that answers nothing (stopped, overloaded) is waited for this
  // long before it is given up as lost.
  int stall_deadline_ms = 30000;
  // A node whose connection broke and that refuses new ones (its process
  // died) is given up as lost after this long.
  int reconnect_deadline_ms = 1000;
  std::string secret_file;  // default of every node's secret_file
};

struct ClusterConfig {
  std::vector<ClusterNodeSpec> nodes;
  ClusterPolicy policy;

  // Nodes distinct in id and address, a region size and replication factor
  // in range and no larger than the node count allows.
  Status Validate() const;
  const ClusterNodeSpec* FindNode(NodeId id) const;
};

// Reads a cluster description. Unknown keys are errors (a typo must not
// silently fall back to a default).
Status LoadClusterConfig(const std::string& path, ClusterConfig* out);
Status ParseClusterConfig(const std::string& toml_text, const std::string& source,
                          ClusterConfig* out);

}  // namespace remora
