#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace remora::testing {

std::string RemoraBinary() { return REMORA_BIN; }

namespace {

pid_t Spawn(const std::vector<std::string>& argv, int stdout_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

}  // namespace

int RunCommand(const std::vector<std::string>& argv, std::string* out) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = Spawn(argv, p[1]);
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
  char tmpl[] = "/tmp/remora-test-XXXXXX";
  if (!mkdtemp(tmpl)) return;
  dir_ = tmpl;
  secret_file_ = dir_ + "/secret";
  {
    std::ofstream f(secret_file_);
    f << opts_.secret << "\n";
  }
  chmod(secret_file_.c_str(), 0600);
  std::string sock = dir_ + "/memnode.sock";
  std::vector<std::string> argv = {RemoraBinary(), "memory-node", "--listen", "127.0.0.1:0",
                                   "--shm-socket", sock, "--capacity", opts_.capacity,
                                   "--secret-file", secret_file_};
  argv.insert(argv.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  pid_ = Spawn(argv, p[1]);
  close(p[1]);
  // Wait up to 20 s for the ready line.
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{p[0], POLLIN, 0};
    if (poll(&pfd, 1, 200) <= 0) continue;
    char c;
    if (read(p[0], &c, 1) != 1) break;
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line.rfind("remora memory-node ready", 0) == 0) {
      auto tcp = line.find("tcp=");
      auto shm = line.find("shm=");
      if (tcp != std::string::npos) tcp_address_ = line.substr(tcp + 4, line.find(' ', tcp) - tcp - 4);
      if (shm != std::string::npos) shm_path_ = line.substr(shm + 4, line.find(' ', shm) - shm - 4);
      break;
    }
    line.clear();
  }
  // Keep draining stdout in the background is unnecessary: the daemon logs to
  // stderr; closing our end only matters if it writes stdout again.
  close(p[0]);
}

bool MemoryNodeProcess::Alive() const {
  if (pid_ <= 0) return false;
  int status;
  return waitpid(pid_, &status, WNOHANG) == 0;
}

int MemoryNodeProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = -1;
  for (int i = 0; i < 500; ++i) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    usleep(10000);
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

MemoryNodeProcess::~MemoryNodeProcess() {
  Stop();
  if (!dir_.empty()) {
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }
}

std::unique_ptr<Transport> MemoryNodeProcess::Connect(TransportKind kind, NodeId node_id,
                                                      Status* status, std::string secret) const {
  TransportOptions o;
  o.kind = kind;
  o.address = kind == TransportKind::kShm ? shm_path_ : tcp_address_;
  o.secret = secret.empty() ? opts_.secret : secret;
  o.node_id = node_id;
  o.timeout_ms = 5000;
  Status st;
  auto t = ConnectTransport(o, &st);
  if (status) *status = st;
  return t;
}

}  // namespace remora::testing
