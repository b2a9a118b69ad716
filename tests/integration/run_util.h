// Helpers of the end-to-end tests that run real programs natively and under
// `remora run`: starting a program with its output in files, waiting for it
// with a deadline while sampling its anonymous RSS, the pcache geometry for a
// fraction of a working set, and reading a run's --stats-json (or
// `remora stats --json`) with every looked-up name required to exist.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace remora::testing {

using Clock = std::chrono::steady_clock;

// The whole file, or "" if it cannot be read.
std::string ReadFile(const std::string& path);

// The tail of a (possibly long) text, for failure messages.
std::string Tail(const std::string& s, size_t n = 3000);

struct Spawned {
  pid_t pid = -1;
  std::string out_path, err_path;
};

// Starts argv (argv[0] a path) in `dir` with stdin from /dev/null and stdout
// and stderr going to dir/TAG.out and dir/TAG.err.
Spawned Spawn(const std::vector<std::string>& argv, const std::string& dir, const std::string& tag);

// The anonymous resident memory (RssAnon) of a running process, or 0: the
// part of its working set that runs through the pcache under Remora (its
// program text and libraries stay local). Sampled while it runs; wait4's
// ru_maxrss is no use here anyway: a child started with vfork/posix_spawn
// inherits the spawning process's high-water mark through exec.
long AnonRssKb(pid_t pid);

struct Result {
  int status = -1;  // as from waitpid; -1 if it could not start or timed out
  bool timed_out = false;
  std::string out, err;
  long max_anon_kb = 0;  // sampled every few ms: a lower bound of the peak
  double seconds = 0;
  std::string Describe() const;
  bool Ok() const;
};

// Waits for `s` up to `timeout` after `started`; kills it (SIGKILL) if it
// takes longer. Reads its output files once it has ended. `sample`, if
// given, is called with every sample of the process's RssAnon (every 2 ms).
Result Wait(const Spawned& s, std::chrono::seconds timeout, Clock::time_point started,
            const std::function<void()>& sample = {});

Result RunProgram(const std::vector<std::string>& argv, const std::string& dir,
                  const std::string& tag, std::chrono::seconds timeout = std::chrono::seconds(240));

// The interpreter itself, not a wrapper script in front of it (a version
// manager's shim would add a shell between `remora run` and Python).
std::string RealPython();

// The largest valid pcache (a power-of-two number of sets, 8..16 ways) that
// is at most a quarter of a working set of `rss_kb`.
struct Geometry {
  long bytes = 0;
  int ways = 8;
};
Geometry QuarterPcache(long rss_kb);

// Starts `remora processor --socket SOCK ARGS...` in `dir` and waits up to
// 15 s for its socket. On failure the process is stopped, pid is -1 and
// *error says why.
Spawned StartProcessor(const std::string& sock, const std::vector<std::string>& args,
                       const std::string& dir, std::string* error);
// SIGTERM, then waits (SIGKILL after 10 s); returns the exit status.
int StopProcess(pid_t pid);

// Children of `pid`'s main thread, from /proc.
std::vector<pid_t> ChildrenOf(pid_t pid);
// Ended (gone, or a zombie its parent has not collected).
bool ProcessGone(pid_t pid);

// A fixture that gives each test a fresh directory under /tmp (dir_) for its
// programs' output and files; removed after a test that passed, kept (and
// named on stderr) after one that failed.
class RunDirTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::string dir_;
};

// A run's --stats-json, or the output of `remora stats --json`, with every
// name looked up required to be present (a renamed counter must fail the
// test, not read as zero). Counters and gauges are looked up alike.
class Stats {
 public:
  explicit Stats(const std::string& path);
  static Stats FromText(std::string text);
  bool valid() const { return json_.is_object() && json_.contains("counters"); }
  const std::string& text() const { return text_; }
  bool Has(const std::string& name) const { return Find(name).has_value(); }
  std::int64_t operator[](const std::string& name) const;
  // Optional metrics (not every build emits them) read as 0.
  std::int64_t Get(const std::string& name) const { return Find(name).value_or(0); }
  const nlohmann::json* Histogram(const std::string& name) const;

 private:
  Stats() = default;
  std::optional<std::int64_t> Find(const std::string& name) const;
  std::string text_;
  nlohmann::json json_;
};

}  // namespace remora::testing
