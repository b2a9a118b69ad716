#include "metrics/prometheus_text.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>
#include <string_view>

namespace remora::metrics {
namespace {

constexpr int kLatencyMinShift = 7;   // 128 ns
constexpr int kLatencyMaxShift = 34;  // ~17 s
constexpr int kOtherMaxShift = 40;

// HELP text: backslash and newline are the only characters to escape.
std::string EscapeHelp(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void Header(std::string* out, const std::string& name, const std::string& help,
            std::string_view type) {
  if (!help.empty()) *out += fmt::format("# HELP {} {}\n", name, EscapeHelp(help));
  *out += fmt::format("# TYPE {} {}\n", name, type);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void AppendHistogram(std::string* out, const std::string& name, const std::string& help,
                     const HistogramSnapshot& h) {
  const bool ns = h.unit == "ns";
  std::string base = name;
  if (ns && EndsWith(base, "_ns")) base.resize(base.size() - 3);
  const std::string pn = PrometheusName(base) + (ns ? "_seconds" : "");
  Header(out, pn, help, "histogram");
  // h.buckets: (inclusive upper bound, count) of the non-empty buckets, in
  // increasing order. A bucket ends below 2^k iff its upper bound < 2^k.
  const int first = ns ? kLatencyMinShift : 0;
  const int last = ns ? kLatencyMaxShift : kOtherMaxShift;
  std::uint64_t cumulative = 0;
  std::size_t next = 0;
  for (int k = first; k <= last; ++k) {
    const std::uint64_t edge = std::uint64_t{1} << k;
    while (next < h.buckets.size() && h.buckets[next].first < edge)
      cumulative += h.buckets[next++].second;
    if (ns)
      *out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", pn, static_cast<double>(edge) / 1e9,
                          cumulative);
    else
      *out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", pn, edge, cumulative);
  }
  while (next < h.buckets.size()) cumulative += h.buckets[next++].second;
  *out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", pn, cumulative);
  if (ns)
    *out += fmt::format("{}_sum {}\n", pn, static_cast<double>(h.sum) / 1e9);
  else
    *out += fmt::format("{}_sum {}\n", pn, h.sum);
  *out += fmt::format("{}_count {}\n", pn, cumulative);
}

}  // namespace

std::string PrometheusName(const std::string& name) {
  std::string out = "remora_";
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string ToPrometheusText(const StatsSnapshot& s) {
  std::string out;
  auto help_of = [&](const std::string& n) {
    auto it = s.help.find(n);
    return it == s.help.end() ? std::string() : it->second;
  };
  for (const auto& [n, v] : s.counters) {
    auto g = s.is_gauge.find(n);
    const bool gauge = g != s.is_gauge.end() && g->second;
    const std::string pn = PrometheusName(n) + (gauge ? "" : "_total");
    Header(&out, pn, help_of(n), gauge ? "gauge" : "counter");
    out += fmt::format("{} {}\n", pn, v);
  }
  for (const auto& [n, h] : s.histograms) AppendHistogram(&out, n, help_of(n), h);
  return out;
}

}  // namespace remora::metrics
