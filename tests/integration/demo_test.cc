// The main job end to end: `remora demo` on the embedded default and over TCP
// against a separately started memory node. The demo itself compares every
// result with the same computation in local memory and checks for leaks; this
// test also checks that the counters are consistent with each other.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "harness.h"
#include "remora/stats.h"

namespace remora::testing {
namespace {

StatsSnapshot ReadSnapshot(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  StatsSnapshot s;
  EXPECT_TRUE(StatsSnapshot::FromJson(ss.str(), &s).ok()) << ss.str();
  return s;
}

void CheckCounters(const StatsSnapshot& s) {
  const auto faults = s.Counter("nr_pgfault");
  const auto from_memory = s.Counter("nr_pcache_fill_from_memory");
  const auto from_victim = s.Counter("nr_pcache_fill_from_victim");
  const auto zerofill = s.Counter("nr_pcache_fill_zerofill");
  EXPECT_GT(faults, 0);
  EXPECT_GT(from_memory, 0);
  EXPECT_GT(zerofill, 0);
  EXPECT_GT(s.Counter("nr_pcache_eviction_succeed"), 0);
  EXPECT_GT(s.Counter("nr_victim_flush_finished_dirty"), 0);
  // Every miss was filled from exactly one source.
  EXPECT_EQ(faults, from_memory + from_victim + zerofill);
  // Every dirty line that went to the victim cache was written back once, or
  // was still being written when the run ended and its space was destroyed.
  EXPECT_EQ(s.Counter("nr_victim_flush_submitted_dirty"),
            s.Counter("nr_victim_flush_finished_dirty") + s.Counter("nr_victim_flush_orphaned"));
  EXPECT_EQ(s.Counter("nr_victim_flush_failed"), 0);
  EXPECT_EQ(s.Counter("nr_pcache_eviction_succeed"),
            s.Counter("nr_pcache_eviction_to_victim") +
                s.Counter("nr_pcache_eviction_clean_dropped") +
                s.Counter("nr_pcache_eviction_writeback_sync"));
  EXPECT_EQ(s.Counter("pcache_lines_used"), 0);
  EXPECT_EQ(s.Counter("victim_entries_used"), 0);
}

class DemoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/remora-demo-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(DemoTest, EmbeddedSharedMemory) {
  std::string json = dir_ + "/stats.json", out;
  int st =
      RunCommand({RemoraBinary(), "demo", "--data", "8M", "--quiet", "--stats-json", json}, &out);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("counts match local run: yes"), std::string::npos) << out;
  EXPECT_NE(out.find("final bytes match local run: yes"), std::string::npos) << out;
  auto s = ReadSnapshot(json);
  CheckCounters(s);
  EXPECT_GT(s.Counter("shm_reads_onesided"), 0);
}

TEST_F(DemoTest, SeparateMemoryNodeOverTcp) {
  MemoryNodeProcess node({.capacity = "64M"});
  ASSERT_TRUE(node.started());
  std::string json = dir_ + "/stats.json", out;
  int st = RunCommand({RemoraBinary(), "demo", "--data", "8M", "--pcache", "1M", "--ways", "4",
                       "--transport", "tcp", "--memory-node", node.tcp_address(), "--secret-file",
                       node.secret_file(), "--quiet", "--stats-json", json},
                      &out);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("final bytes match local run: yes"), std::string::npos) << out;
  CheckCounters(ReadSnapshot(json));
  // The node kept serving and holds nothing of the finished run.
  auto t = node.Connect(TransportKind::kTcp);
  ASSERT_NE(t, nullptr);
  MemoryNodeInfo info;
  ASSERT_TRUE(t->Info(&info).ok());
  EXPECT_EQ(info.used_pages, 0u);
}

TEST_F(DemoTest, BadGeometryIsAClearError) {
  std::string out;
  // 3 MiB in 8 ways is 96 sets: not a power of two. (Without --ways the
  // geometry is chosen and any size works.)
  int st =
      RunCommand({RemoraBinary(), "demo", "--data", "8M", "--pcache", "3M", "--ways", "8"}, &out);
  ASSERT_TRUE(WIFEXITED(st)) << "demo died of a signal";
  EXPECT_NE(WEXITSTATUS(st), 0);
}

TEST_F(DemoTest, WrongSecretIsAClearError) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  std::string bad = dir_ + "/bad-secret";
  std::ofstream(bad) << "not-the-secret-not-the-secret-not-the-secret\n";
  chmod(bad.c_str(), 0600);
  std::string out;
  int st = RunCommand({RemoraBinary(), "demo", "--data", "1M", "--transport", "tcp",
                       "--memory-node", node.tcp_address(), "--secret-file", bad},
                      &out);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_NE(WEXITSTATUS(st), 0);
  EXPECT_TRUE(node.Alive());
}

}  // namespace
}  // namespace remora::testing
