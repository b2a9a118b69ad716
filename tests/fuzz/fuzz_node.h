// The memory node the node-facing fuzz targets talk to: a PageStore, a
// MemoryNodeService (with its worker for long operations) and a StreamServer
// listening on a unix socket, built inside the fuzzing process with logging
// off (every refused input would log). Who serves it — a thread of its own
// (memnode_under_fuzz.h) or the fuzzing thread (memnode_in_process.h) — is
// the harness's choice.
#pragma once

#include <cstdint>
#include <string>

#include "remora/types.h"

namespace remora {
class StreamServer;
}  // namespace remora

namespace remora::fuzz {

struct FuzzNodeOptions {
  std::uint64_t capacity_pages = 4096;
  NodeId node_id = 0;
  std::string secret;
  int auth_timeout_ms = 5000;
  std::string socket_path;  // unlinked at exit
};

// Never destroyed (libFuzzer exits without unwinding); aborts on failure.
StreamServer* StartFuzzNode(const FuzzNodeOptions& options);

}  // namespace remora::fuzz
