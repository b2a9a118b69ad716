// The memory node the node-facing fuzz targets talk to: a PageStore, a
// MemoryNodeService (with its worker for long operations) and a StreamServer
// listening on a unix socket, built inside the fuzzing process with logging
// off (every refused input would log). The fuzzing thread serves it
// (memnode_in_process.h): a serving thread of its own would still be inside
// the node (in OpenSSL, say) while libFuzzer's exit() tears the process's
// statics down.
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
  std::string socket_path;  // unlinked at exit
};

// Never destroyed (libFuzzer exits without unwinding); aborts on failure.
StreamServer* StartFuzzNode(const FuzzNodeOptions& options);

}  // namespace remora::fuzz
