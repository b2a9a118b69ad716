// The Prometheus rendering of a stats snapshot (metrics/prometheus_text.h):
// names, types, HELP, and histogram buckets that are exact and cumulative.
#include "metrics/prometheus_text.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>
#include <string>

namespace remora::metrics {
namespace {

bool Has(const std::string& text, const std::string& piece) {
  return text.find(piece) != std::string::npos;
}

// "name{le=\"x\"} v" lines of one histogram: le -> v, in text order.
std::vector<std::pair<std::string, std::uint64_t>> Buckets(const std::string& text,
                                                           const std::string& name) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  std::istringstream in(text);
  std::string line;
  const std::string prefix = name + "_bucket{le=\"";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    const auto close = line.find("\"}", prefix.size());
    out.emplace_back(line.substr(prefix.size(), close - prefix.size()),
                     std::stoull(line.substr(close + 3)));
  }
  return out;
}

TEST(PrometheusTextTest, CountersGaugesAndHelp) {
  StatsRegistry reg;
  reg.GetCounter("nr_pgfault", "faults served")->Add(7);
  reg.GetCounter("tcp_requests")->Add(2);  // no help: no HELP line
  reg.GetGauge("pcache_lines_used", "lines holding a page\\with a \"quote\"\nand a newline")
      ->Add(3);
  const std::string text = ToPrometheusText(reg.Snapshot());

  EXPECT_TRUE(Has(text,
                  "# HELP remora_nr_pgfault_total faults served\n"
                  "# TYPE remora_nr_pgfault_total counter\n"
                  "remora_nr_pgfault_total 7\n"));
  EXPECT_TRUE(Has(text, "# TYPE remora_tcp_requests_total counter\nremora_tcp_requests_total 2\n"));
  EXPECT_FALSE(Has(text, "# HELP remora_tcp_requests_total"));
  // HELP escapes backslash and newline only; quotes stay.
  EXPECT_TRUE(
      Has(text,
          "# HELP remora_pcache_lines_used lines holding a page\\\\with a \"quote\"\\nand "
          "a newline\n# TYPE remora_pcache_lines_used gauge\nremora_pcache_lines_used 3\n"));
}

TEST(PrometheusTextTest, NamesAreSanitized) {
  EXPECT_EQ(PrometheusName("memnode_err_no-such-space"), "remora_memnode_err_no_such_space");
  EXPECT_EQ(PrometheusName("a.b c"), "remora_a_b_c");
}

TEST(PrometheusTextTest, LatencyHistogramInSecondsWithPowerOfTwoBuckets) {
  StatsRegistry reg;
  Histogram* h = reg.GetHistogram("pgfault_service_ns", "ns", "fault service time");
  h->Record(100);                   // below the first bound (128 ns)
  h->Record(1023);                  // below 1024 ns
  h->Record(1024);                  // not below 1024 ns
  h->Record(5000);                  // below 8192 ns
  h->Record(1'000'000'000'000ull);  // 1000 s: only +Inf
  const std::string text = ToPrometheusText(reg.Snapshot());
  const std::string n = "remora_pgfault_service_seconds";

  EXPECT_TRUE(Has(text, "# HELP " + n + " fault service time\n# TYPE " + n + " histogram\n"));
  const auto b = Buckets(text, n);
  ASSERT_EQ(b.size(), 34u - 7u + 1u + 1u);  // 2^7 .. 2^34 ns, then +Inf
  std::map<std::string, std::uint64_t> by_le(b.begin(), b.end());
  EXPECT_EQ(b.front(), (std::pair<std::string, std::uint64_t>{"1.28e-07", 1}));
  EXPECT_EQ(by_le.at("5.12e-07"), 1u);
  EXPECT_EQ(by_le.at("1.024e-06"), 2u);  // 100 and 1023: exact at the edge
  EXPECT_EQ(by_le.at("2.048e-06"), 3u);
  EXPECT_EQ(by_le.at("4.096e-06"), 3u);
  EXPECT_EQ(by_le.at("8.192e-06"), 4u);
  EXPECT_EQ(b[b.size() - 2].first, "17.179869184");
  EXPECT_EQ(b[b.size() - 2].second, 4u);
  EXPECT_EQ(b.back(), (std::pair<std::string, std::uint64_t>{"+Inf", 5}));
  EXPECT_TRUE(Has(text, n + "_count 5\n"));
  EXPECT_TRUE(Has(text, n + "_sum 1000.000007147\n"));
}

TEST(PrometheusTextTest, BucketsAreCumulativeAndMatchACount) {
  StatsRegistry reg;
  Histogram* h = reg.GetHistogram("memnode_request_ns", "ns");
  std::mt19937_64 rng(15);
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 20000; ++i) {
    // Log-uniform over 2^4 .. 2^36 ns.
    const int shift = static_cast<int>(rng() % 32) + 4;
    values.push_back((std::uint64_t{1} << shift) + rng() % (std::uint64_t{1} << shift));
    h->Record(values.back());
  }
  const auto b = Buckets(ToPrometheusText(reg.Snapshot()), "remora_memnode_request_seconds");
  ASSERT_FALSE(b.empty());
  std::uint64_t prev = 0;
  for (std::size_t i = 0; i + 1 < b.size(); ++i) {
    EXPECT_GE(b[i].second, prev);
    prev = b[i].second;
    const std::uint64_t edge = std::uint64_t{1} << (7 + i);
    std::uint64_t below = 0;
    for (std::uint64_t v : values) below += v < edge;
    EXPECT_EQ(b[i].second, below) << "le=" << b[i].first;
  }
  EXPECT_EQ(b.back().second, values.size());
}

TEST(PrometheusTextTest, OtherUnitsKeepTheirNameAndUnit) {
  StatsRegistry reg;
  Histogram* h = reg.GetHistogram("batch_pages", "pages", "pages per batch");
  h->Record(3);
  h->Record(64);
  const std::string text = ToPrometheusText(reg.Snapshot());
  EXPECT_TRUE(Has(text, "# TYPE remora_batch_pages histogram\n"));
  EXPECT_TRUE(Has(text, "remora_batch_pages_bucket{le=\"4\"} 1\n"));
  EXPECT_TRUE(Has(text, "remora_batch_pages_bucket{le=\"64\"} 1\n"));
  EXPECT_TRUE(Has(text, "remora_batch_pages_bucket{le=\"128\"} 2\n"));
  EXPECT_TRUE(Has(text, "remora_batch_pages_sum 67\n"));
  EXPECT_TRUE(Has(text, "remora_batch_pages_count 2\n"));
}

}  // namespace
}  // namespace remora::metrics
