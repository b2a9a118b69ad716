// Programs that fork, natively and under `remora run`: copy-on-write across
// the pcache and the memory node. Each program checks its own data (a child
// sees what its parent had at fork and its own writes, never another
// process's writes, never zeros) and prints a deterministic result, which
// must equal the native run's byte for byte. The run's counters must show
// the forks (nr_fork, copy-on-write faults) and, once every process of the
// run has exited, nothing left: no pcache line, reverse map, victim entry,
// memory-node page or attached process.
//
//   fork_tree      15 processes over a 48 MiB inherited buffer, 8 MiB pcache
//   fork_counters  one fork whose copy-on-write and reuse faults are counted
//   fork_cycles    1000 forks against a shared processor manager: the
//                  gauges are read at exact points and must not drift
//   pyfork.py      multiprocessing (fork) and subprocess, quarter pcache
//   a shell pipeline, sh -c 'seq | sort -r | md5sum'
//   bash command substitutions (forks that do not exec), 256K and 512K
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "run_util.h"

namespace remora::testing {
namespace {

// The pipeline in the C locale, so sort's order does not depend on the
// machine's.
constexpr const char* kPipeline = "export LC_ALL=C; seq 1 200000 | sort -r | md5sum";

class RunForkTest : public RunDirTest {
 protected:
  void SetUp() override {
    RunDirTest::SetUp();
    // Until the runtime supports fork it reports no nr_fork and a forked
    // child would read zeros: these tests then have nothing to test.
    if (!RuntimeSupportsFork()) GTEST_SKIP() << "this runtime reports no nr_fork: fork unsupported";
  }

  bool RuntimeSupportsFork() {
    static const bool supported = [this] {
      Result r = RunProgram({RemoraBinary(), "run", "--quiet", "--stats-json", dir_ + "/probe.json",
                             "--", "/bin/true"},
                            dir_, "probe", std::chrono::seconds(60));
      return r.Ok() && Stats(dir_ + "/probe.json").Has("nr_fork");
    }();
    return supported;
  }

  // Runs argv natively twice (the program must be deterministic, so that a
  // difference under Remora is Remora's); returns the first run.
  Result Native(const std::vector<std::string>& argv, const std::string& tag) {
    Result native = RunProgram(argv, dir_, tag + "-native");
    EXPECT_TRUE(native.Ok()) << tag << " natively: " << native.Describe();
    EXPECT_FALSE(native.out.empty());
    Result again = RunProgram(argv, dir_, tag + "-native2");
    EXPECT_TRUE(again.Ok()) << again.Describe();
    EXPECT_EQ(native.out, again.out) << tag << " is not deterministic";
    native.max_anon_kb = std::max(native.max_anon_kb, again.max_anon_kb);
    return native;
  }

  // Runs argv under `remora run OPTIONS --stats-json F --`, requires exit 0
  // and the native run's stdout; returns the run's final counters.
  Stats UnderRemora(const std::vector<std::string>& options, const std::vector<std::string>& argv,
                    const Result& native, const std::string& tag) {
    const std::string json = dir_ + "/" + tag + ".json";
    std::vector<std::string> cmd = {RemoraBinary(), "run"};
    cmd.insert(cmd.end(), options.begin(), options.end());
    cmd.insert(cmd.end(), {"--stats-json", json, "--"});
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    Result r = RunProgram(cmd, dir_, tag + "-remora", std::chrono::seconds(300));
    std::fprintf(stderr, "%s under remora run: %.2f s (native %.2f s)\n", tag.c_str(), r.seconds,
                 native.seconds);
    EXPECT_TRUE(r.Ok()) << tag << " under remora run: " << r.Describe();
    EXPECT_EQ(r.out, native.out) << tag << ": output differs from the native run"
                                 << (r.Ok() ? "\nremora run's stderr:\n" + Tail(r.err) : "");
    Stats s(json);
    EXPECT_TRUE(s.valid()) << "stats JSON unreadable:\n" << Tail(s.text()) << "\n" << Tail(r.err);
    return s;
  }

  // Once every process of a run has exited, nothing of it is left, and
  // nothing failed on the way.
  static void ExpectNothingLeft(const Stats& s) {
    SCOPED_TRACE("stats:\n" + Tail(s.text(), 6000));
    EXPECT_EQ(s["pcache_lines_used"], 0);
    EXPECT_EQ(s["pcache_rmaps"], 0);
    EXPECT_EQ(s["victim_entries_used"], 0);
    EXPECT_EQ(s["memory_node_used_pages"], 0);
    EXPECT_EQ(s["processes_attached"], 0);
    EXPECT_EQ(s["nr_processes_attached"], s["nr_processes_exited"]);
    EXPECT_EQ(s.Get("nr_pgfault_failed"), 0);
    EXPECT_EQ(s.Get("nr_victim_flush_failed"), 0);
    EXPECT_EQ(s.Get("nr_pcache_fill_aborted"), s.Get("nr_pcache_fill_owner_gone"));
  }
};

// 15 processes (depth 3, fanout 2: 14 forks), each checking the whole 48 MiB
// buffer three times through an 8 MiB pcache: every check pages the buffer
// in again, so inherited pages come back from the victim cache and the
// memory node, in each process's own version.
TEST_F(RunForkTest, ForkTree) {
  const std::vector<std::string> argv = {REMORA_FORK_TREE, "48", "3", "2"};
  Result native = Native(argv, "fork_tree");
  ASSERT_FALSE(HasFailure());
  ASSERT_NE(native.out.find("15 processes"), std::string::npos) << native.out;
  Stats s =
      UnderRemora({"--pcache", "8M", "--ways", "8", "--victim", "32"}, argv, native, "fork_tree");
  SCOPED_TRACE("fork_tree stats:\n" + Tail(s.text(), 6000));
  EXPECT_EQ(s["nr_fork"], 14);
  EXPECT_EQ(s["nr_processes_attached"], 15);
  EXPECT_GT(s["nr_pgfault_wp_cow"], 0);
  EXPECT_GT(s["nr_pcache_eviction_succeed"], 0);
  EXPECT_GT(s["nr_pcache_fill_from_memory"] + s["nr_pcache_fill_from_victim"], 0);
  ExpectNothingLeft(s);
}

// The counted fork. P = 512 pages stay resident in a 64 MiB pcache (512 of
// its 2048 sets get one page each); the child writes K = 200 of them, the
// parent J = 100 others after the child exited.
//
// Tolerance: besides the program's own writes, a process could write a few
// pages of managed memory of its own around the fork (libc's and the
// allocator's state), each a write to a line shared at fork. Measured: none
// (wp_cow == K and wp_reuse == J exactly, run after run: mimalloc's and
// libc's fork-time state lives in memory mapped before the shim started,
// which stays local). Bounds: K <= wp_cow <= K + kSlack, J <= wp_reuse <= J
// + kSlack: the program's own writes must all be counted (a missing one is a
// write the runtime did not see: a lost copy-on-write), and at most kSlack
// others, for a libc or allocator that does keep such state in managed
// memory.
TEST_F(RunForkTest, ForkCountersAreExact) {
  constexpr int kPages = 512, kChild = 200, kParent = 100, kSlack = 4;
  const std::vector<std::string> argv = {REMORA_FORK_COUNTERS, std::to_string(kPages),
                                         std::to_string(kChild), std::to_string(kParent)};
  Result native = Native(argv, "fork_counters");
  ASSERT_FALSE(HasFailure());
  Stats s = UnderRemora({"--pcache", "64M", "--ways", "8"}, argv, native, "fork_counters");
  SCOPED_TRACE("fork_counters stats:\n" + Tail(s.text(), 6000));
  EXPECT_EQ(s["nr_fork"], 1);
  EXPECT_EQ(s["nr_processes_attached"], 2);
  EXPECT_EQ(s["nr_pcache_eviction_succeed"], 0) << "the pages were meant to stay resident";
  const auto cow = s["nr_pgfault_wp_cow"], reuse = s["nr_pgfault_wp_reuse"];
  std::fprintf(stderr, "fork_counters: K %d wp_cow %lld, J %d wp_reuse %lld\n", kChild,
               static_cast<long long>(cow), kParent, static_cast<long long>(reuse));
  EXPECT_GE(cow, kChild);
  EXPECT_LE(cow, kChild + kSlack);
  EXPECT_GE(reuse, kParent);
  EXPECT_LE(reuse, kParent + kSlack);
  ExpectNothingLeft(s);
}

// Reads a running manager's counters.
Stats ProcessorStats(const std::string& sock) {
  std::string out;
  int st = RunCommand({RemoraBinary(), "stats", "--processor", sock, "--json"}, &out);
  EXPECT_EQ(st, 0) << "remora stats --processor failed";
  return Stats::FromText(out);
}

bool Exists(const std::string& path) {
  struct stat sb;
  return stat(path.c_str(), &sb) == 0;
}

void Touch(const std::string& path) { std::ofstream(path) << ""; }

// 1000 forks against a node-wide manager with its own memory node: what one
// fork and one child's exit leave behind would add up, so the gauges read at
// the "baseline" marker (before the cycles) and at the "done" marker (after
// them, every child gone) must be equal, and all zero once the program ended.
TEST_F(RunForkTest, ForkCyclesLeaveNothingBehind) {
  constexpr int kCycles = 400, kWarmup = 3;  // fork_cycles' own warm-up forks
  const std::vector<std::string> argv = {REMORA_FORK_CYCLES, std::to_string(kCycles), "1024"};
  Result native = Native(argv, "fork_cycles");
  ASSERT_FALSE(HasFailure());

  MemoryNodeProcess node(MemoryNodeProcessOptions{.capacity = "1G"});
  ASSERT_TRUE(node.started());
  const std::string sock = dir_ + "/processor.sock";
  std::string error;
  Spawned proc = StartProcessor(sock,
                                {"--pcache", "64M", "--ways", "8", "--memory-node", node.shm_path(),
                                 "--transport", "shm", "--secret-file", node.secret_file()},
                                dir_, &error);
  ASSERT_GT(proc.pid, 0) << error;
  struct Stop {
    pid_t pid;
    ~Stop() { StopProcess(pid); }
  } stop{proc.pid};

  const std::string markers = dir_ + "/markers";
  ASSERT_EQ(mkdir(markers.c_str(), 0755), 0);
  std::vector<std::string> cmd = {RemoraBinary(),     "run", "--processor", sock, "--stats-json",
                                  dir_ + "/run.json", "--"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  cmd.push_back(markers);
  const auto t0 = Clock::now();
  Spawned run = Spawn(cmd, dir_, "fork_cycles-remora");
  ASSERT_GT(run.pid, 0);

  // Waits for a marker, then for the manager to settle: the last child's
  // session is torn down after its exit, asynchronously.
  auto at_marker = [&](const std::string& name) -> Stats {
    while (!Exists(markers + "/" + name)) {
      int st;
      if (waitpid(run.pid, &st, WNOHANG) != 0) {
        ADD_FAILURE() << "fork_cycles ended before " << name << ": " << ReadFile(run.err_path);
        return Stats::FromText("");
      }
      if (Clock::now() - t0 > std::chrono::seconds(200)) {
        ADD_FAILURE() << "no " << name << " marker after 200 s";
        return Stats::FromText("");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (int i = 0;; i++) {
      Stats s = ProcessorStats(sock);
      if ((s.Get("processes_attached") == 1 && s.Get("zaps_pending") == 0) || i == 500) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };

  Stats base = at_marker("baseline");
  ASSERT_TRUE(base.valid()) << base.text();
  Touch(markers + "/go");
  Stats done = at_marker("done");
  ASSERT_TRUE(done.valid()) << done.text();
  Touch(markers + "/go2");
  Result r = Wait(run, std::chrono::seconds(120), t0);
  std::fprintf(stderr, "fork_cycles under remora run: %.2f s (native %.2f s)\n", r.seconds,
               native.seconds);
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);

  SCOPED_TRACE("at baseline:\n" + Tail(base.text(), 4000) + "\nat done:\n" +
               Tail(done.text(), 4000));
  EXPECT_EQ(base["processes_attached"], 1);
  EXPECT_EQ(done["processes_attached"], 1);
  EXPECT_EQ(base["nr_fork"], kWarmup);
  EXPECT_EQ(done["nr_fork"], kWarmup + kCycles);
  EXPECT_GT(base["pcache_lines_used"], 1024 - 1) << "the parent's pages are resident";
  EXPECT_EQ(done["pcache_lines_used"], base["pcache_lines_used"]);
  EXPECT_EQ(done["pcache_rmaps"], base["pcache_rmaps"]);
  EXPECT_EQ(done["memory_node_used_pages"], base["memory_node_used_pages"]);
  EXPECT_EQ(done["nr_processes_attached"] - base["nr_processes_attached"], kCycles);
  EXPECT_EQ(done["nr_processes_exited"] - base["nr_processes_exited"], kCycles);
  EXPECT_GE(done["nr_pgfault_wp_cow"] - base["nr_pgfault_wp_cow"], kCycles);

  // After the program: the manager holds nothing, the memory node neither.
  Stats end = ProcessorStats(sock);
  for (int i = 0; i < 250 && end.Get("processes_attached") != 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    end = ProcessorStats(sock);
  }
  ExpectNothingLeft(end);
  auto t = node.Connect(TransportKind::kTcp);
  ASSERT_NE(t, nullptr);
  MemoryNodeInfo info;
  ASSERT_TRUE(t->Info(&info).ok());
  EXPECT_EQ(info.used_pages, 0u) << "memory node pages left after the program exited";
}

// multiprocessing with the fork start method over a heap four times the
// pcache, and subprocess (a shell pipeline, a Python child).
TEST_F(RunForkTest, PythonMultiprocessingAndSubprocess) {
  const std::vector<std::string> argv = {
      RealPython(), REMORA_SOURCE_DIR "/tests/programs/pyfork.py", "--mb", "24"};
  Result native = Native(argv, "pyfork");
  ASSERT_FALSE(HasFailure());
  const Geometry pcache = QuarterPcache(native.max_anon_kb);
  ASSERT_GT(pcache.bytes, 0) << "could not read the program's anonymous RSS";
  std::fprintf(stderr, "pyfork: native peak anonymous RSS %ld KiB; pcache %.2f MiB\n",
               native.max_anon_kb, pcache.bytes / 1048576.0);
  Stats s = UnderRemora({"--pcache", std::to_string(pcache.bytes / 1024) + "K", "--ways",
                         std::to_string(pcache.ways), "--victim", "32"},
                        argv, native, "pyfork");
  SCOPED_TRACE("pyfork stats:\n" + Tail(s.text(), 6000));
  // The pool's two workers, at least (the shell forks for its pipeline too;
  // subprocess itself may vfork).
  EXPECT_GE(s["nr_fork"], 2);
  EXPECT_GT(s["nr_pgfault_wp_cow"], 0);
  EXPECT_GT(s["nr_pcache_eviction_succeed"], 0);
  ExpectNothingLeft(s);
}

// A shell pipeline run directly: the shell forks one child per command,
// each of which execs (a new image, its own session).
TEST_F(RunForkTest, ShellPipeline) {
  const std::vector<std::string> argv = {"/bin/sh", "-c", kPipeline};
  Result native = Native(argv, "pipeline");
  ASSERT_FALSE(HasFailure());
  Stats s = UnderRemora({"--pcache", "8M", "--ways", "8"}, argv, native, "pipeline");
  SCOPED_TRACE("pipeline stats:\n" + Tail(s.text(), 6000));
  EXPECT_EQ(s["nr_fork"], 3);
  EXPECT_GE(s["nr_processes_attached"], 4) << "the shell and the three commands";
  ExpectNothingLeft(s);
}

// Forked children that do not exec, under a pcache far smaller than the
// shell: each command substitution forks a subshell, whose agent thread is
// created after the fork. Creating it writes to the managed heap (glibc
// clears the DTV of a cached thread stack), where the parent's evictions
// have left pages with zaps queued for the child's agent, which does not
// run yet. The manager used to wait for that agent, time out after 10 s and
// stop the child (every run failed at 512K).
TEST_F(RunForkTest, SubshellsUnderATinyPcache) {
  const std::vector<std::string> argv = {
      "/bin/bash", "-c",
      "s=0; for i in $(seq 1 150); do x=$(echo $((i * i))); s=$((s + x)); done; echo $s"};
  Result native = Native(argv, "subshells");
  ASSERT_FALSE(HasFailure());
  for (const char* pcache : {"256K", "512K"}) {
    SCOPED_TRACE(pcache);
    const auto t0 = std::chrono::steady_clock::now();
    Stats s = UnderRemora({"--pcache", pcache}, argv, native, std::string("subshells-") + pcache);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));
    SCOPED_TRACE("stats:\n" + Tail(s.text(), 6000));
    EXPECT_GE(s["nr_fork"], 150);
    EXPECT_GT(s["nr_pcache_eviction_succeed"], 0) << "the pcache was meant to be too small";
    ExpectNothingLeft(s);
  }
}

// Waits up to `timeout` for `path` to appear and returns its contents ("" if
// it never did).
std::string WaitForFile(const std::string& path, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!Exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ReadFile(path);
}

// The other exit order: the parent exits first, while its child still
// shares its lines and memory-node pages; the child, alone, must still read
// the data as it was at the fork (24 MiB through a 4 MiB pcache), and its
// own writes. The child reports through a file (it outlives the program's
// stdout); `remora run` waits for it before printing its counters.
TEST_F(RunForkTest, ParentExitsFirst) {
  const std::string native_file = dir_ + "/orphan-native.txt";
  Result native = RunProgram({REMORA_FORK_ORPHAN, "24", native_file}, dir_, "orphan-native");
  ASSERT_TRUE(native.Ok()) << native.Describe();
  const std::string native_verdict = WaitForFile(native_file, std::chrono::seconds(30));
  ASSERT_NE(native_verdict.find("OK"), std::string::npos) << native_verdict;

  const std::string file = dir_ + "/orphan-remora.txt";
  Stats s = UnderRemora({"--pcache", "4M", "--ways", "8"}, {REMORA_FORK_ORPHAN, "24", file}, native,
                        "orphan");
  SCOPED_TRACE("orphan stats:\n" + Tail(s.text(), 6000));
  EXPECT_EQ(WaitForFile(file, std::chrono::seconds(30)), native_verdict);
  EXPECT_EQ(s["nr_fork"], 1);
  EXPECT_EQ(s["nr_processes_attached"], 2);
  EXPECT_GT(s["nr_pcache_eviction_succeed"], 0);
  ExpectNothingLeft(s);
}

}  // namespace
}  // namespace remora::testing
