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
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "run_util.h"

namespace remora::testing {
namespace {

enum class Where { kEmbedded, kTcpNode };

struct Workload {
  std::string name;
  std::vector<std::string> argv;
  bool reads_file = false;      // maps an input file MAP_PRIVATE
  bool reverse_sweeps = false;  // re-reads just-evicted pages: victim hits
  bool threads = false;         // faults come from several threads (shared fault reading)
};

class RunE2ETest : public RunDirTest {
 protected:
  Workload MemStress() {
    return {"mem_stress", {REMORA_MEM_STRESS, "256", "4", "3"}, false, true, true};
  }
  Workload WordCount() {
    std::string input = dir_ + "/input.txt";
    // 5000 distinct words: the per-thread hash tables (the hot part) stay
    // well inside the pcache while the 32 MiB input streams through it.
    auto g = RunProgram({REMORA_GENTEXT, input, "32M", "7", "5000"}, dir_, "gentext");
    EXPECT_TRUE(g.Ok()) << g.Describe();
    return {"wordcount", {REMORA_WORDCOUNT, input, "4"}, true, false, true};
  }
  // A streaming Python job over a MAP_PRIVATE input (mmap ACCESS_COPY),
  // lowercased in place: the Python counterpart of WordCount.
  Workload PyWordCount() {
    std::string input = dir_ + "/input.txt";
    auto g = RunProgram({REMORA_GENTEXT, input, "16M", "11", "5000"}, dir_, "gentext");
    EXPECT_TRUE(g.Ok()) << g.Describe();
    return {"pywordcount",
            {RealPython(), REMORA_SOURCE_DIR "/tests/programs/pywordcount.py", input},
            true,
            false};
  }
  Workload PyWork() {
    return {"pywork",
            {RealPython(), REMORA_SOURCE_DIR "/tests/programs/pywork.py", "--mb", "12", "--rounds",
             "2"},
            false,
            false};
  }

  // Random read-modify-write over 32 MiB: every page read is written right
  // after, and most accesses miss.
  Workload RandRmw() {
    return {"rand_rmw", {REMORA_RAND_RMW, "32", "60000", "7"}, false, false, false};
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
    std::fprintf(stderr, "%s: native peak anonymous RSS %ld KiB, %.2f s; pcache %.2f MiB\n",
                 w.name.c_str(), rss_kb, native.seconds, pcache.bytes / 1024 / 1024.0);

    std::unique_ptr<MemoryNodeProcess> node;
    std::vector<std::string> argv = {RemoraBinary(), "run",
                                     "--pcache",     std::to_string(pcache.bytes / 1024) + "K",
                                     "--ways",       std::to_string(pcache.ways),
                                     "--victim",     "32",
                                     "--stats-json", dir_ + "/stats.json"};
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
    // Faults from a second thread switch the fault threads from one
    // blocking reader to shared waits; a single-threaded program keeps the
    // blocking reader.
    if (w.threads) {
      EXPECT_EQ(s["nr_fault_reader_shared"], 1);
    } else {
      EXPECT_EQ(s.Get("nr_fault_reader_shared"), 0);
    }
    // CPython writes the reference count of every object it touches: its
    // pages refault dirty and go back in writable.
    if (w.name == "pywork") {
      EXPECT_GT(s["nr_pcache_refault_writable"], 0);
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
    char c = i < text.size() ? static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])))
                             : ' ';
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
TEST_F(RunE2ETest, PythonWordCountEmbedded) { RunAndCompare(PyWordCount(), Where::kEmbedded); }

// Random read-modify-write: once the runtime has seen that the pages a
// program reads are written right after, read misses go in writable and
// dirty, and the write-protect fault that each would take is saved. The
// result is still the native one byte for byte, through eviction of those
// dirty lines (each write-protected before it is copied out).
TEST_F(RunE2ETest, RandomReadModifyWriteEmbedded) {
  RunAndCompare(RandRmw(), Where::kEmbedded);
  if (HasFatalFailure()) return;
  Stats s(dir_ + "/stats.json");
  ASSERT_TRUE(s.valid());
  SCOPED_TRACE(Tail(s.text(), 6000));
  // 60000 accesses over 8192 pages with at most a quarter of them resident:
  // well over half of them miss, and each is read then written.
  const auto predicted = s["nr_pgfault_write_predicted"];
  const auto probes = s["nr_pgfault_write_probe"];
  EXPECT_GT(predicted + probes, 30000);
  // Without the prediction every one of those would take a write-protect
  // fault; with it, about one in 16 (the probes) and the first epoch do.
  EXPECT_LT(s["nr_pgfault_wp"] * 4, predicted);
  // The probes confirm the prediction: nearly all of them were written.
  EXPECT_GT(probes, 0);
  EXPECT_GT(s["nr_pgfault_write_probe_written"] * 10, probes * 9);
}

// A private file mapping whose file shrinks while mapped: pages still in
// the file come from it, the program's own write survives its eviction,
// and pages past the new end read as zeros where natively they raise
// SIGBUS (checked only under Remora: docs/runtime.md). The output is the
// native one.
TEST_F(RunE2ETest, AFileThatShrinksUnderItsMappingReadsWhatItHolds) {
  Result native = RunProgram({REMORA_FILE_SHRINK, dir_}, dir_, "native");
  ASSERT_TRUE(native.Ok()) << native.Describe();
  ASSERT_NE(native.out.find("\nOK\n"), std::string::npos) << native.out;
  Result r = RunProgram(
      {RemoraBinary(), "run", "--pcache", "128K", "--quiet", "--stats-json", dir_ + "/stats.json",
       "--", "/usr/bin/env", "REMORA_EXPECT_ZEROS=1", REMORA_FILE_SHRINK, dir_},
      dir_, "remora");
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);
  Stats s(dir_ + "/stats.json");
  ASSERT_TRUE(s.valid());
  EXPECT_GT(s["nr_pcache_fill_from_file"], 20);
  EXPECT_GT(s["nr_pcache_eviction_succeed"], 0);
}

// A program that drops written pages with a raw system call, which the
// shim cannot see: their lines stay resident and dirty while the pages are
// gone. Evicting such a line must not wait for a fault on the missing page
// (the manager would wait for itself): the copy fails, the eviction goes
// on, and the program reads what it would natively — zeros where it
// dropped, its data elsewhere.
TEST_F(RunE2ETest, PagesDroppedBehindTheShimsBackAreEvictedWithoutWaiting) {
  Result native = RunProgram({REMORA_RAW_DISCARD, "1", "3"}, dir_, "native");
  ASSERT_TRUE(native.Ok()) << native.Describe();
  ASSERT_NE(native.out.find("\nOK\n"), std::string::npos) << native.out;
  Result r = RunProgram({RemoraBinary(), "run", "--pcache", "2M", "--quiet", "--stats-json",
                         dir_ + "/stats.json", "--", REMORA_RAW_DISCARD, "1", "3"},
                        dir_, "remora");
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);
  Stats s(dir_ + "/stats.json");
  ASSERT_TRUE(s.valid());
  EXPECT_GT(s["nr_evict_owner_gone"], 0);  // the copies of dropped pages that failed
  EXPECT_GT(s["nr_pcache_eviction_succeed"], 256);
}

// The program's exit status comes back as the launcher's, a signal as 128+N.
TEST_F(RunE2ETest, ExitStatusIsTheProgramsOwn) {
  Result usage =
      RunProgram({RemoraBinary(), "run", "--quiet", "--", REMORA_MEM_STRESS, "0"}, dir_, "usage");
  ASSERT_FALSE(usage.timed_out);
  ASSERT_TRUE(WIFEXITED(usage.status)) << usage.Describe();
  EXPECT_EQ(WEXITSTATUS(usage.status), 2) << usage.Describe();

  Result sig = RunProgram(
      {RemoraBinary(), "run", "--quiet", "--", "/bin/sh", "-c", "kill -TERM $$"}, dir_, "signal");
  ASSERT_FALSE(sig.timed_out);
  ASSERT_TRUE(WIFEXITED(sig.status)) << sig.Describe();
  EXPECT_EQ(WEXITSTATUS(sig.status), 128 + SIGTERM) << sig.Describe();
}

// --fault-trace records every fault the manager serves, in the trace format
// of `remora sim`, which replays it (and bounds it with Belady's MIN).
TEST_F(RunE2ETest, FaultTraceRecordsEveryFaultAndReplaysInSim) {
  const std::string trace = dir_ + "/faults.trace";
  const std::string stats = dir_ + "/stats.json";
  Result r = RunProgram(
      {RemoraBinary(), "run", "--pcache", "1M", "--readahead", "0", "--quiet", "--fault-trace",
       trace, "--stats-json", stats, "--", REMORA_MEM_STRESS, "16", "2", "1"},
      dir_, "traced");
  ASSERT_TRUE(r.Ok()) << r.Describe();
  Result native = RunProgram({REMORA_MEM_STRESS, "16", "2", "1"}, dir_, "native");
  ASSERT_TRUE(native.Ok()) << native.Describe();
  EXPECT_EQ(r.out, native.out);  // 16 MiB through a 1 MiB pcache, byte for byte
  Stats s(stats);
  ASSERT_TRUE(s.valid()) << s.text();

  std::istringstream lines(ReadFile(trace));
  std::string line;
  std::int64_t records = 0, writes = 0;
  std::set<std::string> pages;
  while (std::getline(lines, line)) {
    char kind = 0;
    unsigned long long addr = 0, asid = 0;
    char extra = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "%c %llx %llu %c", &kind, &addr, &asid, &extra), 3) << line;
    ASSERT_TRUE(kind == 'r' || kind == 'w') << line;
    ASSERT_EQ(addr % 4096, 0u) << line;
    ASSERT_NE(asid, 0u) << line;
    ++records;
    if (kind == 'w') ++writes;
    pages.insert(line.substr(2));
  }
  EXPECT_EQ(records, s["nr_pgfault"]);
  EXPECT_GE(writes, s["nr_pgfault_wp"]);
  ASSERT_GT(records, 4096);  // 16 MiB through a 1 MiB pcache: many refaults

  Result sim =
      RunProgram({RemoraBinary(), "sim", "--trace", trace, "--capacity", "1M", "--opt", "--json"},
                 dir_, "sim");
  ASSERT_TRUE(sim.Ok()) << sim.Describe();
  const auto j = nlohmann::json::parse(sim.out);
  EXPECT_EQ(j["accesses"].get<std::int64_t>(), records);
  const auto min = j["min_misses"].get<std::int64_t>();
  EXPECT_GE(min, static_cast<std::int64_t>(pages.size()));  // every page misses once
  EXPECT_LE(min, j["lru_misses"].get<std::int64_t>());
  EXPECT_LE(min, j["misses"].get<std::int64_t>());
  EXPECT_EQ(j["data_errors"].get<std::int64_t>(), 0);

  // A trace that cannot be written is a clear error before the program runs.
  Result bad = RunProgram({RemoraBinary(), "run", "--quiet", "--fault-trace",
                           dir_ + "/no/such/dir/t", "--", "/bin/echo", "ran"},
                          dir_, "bad-trace");
  ASSERT_FALSE(bad.timed_out);
  EXPECT_FALSE(bad.Ok());
  EXPECT_EQ(bad.out.find("ran"), std::string::npos);
  EXPECT_NE(bad.err.find("fault trace"), std::string::npos) << bad.err;
}

// Background reclaim: mem_stress over 64 MiB through a 16 MiB pcache (8
// ways, 512 sets: the default watermarks keep one line per set free). The
// output must be the native run's byte for byte, with the reclaimer on and
// off; on, most evictions are the reclaimer's and few faults evict
// themselves; off, every eviction is a fault's.
TEST_F(RunE2ETest, BackgroundReclaimTakesEvictionsOffTheFaultPath) {
  const std::vector<std::string> prog = {REMORA_MEM_STRESS, "64", "2", "3"};
  Result native = RunProgram(prog, dir_, "native");
  ASSERT_TRUE(native.Ok()) << native.Describe();
  for (const std::string low : {"1", "0"}) {
    SCOPED_TRACE("--reclaim-low " + low);
    const std::string stats = dir_ + "/stats-" + low + ".json";
    std::vector<std::string> argv = {
        RemoraBinary(), "run", "--pcache", "16M",          "--ways", "8",
        "--victim",     "32",  "--quiet",  "--stats-json", stats};
    argv.insert(argv.end(), {"--reclaim-low", low});
    argv.push_back("--");
    argv.insert(argv.end(), prog.begin(), prog.end());
    Result r = RunProgram(argv, dir_, "reclaim-" + low, std::chrono::seconds(400));
    ASSERT_TRUE(r.Ok()) << r.Describe();
    EXPECT_EQ(r.out, native.out);
    Stats s(stats);
    ASSERT_TRUE(s.valid()) << Tail(s.text());
    const auto evicted = s["nr_pcache_eviction_succeed"];
    const auto background = s["nr_reclaim_background_lines"];
    const auto direct = s["nr_pcache_direct_reclaim_lines"];
    std::fprintf(stderr,
                 "reclaim-low %s: %lld evictions, %lld background, %lld direct (%lld fills); "
                 "%lld wake-ups, %lld batches; missing fault p50 %lld ns p99 %lld ns\n",
                 low.c_str(), static_cast<long long>(evicted), static_cast<long long>(background),
                 static_cast<long long>(direct),
                 static_cast<long long>(s["nr_pcache_direct_reclaim"]),
                 static_cast<long long>(s["nr_reclaim_wakeups"]),
                 static_cast<long long>(s["nr_reclaim_batches"]),
                 static_cast<long long>((*s.Histogram("pgfault_service_ns"))["p50"].get<double>()),
                 static_cast<long long>((*s.Histogram("pgfault_service_ns"))["p99"].get<double>()));
    // 64 MiB through 16 MiB, three passes: many evictions, every one either
    // the reclaimer's or a fault's.
    EXPECT_GT(evicted, 16384);
    EXPECT_EQ(background + direct, evicted);
    EXPECT_EQ(s["pcache_lines_used"], 0);
    if (low == "1") {
      EXPECT_EQ(s["reclaim_free_lines_reserved"], 512);
      EXPECT_GT(s["nr_reclaim_wakeups"], 0);
      EXPECT_GT(s["nr_reclaim_batches"], 0);
      EXPECT_LE(s["nr_reclaim_batches"], background);
      EXPECT_GE(s["nr_reclaim_sets_queued"], s["nr_reclaim_wakeups"]);
      // Direct reclaim is the exception: under a quarter of the evictions
      // (about 13% on two loaded CPUs; the program's two threads fault
      // faster than one reclaimer evicts at times).
      EXPECT_LT(4 * direct, evicted) << background << " background, " << direct << " direct";
    } else {
      EXPECT_EQ(s["reclaim_free_lines_reserved"], 0);
      EXPECT_EQ(background, 0);
      EXPECT_EQ(s["nr_reclaim_wakeups"], 0);
      EXPECT_EQ(direct, evicted);
    }
  }
}

// A mode other than auto or off, on the command line or in the config file,
// is refused before anything runs.
TEST_F(RunE2ETest, CpuLatencyQosRefusesUnknownModes) {
  Result flag =
      RunProgram({RemoraBinary(), "run", "--cpu-latency-qos", "always", "--", "/bin/echo", "ran"},
                 dir_, "qos-flag");
  ASSERT_FALSE(flag.timed_out);
  EXPECT_FALSE(flag.Ok());
  EXPECT_EQ(flag.out.find("ran"), std::string::npos);
  EXPECT_NE(flag.err.find("cpu-latency-qos"), std::string::npos) << flag.err;

  const std::string cfg = dir_ + "/qos.toml";
  std::ofstream(cfg) << "[processor]\npcache = \"8M\"\ncpu_latency_qos = \"always\"\n";
  Result file = RunProgram({RemoraBinary(), "run", "--config", cfg, "--", "/bin/echo", "ran"}, dir_,
                           "qos-file");
  ASSERT_FALSE(file.timed_out);
  EXPECT_FALSE(file.Ok());
  EXPECT_EQ(file.out.find("ran"), std::string::npos);
  EXPECT_NE(file.err.find("cpu_latency_qos"), std::string::npos) << file.err;
}

// The CPU latency QoS request (processor/runtime/cpu_latency_qos.h) on the
// real device, where this user may open it (root): while a program faults
// densely the kernel's CPU latency limit reads 0 (idle CPUs poll), the run's
// counters say a request was made, and the output is the native run's. With
// --cpu-latency-qos off no request is made.
TEST_F(RunE2ETest, CpuLatencyQosIsHeldWhileAProgramFaults) {
  const char* kDevice = "/dev/cpu_dma_latency";
  {
    const int fd = ::open(kDevice, O_WRONLY | O_CLOEXEC);
    if (fd < 0) GTEST_SKIP() << kDevice << " cannot be opened for writing here";
    ::close(fd);
  }
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) < 2)
    GTEST_SKIP() << "one CPU: the manager makes no request (cpu_latency_qos.h)";
  const std::vector<std::string> prog = {REMORA_RAND_RMW, "32", "40000", "5"};
  Result native = RunProgram(prog, dir_, "native");
  ASSERT_TRUE(native.Ok()) << native.Describe();
  for (const std::string mode : {"auto", "off"}) {
    SCOPED_TRACE("--cpu-latency-qos " + mode);
    // Samples the kernel's current limit while the program runs.
    std::atomic<bool> done{false};
    std::atomic<std::int32_t> lowest{INT32_MAX};
    std::thread sampler([&] {
      const int fd = ::open(kDevice, O_RDONLY | O_CLOEXEC);
      if (fd < 0) return;
      while (!done.load()) {
        std::int32_t v = 0;
        if (::pread(fd, &v, sizeof(v), 0) == static_cast<ssize_t>(sizeof(v)) && v < lowest.load())
          lowest.store(v);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      ::close(fd);
    });
    const std::string stats = dir_ + "/stats-qos-" + mode + ".json";
    std::vector<std::string> argv = {
        RemoraBinary(),      "run", "--pcache", "8M",           "--ways", "8",
        "--cpu-latency-qos", mode,  "--quiet",  "--stats-json", stats,    "--"};
    argv.insert(argv.end(), prog.begin(), prog.end());
    Result r = RunProgram(argv, dir_, "qos-" + mode, std::chrono::seconds(300));
    done.store(true);
    sampler.join();
    ASSERT_TRUE(r.Ok()) << r.Describe();
    EXPECT_EQ(r.out, native.out);
    Stats s(stats);
    ASSERT_TRUE(s.valid()) << Tail(s.text());
    EXPECT_GT(s["nr_pgfault_missing"], 10000);
    if (mode == "auto") {
      EXPECT_EQ(s["cpu_latency_qos_usable"], 1);
      EXPECT_GE(s["nr_cpu_latency_qos_holds"], 1);
      EXPECT_EQ(lowest.load(), 0) << "the limit never read 0 while the program faulted";
    } else {
      EXPECT_EQ(s["cpu_latency_qos_usable"], 0);
      EXPECT_EQ(s["nr_cpu_latency_qos_holds"], 0);
      EXPECT_EQ(s["cpu_latency_qos_held"], 0);
    }
  }
}

// The processor manager dies while a program runs: the program must stop
// with a clear error and a non-zero exit, and print nothing it computed.
TEST_F(RunE2ETest, ProcessorManagerKilledMidRun) {
  const std::string sock = dir_ + "/processor.sock";
  std::string error;
  Spawned proc = StartProcessor(sock, {"--pcache", "64M", "--ways", "8"}, dir_, &error);
  ASSERT_GT(proc.pid, 0) << error;

  // Enough passes that it cannot finish before the kill.
  auto t1 = Clock::now();
  Spawned run =
      Spawn({RemoraBinary(), "run", "--processor", sock, "--", REMORA_MEM_STRESS, "256", "4", "40"},
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

  ASSERT_FALSE(r.timed_out) << "launcher still running 20 s after the manager died: "
                            << r.Describe();
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
  std::transform(err.begin(), err.end(), err.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  EXPECT_TRUE(err.find("processor") != std::string::npos ||
              err.find("manager") != std::string::npos)
      << "stderr does not say the manager was lost:\n"
      << r.err;
  // The program itself is gone too, not left running on its own.
  for (pid_t p : program)
    EXPECT_TRUE(ProcessGone(p)) << "program process " << p << " still running";

  // The manager's own memory node should go with it; do not leave one behind.
  for (pid_t p : processor_children) {
    for (int i = 0; i < 100 && !ProcessGone(p); i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!ProcessGone(p)) {
      std::fprintf(stderr, "note: the killed manager's child %d outlived it by 5 s; stopping it\n",
                   p);
      kill(p, SIGTERM);
    }
  }
}

}  // namespace
}  // namespace remora::testing
