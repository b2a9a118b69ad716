// Stats: named counters, gauges and latency histograms.
//
// Modelled on RocksDB's Statistics: one registry per daemon, metrics looked up
// once by name (pointers stay valid for the registry's life) and then updated
// on hot paths without any globally contended atomic. Every metric is split in
// kShards cache-line-padded shards; a thread always updates "its" shard (picked
// once per thread), so two threads updating the same counter touch different
// cache lines. Reading sums the shards, which is rare (snapshots).
//
// Counter names follow LegoOS where one applies (nr_pgfault, nr_pcache_fill_*,
// nr_victim_*, ...). Subsystems declare each metric once, in a table
// (remora/metric_table.h); docs/stats.md lists them all.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "remora/status.h"

namespace remora {

namespace stats_internal {
constexpr std::size_t kShards = 16;
// The shard this thread updates. Stable for the thread's life.
std::size_t ThisThreadShard();
struct alignas(64) PaddedCell {
  std::atomic<std::int64_t> v{0};
};
}  // namespace stats_internal

// A monotonically increasing count of events.
class Counter {
 public:
  explicit Counter(std::string name, std::string help)
      : name_(std::move(name)), help_(std::move(help)) {}
  void Add(std::uint64_t n = 1) {
    cells_[stats_internal::ThisThreadShard()].v.fetch_add(static_cast<std::int64_t>(n),
                                                          std::memory_order_relaxed);
  }
  void Inc() { Add(1); }
  std::uint64_t Value() const;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }

 private:
  std::string name_, help_;
  std::array<stats_internal::PaddedCell, stats_internal::kShards> cells_;
};

// A level that goes up and down (pages stored, lines in use).
class Gauge {
 public:
  explicit Gauge(std::string name, std::string help)
      : name_(std::move(name)), help_(std::move(help)) {}
  void Add(std::int64_t n) {
    cells_[stats_internal::ThisThreadShard()].v.fetch_add(n, std::memory_order_relaxed);
  }
  void Sub(std::int64_t n) { Add(-n); }
  std::int64_t Value() const;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }

 private:
  std::string name_, help_;
  std::array<stats_internal::PaddedCell, stats_internal::kShards> cells_;
};

// Summary of a histogram at one instant.
struct HistogramSnapshot {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t min = 0;
  std::uint64_t max = 0;
  std::string unit;  // "ns", "bytes", ...
  // Bucket upper bounds and counts (non-empty buckets only), for percentiles.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets;
  // Only in snapshots parsed from JSON (no buckets there): p50, p90, p99.
  std::map<double, std::uint64_t> quantiles;

  // Upper bound of the bucket holding the p-th percentile (0 < p <= 100),
  // clamped to [min, max]. Relative error of the bucketing is < 1/16.
  std::uint64_t Percentile(double p) const;
  double Mean() const { return count ? static_cast<double>(sum) / count : 0.0; }
  // What was recorded after `before` (an earlier snapshot of the same
  // histogram), bucket by bucket: the distribution of one interval. Its min
  // and max are the bounds of its lowest and highest buckets (clamped to
  // this snapshot's). Without buckets (parsed from JSON) the counts are
  // differenced and the quantiles kept as they are.
  HistogramSnapshot Since(const HistogramSnapshot& before) const;
};

// Log-linear histogram of non-negative values (latencies in ns, sizes).
// Buckets: values < 16 exactly, then 16 sub-buckets per power of two.
class Histogram {
 public:
  static constexpr int kSubBits = 4;
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;

  Histogram(std::string name, std::string unit, std::string help);
  ~Histogram();
  void Record(std::uint64_t value);
  HistogramSnapshot Snapshot() const;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }

  static int BucketOf(std::uint64_t v);
  static std::uint64_t BucketUpperBound(int b);

 private:
  struct Shard;
  std::string name_, unit_, help_;
  std::unique_ptr<Shard[]> shards_;
};

// Records the time from construction to destruction into a histogram, in ns.
class ScopedLatency {
 public:
  explicit ScopedLatency(Histogram* h);
  ~ScopedLatency();
  ScopedLatency(const ScopedLatency&) = delete;
  ScopedLatency& operator=(const ScopedLatency&) = delete;

 private:
  Histogram* h_;
  std::uint64_t start_ns_;
};

std::uint64_t MonotonicNs();

// A consistent-enough view of every metric of a registry.
struct StatsSnapshot {
  std::map<std::string, std::int64_t> counters;  // counters and gauges
  std::map<std::string, HistogramSnapshot> histograms;
  std::map<std::string, std::string> help;
  std::map<std::string, bool> is_gauge;

  // Human table: one metric per line, histograms with count/p50/p90/p99/max.
  std::string ToTable() const;
  // {"counters": {...}, "gauges": ["name", ...],
  //  "histograms": {"name": {"count":..,"p50":..,...}}}: "counters" holds
  // the gauges' values too, "gauges" says which of them are gauges.
  std::string ToJson() const;
  // Prometheus text exposition format, metric names prefixed "remora_".
  std::string ToPrometheus() const;
  // One line of a timeline (`remora run --timeline`, docs/stats.md):
  // {"t": seconds since the start, "unix": wall-clock seconds,
  //  "counters": {...}, "gauges": {...},
  //  "histograms": {"name": {"unit", "count", "sum", "p50", "p90", "p99",
  //                          "max", "buckets": [[upper bound, count], ...]}}}
  // with a newline at the end. Buckets are the non-empty ones, cumulative
  // since the start (absent for snapshots parsed from JSON).
  std::string ToTimelineJson(double t_seconds, double unix_seconds) const;
  // Parses what ToJson() produced (e.g. a --stats-json file or a remote
  // node's snapshot). Bucket detail is not in the JSON, so a parsed histogram
  // answers Percentile() for 50/90/99 only, from the stored values.
  static Status FromJson(const std::string& json, StatsSnapshot* out);
  std::int64_t Counter(const std::string& name) const {
    auto it = counters.find(name);
    return it == counters.end() ? 0 : it->second;
  }
  bool IsGauge(const std::string& name) const {
    auto it = is_gauge.find(name);
    return it != is_gauge.end() && it->second;
  }
};

class StatsRegistry {
 public:
  StatsRegistry() = default;
  StatsRegistry(const StatsRegistry&) = delete;
  StatsRegistry& operator=(const StatsRegistry&) = delete;

  // Get-or-create. The returned pointer is valid for the registry's life.
  Counter* GetCounter(std::string_view name, std::string_view help = "");
  Gauge* GetGauge(std::string_view name, std::string_view help = "");
  Histogram* GetHistogram(std::string_view name, std::string_view unit = "ns",
                          std::string_view help = "");

  StatsSnapshot Snapshot() const;

 private:
  mutable std::mutex mu_;  // guards the maps, never taken on update paths
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_;
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms_;
};

}  // namespace remora
