#include "remora/stats.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

namespace remora {
namespace {

TEST(StatsTest, CounterSumsAcrossThreads) {
  StatsRegistry reg;
  Counter* c = reg.GetCounter("nr_pgfault", "page faults");
  EXPECT_EQ(c, reg.GetCounter("nr_pgfault"));  // same object by name
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([c] {
      for (int i = 0; i < 100000; ++i) c->Inc();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c->Value(), 800000u);
  EXPECT_EQ(reg.Snapshot().Counter("nr_pgfault"), 800000);
}

TEST(StatsTest, GaugeGoesUpAndDown) {
  StatsRegistry reg;
  Gauge* g = reg.GetGauge("pcache_lines_used");
  std::thread a([g] {
    for (int i = 0; i < 1000; ++i) g->Add(1);
  });
  std::thread b([g] {
    for (int i = 0; i < 400; ++i) g->Sub(1);
  });
  a.join();
  b.join();
  EXPECT_EQ(g->Value(), 600);
  auto snap = reg.Snapshot();
  EXPECT_TRUE(snap.is_gauge.at("pcache_lines_used"));
}

TEST(StatsTest, HistogramBucketsAreOrderedAndTight) {
  int prev = -1;
  for (std::uint64_t v :
       {0ull, 1ull, 15ull, 16ull, 17ull, 31ull, 32ull, 1000ull, 123456789ull, ~0ull}) {
    int b = Histogram::BucketOf(v);
    EXPECT_GT(b, prev) << v;
    prev = b;
    EXPECT_LT(b, Histogram::kBuckets);
    std::uint64_t ub = Histogram::BucketUpperBound(b);
    EXPECT_GE(ub, v);
    // Relative width of a bucket is at most 1/16.
    if (v >= 16) {
      EXPECT_LE(static_cast<double>(ub - v) / static_cast<double>(v), 1.0 / 16 + 1e-9);
    }
  }
}

TEST(StatsTest, PercentilesOfUniformValues) {
  StatsRegistry reg;
  Histogram* h = reg.GetHistogram("fault_ns", "ns");
  for (std::uint64_t v = 1; v <= 10000; ++v) h->Record(v);
  auto s = h->Snapshot();
  EXPECT_EQ(s.count, 10000u);
  EXPECT_EQ(s.min, 1u);
  EXPECT_EQ(s.max, 10000u);
  EXPECT_EQ(s.sum, 10000u * 10001u / 2);
  auto near = [](std::uint64_t got, double want) {
    return std::abs(static_cast<double>(got) - want) <= want / 16 + 1;
  };
  EXPECT_TRUE(near(s.Percentile(50), 5000)) << s.Percentile(50);
  EXPECT_TRUE(near(s.Percentile(90), 9000)) << s.Percentile(90);
  EXPECT_TRUE(near(s.Percentile(99), 9900)) << s.Percentile(99);
  EXPECT_EQ(s.Percentile(100), 10000u);
}

TEST(StatsTest, EmptyHistogramIsZero) {
  StatsRegistry reg;
  auto s = reg.GetHistogram("x")->Snapshot();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.Percentile(99), 0u);
  EXPECT_EQ(s.min, 0u);
}

TEST(StatsTest, RenderingsNameEveryMetric) {
  StatsRegistry reg;
  reg.GetCounter("nr_pcache_eviction_succeed", "lines evicted")->Add(7);
  reg.GetGauge("memnode_pages_used")->Add(3);
  reg.GetHistogram("fault_service_ns", "ns", "fault latency")->Record(1500);
  auto snap = reg.Snapshot();

  std::string json = snap.ToJson();
  EXPECT_NE(json.find("\"counters\": {"), std::string::npos);
  EXPECT_NE(json.find("\"nr_pcache_eviction_succeed\": 7"), std::string::npos);
  EXPECT_NE(json.find("\"memnode_pages_used\": 3"), std::string::npos);
  EXPECT_NE(json.find("\"histograms\": {\"fault_service_ns\": {"), std::string::npos);
  EXPECT_NE(json.find("\"p99\": "), std::string::npos);

  std::string prom = snap.ToPrometheus();
  EXPECT_NE(prom.find("# TYPE remora_nr_pcache_eviction_succeed counter\n"
                      "remora_nr_pcache_eviction_succeed 7\n"),
            std::string::npos);
  EXPECT_NE(prom.find("# TYPE remora_memnode_pages_used gauge"), std::string::npos);
  EXPECT_NE(prom.find("remora_fault_service_ns_ns_count 1"), std::string::npos);
  EXPECT_NE(prom.find("# HELP remora_nr_pcache_eviction_succeed lines evicted"), std::string::npos);

  std::string table = snap.ToTable();
  EXPECT_NE(table.find("nr_pcache_eviction_succeed"), std::string::npos);
  EXPECT_NE(table.find("p50="), std::string::npos);
}

TEST(StatsTest, ShardsDoNotShareCacheLines) { EXPECT_GE(alignof(stats_internal::PaddedCell), 64u); }

}  // namespace
}  // namespace remora

namespace remora {
namespace {

TEST(StatsTest, JsonRoundTrip) {
  StatsRegistry reg;
  reg.GetCounter("nr_pgfault")->Add(42);
  reg.GetGauge("memnode_pages_used")->Add(-3);
  auto* h = reg.GetHistogram("fault_service_ns");
  for (int i = 1; i <= 100; ++i) h->Record(static_cast<std::uint64_t>(i) * 1000);
  auto snap = reg.Snapshot();
  StatsSnapshot back;
  ASSERT_TRUE(StatsSnapshot::FromJson(snap.ToJson(), &back).ok());
  EXPECT_EQ(back.Counter("nr_pgfault"), 42);
  EXPECT_EQ(back.Counter("memnode_pages_used"), -3);
  // Which values are gauges survives the trip (rates are for counters only).
  EXPECT_TRUE(back.IsGauge("memnode_pages_used"));
  EXPECT_FALSE(back.IsGauge("nr_pgfault"));
  const auto& hb = back.histograms.at("fault_service_ns");
  const auto& ho = snap.histograms.at("fault_service_ns");
  EXPECT_EQ(hb.count, 100u);
  EXPECT_EQ(hb.max, ho.max);
  EXPECT_EQ(hb.Percentile(50), ho.Percentile(50));
  EXPECT_EQ(hb.Percentile(99), ho.Percentile(99));
}

TEST(StatsTest, HistogramSinceIsTheIntervalsDistribution) {
  StatsRegistry reg;
  auto* h = reg.GetHistogram("pgfault_service_ns");
  for (int i = 0; i < 1000; ++i) h->Record(5000);  // before: 5 us
  const HistogramSnapshot before = h->Snapshot();
  for (int i = 0; i < 100; ++i) h->Record(200000);  // the interval: 200 us
  for (int i = 0; i < 10; ++i) h->Record(90);
  const HistogramSnapshot after = h->Snapshot();
  const HistogramSnapshot d = after.Since(before);
  EXPECT_EQ(d.count, 110u);
  EXPECT_EQ(d.sum, 100u * 200000 + 10 * 90);
  // Over the whole run the median is 5 us; in the interval it is ~200 us.
  EXPECT_GE(after.Percentile(50), 5000u);
  EXPECT_LE(after.Percentile(50), 5000u * 17 / 16);
  EXPECT_GE(d.Percentile(50), 200000u * 15 / 16);
  EXPECT_LE(d.Percentile(50), 200000u * 17 / 16);
  EXPECT_GE(d.Percentile(5), 90u);
  EXPECT_LE(d.Percentile(5), 91u);  // the bucket of 88..91
  EXPECT_EQ(d.min, 90u);
  EXPECT_EQ(d.max, 200000u);
  // Nothing recorded: an empty interval.
  EXPECT_EQ(after.Since(after).count, 0u);
  EXPECT_EQ(after.Since(after).Percentile(99), 0u);
}

TEST(StatsTest, TimelineLineSeparatesCountersGaugesAndKeepsBuckets) {
  StatsRegistry reg;
  reg.GetCounter("nr_pgfault")->Add(7);
  reg.GetGauge("pcache_lines_used")->Add(3);
  auto* h = reg.GetHistogram("pgfault_service_ns");
  h->Record(1000);
  h->Record(1000);
  h->Record(50000);
  const std::string line = reg.Snapshot().ToTimelineJson(1.23456, 1700000000.5);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  EXPECT_NE(line.find("\"t\":1.235"), std::string::npos) << line;
  EXPECT_NE(line.find("\"unix\":1700000000.5"), std::string::npos) << line;
  EXPECT_NE(line.find("\"counters\":{\"nr_pgfault\":7}"), std::string::npos) << line;
  EXPECT_NE(line.find("\"gauges\":{\"pcache_lines_used\":3}"), std::string::npos) << line;
  EXPECT_NE(line.find("\"count\":3"), std::string::npos) << line;
  EXPECT_NE(line.find("\"buckets\":[[1023,2],["), std::string::npos) << line;
  // A snapshot parsed from JSON has no buckets to write.
  StatsSnapshot parsed;
  ASSERT_TRUE(StatsSnapshot::FromJson(reg.Snapshot().ToJson(), &parsed).ok());
  const std::string from_json = parsed.ToTimelineJson(0, 0);
  EXPECT_EQ(from_json.find("buckets"), std::string::npos) << from_json;
  EXPECT_NE(from_json.find("\"gauges\":{\"pcache_lines_used\":3}"), std::string::npos) << from_json;
}

TEST(StatsTest, FromJsonRejectsGarbage) {
  StatsSnapshot s;
  EXPECT_EQ(StatsSnapshot::FromJson("{not json", &s).code(), Code::kBadRequest);
  EXPECT_EQ(StatsSnapshot::FromJson("{\"histograms\": {}}", &s).code(), Code::kBadRequest);
  EXPECT_EQ(StatsSnapshot::FromJson("{\"counters\": {\"x\": \"y\"}}", &s).code(),
            Code::kBadRequest);
}

}  // namespace
}  // namespace remora
