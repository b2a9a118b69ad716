#include "remora/stats.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>

namespace remora {

namespace stats_internal {
std::size_t ThisThreadShard() {
  static std::atomic<std::size_t> next{0};
  thread_local std::size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}
}  // namespace stats_internal

std::uint64_t MonotonicNs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t Counter::Value() const {
  std::int64_t sum = 0;
  for (const auto& c : cells_) sum += c.v.load(std::memory_order_relaxed);
  return static_cast<std::uint64_t>(sum);
}

std::int64_t Gauge::Value() const {
  std::int64_t sum = 0;
  for (const auto& c : cells_) sum += c.v.load(std::memory_order_relaxed);
  return sum;
}

// ---- Histogram ----

struct alignas(64) Histogram::Shard {
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint64_t> min{std::numeric_limits<std::uint64_t>::max()};
  std::atomic<std::uint64_t> max{0};
  std::atomic<std::uint64_t> buckets[Histogram::kBuckets] = {};
};

Histogram::Histogram(std::string name, std::string unit, std::string help)
    : name_(std::move(name)),
      unit_(std::move(unit)),
      help_(std::move(help)),
      shards_(new Shard[stats_internal::kShards]) {}

int Histogram::BucketOf(std::uint64_t v) {
  constexpr std::uint64_t kSub = 1u << kSubBits;
  if (v < kSub) return static_cast<int>(v);
  int msb = 63 - __builtin_clzll(v);  // >= kSubBits
  int shift = msb - kSubBits;         // bits below the sub-bucket bits
  int sub = static_cast<int>((v >> shift) & (kSub - 1));
  return ((shift + 1) << kSubBits) + sub;
}

std::uint64_t Histogram::BucketUpperBound(int b) {
  constexpr int kSub = 1 << kSubBits;
  if (b < kSub) return static_cast<std::uint64_t>(b);
  int shift = (b >> kSubBits) - 1;
  std::uint64_t sub = static_cast<std::uint64_t>(b & (kSub - 1));
  std::uint64_t lo = (std::uint64_t{kSub} | sub) << shift;
  std::uint64_t width = std::uint64_t{1} << shift;
  return lo + width - 1;
}

Histogram::~Histogram() = default;

void Histogram::Record(std::uint64_t v) {
  Shard& s = shards_[stats_internal::ThisThreadShard()];
  s.count.fetch_add(1, std::memory_order_relaxed);
  s.sum.fetch_add(v, std::memory_order_relaxed);
  s.buckets[BucketOf(v)].fetch_add(1, std::memory_order_relaxed);
  std::uint64_t cur = s.min.load(std::memory_order_relaxed);
  while (v < cur && !s.min.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
  cur = s.max.load(std::memory_order_relaxed);
  while (v > cur && !s.max.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot snap;
  snap.unit = unit_;
  std::uint64_t mn = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::uint64_t> counts(kBuckets, 0);
  for (std::size_t i = 0; i < stats_internal::kShards; ++i) {
    const Shard& s = shards_[i];
    snap.count += s.count.load(std::memory_order_relaxed);
    snap.sum += s.sum.load(std::memory_order_relaxed);
    mn = std::min(mn, s.min.load(std::memory_order_relaxed));
    snap.max = std::max(snap.max, s.max.load(std::memory_order_relaxed));
    for (int b = 0; b < kBuckets; ++b) counts[b] += s.buckets[b].load(std::memory_order_relaxed);
  }
  snap.min = snap.count ? mn : 0;
  for (int b = 0; b < kBuckets; ++b)
    if (counts[b]) snap.buckets.emplace_back(BucketUpperBound(b), counts[b]);
  return snap;
}

std::uint64_t HistogramSnapshot::Percentile(double p) const {
  if (count == 0) return 0;
  if (buckets.empty()) {
    auto it = quantiles.lower_bound(p);
    return it == quantiles.end() ? max : it->second;
  }
  std::uint64_t total = 0;
  for (const auto& [ub, c] : buckets) total += c;  // bucket counts may lag `count`
  double rank = p / 100.0 * static_cast<double>(total);
  std::uint64_t seen = 0;
  for (const auto& [ub, c] : buckets) {
    seen += c;
    if (static_cast<double>(seen) >= rank) return std::clamp(ub, min, max);
  }
  return max;
}

ScopedLatency::ScopedLatency(Histogram* h) : h_(h), start_ns_(h ? MonotonicNs() : 0) {}
ScopedLatency::~ScopedLatency() {
  if (h_) h_->Record(MonotonicNs() - start_ns_);
}

// ---- Registry ----

Counter* StatsRegistry::GetCounter(std::string_view name, std::string_view help) {
  std::lock_guard lk(mu_);
  auto it = counters_.find(name);
  if (it != counters_.end()) return it->second.get();
  auto* c = new Counter(std::string(name), std::string(help));
  counters_.emplace(std::string(name), std::unique_ptr<Counter>(c));
  return c;
}

Gauge* StatsRegistry::GetGauge(std::string_view name, std::string_view help) {
  std::lock_guard lk(mu_);
  auto it = gauges_.find(name);
  if (it != gauges_.end()) return it->second.get();
  auto* g = new Gauge(std::string(name), std::string(help));
  gauges_.emplace(std::string(name), std::unique_ptr<Gauge>(g));
  return g;
}

Histogram* StatsRegistry::GetHistogram(std::string_view name, std::string_view unit,
                                       std::string_view help) {
  std::lock_guard lk(mu_);
  auto it = histograms_.find(name);
  if (it != histograms_.end()) return it->second.get();
  auto* h = new Histogram(std::string(name), std::string(unit), std::string(help));
  histograms_.emplace(std::string(name), std::unique_ptr<Histogram>(h));
  return h;
}

StatsSnapshot StatsRegistry::Snapshot() const {
  StatsSnapshot s;
  std::lock_guard lk(mu_);
  for (const auto& [name, c] : counters_) {
    s.counters[name] = static_cast<std::int64_t>(c->Value());
    s.help[name] = c->help();
    s.is_gauge[name] = false;
  }
  for (const auto& [name, g] : gauges_) {
    s.counters[name] = g->Value();
    s.help[name] = g->help();
    s.is_gauge[name] = true;
  }
  for (const auto& [name, h] : histograms_) {
    s.histograms[name] = h->Snapshot();
    s.help[name] = h->help();
  }
  return s;
}

}  // namespace remora
