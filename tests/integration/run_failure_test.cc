// The runtime under failure and bad input, with real processes: a memory
// node that dies while a program runs, one that cannot be reached, a program
// that cannot be started, garbage on the processor manager's socket, and
// `remora stats` against a running manager.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace remora::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class RunFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/remora-run-failure-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + Quote(dir_)).c_str()); }

  // Runs argv with stdout and stderr captured; returns the exit status.
  int Run(const std::vector<std::string>& argv, std::string* out, std::string* err) {
    std::string cmd = "exec";
    for (const auto& a : argv) cmd += " " + Quote(a);
    cmd += " >" + Quote(dir_ + "/out") + " 2>" + Quote(dir_ + "/err");
    std::string ignored;
    int st = RunCommand({"/bin/sh", "-c", cmd}, &ignored);
    *out = Slurp(dir_ + "/out");
    *err = Slurp(dir_ + "/err");
    return st;
  }

  std::string dir_;
};

// A program that keeps touching more memory than the pcache holds and
// prints only at the end.
std::vector<std::string> Toucher() {
  return {"/usr/bin/python3", "-c",
          "import time\n"
          "b = [bytearray(1 << 20) for _ in range(96)]\n"
          "t = time.time()\n"
          "while time.time() - t < 60:\n"
          "    for x in b: x[::4096] = b'\\x01' * 256\n"
          "print('done', sum(x[0] for x in b))\n"};
}

TEST_F(RunFailureTest, MemoryNodeDyingStopsTheProgramWithAClearError) {
  MemoryNodeProcess node(MemoryNodeProcessOptions{"1G"});
  ASSERT_TRUE(node.started());
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    ::kill(node.pid(), SIGKILL);
  });
  const auto t0 = Clock::now();
  std::string out, err;
  std::vector<std::string> argv = {
      RemoraBinary(),     "run",         "--pcache", "16M",           "--memory-node",
      node.tcp_address(), "--transport", "tcp",      "--secret-file", node.secret_file(),
      "--timeout-ms",     "2000",        "--"};
  for (auto& a : Toucher()) argv.push_back(a);
  int st = Run(argv, &out, &err);
  killer.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(st)) << err;
  EXPECT_EQ(WEXITSTATUS(st), 70) << err;
  EXPECT_LT(secs, 30.0) << "not a hang";
  // Whichever path meets the lost node first (a fill's read, a release, the
  // victim cache's write-back) names it in the program's last words.
  const auto stop = err.find("; stopping the program");
  ASSERT_NE(stop, std::string::npos) << err;
  const auto line = err.rfind("remora: ", stop);
  ASSERT_NE(line, std::string::npos) << err;
  // Every path names the node by its address, so an operator knows which
  // of the cluster's nodes to look at.
  EXPECT_NE(err.substr(line, stop - line).find(node.tcp_address()), std::string::npos) << err;
  EXPECT_EQ(out.find("done"), std::string::npos) << "printed a result: " << out;
}

TEST_F(RunFailureTest, UnreachableMemoryNodeIsAClearErrorBeforeTheProgramStarts) {
  std::ofstream(dir_ + "/secret") << "some-secret-some-secret-some-secret\n";
  chmod((dir_ + "/secret").c_str(), 0600);
  const auto t0 = Clock::now();
  std::string out, err;
  int st =
      Run({RemoraBinary(), "run", "--memory-node", "127.0.0.1:1", "--transport", "tcp",
           "--secret-file", dir_ + "/secret", "--timeout-ms", "2000", "--", "/bin/echo", "ran"},
          &out, &err);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_NE(WEXITSTATUS(st), 0);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 15.0);
  EXPECT_NE(err.find("cannot reach the memory node"), std::string::npos) << err;
  EXPECT_EQ(out, "");
}

TEST_F(RunFailureTest, AProgramThatCannotStartExits127) {
  std::string out, err;
  int st = Run({RemoraBinary(), "run", "--quiet", "--", dir_ + "/no-such-program"}, &out, &err);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 127);
  EXPECT_NE(err.find("cannot execute"), std::string::npos) << err;
}

// A stray client speaking garbage to the manager is refused, and programs
// keep being served; `remora stats --processor` reads the manager.
TEST_F(RunFailureTest, ProcessorManagerRefusesGarbageAndKeepsServing) {
  const std::string sock = dir_ + "/processor.sock";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(RemoraBinary().c_str(), "remora", "processor", "--socket", sock.c_str(), "--pcache",
            "8M", "--log-level", "error", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 200 && ::access(sock.c_str(), F_OK) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(::access(sock.c_str(), F_OK), 0);

  for (const std::string& junk : {std::string("x"), std::string(200, '\xff'), std::string()}) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock.c_str());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    if (!junk.empty()) {
      ASSERT_GT(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), 0);
    }
    char buf[512];
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)::recv(fd, buf, sizeof(buf), 0);  // a refusal, or the connection closed
    ::close(fd);
  }

  std::string out, err;
  int st = Run({RemoraBinary(), "run", "--processor", sock, "--stats-json", dir_ + "/stats.json",
                "--", "/usr/bin/python3", "-c",
                "b = bytearray(32 << 20)\nb[::4096] = b'\\x07' * (8 << 10)\nprint(sum(b))"},
               &out, &err);
  ASSERT_TRUE(WIFEXITED(st)) << err;
  EXPECT_EQ(WEXITSTATUS(st), 0) << err;
  EXPECT_EQ(out, std::to_string(7 * 8192) + "\n");
  EXPECT_NE(Slurp(dir_ + "/stats.json").find("\"nr_pcache_eviction_succeed\""), std::string::npos);

  st = Run({RemoraBinary(), "stats", "--processor", sock, "--json"}, &out, &err);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << err;
  EXPECT_NE(out.find("\"nr_pgfault\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"processes_attached\": 0"), std::string::npos) << out;

  ::kill(pid, SIGTERM);
  int ws = 0;
  ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "socket left behind";
}

}  // namespace
}  // namespace remora::testing
