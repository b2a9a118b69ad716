// MemoryNodeConfig: everything `remora memory-node` needs to run, from a TOML
// file's [memory_node] table and/or command-line flags (flags win).
//
//   [memory_node]
//   listen      = "0.0.0.0:7400"      # TCP host:port; port 0 = any free port
//   capacity    = "4G"                # or a number of bytes
//   secret_file = "/etc/remora/secret"
//   shm_socket  = "/run/remora/memnode.sock"
//   node_id     = 1
//   log_level   = "info"
//   auth_timeout_ms = 5000
//   lease_ms    = 30000               # spaces of a processor gone this long are freed
//   max_unauthenticated = 256         # connections still in the handshake
//   reply_budget = "256M"             # replies queued for all peers together
//   transport   = "rdma"              # "tcp" (default) or "rdma"
//   rdma_device = "mlx5_0"            # rdma: the device to serve on
//   rdma_port   = 1
//   rdma_gid_index = 3                # -1: the port's IPv4 RoCE v2 GID, else 0
//   metrics_listen = "127.0.0.1:9400" # Prometheus /metrics over HTTP (default: off)
//
// configs/memory-node.toml is a commented example.
#pragma once

#include <cstdint>
#include <string>

#include "remora/status.h"
#include "remora/types.h"

namespace remora {

struct MemoryNodeConfig {
  std::string listen = "0.0.0.0:7400";
  std::uint64_t capacity_bytes = std::uint64_t{1} << 30;
  // Empty: generate a secret and write it next to the node (see daemon.h).
  std::string secret_file;
  // Empty: no unix socket, so no shared-memory clients.
  std::string shm_socket;
  NodeId node_id = 0;
  std::string log_level = "info";
  int auth_timeout_ms = 5000;
  // A processor node's address spaces are destroyed once it has had no
  // connection for this long (its processor died), or at once when the same
  // node authenticates again with no connection of its own still open.
  int lease_ms = 30000;
  // Connections that have not authenticated yet; more are closed at once.
  int max_unauthenticated = 256;
  // Replies queued for all connections together; beyond it the node stops
  // reading from the peers with the largest backlogs.
  std::uint64_t reply_budget_bytes = std::uint64_t{256} << 20;
  // "rdma": processors may attach over RDMA verbs (docs/cluster.md); the TCP
  // listener stays, for control and for plain TCP clients.
  std::string transport = "tcp";
  std::string rdma_device;  // empty: the first device
  int rdma_port = 1;
  int rdma_gid_index = -1;
  // HOST:PORT to serve Prometheus's /metrics on; empty: no HTTP server.
  std::string metrics_listen;
};

// Overwrites the fields present in `path`'s [memory_node] table. Unknown keys
// are an error, so a typo does not silently fall back to a default.
Status LoadMemoryNodeConfig(const std::string& path, MemoryNodeConfig* config);

}  // namespace remora
