// End to end: the Phoenix-shaped programs of tests/programs (histogram,
// kmeans, linreg, matmul, pca, strmatch, wordcount_mr) run natively and
// under `remora run` (embedded default) with a pcache of at most a quarter
// of their working set (half for matmul: see MatMul). The working set is what Remora pages: the
// native run's peak anonymous RSS plus the input files the program maps MAP_PRIVATE (the shim turns
// those into anonymous memory filled from the file). Output must match the native run byte for
// byte; the counters must show evictions, and nothing may be left in the pcache, the victim cache
// or the memory node once the program has exited. Inputs are small: the whole suite takes seconds
// natively.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.h"
#include "run_util.h"

namespace remora::testing {
namespace {

struct Phoenix {
  std::string name;
  std::vector<std::string> argv;
  std::vector<std::string> mapped;  // inputs mapped MAP_PRIVATE
  bool rereads = false;             // revisits its memory: evicted pages come back
  int pcache_percent = 25;          // of the working set
  bool strided = false;             // walks down columns more than a page apart
};

bool KernelAtLeast(int major, int minor) {
  utsname u;
  int ma = 0, mi = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

long FileKb(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size / 1024) : 0;
}

class RunPhoenixTest : public RunDirTest {
 protected:
  std::string In(const std::string& name) { return dir_ + "/" + name; }

  void Gen(const std::vector<std::string>& argv) {
    Result g = RunProgram(argv, dir_, "gen");
    ASSERT_TRUE(g.Ok()) << g.Describe();
  }
  std::string GenText(const std::string& size) {
    std::string path = In("text-" + size + ".txt");
    Gen({REMORA_GENTEXT, path, size, "7", "5000"});
    return path;
  }

  Phoenix Histogram() {
    Gen({REMORA_PHOENIX_GEN, "bmp", In("img.bmp"), "1600", "1200", "3"});
    return {"histogram", {REMORA_HISTOGRAM, In("img.bmp"), "2"}, {In("img.bmp")}};
  }
  Phoenix KMeans() {
    Gen({REMORA_PHOENIX_GEN, "points", In("points.bin"), "200000", "8", "9"});
    return {"kmeans", {REMORA_KMEANS, In("points.bin"), "8", "12", "4", "2"}, {}, true};
  }
  Phoenix LinReg() {
    Gen({REMORA_PHOENIX_GEN, "pairs", In("pairs.bin"), "8M", "5"});
    return {"linreg", {REMORA_LINREG, In("pairs.bin"), "2"}, {In("pairs.bin")}};
  }
  // Half the working set, not a quarter: B is a third of it, and a naive
  // i-j-k multiply whose pcache cannot hold B fetches all of B again for
  // every row of C (N^3 / 512 faults: minutes, at any N where one column
  // walk fits). The benchmark measures that case; here A and C still
  // stream through a pcache too small for them, and B's pages stay. With
  // N = 600 a row of B is 4800 bytes, so the first row's column walks go
  // down B a page and a sixth per step: a strided walk (stride_walks.h).
  Phoenix MatMul(const std::string& n) {
    Gen({REMORA_PHOENIX_GEN, "dmatrix", In("a.bin"), n, "1"});
    Gen({REMORA_PHOENIX_GEN, "dmatrix", In("b.bin"), n, "2"});
    return {"matmul", {REMORA_MATMUL, In("a.bin"), In("b.bin"), "2"}, {}, true, 50, true};
  }
  Phoenix Pca() {
    Gen({REMORA_PHOENIX_GEN, "imatrix", In("m.bin"), "64", "16384", "4"});
    return {"pca", {REMORA_PCA, In("m.bin"), "64", "16384", "2"}, {}, true};
  }
  Phoenix StrMatch() {
    const std::string text = GenText("8M");
    Gen({REMORA_PHOENIX_GEN, "keys", In("keys.txt"), text, "20", "6"});
    return {"strmatch", {REMORA_STRMATCH, In("keys.txt"), text, "2"}, {text}};
  }
  Phoenix WordCountMR() {
    const std::string text = GenText("4M");
    return {"wordcount_mr", {REMORA_WORDCOUNT_MR, text, "2"}, {text}, true};
  }

  void RunAndCompare(const Phoenix& w) {
    Result native = RunProgram(w.argv, dir_, w.name + "-native");
    ASSERT_TRUE(native.Ok()) << w.name << " natively: " << native.Describe();
    ASSERT_FALSE(native.out.empty());
    Result again = RunProgram(w.argv, dir_, w.name + "-native2");
    ASSERT_TRUE(again.Ok()) << again.Describe();
    ASSERT_EQ(native.out, again.out) << w.name << " is not deterministic";

    long ws_kb = std::max(native.max_anon_kb, again.max_anon_kb);
    ASSERT_GT(ws_kb, 0) << "could not read the program's anonymous RSS";
    for (const auto& f : w.mapped) ws_kb += FileKb(f);
    ASSERT_GT(ws_kb, 4 * 1024) << "working set too small to page";
    const Geometry pcache = QuarterPcache(ws_kb * w.pcache_percent / 25);
    ASSERT_GT(pcache.bytes, 0);
    ASSERT_LE(pcache.bytes / 1024 * 100 / w.pcache_percent, ws_kb);
    std::fprintf(stderr, "%s: working set %ld KiB, native %.2f s; pcache %.2f MiB\n",
                 w.name.c_str(), ws_kb, native.seconds, pcache.bytes / 1024 / 1024.0);

    const std::string stats = dir_ + "/stats.json";
    std::vector<std::string> argv = {RemoraBinary(),
                                     "run",
                                     "--pcache",
                                     std::to_string(pcache.bytes / 1024) + "K",
                                     "--ways",
                                     std::to_string(pcache.ways),
                                     "--victim",
                                     "32",
                                     "--stats-json",
                                     stats,
                                     "--"};
    argv.insert(argv.end(), w.argv.begin(), w.argv.end());
    Result remote = RunProgram(argv, dir_, w.name + "-remora", std::chrono::seconds(300));
    std::fprintf(stderr, "%s under remora run: %.2f s (%.1fx native)\n", w.name.c_str(),
                 remote.seconds, remote.seconds / std::max(native.seconds, 1e-3));
    ASSERT_TRUE(remote.Ok()) << w.name << " under remora run: " << remote.Describe();
    EXPECT_EQ(remote.out, native.out) << w.name << ": output differs from the native run";

    Stats s(stats);
    ASSERT_TRUE(s.valid()) << "stats JSON unreadable:\n" << Tail(s.text());
    SCOPED_TRACE(w.name + " stats:\n" + Tail(s.text(), 6000));
    EXPECT_GT(s["nr_pgfault"], 0);
    EXPECT_GT(s["nr_pcache_eviction_succeed"], 0) << "a quarter-size pcache evicted nothing";
    if (!w.mapped.empty()) {
      EXPECT_GT(s["nr_pcache_fill_from_file"], 0) << "the private file mapping was not paged";
    }
    if (w.rereads) {
      EXPECT_GT(s["nr_pcache_fill_from_memory"] + s["nr_pcache_fill_from_victim"], 0)
          << "evicted pages never came back";
    }
    // A stride that is not a whole number of pages needs exact fault
    // addresses (Linux 5.18).
    if (w.strided && KernelAtLeast(5, 18)) {
      EXPECT_GT(s["nr_pcache_readahead_stride"], 0) << "the column walks were not followed";
      EXPECT_LT(s.Get("nr_pcache_readahead_stride_wasted"), s["nr_pcache_readahead_stride"] / 4);
    }
    EXPECT_EQ(s.Get("nr_pgfault_failed"), 0);
    EXPECT_EQ(s.Get("nr_victim_flush_failed"), 0);
    EXPECT_EQ(s.Get("nr_pcache_fill_aborted"), s.Get("nr_pcache_fill_owner_gone"));
    EXPECT_EQ(s["nr_victim_flush_submitted_dirty"],
              s["nr_victim_flush_finished_dirty"] + s.Get("nr_victim_flush_orphaned"));
    // Nothing left behind once the program exited.
    EXPECT_EQ(s["pcache_lines_used"], 0);
    EXPECT_EQ(s["victim_entries_used"], 0);
    EXPECT_EQ(s["memory_node_used_pages"], 0);
    if (s.Has("processes_attached")) {
      EXPECT_EQ(s["processes_attached"], 0);
    }
  }
};

// Natively, each program's result does not depend on its thread count (the
// reduce is right), and the two word counts agree with each other.
TEST_F(RunPhoenixTest, ResultsIndependentOfThreadCount) {
  std::vector<Phoenix> all = {Histogram(), KMeans(),   LinReg(),     MatMul("120"),
                              Pca(),       StrMatch(), WordCountMR()};
  for (auto& w : all) {
    std::string one, three;
    for (const char* threads : {"1", "3"}) {
      std::vector<std::string> argv = w.argv;
      argv.back() = threads;
      Result r = RunProgram(argv, dir_, w.name + "-" + threads);
      ASSERT_TRUE(r.Ok()) << w.name << ": " << r.Describe();
      (*threads == '1' ? one : three) = r.out;
    }
    EXPECT_FALSE(one.empty()) << w.name;
    EXPECT_EQ(one, three) << w.name << " gives a different result with 3 threads than with 1";
  }
  Result mr = RunProgram({REMORA_WORDCOUNT_MR, In("text-4M.txt"), "2"}, dir_, "mr");
  Result ht = RunProgram({REMORA_WORDCOUNT, In("text-4M.txt"), "2"}, dir_, "ht");
  ASSERT_TRUE(mr.Ok() && ht.Ok()) << mr.Describe() << ht.Describe();
  EXPECT_EQ(mr.out, ht.out) << "the MapReduce and the hash-table word counts disagree";
  EXPECT_NE(mr.out.find("total words: "), std::string::npos);

  // linreg's sums, recomputed here from the pairs file.
  const std::string pairs = ReadFile(In("pairs.bin"));
  ASSERT_GT(pairs.size(), 1000u);
  unsigned long long sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
    const unsigned long long x = static_cast<unsigned char>(pairs[i]);
    const unsigned long long y = static_cast<unsigned char>(pairs[i + 1]);
    sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
  }
  char want[256];
  std::snprintf(want, sizeof want, "sums: x %llu y %llu xx %llu yy %llu xy %llu\n", sx, sy, sxx,
                syy, sxy);
  Result lr = RunProgram(all[2].argv, dir_, "linreg");
  ASSERT_TRUE(lr.Ok()) << lr.Describe();
  EXPECT_NE(lr.out.find(want), std::string::npos) << lr.out << "want: " << want;

  // histogram's red bins (every 16th), recomputed from the BMP (1600 pixels
  // a row: no row padding; pixel data at offset 54).
  const std::string bmp = ReadFile(In("img.bmp"));
  ASSERT_EQ(bmp.size(), 54u + 1600u * 1200u * 3u);
  std::vector<unsigned long long> red(256);
  for (size_t i = 54; i + 2 < bmp.size(); i += 3) red[static_cast<unsigned char>(bmp[i + 2])]++;
  std::string bins = "red  :";
  for (int v = 0; v < 256; v += 16) bins += " " + std::to_string(red[v]);
  Result h = RunProgram(all[0].argv, dir_, "histogram");
  ASSERT_TRUE(h.Ok()) << h.Describe();
  EXPECT_NE(h.out.find(bins + "\n"), std::string::npos) << h.out << "want: " << bins;
}

TEST_F(RunPhoenixTest, Histogram) { RunAndCompare(Histogram()); }
TEST_F(RunPhoenixTest, KMeans) { RunAndCompare(KMeans()); }
TEST_F(RunPhoenixTest, LinearRegression) { RunAndCompare(LinReg()); }
TEST_F(RunPhoenixTest, MatrixMultiply) { RunAndCompare(MatMul("600")); }
TEST_F(RunPhoenixTest, Pca) { RunAndCompare(Pca()); }
TEST_F(RunPhoenixTest, StringMatch) { RunAndCompare(StrMatch()); }
TEST_F(RunPhoenixTest, WordCountMapReduce) { RunAndCompare(WordCountMR()); }

}  // namespace
}  // namespace remora::testing
