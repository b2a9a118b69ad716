#include "cli/local_memory_node.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

extern char** environ;

namespace remora {
namespace {

std::string RandomHex(std::size_t bytes) {
  std::string out;
  std::ifstream ur("/dev/urandom", std::ios::binary);
  static const char* hex = "0123456789abcdef";
  for (std::size_t i = 0; i < bytes; ++i) {
    unsigned char c = static_cast<unsigned char>(ur.get());
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::string Field(const std::string& line, const std::string& key) {
  auto pos = line.find(key + "=");
  if (pos == std::string::npos) return "";
  pos += key.size() + 1;
  auto end = line.find(' ', pos);
  return line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

}  // namespace

std::string SelfExecutable() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "remora";
  buf[n] = 0;
  return buf;
}

std::unique_ptr<LocalMemoryNode> LocalMemoryNode::Start(const LocalMemoryNodeOptions& opts,
                                                        Status* status) {
  std::unique_ptr<LocalMemoryNode> node(new LocalMemoryNode);
  char tmpl[] = "/tmp/remora-node-XXXXXX";
  if (!mkdtemp(tmpl)) {
    *status = {Code::kIoError, "mkdtemp failed"};
    return nullptr;
  }
  node->dir_ = tmpl;
  node->secret_ = opts.secret.empty() ? RandomHex(32) : opts.secret;
  node->secret_file_ = node->dir_ + "/secret";
  {
    int fd = open(node->secret_file_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      *status = {Code::kIoError, "cannot create " + node->secret_file_};
      return nullptr;
    }
    std::string s = node->secret_ + "\n";
    bool ok = write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
    close(fd);
    if (!ok) {
      *status = {Code::kIoError, "cannot write " + node->secret_file_};
      return nullptr;
    }
  }
  std::vector<std::string> argv = {
      opts.remora_binary.empty() ? SelfExecutable() : opts.remora_binary,
      "memory-node",
      "--listen",
      "127.0.0.1:0",
      "--shm-socket",
      node->dir_ + "/memnode.sock",
      "--capacity",
      opts.capacity,
      "--secret-file",
      node->secret_file_,
      "--exit-with-parent"};
  argv.insert(argv.end(), opts.extra_args.begin(), opts.extra_args.end());

  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    *status = {Code::kIoError, "pipe failed"};
    return nullptr;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int rc = posix_spawn(&node->pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    node->pid_ = -1;
    *status = {Code::kIoError, "cannot start " + argv[0]};
    return nullptr;
  }

  // Wait for the ready line; a daemon that exits first is an error.
  std::string line;
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.ready_timeout_ms);
  bool ready = false;
  while (!ready && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{p[0], POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    char c;
    if (read(p[0], &c, 1) != 1) break;  // EOF: the daemon exited
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line.rfind("remora memory-node ready", 0) == 0) {
      node->tcp_address_ = Field(line, "tcp");
      node->shm_path_ = Field(line, "shm");
      ready = true;
    }
    line.clear();
  }
  close(p[0]);
  if (!ready) {
    *status = {Code::kIoError, "memory node did not become ready (see its log above)"};
    return nullptr;
  }
  *status = Status::Ok();
  return node;
}

bool LocalMemoryNode::Alive() const {
  if (pid_ <= 0) return false;
  int st;
  return waitpid(pid_, &st, WNOHANG) == 0;
}

int LocalMemoryNode::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int st = -1;
  // 5 s grace. A pidfd becomes readable the moment the daemon exits: no
  // polling interval added to every `remora run`'s exit.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      if (pidfd >= 0) close(pidfd);
      pid_ = -1;
      return st;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    if (pidfd >= 0) {
      pollfd pfd{pidfd, POLLIN, 0};
      poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 100)));
    } else {
      usleep(1000);
    }
  }
  if (pidfd >= 0) close(pidfd);
  kill(pid_, SIGKILL);
  waitpid(pid_, &st, 0);
  pid_ = -1;
  return st;
}

LocalMemoryNode::~LocalMemoryNode() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

TransportOptions LocalClientOptions(TransportKind kind, const std::string& tcp_address,
                                    const std::string& shm_path, const std::string& secret,
                                    NodeId node_id) {
  TransportOptions o;
  o.kind = kind;
  o.address = kind == TransportKind::kShm ? shm_path : tcp_address;
  o.secret = secret;
  o.node_id = node_id;
  return o;
}

TransportOptions LocalMemoryNode::ClientOptions(TransportKind kind, NodeId node_id) const {
  return LocalClientOptions(kind, tcp_address_, shm_path_, secret_, node_id);
}

}  // namespace remora
