// LocalMemoryNode: a `remora memory-node` child process on this machine.
//
// The embedded default of `remora run` and `remora demo` (one machine, shared
// memory transport) and the test harness both need a real memory node without
// asking the user to start one. This class starts the daemon on 127.0.0.1:0
// (any free port) and a unix socket in a private temporary directory, with a
// freshly generated secret, and waits for its ready line:
//   "remora memory-node ready tcp=HOST:PORT shm=PATH"
// The destructor stops it (SIGTERM, then SIGKILL after a grace period) and
// removes the directory.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "remora/status.h"
#include "remora/transport.h"

namespace remora {

struct LocalMemoryNodeOptions {
  std::string remora_binary;  // path of the `remora` executable
  std::string capacity = "1G";
  std::string secret;  // empty: generate one
  std::vector<std::string> extra_args;
  int ready_timeout_ms = 20000;
};

class LocalMemoryNode {
 public:
  static std::unique_ptr<LocalMemoryNode> Start(const LocalMemoryNodeOptions& opts, Status* status);
  ~LocalMemoryNode();

  pid_t pid() const { return pid_; }
  const std::string& tcp_address() const { return tcp_address_; }
  const std::string& shm_path() const { return shm_path_; }
  const std::string& secret() const { return secret_; }
  const std::string& secret_file() const { return secret_file_; }
  bool Alive() const;
  // SIGTERM, wait; returns the waitpid status or -1 if not running.
  int Stop();

  // Options for connecting a client of `kind` to this node.
  TransportOptions ClientOptions(TransportKind kind, NodeId node_id = 1) const;

 private:
  LocalMemoryNode() = default;
  std::string dir_, secret_, secret_file_, tcp_address_, shm_path_;
  pid_t pid_ = -1;
};

// The path of the running executable (/proc/self/exe), for starting siblings.
std::string SelfExecutable();

// Options for a client of `kind` (tcp or shm) of a memory node on this
// machine listening on `tcp_address` and `shm_path`.
TransportOptions LocalClientOptions(TransportKind kind, const std::string& tcp_address,
                                    const std::string& shm_path, const std::string& secret,
                                    NodeId node_id);

}  // namespace remora
