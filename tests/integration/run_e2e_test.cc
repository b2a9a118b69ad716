// End to end: real programs (tests/programs) run natively and under
// `remora run` with a pcache of at most a quarter of their working set (peak
// anonymous RSS of the native run: the memory Remora pages), on the
// embedded default and against a separately started memory node over TCP.
// Their stdout must match the native run byte for byte, and the run's final
// counters must be non-zero where the workload forces them to be, consistent
// with each other, and back to zero (lines, victim entries, memory-node pages)
// once the program has exited. Also: the processor manager SIGKILLed while a
// program runs ends the program with a clear error and no result.
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
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

extern char** environ;

namespace remora::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The tail of a (possibly long) text, for failure messages.
std::string Tail(const std::string& s, size_t n = 3000) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

struct Spawned {
  pid_t pid = -1;
  std::string out_path, err_path;
};

// Starts argv with stdout and stderr going to files in `dir`.
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

// The anonymous resident memory (RssAnon) of a running process, or 0: the
// part of its working set that runs through the pcache under Remora (its
// program text and libraries stay local). Sampled while it runs; wait4's
// ru_maxrss is no use here anyway: a child started with vfork/posix_spawn
// inherits the spawning process's high-water mark through exec.
long AnonRssKb(pid_t pid) {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::atol(line.c_str() + 8);
  }
  return 0;
}

struct Result {
  int status = -1;  // as from waitpid; -1 if it could not start or timed out
  bool timed_out = false;
  std::string out, err;
  long max_anon_kb = 0;  // sampled every few ms: a lower bound of the peak
  double seconds = 0;
  std::string Describe() const {
    std::string d;
    if (timed_out) d = "timed out";
    else if (status < 0) d = "did not start";
    else if (WIFEXITED(status)) d = "exit " + std::to_string(WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) d = "signal " + std::to_string(WTERMSIG(status));
    return d + "; stderr:\n" + Tail(err) + "\nstdout:\n" + Tail(out, 1500);
  }
  bool Ok() const { return !timed_out && status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// Waits for `s` up to `timeout`; kills it (SIGKILL) if it takes longer.
Result Wait(const Spawned& s, std::chrono::seconds timeout, Clock::time_point started) {
  Result r;
  if (s.pid <= 0) return r;
  const auto deadline = started + timeout;
  struct rusage ru {};
  for (;;) {
    int st = 0;
    r.max_anon_kb = std::max(r.max_anon_kb, AnonRssKb(s.pid));
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

Result RunProgram(const std::vector<std::string>& argv, const std::string& dir, const std::string& tag,
           std::chrono::seconds timeout = std::chrono::seconds(240)) {
  auto t0 = Clock::now();
  return Wait(Spawn(argv, dir, tag), timeout, t0);
}

// The interpreter itself, not a wrapper script in front of it (a version
// manager's shim would add a shell between `remora run` and Python).
std::string RealPython() {
  static std::string path = [] {
    std::string out;
    int st = RunCommand({REMORA_PYTHON3, "-c", "import sys; print(sys.executable)"}, &out);
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    return (st == 0 && !out.empty()) ? out : std::string(REMORA_PYTHON3);
  }();
  return path;
}

// The largest valid pcache (a power-of-two number of sets, 8..16 ways) that
// is at most a quarter of a working set of `rss_kb`.
struct Geometry {
  long bytes = 0;
  int ways = 8;
};
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

// A run's --stats-json, with every name looked up required to be present
// (a renamed counter must fail the test, not read as zero).
class Stats {
 public:
  explicit Stats(const std::string& path) {
    text_ = ReadFile(path);
    json_ = nlohmann::json::parse(text_, nullptr, /*allow_exceptions=*/false);
  }
  bool valid() const { return json_.is_object() && json_.contains("counters"); }
  const std::string& text() const { return text_; }
  bool Has(const std::string& name) const { return Find(name).has_value(); }
  std::int64_t operator[](const std::string& name) const {
    auto v = Find(name);
    EXPECT_TRUE(v.has_value()) << "metric " << name << " missing from the stats JSON";
    return v.value_or(0);
  }
  // Optional metrics (not every build emits them) read as 0.
  std::int64_t Get(const std::string& name) const { return Find(name).value_or(0); }
  const nlohmann::json* Histogram(const std::string& name) const {
    if (!json_.contains("histograms") || !json_["histograms"].contains(name)) return nullptr;
    return &json_["histograms"][name];
  }

 private:
  std::optional<std::int64_t> Find(const std::string& name) const {
    for (const char* section : {"counters", "gauges"}) {
      if (json_.is_object() && json_.contains(section) && json_[section].contains(name) &&
          json_[section][name].is_number_integer())
        return json_[section][name].get<std::int64_t>();
    }
    return std::nullopt;
  }
  std::string text_;
  nlohmann::json json_;
};

enum class Where { kEmbedded, kTcpNode };

struct Workload {
  std::string name;
  std::vector<std::string> argv;
  bool reads_file = false;   // maps an input file MAP_PRIVATE
  bool reverse_sweeps = false;  // re-reads just-evicted pages: victim hits
};

class RunE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/remora-run-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!HasFailure()) std::system(("rm -rf '" + dir_ + "'").c_str());
    else std::fprintf(stderr, "kept %s for inspection\n", dir_.c_str());
  }

  Workload MemStress() { return {"mem_stress", {REMORA_MEM_STRESS, "256", "4", "3"}, false, true}; }
  Workload WordCount() {
    std::string input = dir_ + "/input.txt";
    // 5000 distinct words: the per-thread hash tables (the hot part) stay
    // well inside the pcache while the 32 MiB input streams through it.
    auto g = RunProgram({REMORA_GENTEXT, input, "32M", "7", "5000"}, dir_, "gentext");
    EXPECT_TRUE(g.Ok()) << g.Describe();
    return {"wordcount", {REMORA_WORDCOUNT, input, "4"}, true, false};
  }
  Workload PyWork() {
    return {"pywork", {RealPython(), REMORA_SOURCE_DIR "/tests/programs/pywork.py", "--mb", "12", "--rounds", "2"},
            false, false};
  }

  // Runs `w` natively, then under `remora run` on `setup`; compares and
  // checks the counters. Returns the remora run's stats for extra checks.
  void RunAndCompare(const Workload& w, Where where) {
    Result native = RunProgram(w.argv, dir_, w.name + "-native");
    ASSERT_TRUE(native.Ok()) << w.name << " natively: " << native.Describe();
    ASSERT_FALSE(native.out.empty());
    // Determinism of the program itself, so a difference below is Remora's.
    Result again = RunProgram(w.argv, dir_, w.name + "-native2");
    ASSERT_TRUE(again.Ok()) << again.Describe();
    ASSERT_EQ(native.out, again.out) << w.name << " is not deterministic";

    const long rss_kb = std::max(native.max_anon_kb, again.max_anon_kb);
    ASSERT_GT(rss_kb, 4 * 1024) << "could not read the program's anonymous RSS";
    const Geometry pcache = QuarterPcache(rss_kb);
    ASSERT_GT(pcache.bytes, 0);
    ASSERT_LE(pcache.bytes / 1024 * 4, rss_kb);
    std::fprintf(stderr, "%s: native peak anonymous RSS %ld KiB, %.2f s; pcache %.2f MiB\n", w.name.c_str(),
                 rss_kb, native.seconds, pcache.bytes / 1024 / 1024.0);

    std::unique_ptr<MemoryNodeProcess> node;
    std::vector<std::string> argv = {RemoraBinary(), "run", "--pcache",
                                     std::to_string(pcache.bytes / 1024) + "K", "--ways",
                                     std::to_string(pcache.ways),
                                     "--victim", "32", "--stats-json", dir_ + "/stats.json"};
    if (where == Where::kTcpNode) {
      node = std::make_unique<MemoryNodeProcess>(MemoryNodeProcessOptions{.capacity = "1G"});
      ASSERT_TRUE(node->started());
      argv.insert(argv.end(), {"--memory-node", node->tcp_address(), "--transport", "tcp",
                               "--secret-file", node->secret_file()});
    }
    argv.push_back("--");
    argv.insert(argv.end(), w.argv.begin(), w.argv.end());

    Result remote = RunProgram(argv, dir_, w.name + "-remora", std::chrono::seconds(400));
    std::fprintf(stderr, "%s under remora run: %.2f s (%.1fx native)\n", w.name.c_str(),
                 remote.seconds, remote.seconds / std::max(native.seconds, 1e-3));
    ASSERT_TRUE(remote.Ok()) << w.name << " under remora run: " << remote.Describe();
    EXPECT_EQ(remote.out, native.out) << w.name << ": output differs from the native run";

    Stats s(dir_ + "/stats.json");
    ASSERT_TRUE(s.valid()) << "stats JSON unreadable:\n" << Tail(s.text());
    CheckCounters(w, s);

    if (node) {
      // Independently of the runtime's own report: the node holds nothing of
      // the finished program and is still serving.
      ASSERT_TRUE(node->Alive());
      auto t = node->Connect(TransportKind::kTcp);
      ASSERT_NE(t, nullptr);
      MemoryNodeInfo info;
      ASSERT_TRUE(t->Info(&info).ok());
      EXPECT_EQ(info.used_pages, 0u) << "memory node pages left after the program exited";
    }
  }

  void CheckCounters(const Workload& w, const Stats& s) {
    SCOPED_TRACE(w.name + " stats:\n" + Tail(s.text(), 6000));
    const auto from_memory = s["nr_pcache_fill_from_memory"];
    const auto from_victim = s["nr_pcache_fill_from_victim"];
    const auto zerofill = s["nr_pcache_fill_zerofill"];
    const auto from_file = s["nr_pcache_fill_from_file"];
    const auto copies = s.Get("nr_pcache_fill_copy");
    const auto fills = from_memory + from_victim + zerofill + from_file + copies;
    const auto faults = s["nr_pgfault"];
    const auto evicted = s["nr_pcache_eviction_succeed"];

    // The working set is four times the pcache: pages were evicted and came
    // back from the memory node; fresh memory was zero-filled locally.
    EXPECT_GT(faults, 0);
    EXPECT_GT(from_memory, 0);
    EXPECT_GT(zerofill, 0);
    EXPECT_GT(evicted, 0);
    EXPECT_GT(s["nr_victim_insert"], 0);
    EXPECT_GT(s["nr_victim_flush_submitted_dirty"], 0);
    if (w.reverse_sweeps) {
      EXPECT_GT(s["nr_victim_hit"], 0);
    }
    if (w.reads_file) {
      EXPECT_GT(from_file, 0);
    }

    // Every fault is a missing or a write-protect fault. Every missing fault
    // was filled from exactly one source, or found its page already filled
    // by another thread's fault. A write-protect fault on a line evicted
    // meanwhile is served as a fill too; such faults are among those counted
    // in nr_pgfault_due_to_concurrent_eviction (which also counts missing
    // faults that waited for an eviction in progress), so that counter
    // bounds the fills from above.
    // Read-ahead fills lines without a fault of their own.
    const auto missing = s["nr_pgfault_missing"];
    const auto readahead = s.Get("nr_pcache_readahead");
    const auto served = fills + s.Get("nr_pgfault_already_filled");
    EXPECT_EQ(faults, missing + s["nr_pgfault_wp"]);
    EXPECT_GE(served, missing + readahead);
    EXPECT_LE(served, missing + readahead + s["nr_pgfault_due_to_concurrent_eviction"]);
    EXPECT_EQ(s.Get("nr_pgfault_failed"), 0);
    // Victim hits are fills from the victim cache.
    EXPECT_EQ(s["nr_victim_hit"], from_victim);
    // Evictions: each line evicted once per fill at most; each went to the
    // victim cache, was dropped clean, or was written back synchronously.
    EXPECT_LE(evicted, fills);
    EXPECT_LE(evicted, s["nr_pcache_eviction_triggered"] + s.Get("nr_pcache_eviction_eagain"));
    EXPECT_EQ(evicted, s["nr_pcache_eviction_to_victim"] + s["nr_pcache_eviction_clean_dropped"] +
                           s.Get("nr_pcache_eviction_writeback_sync"));
    EXPECT_EQ(s["nr_pcache_eviction_to_victim"], s["nr_victim_insert"]);
    // Every dirty write-back submitted finished (or its space ended first).
    EXPECT_EQ(s["nr_victim_flush_submitted_dirty"],
              s["nr_victim_flush_finished_dirty"] + s.Get("nr_victim_flush_orphaned"));
    EXPECT_EQ(s.Get("nr_victim_flush_failed"), 0);
    // The only fills given up are those of pages whose process exited (or
    // unmapped them) while they were being filled: never an I/O error.
    EXPECT_EQ(s.Get("nr_pcache_fill_aborted"), s.Get("nr_pcache_fill_owner_gone"));
    // Nothing left behind once the program exited.
    EXPECT_EQ(s["pcache_lines_used"], 0);
    EXPECT_EQ(s["victim_entries_used"], 0);
    EXPECT_EQ(s["memory_node_used_pages"], 0);
    if (s.Has("processes_attached")) {
      EXPECT_EQ(s["processes_attached"], 0);
    }
    // Missing faults were timed.
    const auto* h = s.Histogram("pgfault_service_ns");
    ASSERT_NE(h, nullptr) << "no pgfault_service_ns histogram";
    EXPECT_GT((*h)["count"].get<std::int64_t>(), 0);
  }

  std::string dir_;
};

// The programs themselves, without Remora: wordcount agrees with an
// independent count, and mem_stress passes on its own.
TEST_F(RunE2ETest, ProgramsAreCorrectNatively) {
  Workload wc = WordCount();
  Result r = RunProgram(wc.argv, dir_, "wc");
  ASSERT_TRUE(r.Ok()) << r.Describe();
  std::string text = ReadFile(wc.argv[1]);
  std::map<std::string, std::int64_t> counts;
  std::int64_t total = 0;
  std::string word;
  for (size_t i = 0; i <= text.size(); i++) {
    char c = i < text.size() ? static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))) : ' ';
    if (c >= 'a' && c <= 'z') {
      word += c;
    } else if (!word.empty()) {
      counts[word]++;
      total++;
      word.clear();
    }
  }
  std::vector<std::pair<std::int64_t, std::string>> sorted;
  for (auto& [w, n] : counts) sorted.emplace_back(-n, w);
  std::sort(sorted.begin(), sorted.end());
  std::string want;
  char line[128];
  for (size_t i = 0; i < 20 && i < sorted.size(); i++) {
    std::snprintf(line, sizeof line, "%10lld %s\n", static_cast<long long>(-sorted[i].first),
                  sorted[i].second.c_str());
    want += line;
  }
  want += "total words: " + std::to_string(total) + "\n";
  want += "distinct words: " + std::to_string(counts.size()) + "\n";
  EXPECT_EQ(r.out.substr(0, want.size()), want);
  EXPECT_GT(total, 1000000);

  Result ms = RunProgram({REMORA_MEM_STRESS, "32", "3", "2"}, dir_, "ms");
  ASSERT_TRUE(ms.Ok()) << ms.Describe();
  EXPECT_NE(ms.out.find("\nOK\n"), std::string::npos) << ms.out;
}

TEST_F(RunE2ETest, MemStressEmbedded) { RunAndCompare(MemStress(), Where::kEmbedded); }
TEST_F(RunE2ETest, MemStressTcpMemoryNode) { RunAndCompare(MemStress(), Where::kTcpNode); }
TEST_F(RunE2ETest, WordCountEmbedded) { RunAndCompare(WordCount(), Where::kEmbedded); }
TEST_F(RunE2ETest, WordCountTcpMemoryNode) { RunAndCompare(WordCount(), Where::kTcpNode); }
TEST_F(RunE2ETest, PythonEmbedded) { RunAndCompare(PyWork(), Where::kEmbedded); }
TEST_F(RunE2ETest, PythonTcpMemoryNode) { RunAndCompare(PyWork(), Where::kTcpNode); }

// The program's exit status comes back as the launcher's, a signal as 128+N.
TEST_F(RunE2ETest, ExitStatusIsTheProgramsOwn) {
  Result usage = RunProgram({RemoraBinary(), "run", "--quiet", "--", REMORA_MEM_STRESS, "0"}, dir_, "usage");
  ASSERT_FALSE(usage.timed_out);
  ASSERT_TRUE(WIFEXITED(usage.status)) << usage.Describe();
  EXPECT_EQ(WEXITSTATUS(usage.status), 2) << usage.Describe();

  Result sig = RunProgram({RemoraBinary(), "run", "--quiet", "--", "/bin/sh", "-c", "kill -TERM $$"}, dir_,
                   "signal");
  ASSERT_FALSE(sig.timed_out);
  ASSERT_TRUE(WIFEXITED(sig.status)) << sig.Describe();
  EXPECT_EQ(WEXITSTATUS(sig.status), 128 + SIGTERM) << sig.Describe();
}

// Children of `pid`'s main thread, from /proc.
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

// The processor manager dies while a program runs: the program must stop
// with a clear error and a non-zero exit, and print nothing it computed.
TEST_F(RunE2ETest, ProcessorManagerKilledMidRun) {
  const std::string sock = dir_ + "/processor.sock";
  auto t0 = Clock::now();
  Spawned proc = Spawn({RemoraBinary(), "processor", "--socket", sock, "--pcache", "64M", "--ways", "8"},
                       dir_, "processor");
  ASSERT_GT(proc.pid, 0);
  struct stat sb;
  while (stat(sock.c_str(), &sb) != 0 && Clock::now() - t0 < std::chrono::seconds(15)) {
    int st;
    ASSERT_EQ(waitpid(proc.pid, &st, WNOHANG), 0)
        << "processor exited early: " << ReadFile(proc.err_path);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(stat(sock.c_str(), &sb), 0) << "processor socket never appeared: " << ReadFile(proc.err_path);

  // Enough passes that it cannot finish before the kill.
  auto t1 = Clock::now();
  Spawned run = Spawn({RemoraBinary(), "run", "--processor", sock, "--", REMORA_MEM_STRESS, "256", "4",
                       "40"},
                      dir_, "run");
  ASSERT_GT(run.pid, 0);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  int st = 0;
  ASSERT_EQ(waitpid(run.pid, &st, WNOHANG), 0)
      << "the program ended before the manager was killed: " << ReadFile(run.err_path);
  const std::vector<pid_t> program = ChildrenOf(run.pid);
  const std::vector<pid_t> processor_children = ChildrenOf(proc.pid);

  ASSERT_EQ(kill(proc.pid, SIGKILL), 0);
  waitpid(proc.pid, &st, 0);
  auto killed_at = Clock::now();
  Result r = Wait(run, std::chrono::seconds(20), t1);
  const double after_kill = std::chrono::duration<double>(Clock::now() - killed_at).count();

  ASSERT_FALSE(r.timed_out) << "launcher still running 20 s after the manager died: " << r.Describe();
  EXPECT_LT(after_kill, 5.0) << "took " << after_kill << " s to stop after the manager died";
  ASSERT_TRUE(WIFEXITED(r.status)) << r.Describe();
  EXPECT_NE(WEXITSTATUS(r.status), 0) << r.Describe();
  // Nothing computed: mem_stress prints only at the very end (digest, OK)
  // or on a wrong word (MISMATCH) — either would mean it ran on.
  EXPECT_EQ(r.out, "") << "the program printed after the manager died";
  EXPECT_EQ(r.out.find("OK"), std::string::npos);
  EXPECT_EQ(r.out.find("digest"), std::string::npos);
  EXPECT_EQ(r.out.find("MISMATCH"), std::string::npos);
  // A clear error naming what was lost.
  std::string err = r.err;
  std::transform(err.begin(), err.end(), err.begin(), [](unsigned char c) { return std::tolower(c); });
  EXPECT_TRUE(err.find("processor") != std::string::npos || err.find("manager") != std::string::npos)
      << "stderr does not say the manager was lost:\n" << r.err;
  // The program itself is gone too, not left running on its own.
  for (pid_t p : program) EXPECT_TRUE(ProcessGone(p)) << "program process " << p << " still running";

  // The manager's own memory node should go with it; do not leave one behind.
  for (pid_t p : processor_children) {
    for (int i = 0; i < 100 && !ProcessGone(p); i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!ProcessGone(p)) {
      std::fprintf(stderr, "note: the killed manager's child %d outlived it by 5 s; stopping it\n", p);
      kill(p, SIGTERM);
    }
  }
}

}  // namespace
}  // namespace remora::testing
