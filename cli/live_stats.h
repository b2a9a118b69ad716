// Counters while something runs: `--stats-interval S [--timeline FILE]` on
// `remora run` and `remora processor`, and the refreshing table of
// `remora stats --watch`.
//
// Every S seconds a snapshot is taken; it goes to the timeline file as one
// JSON line (StatsSnapshot::ToTimelineJson, docs/stats.md "Timelines") and is
// summed up against the previous one in a line on stderr: faults, fills and
// evictions per second, resident lines, and the miss latency of the interval.
// The timeline starts with a snapshot at t = 0 and ends with the final one
// (Finish), so its last line is the run's exit counters.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "remora/stats.h"
#include "remora/status.h"

namespace remora::cli {

struct LiveStatsArgs {
  double interval = 0;   // seconds; 0: no periodic snapshots
  std::string timeline;  // JSON lines file; empty: none
  bool quiet = false;    // no progress lines (and, for run, no summary)

  bool enabled() const { return interval > 0 || !timeline.empty(); }
};

// Adds --stats-interval, --timeline and --quiet (described by `quiet_help`).
void AddLiveStatsOptions(CLI::App* sub, LiveStatsArgs* args, const std::string& quiet_help);

// One line: "12.0 s  12345 faults/s  11000 fills/s  10000 evictions/s
// 4096 lines resident  miss p50 8.1 us p99 40.2 us" for the interval from
// `prev` to `now`, `seconds` long, ending `t` seconds after the start.
std::string ProgressLine(const StatsSnapshot& prev, const StatsSnapshot& now, double seconds,
                         double t);

// The `remora stats --watch` table for one interval: every metric that is
// not zero, counters with their total and rate per second, gauges with their
// value and change, histograms with the interval's count per second and
// percentiles. `prev` empty: the first table, totals only.
std::string WatchTable(const StatsSnapshot* prev, const StatsSnapshot& now, double seconds);

class LiveStats {
 public:
  // Takes a snapshot; false if none could be taken (that tick is skipped).
  using SnapshotFn = std::function<bool(StatsSnapshot*)>;

  // Opens the timeline, writes the t = 0 line and starts the ticking thread.
  static Status Start(const LiveStatsArgs& args, SnapshotFn snapshot,
                      std::unique_ptr<LiveStats>* out);
  ~LiveStats();  // stops the thread (no final line)

  // Stops the ticks. Call it before taking the final snapshot: a tick taken
  // after it would be newer than the last line (taking a snapshot moves
  // counters too: the manager asks the memory node for its page count).
  void Stop();
  // Stops the ticks and appends `final_snap` as the timeline's last line.
  void Finish(const StatsSnapshot& final_snap);

 private:
  LiveStats(const LiveStatsArgs& args, SnapshotFn snapshot, std::FILE* timeline);
  void Loop();
  // Writes one timeline line and, unless quiet, the progress line.
  void Record(const StatsSnapshot& s, bool progress) REQUIRES(record_mu_);

  const LiveStatsArgs args_;
  const SnapshotFn snapshot_;
  const std::uint64_t start_ns_;

  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;

  // The ticking thread and Finish both record; Finish runs after Stop().
  Mutex record_mu_;
  std::FILE* timeline_ GUARDED_BY(record_mu_);
  StatsSnapshot prev_ GUARDED_BY(record_mu_);
  std::uint64_t prev_ns_ GUARDED_BY(record_mu_);

  std::thread thread_;
};

}  // namespace remora::cli
