#include "remora/metric_table.h"

#include <utility>

namespace remora {

std::string ExpandMetricText(std::string_view text, std::string_view placeholder,
                             std::string_view instance) {
  std::string out(text);
  if (placeholder.empty()) return out;
  const auto at = out.find(placeholder);
  if (at != std::string::npos) out.replace(at, placeholder.size(), instance);
  return out;
}

namespace {

// The name and help of `spec`'s instance. A name with a placeholder needs
// an instance: registering "<transport>_requests" itself would be a bug.
std::pair<std::string, std::string> NameAndHelp(const MetricSpec& spec, std::string_view instance) {
  const std::string_view ph = spec.placeholder();
  assert(ph.empty() == instance.empty());
  return {ExpandMetricText(spec.name, ph, instance), ExpandMetricText(spec.help, ph, instance)};
}

}  // namespace

template <>
Counter* GetMetric<Counter>(StatsRegistry* r, const MetricSpec& spec, std::string_view instance) {
  assert(spec.kind == MetricKind::kCounter);
  auto [name, help] = NameAndHelp(spec, instance);
  return r->GetCounter(name, help);
}

template <>
Gauge* GetMetric<Gauge>(StatsRegistry* r, const MetricSpec& spec, std::string_view instance) {
  assert(spec.kind == MetricKind::kGauge);
  auto [name, help] = NameAndHelp(spec, instance);
  return r->GetGauge(name, help);
}

template <>
Histogram* GetMetric<Histogram>(StatsRegistry* r, const MetricSpec& spec,
                                std::string_view instance) {
  assert(spec.kind == MetricKind::kHistogram);
  auto [name, help] = NameAndHelp(spec, instance);
  return r->GetHistogram(name, spec.unit, help);
}

}  // namespace remora
