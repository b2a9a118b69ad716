#include "harness.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/local_memory_node.h"

extern char** environ;

namespace remora::testing {

std::string RemoraBinary() { return REMORA_BIN; }

int RunCommand(const std::vector<std::string>& argv, std::string* out) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  std::string buf;
  char tmp[4096];
  ssize_t n;
  while ((n = read(p[0], tmp, sizeof tmp)) > 0) buf.append(tmp, n);
  close(p[0]);
  int status = -1;
  if (pid > 0) waitpid(pid, &status, 0);
  if (out) *out = buf;
  return status;
}

MemoryNodeProcess::MemoryNodeProcess(MemoryNodeProcessOptions opts) : opts_(std::move(opts)) {
  LocalMemoryNodeOptions o;
  o.remora_binary = RemoraBinary();
  o.capacity = opts_.capacity;
  o.secret = opts_.secret;
  o.extra_args = opts_.extra_args;
  Status st;
  node_ = LocalMemoryNode::Start(o, &st);
  if (node_) {
    pid_ = node_->pid();
    tcp_address_ = node_->tcp_address();
    shm_path_ = node_->shm_path();
    secret_file_ = node_->secret_file();
  }
}

MemoryNodeProcess::~MemoryNodeProcess() = default;

bool MemoryNodeProcess::Alive() const { return node_ && node_->Alive(); }

int MemoryNodeProcess::Stop() {
  if (!node_) return -1;
  pid_ = -1;
  return node_->Stop();
}

TransportOptions MemoryNodeProcess::ClientOptions(TransportKind kind, NodeId node_id) const {
  TransportOptions o = node_->ClientOptions(kind, node_id);
  o.timeout_ms = 5000;
  return o;
}

std::unique_ptr<Transport> MemoryNodeProcess::Connect(TransportKind kind, NodeId node_id,
                                                      Status* status, std::string secret) const {
  TransportOptions o = ClientOptions(kind, node_id);
  if (!secret.empty()) o.secret = secret;
  Status st;
  auto t = ConnectTransport(o, &st);
  if (status) *status = st;
  return t;
}

}  // namespace remora::testing
