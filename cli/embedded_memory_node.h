// EmbeddedMemoryNode: the memory node of the embedded default, served by a
// thread of this process.
//
// `remora run` and `remora processor` without --memory-node need a memory
// node on this machine. It used to be a `remora memory-node` child process
// (LocalMemoryNode), which put a second start of this binary — loading,
// relocation, static initialisers, a page store, the ready line — and a
// SIGTERM handshake at exit on every run: about 20 of the 80 ms
// `remora run -- true` took. The embedded node is the same PageStore,
// MemoryNodeService and StreamServer the daemon runs, listening on
// 127.0.0.1:0 (any free port) and on a unix socket in a private 0700
// directory for shared-memory clients, with a freshly generated secret that
// never touches the disk. Clients reach it exactly as they reach a daemon:
// over the socket, through the handshake, so the processor's data path is
// the one a cluster uses.
//
// What it gives up against the child process: a crash of the node is a
// crash of `remora run`. The child ran with --exit-with-parent, so the two
// already lived and died together; only the order differs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "remora/status.h"
#include "remora/transport.h"

namespace remora {

class MemoryNodeService;
class PageStore;
class StatsRegistry;
class StreamServer;

class EmbeddedMemoryNode {
 public:
  // Starts serving `capacity_bytes` (at least one page). Errors name what
  // failed: the directory, the page store, a listen.
  static std::unique_ptr<EmbeddedMemoryNode> Start(std::uint64_t capacity_bytes, Status* status);
  // Stops the loop (connections still open are closed), joins its thread
  // and removes the socket and directory.
  ~EmbeddedMemoryNode();

  // Options for connecting a client of `kind` (tcp or shm) to this node.
  TransportOptions ClientOptions(TransportKind kind, NodeId node_id = 1) const;

 private:
  EmbeddedMemoryNode();

  // Torn down bottom-up (the destructor joins the loop first): the server
  // before the service it calls, the service before the store and stats.
  std::unique_ptr<StatsRegistry> stats_;
  std::unique_ptr<PageStore> store_;
  std::unique_ptr<MemoryNodeService> service_;
  std::unique_ptr<StreamServer> server_;
  std::thread loop_;
  std::string dir_, secret_, tcp_address_, shm_path_;
};

}  // namespace remora
