// Reading a JSON snapshot back into a StatsSnapshot, so that `remora stats`
// can render a remote node's counters in any format and tools can compare runs.
#include <nlohmann/json.hpp>

#include "remora/stats.h"

namespace remora {

Status StatsSnapshot::FromJson(const std::string& text, StatsSnapshot* out) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return {Code::kBadRequest, std::string("stats JSON does not parse: ") + e.what()};
  }
  if (!j.is_object() || !j.contains("counters") || !j["counters"].is_object())
    return {Code::kBadRequest, "stats JSON has no \"counters\" object"};
  StatsSnapshot s;
  try {
    for (auto& [name, v] : j["counters"].items()) s.counters[name] = v.get<std::int64_t>();
    if (j.contains("gauges")) {
      for (const auto& name : j["gauges"]) s.is_gauge[name.get<std::string>()] = true;
    }
    for (const auto& [name, v] : s.counters) s.is_gauge.emplace(name, false);
    if (j.contains("histograms")) {
      for (auto& [name, h] : j["histograms"].items()) {
        HistogramSnapshot hs;
        hs.unit = h.value("unit", "");
        hs.count = h.value("count", 0ull);
        hs.sum = h.value("sum", 0ull);
        hs.min = h.value("min", 0ull);
        hs.max = h.value("max", 0ull);
        hs.quantiles[50] = h.value("p50", 0ull);
        hs.quantiles[90] = h.value("p90", 0ull);
        hs.quantiles[99] = h.value("p99", 0ull);
        s.histograms[name] = std::move(hs);
      }
    }
  } catch (const std::exception& e) {
    return {Code::kBadRequest, std::string("stats JSON has a malformed value: ") + e.what()};
  }
  *out = std::move(s);
  return Status::Ok();
}

}  // namespace remora
