#include "cli/live_stats.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

namespace remora::cli {
namespace {

// Counters summed into the progress line's "fills": every way a miss is
// filled (copy-on-write copies are not misses).
constexpr const char* kFillCounters[] = {"nr_pcache_fill_from_memory", "nr_pcache_fill_from_victim",
                                         "nr_pcache_fill_zerofill", "nr_pcache_fill_from_file"};
constexpr const char* kMissLatency = "pgfault_service_ns";

double UnixSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

double Rate(const StatsSnapshot& prev, const StatsSnapshot& now, const std::string& name,
            double seconds) {
  return seconds > 0 ? static_cast<double>(now.Counter(name) - prev.Counter(name)) / seconds : 0.0;
}

// 950, 12.3k, 4.5M: rates stay readable at a glance.
std::string Short(double v) {
  if (v < 10000) return fmt::format("{:.0f}", v);
  if (v < 10e6) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.1f}M", v / 1e6);
}

std::string Latency(std::uint64_t ns) {
  if (ns < 10000) return fmt::format("{:.1f} us", ns / 1e3);
  if (ns < 1000000) return fmt::format("{:.0f} us", ns / 1e3);
  if (ns < 10000000) return fmt::format("{:.1f} ms", ns / 1e6);
  return fmt::format("{:.0f} ms", ns / 1e6);
}

// A histogram's value: latencies in us/ms, anything else with its unit.
std::string Value(std::uint64_t v, const std::string& unit) {
  return unit == "ns" ? Latency(v) : fmt::format("{} {}", v, unit);
}

}  // namespace

void AddLiveStatsOptions(CLI::App* sub, LiveStatsArgs* a, const std::string& quiet_help) {
  sub->add_option("--stats-interval", a->interval,
                  "every S seconds take a counter snapshot: a progress line on stderr (faults, "
                  "fills, evictions per second, resident lines, miss latency) and a line of "
                  "--timeline")
      ->check(CLI::Range(0.05, 86400.0));
  sub->add_option("--timeline", a->timeline,
                  "write the snapshots to FILE as JSON lines (every --stats-interval seconds, "
                  "default 1; the last line is the final counters); `remora plot FILE` draws them");
  sub->add_flag("--quiet", a->quiet, quiet_help);
}

std::string ProgressLine(const StatsSnapshot& prev, const StatsSnapshot& now, double seconds,
                         double t) {
  double fills = 0;
  for (const char* c : kFillCounters) fills += Rate(prev, now, c, seconds);
  std::string line =
      fmt::format("{:.1f} s  {} faults/s  {} fills/s  {} evictions/s  {} lines resident", t,
                  Short(Rate(prev, now, "nr_pgfault", seconds)), Short(fills),
                  Short(Rate(prev, now, "nr_pcache_eviction_succeed", seconds)),
                  now.Counter("pcache_lines_used"));
  auto h = now.histograms.find(kMissLatency);
  if (h == now.histograms.end()) return line;
  auto p = prev.histograms.find(kMissLatency);
  const HistogramSnapshot interval =
      p == prev.histograms.end() ? h->second : h->second.Since(p->second);
  if (interval.count == 0) return line + "  no misses";
  return line + fmt::format("  miss p50 {} p99 {}", Latency(interval.Percentile(50)),
                            Latency(interval.Percentile(99)));
}

std::string WatchTable(const StatsSnapshot* prev, const StatsSnapshot& now, double seconds) {
  std::size_t width = 24;
  for (const auto& [n, v] : now.counters) width = std::max(width, n.size());
  for (const auto& [n, h] : now.histograms) width = std::max(width, n.size());
  std::string out;
  std::size_t hidden = 0;
  if (prev)
    out +=
        fmt::format("  {:<{}} {:>14} {:>12}\n", "(gauges: change)", width, "value", "per second");
  for (const auto& [n, v] : now.counters) {
    if (v == 0 && (!prev || prev->Counter(n) == 0)) {
      ++hidden;
      continue;
    }
    if (now.IsGauge(n)) {
      const std::int64_t change = prev ? v - prev->Counter(n) : 0;
      out += fmt::format("  {:<{}} {:>14} {:>12}\n", n, width, v,
                         prev ? fmt::format("{:+d}", change) : std::string());
    } else {
      out += fmt::format("  {:<{}} {:>14} {:>12}\n", n, width, v,
                         prev ? Short(Rate(*prev, now, n, seconds)) : std::string());
    }
  }
  for (const auto& [n, h] : now.histograms) {
    if (h.count == 0) {
      ++hidden;
      continue;
    }
    auto p = prev ? prev->histograms.find(n) : now.histograms.end();
    const HistogramSnapshot iv = prev && p != prev->histograms.end() ? h.Since(p->second) : h;
    if (prev && iv.count == 0) {
      out += fmt::format("  {:<{}} {:>14} {:>12}  (none this interval)\n", n, width, h.count, 0);
      continue;
    }
    out += fmt::format("  {:<{}} {:>14} {:>12}  p50 {}  p99 {}  max {}\n", n, width, h.count,
                       prev ? Short(static_cast<double>(iv.count) / seconds) : std::string(),
                       Value(iv.Percentile(50), h.unit), Value(iv.Percentile(99), h.unit),
                       Value(iv.max, h.unit));
  }
  if (hidden) out += fmt::format("  ({} metrics at zero not shown)\n", hidden);
  return out;
}

LiveStats::LiveStats(const LiveStatsArgs& args, SnapshotFn snapshot, std::FILE* timeline)
    : args_(args), snapshot_(std::move(snapshot)), start_ns_(MonotonicNs()), timeline_(timeline) {
  MutexLock lk(record_mu_);
  prev_ns_ = start_ns_;
}

Status LiveStats::Start(const LiveStatsArgs& args, SnapshotFn snapshot,
                        std::unique_ptr<LiveStats>* out) {
  std::FILE* f = nullptr;
  if (!args.timeline.empty()) {
    f = std::fopen(args.timeline.c_str(), "w");
    if (f == nullptr)
      return {Code::kInvalidArgument,
              fmt::format("--timeline {}: {}", args.timeline, std::strerror(errno))};
  }
  std::unique_ptr<LiveStats> live(new LiveStats(args, std::move(snapshot), f));
  StatsSnapshot first;
  if (live->snapshot_(&first)) {
    MutexLock lk(live->record_mu_);
    live->Record(first, false);
  }
  live->thread_ = std::thread([l = live.get()] { l->Loop(); });
  *out = std::move(live);
  return Status::Ok();
}

LiveStats::~LiveStats() {
  Stop();
  MutexLock lk(record_mu_);
  if (timeline_) std::fclose(timeline_);
  timeline_ = nullptr;
}

void LiveStats::Stop() {
  {
    MutexLock lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LiveStats::Finish(const StatsSnapshot& final_snap) {
  Stop();
  MutexLock lk(record_mu_);
  Record(final_snap, false);
}

void LiveStats::Loop() {
  const double interval = args_.interval > 0 ? args_.interval : 1.0;
  const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(interval));
  auto next = std::chrono::steady_clock::now() + period;
  for (;;) {
    {
      MutexLock lk(mu_);
      if (cv_.wait_until(mu_, next, [this]() REQUIRES(mu_) { return stop_; })) return;
    }
    // Ticks stay on the grid of the start; a slow snapshot skips ticks
    // rather than bunching them.
    next += period;
    while (next <= std::chrono::steady_clock::now()) next += period;
    StatsSnapshot s;
    if (!snapshot_(&s)) continue;
    MutexLock lk(record_mu_);
    Record(s, !args_.quiet && args_.interval > 0);
  }
}

void LiveStats::Record(const StatsSnapshot& s, bool progress) {
  const std::uint64_t now_ns = MonotonicNs();
  const double t = static_cast<double>(now_ns - start_ns_) / 1e9;
  if (timeline_) {
    const std::string line = s.ToTimelineJson(t, UnixSeconds());
    std::fwrite(line.data(), 1, line.size(), timeline_);
    std::fflush(timeline_);
  }
  if (progress) {
    const double seconds = static_cast<double>(now_ns - prev_ns_) / 1e9;
    std::fprintf(stderr, "remora: %s\n", ProgressLine(prev_, s, seconds, t).c_str());
  }
  prev_ = s;
  prev_ns_ = now_ns;
}

}  // namespace remora::cli
