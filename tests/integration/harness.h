// Test harness: starts a real `remora memory-node` process (through the same
// LocalMemoryNode launcher the product's embedded default uses) and connects
// clients to it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "remora/transport.h"

namespace remora {
class LocalMemoryNode;
}

namespace remora::testing {

struct MemoryNodeProcessOptions {
  std::string capacity = "64M";
  std::vector<std::string> extra_args;
  std::string secret = "integration-test-secret-0123456789abcdef";
};

class MemoryNodeProcess {
 public:
  explicit MemoryNodeProcess(MemoryNodeProcessOptions opts = {});
  ~MemoryNodeProcess();  // SIGTERM, then waits; SIGKILL after 5 s

  bool started() const { return pid_ > 0 && !tcp_address_.empty(); }
  pid_t pid() const { return pid_; }
  const std::string& tcp_address() const { return tcp_address_; }  // "127.0.0.1:PORT"
  const std::string& shm_path() const { return shm_path_; }
  const std::string& secret() const { return opts_.secret; }
  const std::string& secret_file() const { return secret_file_; }
  bool Alive() const;
  // Sends SIGTERM and returns the exit status (as from waitpid), or -1.
  int Stop();

  // Connects a client of the given kind with this node's secret.
  std::unique_ptr<Transport> Connect(TransportKind kind, NodeId node_id = 1,
                                     Status* status = nullptr, std::string secret = "") const;
  // What Connect() uses: address, secret, node id, a 5 s request timeout.
  TransportOptions ClientOptions(TransportKind kind, NodeId node_id = 1) const;

 private:
  MemoryNodeProcessOptions opts_;
  std::unique_ptr<LocalMemoryNode> node_;
  std::string secret_file_, tcp_address_, shm_path_;
  pid_t pid_ = -1;
};

// Path of the built `remora` binary.
std::string RemoraBinary();
// Runs a command, returns its exit status and stdout (stderr is inherited).
int RunCommand(const std::vector<std::string>& argv, std::string* out);

}  // namespace remora::testing
