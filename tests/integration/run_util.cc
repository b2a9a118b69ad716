#include "run_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

extern char** environ;

namespace remora::testing {

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

Spawned Spawn(const std::vector<std::string>& argv, const std::string& dir,
              const std::string& tag) {
  Spawned s;
  s.out_path = dir + "/" + tag + ".out";
  s.err_path = dir + "/" + tag + ".err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, s.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, s.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (posix_spawn(&s.pid, args[0], &fa, nullptr, args.data(), environ) != 0) s.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return s;
}

long AnonRssKb(pid_t pid) {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::atol(line.c_str() + 8);
  }
  return 0;
}

std::string Result::Describe() const {
  std::string d;
  if (timed_out)
    d = "timed out";
  else if (status < 0)
    d = "did not start";
  else if (WIFEXITED(status))
    d = "exit " + std::to_string(WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    d = "signal " + std::to_string(WTERMSIG(status));
  return d + "; stderr:\n" + Tail(err) + "\nstdout:\n" + Tail(out, 1500);
}

bool Result::Ok() const {
  return !timed_out && status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

Result Wait(const Spawned& s, std::chrono::seconds timeout, Clock::time_point started,
            const std::function<void()>& sample) {
  Result r;
  if (s.pid <= 0) return r;
  const auto deadline = started + timeout;
  struct rusage ru {};
  for (;;) {
    int st = 0;
    r.max_anon_kb = std::max(r.max_anon_kb, AnonRssKb(s.pid));
    if (sample) sample();
    pid_t w = wait4(s.pid, &st, WNOHANG, &ru);
    if (w == s.pid) {
      r.status = st;
      break;
    }
    if (Clock::now() > deadline) {
      kill(s.pid, SIGKILL);
      wait4(s.pid, &st, 0, &ru);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  r.out = ReadFile(s.out_path);
  r.err = ReadFile(s.err_path);
  return r;
}

Result RunProgram(const std::vector<std::string>& argv, const std::string& dir,
                  const std::string& tag, std::chrono::seconds timeout) {
  auto t0 = Clock::now();
  return Wait(Spawn(argv, dir, tag), timeout, t0);
}

std::string RealPython() {
  static std::string path = [] {
    std::string out;
    int st = RunCommand({REMORA_PYTHON3, "-c", "import sys; print(sys.executable)"}, &out);
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    return (st == 0 && !out.empty()) ? out : std::string(REMORA_PYTHON3);
  }();
  return path;
}

Geometry QuarterPcache(long rss_kb) {
  const long limit = rss_kb * 1024 / 4;
  Geometry best;
  for (int ways = 8; ways <= 16; ways++) {
    const long set_bytes = ways * 4096L;
    long sets = 1;
    while (sets * 2 * set_bytes <= limit) sets *= 2;
    if (sets * set_bytes <= limit && sets * set_bytes > best.bytes) best = {sets * set_bytes, ways};
  }
  return best;
}

Spawned StartProcessor(const std::string& sock, const std::vector<std::string>& args,
                       const std::string& dir, std::string* error) {
  std::vector<std::string> argv = {RemoraBinary(), "processor", "--socket", sock};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto t0 = Clock::now();
  Spawned proc = Spawn(argv, dir, "processor");
  if (proc.pid <= 0) {
    *error = "cannot start remora processor";
    return proc;
  }
  struct stat sb;
  while (stat(sock.c_str(), &sb) != 0) {
    int st;
    if (waitpid(proc.pid, &st, WNOHANG) != 0) {
      *error = "processor exited early: " + ReadFile(proc.err_path);
      proc.pid = -1;
      return proc;
    }
    if (Clock::now() - t0 > std::chrono::seconds(15)) {
      *error = "processor socket never appeared: " + ReadFile(proc.err_path);
      StopProcess(proc.pid);
      proc.pid = -1;
      return proc;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return proc;
}

int StopProcess(pid_t pid) {
  if (pid <= 0) return -1;
  kill(pid, SIGTERM);
  int st = -1;
  for (int i = 0; i < 1000; i++) {
    if (waitpid(pid, &st, WNOHANG) == pid) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return st;
}

std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  std::istringstream in(
      ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  pid_t c;
  while (in >> c) out.push_back(c);
  return out;
}

bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  // A zombie has ended; only its parent has not collected it yet.
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto close_paren = stat.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < stat.size() &&
         stat[close_paren + 2] == 'Z';
}

void RunDirTest::SetUp() {
  char tmpl[] = "/tmp/remora-run-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
}

void RunDirTest::TearDown() {
  if (!HasFailure())
    std::system(("rm -rf '" + dir_ + "'").c_str());
  else
    std::fprintf(stderr, "kept %s for inspection\n", dir_.c_str());
}

Stats::Stats(const std::string& path) : Stats(FromText(ReadFile(path))) {}

Stats Stats::FromText(std::string text) {
  Stats s;
  s.text_ = std::move(text);
  s.json_ = nlohmann::json::parse(s.text_, nullptr, /*allow_exceptions=*/false);
  return s;
}

std::int64_t Stats::operator[](const std::string& name) const {
  auto v = Find(name);
  EXPECT_TRUE(v.has_value()) << "metric " << name << " missing from the stats JSON";
  return v.value_or(0);
}

const nlohmann::json* Stats::Histogram(const std::string& name) const {
  if (!json_.contains("histograms") || !json_["histograms"].contains(name)) return nullptr;
  return &json_["histograms"][name];
}

std::optional<std::int64_t> Stats::Find(const std::string& name) const {
  for (const char* section : {"counters", "gauges"}) {
    if (json_.is_object() && json_.contains(section) && json_[section].contains(name) &&
        json_[section][name].is_number_integer())
      return json_[section][name].get<std::int64_t>();
  }
  return std::nullopt;
}

}  // namespace remora::testing
