// Stats over time: the difference between two histogram snapshots (one
// interval's distribution) and a snapshot as one line of a timeline file.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "remora/stats.h"

namespace remora {

HistogramSnapshot HistogramSnapshot::Since(const HistogramSnapshot& before) const {
  HistogramSnapshot d;
  d.unit = unit;
  d.count = count >= before.count ? count - before.count : 0;
  d.sum = sum >= before.sum ? sum - before.sum : 0;
  if (buckets.empty()) {
    // Parsed from JSON: no distribution to difference.
    d.quantiles = quantiles;
    d.min = min;
    d.max = max;
    return d;
  }
  // Both lists are sorted by upper bound; `before` holds a subset of the
  // bounds (counts only grow).
  auto b = before.buckets.begin();
  for (const auto& [ub, n] : buckets) {
    while (b != before.buckets.end() && b->first < ub) ++b;
    const std::uint64_t old = (b != before.buckets.end() && b->first == ub) ? b->second : 0;
    if (n > old) d.buckets.emplace_back(ub, n - old);
  }
  if (d.buckets.empty()) {
    d.count = 0;
    return d;
  }
  // A bucket's lower bound is the previous bucket's upper bound + 1; the
  // first interval value is at least that of the lowest non-empty bucket.
  const int first = Histogram::BucketOf(d.buckets.front().first);
  d.min = first == 0 ? 0 : Histogram::BucketUpperBound(first - 1) + 1;
  d.min = std::max(d.min, min);
  d.max = std::min(d.buckets.back().first, max);
  return d;
}

std::string StatsSnapshot::ToTimelineJson(double t_seconds, double unix_seconds) const {
  nlohmann::ordered_json j;
  // Millisecond resolution is plenty at intervals of a tenth of a second up.
  j["t"] = std::round(t_seconds * 1000) / 1000;
  j["unix"] = std::round(unix_seconds * 1000) / 1000;
  nlohmann::ordered_json& c = j["counters"] = nlohmann::ordered_json::object();
  nlohmann::ordered_json& g = j["gauges"] = nlohmann::ordered_json::object();
  for (const auto& [name, v] : counters) (IsGauge(name) ? g : c)[name] = v;
  nlohmann::ordered_json& hs = j["histograms"] = nlohmann::ordered_json::object();
  for (const auto& [name, h] : histograms) {
    nlohmann::ordered_json& o = hs[name];
    o["unit"] = h.unit;
    o["count"] = h.count;
    o["sum"] = h.sum;
    o["p50"] = h.Percentile(50);
    o["p90"] = h.Percentile(90);
    o["p99"] = h.Percentile(99);
    o["max"] = h.max;
    if (!h.buckets.empty()) {
      nlohmann::ordered_json& bs = o["buckets"] = nlohmann::ordered_json::array();
      for (const auto& [ub, n] : h.buckets) bs.push_back({ub, n});
    }
  }
  return j.dump() + "\n";
}

}  // namespace remora
