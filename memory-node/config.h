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
};

// Overwrites the fields present in `path`'s [memory_node] table. Unknown keys
// are an error, so a typo does not silently fall back to a default.
Status LoadMemoryNodeConfig(const std::string& path, MemoryNodeConfig* config);

}  // namespace remora
