// End to end: the local-memory bound (docs/runtime.md, "What stays local").
//
// Real programs run natively and under `remora run` with a pcache far
// smaller than their working set. While they run, the anonymous RSS
// (RssAnon) of every process of the program — a forked child too — is
// sampled every 2 ms and must never exceed the pcache plus the documented
// margin: the zaps allowed to be pending (ZapQueue::kMaxPending) and the
// memory that stays local (thread stacks, the loader's and libraries' data,
// the shim's). The output must equal the native run's byte for byte, and
// the program must really have been paged (it faulted).
#include <gtest/gtest.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "harness.h"
#include "run_util.h"

namespace remora::testing {
namespace {

// docs/runtime.md: resident managed pages exceed the pcache by at most
// kMaxPending (128) pages of pending zaps plus one page per thread
// evicting at that moment (a handful).
constexpr long kZapMarginKb = 128 * 4 + 16 * 4;
// docs/runtime.md, "What stays local": a C program's own local memory
// (main and agent thread stacks, libc's, the allocator's and the shim's
// static data) and CPython's (the interpreter's static data, its extension
// modules' and the stacks).
constexpr long kLocalCKb = 1024;
constexpr long kLocalPythonKb = 3 * 1024;

std::string ExePath(pid_t pid) {
  char buf[PATH_MAX];
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

// Every descendant of `root` running `exe`.
void ProgramProcesses(pid_t root, const std::string& exe, std::vector<pid_t>* out) {
  for (pid_t c : ChildrenOf(root)) {
    if (ExePath(c) == exe) out->push_back(c);
    ProgramProcesses(c, exe, out);
  }
}

class RunBoundTest : public RunDirTest {
 protected:
  // Runs argv natively and under `remora run --pcache pcache_kb K`; checks
  // the output, that it faulted, and that no process of the program ever
  // held more anonymous memory than the pcache plus the margins. Returns the
  // peak RssAnon of each process (pid -> KiB).
  std::map<pid_t, long> RunBounded(const std::string& name, const std::vector<std::string>& argv,
                                   long pcache_kb, long local_kb) {
    std::map<pid_t, long> peaks;
    Result native = RunProgram(argv, dir_, name + "-native", std::chrono::seconds(60));
    EXPECT_TRUE(native.Ok()) << name << " natively: " << native.Describe();
    if (!native.Ok()) return peaks;

    std::vector<std::string> run = {
        RemoraBinary(),       "run", "--pcache", std::to_string(pcache_kb) + "K", "--stats-json",
        dir_ + "/stats.json", "--"};
    run.insert(run.end(), argv.begin(), argv.end());
    const std::string exe = RealPath(argv[0]);
    const auto t0 = Clock::now();
    const Spawned s = Spawn(run, dir_, name + "-remora");
    std::vector<pid_t> procs;
    Result remote = Wait(s, std::chrono::seconds(120), t0, [&] {
      procs.clear();
      ProgramProcesses(s.pid, exe, &procs);
      for (pid_t p : procs) peaks[p] = std::max(peaks[p], AnonRssKb(p));
    });
    EXPECT_TRUE(remote.Ok()) << name << " under remora run: " << remote.Describe();
    EXPECT_EQ(remote.out, native.out) << name << ": output differs from the native run";

    Stats st(dir_ + "/stats.json");
    EXPECT_TRUE(st.valid()) << "stats JSON unreadable:\n" << Tail(st.text());
    if (!st.valid()) return peaks;
    EXPECT_GT(st["nr_pgfault"], 0) << name << " was not paged";
    EXPECT_GT(st["nr_pcache_eviction_succeed"], 0);
    // The manager's own gauge of what stayed local agrees with the bound.
    EXPECT_GT(st["unmanaged_anon_peak_bytes"], 0);
    EXPECT_LE(st["unmanaged_anon_peak_bytes"] / 1024, local_kb);

    const long limit = pcache_kb + kZapMarginKb + local_kb;
    EXPECT_FALSE(peaks.empty()) << "never saw " << exe << " run";
    for (const auto& [pid, kb] : peaks) {
      std::fprintf(stderr,
                   "%s: pid %d peak RssAnon %ld KiB (pcache %ld KiB, limit %ld KiB, native %ld "
                   "KiB); unmanaged peak %lld KiB, zap waits %lld\n",
                   name.c_str(), pid, kb, pcache_kb, limit, native.max_anon_kb,
                   static_cast<long long>(st["unmanaged_anon_peak_bytes"] / 1024),
                   static_cast<long long>(st["nr_zap_throttle_wait"]));
      EXPECT_LE(kb, limit) << name << ": pid " << pid << " held more than the bound";
    }
    return peaks;
  }
};

// 24 MB of 56-byte blocks from the first line of main: the allocator's first
// segment is paged like the rest.
TEST_F(RunBoundTest, SmallBlocksStayWithinThePcache) {
  RunBounded("small_blocks", {REMORA_SMALL_BLOCKS, "24", "1"}, 1024, kLocalCKb);
}

// The same from four threads (each with its own allocator heap and stack).
TEST_F(RunBoundTest, ThreadedSmallBlocksStayWithinThePcache) {
  RunBounded("small_blocks_threads", {REMORA_SMALL_BLOCKS, "24", "4"}, 1024, kLocalCKb + 4 * 64);
}

// CPython: its object allocator's arenas, dicts and lists.
TEST_F(RunBoundTest, PythonStaysWithinThePcache) {
  RunBounded(
      "pywork",
      {RealPython(), REMORA_SOURCE_DIR "/tests/programs/pywork.py", "--mb", "3", "--rounds", "1"},
      2048, kLocalPythonKb);
}

// A forked child shares the parent's pages, rewrites them and allocates its
// own: both processes stay within the bound.
TEST_F(RunBoundTest, ForkedChildStaysWithinThePcache) {
  auto peaks =
      RunBounded("small_blocks_fork", {REMORA_SMALL_BLOCKS, "24", "1", "fork"}, 1024, kLocalCKb);
  EXPECT_GE(peaks.size(), 2u) << "the forked child was never sampled";
}

}  // namespace
}  // namespace remora::testing
