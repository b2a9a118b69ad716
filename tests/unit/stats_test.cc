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
  const auto& hb = back.histograms.at("fault_service_ns");
  const auto& ho = snap.histograms.at("fault_service_ns");
  EXPECT_EQ(hb.count, 100u);
  EXPECT_EQ(hb.max, ho.max);
  EXPECT_EQ(hb.Percentile(50), ho.Percentile(50));
  EXPECT_EQ(hb.Percentile(99), ho.Percentile(99));
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
