// Rendering of stats snapshots: table for people, JSON for tools, Prometheus
// text for scrapers.
#include <fmt/format.h>

#include <string>

#include "remora/stats.h"

namespace remora {
namespace {

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += c;
    }
  }
  return out;
}

std::string PromName(const std::string& name) {
  std::string out = "remora_";
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
}

}  // namespace

std::string StatsSnapshot::ToTable() const {
  std::string out;
  std::size_t width = 24;
  for (const auto& [n, v] : counters) width = std::max(width, n.size());
  for (const auto& [n, h] : histograms) width = std::max(width, n.size());
  for (const auto& [n, v] : counters) out += fmt::format("  {:<{}} {:>14}\n", n, width, v);
  for (const auto& [n, h] : histograms) {
    out += fmt::format("  {:<{}} count={} p50={} p90={} p99={} max={} {}\n", n, width, h.count,
                       h.Percentile(50), h.Percentile(90), h.Percentile(99), h.max, h.unit);
  }
  return out;
}

std::string StatsSnapshot::ToJson() const {
  std::string out = "{\"counters\": {";
  bool first = true;
  for (const auto& [n, v] : counters) {
    out += fmt::format("{}\"{}\": {}", first ? "" : ", ", JsonEscape(n), v);
    first = false;
  }
  out += "}, \"gauges\": [";
  first = true;
  for (const auto& [n, g] : is_gauge) {
    if (!g) continue;
    out += fmt::format("{}\"{}\"", first ? "" : ", ", JsonEscape(n));
    first = false;
  }
  out += "], \"histograms\": {";
  first = true;
  for (const auto& [n, h] : histograms) {
    out += fmt::format(
        "{}\"{}\": {{\"unit\": \"{}\", \"count\": {}, \"sum\": {}, \"min\": {}, \"mean\": {:.1f}, "
        "\"p50\": {}, \"p90\": {}, \"p99\": {}, \"max\": {}}}",
        first ? "" : ", ", JsonEscape(n), JsonEscape(h.unit), h.count, h.sum, h.min, h.Mean(),
        h.Percentile(50), h.Percentile(90), h.Percentile(99), h.max);
    first = false;
  }
  out += "}}\n";
  return out;
}

std::string StatsSnapshot::ToPrometheus() const {
  std::string out;
  for (const auto& [n, v] : counters) {
    std::string pn = PromName(n);
    auto h = help.find(n);
    if (h != help.end() && !h->second.empty()) out += fmt::format("# HELP {} {}\n", pn, h->second);
    auto g = is_gauge.find(n);
    out += fmt::format("# TYPE {} {}\n{} {}\n", pn,
                       (g != is_gauge.end() && g->second) ? "gauge" : "counter", pn, v);
  }
  for (const auto& [n, hs] : histograms) {
    std::string pn = PromName(n) + "_" + hs.unit;
    auto h = help.find(n);
    if (h != help.end() && !h->second.empty()) out += fmt::format("# HELP {} {}\n", pn, h->second);
    out += fmt::format("# TYPE {} summary\n", pn);
    for (double q : {0.5, 0.9, 0.99})
      out += fmt::format("{}{{quantile=\"{}\"}} {}\n", pn, q, hs.Percentile(q * 100));
    out += fmt::format("{}_sum {}\n{}_count {}\n", pn, hs.sum, pn, hs.count);
  }
  return out;
}

}  // namespace remora
