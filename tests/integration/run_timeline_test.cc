// Live counters end to end: a real program under `remora run --stats-interval
// --timeline` with a pcache of an odd size (chosen geometry) small enough to
// force eviction. Its output must match the native run byte for byte; the
// timeline must be JSON lines with a rising clock, counters that never go
// back, and a last line equal to the run's exit counters (--stats-json);
// `remora plot` must turn it into a PNG. Also: the same options on
// `remora processor`, and `remora stats --watch` against it.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"
#include "run_util.h"

namespace remora::testing {
namespace {

class RunTimelineTest : public RunDirTest {};

std::vector<nlohmann::json> ReadTimeline(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line.substr(0, 200);
    if (j.is_object()) lines.push_back(std::move(j));
  }
  return lines;
}

// Clock rising, counters never decreasing, the same counters in every line.
void CheckMonotonic(const std::vector<nlohmann::json>& tl) {
  for (std::size_t i = 1; i < tl.size(); ++i) {
    SCOPED_TRACE("timeline line " + std::to_string(i + 1));
    EXPECT_GT(tl[i]["t"].get<double>(), tl[i - 1]["t"].get<double>());
    for (auto& [name, v] : tl[i - 1]["counters"].items()) {
      ASSERT_TRUE(tl[i]["counters"].contains(name)) << name;
      EXPECT_GE(tl[i]["counters"][name].get<std::int64_t>(), v.get<std::int64_t>()) << name;
    }
    for (auto& [name, h] : tl[i]["histograms"].items())
      EXPECT_GE(h["count"].get<std::uint64_t>(),
                tl[i - 1]["histograms"][name]["count"].get<std::uint64_t>())
          << name;
  }
}

bool IsPng(const std::string& bytes) {
  return bytes.size() > 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) == 0;
}

TEST_F(RunTimelineTest, TimelineOfARealRunParsesAndPlots) {
  const std::vector<std::string> prog = {REMORA_MEM_STRESS, "48", "2", "3"};
  Result native = RunProgram(prog, dir_, "native");
  ASSERT_TRUE(native.Ok()) << native.Describe();

  // 10000 KiB = 2500 pages: no power-of-two geometry of 8 ways fits; the
  // closest below is 128 sets x 19 ways (2432 pages), a fifth of the data.
  const std::string timeline = dir_ + "/run.jsonl";
  std::vector<std::string> argv = {RemoraBinary(), "run", "--pcache", "10000K", "--victim", "32"};
  argv.insert(argv.end(), {"--stats-json", dir_ + "/stats.json", "--stats-interval", "0.2",
                           "--timeline", timeline, "--"});
  argv.insert(argv.end(), prog.begin(), prog.end());
  Result run = RunProgram(argv, dir_, "remora", std::chrono::seconds(400));
  ASSERT_TRUE(run.Ok()) << run.Describe();
  EXPECT_EQ(run.out, native.out) << "output differs from the native run";
  EXPECT_NE(run.err.find("pcache 9728 KiB = 128 sets x 19 ways"), std::string::npos)
      << Tail(run.err);
  // The progress lines, one per interval after the first.
  EXPECT_NE(run.err.find("faults/s"), std::string::npos) << Tail(run.err);
  EXPECT_NE(run.err.find("lines resident"), std::string::npos) << Tail(run.err);

  const auto tl = ReadTimeline(timeline);
  ASSERT_GE(tl.size(), 3u) << "a run of " << run.seconds << " s at 0.2 s intervals";
  EXPECT_EQ(tl.front()["t"].get<double>() < 0.2, true);
  CheckMonotonic(tl);

  // The last line is the exit counters, every one of them.
  Stats final_stats(dir_ + "/stats.json");
  ASSERT_TRUE(final_stats.valid());
  const nlohmann::json exit_json = nlohmann::json::parse(final_stats.text());
  const nlohmann::json& last = tl.back();
  std::size_t compared = 0;
  for (auto& [name, v] : exit_json["counters"].items()) {
    const bool gauge = last["gauges"].contains(name);
    ASSERT_TRUE(gauge || last["counters"].contains(name)) << name;
    EXPECT_EQ((gauge ? last["gauges"] : last["counters"])[name].get<std::int64_t>(),
              v.get<std::int64_t>())
        << name;
    ++compared;
  }
  EXPECT_EQ(compared, last["counters"].size() + last["gauges"].size());
  for (auto& [name, h] : exit_json["histograms"].items()) {
    EXPECT_EQ(last["histograms"][name]["count"], h["count"]) << name;
    EXPECT_EQ(last["histograms"][name]["p99"], h["p99"]) << name;
  }
  // The pcache was small enough to evict, and the timeline saw it happen.
  EXPECT_GT(last["counters"]["nr_pcache_eviction_succeed"].get<std::int64_t>(), 1000);
  EXPECT_EQ(last["gauges"]["pcache_lines_used"].get<std::int64_t>(), 0);  // after exit
  std::int64_t peak_lines = 0;
  for (const auto& j : tl)
    peak_lines = std::max(peak_lines, j["gauges"]["pcache_lines_used"].get<std::int64_t>());
  EXPECT_GT(peak_lines, 0);
  EXPECT_LE(peak_lines, 2432);
  ASSERT_TRUE(last["histograms"].contains("pgfault_service_ns"));
  EXPECT_FALSE(last["histograms"]["pgfault_service_ns"]["buckets"].empty());

  // The picture.
  const std::string png = dir_ + "/run.png";
  std::string out;
  const int st = RunCommand({RemoraBinary(), "plot", timeline, "-o", png}, &out);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  const std::string bytes = ReadFile(png);
  EXPECT_TRUE(IsPng(bytes));
  EXPECT_GT(bytes.size(), 30000u) << "a plot of six panels is more than a blank image";
}

TEST_F(RunTimelineTest, BadTimelinePathFailsBeforeTheProgramRuns) {
  const std::string marker = dir_ + "/ran";
  Result run = RunProgram({RemoraBinary(), "run", "--timeline", dir_ + "/no/such/dir/t.jsonl", "--",
                           "/bin/touch", marker},
                          dir_, "bad");
  EXPECT_FALSE(run.Ok());
  EXPECT_NE(run.err.find("--timeline"), std::string::npos) << run.err;
  EXPECT_TRUE(ReadFile(marker).empty() && access(marker.c_str(), F_OK) != 0);
}

// A processor daemon with --stats-interval and --timeline, a program attached
// to it, and `remora stats --watch` refreshing its table meanwhile.
TEST_F(RunTimelineTest, ProcessorTimelineAndStatsWatch) {
  const std::string sock = dir_ + "/processor.sock", timeline = dir_ + "/processor.jsonl";
  std::string error;
  Spawned proc = StartProcessor(
      sock, {"--pcache", "6M", "--stats-interval", "0.2", "--timeline", timeline}, dir_, &error);
  ASSERT_GT(proc.pid, 0) << error;

  const std::vector<std::string> prog = {REMORA_MEM_STRESS, "24", "2", "2"};
  Result native = RunProgram(prog, dir_, "native");
  ASSERT_TRUE(native.Ok()) << native.Describe();
  std::vector<std::string> argv = {RemoraBinary(), "run", "--processor", sock, "--quiet", "--"};
  argv.insert(argv.end(), prog.begin(), prog.end());
  Spawned run = Spawn(argv, dir_, "run");
  const auto started = Clock::now();

  std::string watch;
  const int ws = RunCommand({RemoraBinary(), "stats", "--processor", sock, "--watch", "--interval",
                             "0.2", "--count", "3"},
                            &watch);
  Result r = Wait(run, std::chrono::seconds(400), started);
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);
  EXPECT_TRUE(r.err.empty() || r.err.find("faults/s") == std::string::npos) << "--quiet";

  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) << watch;
  // Three tables: totals, then two with rates.
  std::size_t tables = 0;
  for (std::size_t p = watch.find("remora stats: "); p != std::string::npos;
       p = watch.find("remora stats: ", p + 1))
    ++tables;
  EXPECT_EQ(tables, 3u) << watch;
  EXPECT_NE(watch.find("per second"), std::string::npos) << watch;
  EXPECT_NE(watch.find("nr_pgfault "), std::string::npos) << watch;

  EXPECT_EQ(StopProcess(proc.pid), 0);
  const std::string err = ReadFile(proc.err_path);
  EXPECT_NE(err.find("pcache 6 MiB = 128 sets x 12 ways"), std::string::npos) << err;
  EXPECT_NE(err.find("faults/s"), std::string::npos) << err;
  const auto tl = ReadTimeline(timeline);
  ASSERT_GE(tl.size(), 3u);
  CheckMonotonic(tl);
  EXPECT_GT(tl.back()["counters"]["nr_pgfault"].get<std::int64_t>(), 0);
  EXPECT_GT(tl.back()["counters"]["nr_pcache_eviction_succeed"].get<std::int64_t>(), 0);
}

}  // namespace
}  // namespace remora::testing
