// Runs the real `remora sim` binary: on Zipf-like traces the pcache's miss
// ratio (CLOCK fed by referenced hints, as in the runtime) must stay within
// 10% of an exact LRU of the same geometry; bad input must fail clearly.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "harness.h"

namespace remora::testing {
namespace {

// A Zipf-like trace: `pages` pages (of two address spaces) ranked by
// popularity with exponent `alpha`, ranks scattered over the address range,
// `write_share` of the accesses writes. Deterministic for a seed.
void WriteZipfTrace(const std::string& path, int pages, int accesses, double alpha,
                    double write_share, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> cdf(pages);
  double sum = 0;
  for (int i = 0; i < pages; ++i) cdf[i] = sum += 1.0 / std::pow(i + 1, alpha);
  std::vector<std::uint64_t> page_of_rank(pages);
  for (int i = 0; i < pages; ++i) page_of_rank[i] = 0x7f0000000000ull + std::uint64_t(i) * 4096;
  std::shuffle(page_of_rank.begin(), page_of_rank.end(), rng);
  std::uniform_real_distribution<double> pick(0, sum), coin(0, 1);
  std::ofstream out(path);
  out << "# zipf alpha=" << alpha << " pages=" << pages << " accesses=" << accesses << "\n";
  char line[64];
  for (int i = 0; i < accesses; ++i) {
    const int rank = int(std::lower_bound(cdf.begin(), cdf.end(), pick(rng)) - cdf.begin());
    const std::uint64_t addr = page_of_rank[rank] + rng() % 4096;
    const char op = coin(rng) < write_share ? 'w' : 'r';
    std::snprintf(line, sizeof line, "%c %llx %d\n", op, static_cast<unsigned long long>(addr),
                  1 + rank % 2);
    out << line;
  }
}

// Value of a numeric field of the one-object JSON `remora sim --json` prints.
double JsonNumber(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  auto at = json.find(needle);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no " << key << " in " << json;
    return -1;
  }
  return std::strtod(json.c_str() + at + needle.size(), nullptr);
}

class SimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/remora-sim-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    zipf_ = dir_ + "/zipf.trace";
    WriteZipfTrace(zipf_, 4000, 200000, 0.95, 0.3, 42);
  }
  static void TearDownTestSuite() {
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }

  // Runs a shell command line with stderr folded into stdout.
  static int Shell(const std::string& cmdline, std::string* out) {
    int status = RunCommand({"/bin/sh", "-c", "exec " + cmdline + " 2>&1"}, out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  static std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  static std::string dir_, zipf_;
};
std::string SimTest::dir_, SimTest::zipf_;

// With a referenced hint per hit (--policy clock), the pcache's replacement
// misses at most 10% more than exact LRU on Zipf.
TEST_F(SimTest, ZipfMissRatioWithinTenPercentOfExactLru) {
  struct Geometry {
    const char* capacity;
    const char* ways;
  } geometries[] = {{"1M", "8"}, {"2M", "4"}, {"4M", "16"}, {"8M", "8"}, {"4M", "64"}};
  for (const Geometry& g : geometries) {
    std::string out;
    int status = RunCommand({RemoraBinary(), "sim", "--trace", zipf_, "--capacity", g.capacity,
                             "--ways", g.ways, "--policy", "clock", "--json"},
                            &out);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    const double miss = JsonNumber(out, "miss_ratio");
    const double lru = JsonNumber(out, "lru_miss_ratio");
    std::printf("capacity %s ways %s: miss_ratio %.4f lru_miss_ratio %.4f (%+.1f%%)\n", g.capacity,
                g.ways, miss, lru, 100 * (miss - lru) / lru);
    EXPECT_EQ(JsonNumber(out, "accesses"), 200000);
    EXPECT_EQ(JsonNumber(out, "hits") + JsonNumber(out, "misses"), 200000);
    EXPECT_GT(lru, 0.0);
    EXPECT_LE(miss, 1.10 * lru) << g.capacity << "/" << g.ways << ": " << out;
    EXPECT_EQ(JsonNumber(out, "data_errors"), 0) << out;
    EXPECT_GT(JsonNumber(out, "evictions"), 0);
    EXPECT_GT(JsonNumber(out, "writebacks"), 0);
    EXPECT_GE(JsonNumber(out, "victim_hits"), 0);
    EXPECT_EQ(JsonNumber(out, "ways"), std::atof(g.ways));
  }
}

TEST_F(SimTest, TextModePrintsATable) {
  std::string out;
  int status = RunCommand(
      {RemoraBinary(), "sim", "--trace", zipf_, "--capacity", "4M", "--ways", "8"}, &out);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  for (const char* want : {"128 sets x 8 ways", "accesses        200000", "miss ratio", "exact LRU",
                           "evictions", "write-backs", "data errors     0"}) {
    EXPECT_NE(out.find(want), std::string::npos) << "missing '" << want << "' in\n" << out;
  }
}

TEST_F(SimTest, ReadsTraceFromStdin) {
  std::string file_out, stdin_out;
  ASSERT_EQ(Shell(RemoraBinary() + " sim --trace " + zipf_ + " --capacity 2M --policy lru --json",
                  &file_out),
            0);
  ASSERT_EQ(Shell(RemoraBinary() + " sim --trace - --capacity 2M --policy lru --json < " + zipf_,
                  &stdin_out),
            0)
      << stdin_out;
  EXPECT_EQ(JsonNumber(stdin_out, "misses"), JsonNumber(file_out, "misses"));
  // With every access seen, the pcache is exactly LRU.
  EXPECT_EQ(JsonNumber(stdin_out, "misses"), JsonNumber(stdin_out, "lru_misses"));
}

TEST_F(SimTest, MalformedTraceFailsWithLineNumber) {
  const std::string bad = WriteFile("bad.trace", "# ok\nr 1000\n\nw 0x2000 3\nr 12g4\n");
  std::string out;
  EXPECT_NE(Shell(RemoraBinary() + " sim --trace " + bad + " --capacity 1M", &out), 0);
  EXPECT_NE(out.find("bad.trace:5: bad hex address '12g4'"), std::string::npos) << out;

  const std::string op = WriteFile("op.trace", "r 1000\nx 2000\n");
  EXPECT_NE(Shell(RemoraBinary() + " sim --trace " + op + " --capacity 1M --json", &out), 0);
  EXPECT_NE(out.find("op.trace:2: expected 'r' or 'w', got 'x'"), std::string::npos) << out;

  EXPECT_NE(
      Shell("printf 'r 1000 1 2\\n' | " + RemoraBinary() + " sim --trace - --capacity 1M", &out),
      0);
  EXPECT_NE(out.find("<stdin>:1: too many fields"), std::string::npos) << out;
}

// Without --ways any size works: the geometry closest to it from below.
TEST_F(SimTest, AnySizeWithoutWays) {
  std::string out;
  ASSERT_EQ(Shell(RemoraBinary() + " sim --trace " + zipf_ + " --pcache 3M", &out), 0) << out;
  EXPECT_NE(out.find("3 MiB = 64 sets x 12 ways"), std::string::npos) << out;
  ASSERT_EQ(Shell(RemoraBinary() + " sim --trace " + zipf_ + " --capacity 1000000 --json", &out), 0)
      << out;
  EXPECT_EQ(JsonNumber(out, "capacity_bytes"), 240 * 4096);
  EXPECT_EQ(JsonNumber(out, "sets"), 16);
  EXPECT_EQ(JsonNumber(out, "ways"), 15);
  EXPECT_EQ(JsonNumber(out, "data_errors"), 0);
}

TEST_F(SimTest, BadArgumentsFailClearly) {
  std::string out;
  EXPECT_NE(Shell(RemoraBinary() + " sim --trace " + zipf_ + " --capacity 3M --ways 8", &out), 0);
  EXPECT_NE(out.find("power-of-two number of sets"), std::string::npos) << out;
  EXPECT_NE(out.find("try 2 MiB or 4 MiB"), std::string::npos) << out;
  EXPECT_NE(out.find("leave out --ways"), std::string::npos) << out;
  EXPECT_NE(Shell(RemoraBinary() + " sim --trace " + zipf_ + " --pcache 48K", &out), 0);
  EXPECT_NE(out.find("minimum of 64 KiB"), std::string::npos) << out;
  EXPECT_NE(Shell(RemoraBinary() + " sim --trace " + zipf_ + " --capacity 1M --ways 65", &out), 0);
  EXPECT_NE(out.find("1..64"), std::string::npos) << out;
  EXPECT_NE(Shell(RemoraBinary() + " sim --trace " + zipf_ + " --capacity lots", &out), 0);
  EXPECT_NE(out.find("bad size"), std::string::npos) << out;
  EXPECT_NE(Shell(RemoraBinary() + " sim --trace " + dir_ + "/missing --capacity 1M", &out), 0);
  EXPECT_NE(out.find("cannot open trace"), std::string::npos) << out;
  EXPECT_NE(Shell(RemoraBinary() + " sim --trace " + zipf_ + " --capacity 1M --policy fifo", &out),
            0);
  EXPECT_NE(out.find("unknown policy"), std::string::npos) << out;
}

}  // namespace
}  // namespace remora::testing
