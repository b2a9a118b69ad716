// `remora memory-node` as a command: generated secrets, config files and
// flag precedence, refusal of bad configuration.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.h"
#include "net/auth.h"
#include "net/socket_util.h"
#include "remora/transport.h"

extern char** environ;

namespace remora::testing {
namespace {

// A memory node started by hand, with an extra environment variable.
class Daemon {
 public:
  // `wrapper` runs the node under another command (e.g. prlimit).
  Daemon(std::vector<std::string> args, const std::string& extra_env = "",
         std::vector<std::string> wrapper = {}) {
    std::vector<std::string> argv = wrapper;
    argv.push_back(RemoraBinary());
    argv.push_back("memory-node");
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("XDG_RUNTIME_DIR=", 0) != 0) env.push_back(*e);
    if (!extra_env.empty()) env.push_back(extra_env);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    std::vector<char*> a, e;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    for (auto& s : env) e.push_back(s.data());
    e.push_back(nullptr);
    if (posix_spawn(&pid_, a[0], &fa, nullptr, a.data(), e.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    std::string line;
    char c;
    while (pid_ > 0) {
      pollfd pfd{p[0], POLLIN, 0};
      if (poll(&pfd, 1, 10000) <= 0 || read(p[0], &c, 1) != 1) break;
      if (c != '\n') {
        line += c;
        continue;
      }
      ready_line_ = line;
      break;
    }
    close(p[0]);
  }
  ~Daemon() { Stop(); }
  int Stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int st = -1;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return st;
  }
  std::string Field(const std::string& key) const {
    auto pos = ready_line_.find(key + "=");
    if (pos == std::string::npos) return "";
    pos += key.size() + 1;
    return ready_line_.substr(pos, ready_line_.find(' ', pos) - pos);
  }
  const std::string& ready_line() const { return ready_line_; }

 private:
  pid_t pid_ = -1;
  std::string ready_line_;
};

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/remora-daemon-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(DaemonTest, GeneratesASecretFileWhenNoneIsGiven) {
  Daemon d({"--listen", "127.0.0.1:0", "--capacity", "4M"}, "XDG_RUNTIME_DIR=" + dir_);
  ASSERT_EQ(d.ready_line().rfind("remora memory-node ready tcp=127.0.0.1:", 0), 0u)
      << d.ready_line();
  EXPECT_EQ(d.Field("shm"), "-");
  std::string tcp = d.Field("tcp");
  std::string port = tcp.substr(tcp.rfind(':') + 1);
  std::string path = dir_ + "/remora-memnode-" + port + ".secret";
  struct stat sb;
  ASSERT_EQ(stat(path.c_str(), &sb), 0) << path;
  EXPECT_EQ(sb.st_mode & 0777, 0600u);

  std::string secret;
  ASSERT_TRUE(auth::LoadSecretFile(path, &secret).ok());
  EXPECT_EQ(secret.size(), 64u);
  TransportOptions o;
  o.address = tcp;
  o.secret = secret;
  Status st;
  auto t = ConnectTransport(o, &st);
  ASSERT_TRUE(t) << st.ToString();
  MemoryNodeInfo info;
  ASSERT_TRUE(t->Info(&info).ok());
  EXPECT_EQ(info.capacity_pages, 1024u);
  t.reset();

  int status = d.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(stat(path.c_str(), &sb), 0) << "generated secret left behind";
}

TEST_F(DaemonTest, ConfigFileWithFlagsOverriding) {
  std::string secret_file = dir_ + "/secret";
  std::ofstream(secret_file) << "  config-secret-config-secret-config-secret\n";
  chmod(secret_file.c_str(), 0600);
  std::string cfg = dir_ + "/node.toml";
  std::ofstream(cfg) << "[memory_node]\n"
                        "listen = \"127.0.0.1:1\"\n"  // overridden below
                        "capacity = \"8M\"\n"
                        "secret_file = \""
                     << secret_file
                     << "\"\n"
                        "shm_socket = \""
                     << dir_
                     << "/mn.sock\"\n"
                        "node_id = 9\n"
                        "log_level = \"warn\"\n";
  Daemon d({"--config", cfg, "--listen", "127.0.0.1:0", "--capacity", "2M"});
  ASSERT_FALSE(d.Field("tcp").empty()) << d.ready_line();
  EXPECT_EQ(d.Field("shm"), dir_ + "/mn.sock");
  TransportOptions o;
  o.address = d.Field("tcp");
  o.secret =
      "config-secret-config-secret-config-secret";  // whitespace in the file is not part of it
  Status st;
  auto t = ConnectTransport(o, &st);
  ASSERT_TRUE(t) << st.ToString();
  MemoryNodeInfo info;
  ASSERT_TRUE(t->Info(&info).ok());
  EXPECT_EQ(info.node_id, 9u);
  EXPECT_EQ(info.capacity_pages, 512u);  // the flag's 2M, not the file's 8M
}

TEST_F(DaemonTest, BadConfigurationIsRefused) {
  std::string cfg = dir_ + "/bad.toml";
  std::ofstream(cfg) << "[memory_node]\nlisten = \"127.0.0.1:0\"\ncapcity = \"1G\"\n";
  std::string out;
  int st = RunCommand({RemoraBinary(), "memory-node", "--config", cfg}, &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << st;
  EXPECT_EQ(out.find("ready"), std::string::npos);

  st = RunCommand({RemoraBinary(), "memory-node", "--listen", "127.0.0.1:0", "--capacity", "lots"},
                  &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << st;

  std::string empty = dir_ + "/empty";
  std::ofstream(empty) << "\n";
  st = RunCommand(
      {RemoraBinary(), "memory-node", "--listen", "127.0.0.1:0", "--secret-file", empty}, &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << st;

  // A secret others can read, or one too short to resist guessing.
  std::string open_secret = dir_ + "/open";
  std::ofstream(open_secret) << std::string(64, 'o') << "\n";
  chmod(open_secret.c_str(), 0644);
  st = RunCommand(
      {RemoraBinary(), "memory-node", "--listen", "127.0.0.1:0", "--secret-file", open_secret},
      &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << st;
  EXPECT_EQ(out.find("ready"), std::string::npos);
  std::string short_secret = dir_ + "/short";
  std::ofstream(short_secret) << "x\n";
  chmod(short_secret.c_str(), 0600);
  st = RunCommand(
      {RemoraBinary(), "memory-node", "--listen", "127.0.0.1:0", "--secret-file", short_secret},
      &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << st;

  st = RunCommand({RemoraBinary(), "memory-node", "--listen", "no-port-here"}, &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << st;
}

TEST_F(DaemonTest, RunningOutOfDescriptorsIsSurvived) {
  if (access("/usr/bin/prlimit", X_OK) != 0) GTEST_SKIP() << "no prlimit";
  std::ofstream(dir_ + "/secret") << "fd-secret-fd-secret-fd-secret-fd-secret\n";
  chmod((dir_ + "/secret").c_str(), 0600);
  Daemon d({"--listen", "127.0.0.1:0", "--capacity", "4M", "--secret-file", dir_ + "/secret",
            "--auth-timeout-ms", "60000"},
           "", {"/usr/bin/prlimit", "--nofile=40"});
  std::string tcp = d.Field("tcp");
  ASSERT_FALSE(tcp.empty()) << d.ready_line();
  // Far more connections than the node has descriptors for.
  std::vector<int> fds;
  for (int i = 0; i < 80; ++i) {
    int fd = -1;
    if (net::ConnectTcp(tcp, 1000, &fd).ok()) fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int fd : fds) close(fd);
  // Once they are gone the node accepts and serves again.
  TransportOptions o;
  o.address = tcp;
  o.secret = "fd-secret-fd-secret-fd-secret-fd-secret";
  o.timeout_ms = 2000;
  Status st;
  std::unique_ptr<Transport> t;
  for (int i = 0; i < 50 && !t; ++i) {
    t = ConnectTransport(o, &st);
    if (!t) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(t) << st.ToString();
  MemoryNodeInfo info;
  EXPECT_TRUE(t->Info(&info).ok());
  t.reset();
  int status = d.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(DaemonTest, ExampleConfigParses) {
  // The shipped example must stay valid; only its paths are replaced.
  std::ifstream in(std::string(REMORA_SOURCE_DIR) + "/configs/memory-node.toml");
  ASSERT_TRUE(in);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string secret_file = dir_ + "/secret";
  std::ofstream(secret_file) << std::string(48, 's') << "\n";
  chmod(secret_file.c_str(), 0600);
  auto replace = [&](const std::string& from, const std::string& to) {
    auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    text.replace(pos, from.size(), to);
  };
  replace("/etc/remora/secret", secret_file);
  replace("/run/remora/memnode.sock", dir_ + "/mn.sock");
  std::string cfg = dir_ + "/example.toml";
  std::ofstream(cfg) << text;
  Daemon d({"--config", cfg, "--listen", "127.0.0.1:0", "--capacity", "4M"});
  EXPECT_FALSE(d.Field("tcp").empty()) << d.ready_line();
}

}  // namespace
}  // namespace remora::testing
