// Metric tables: every counter, gauge and histogram is declared once, with its
// name, kind, unit and help text, in its subsystem's table. The registration
// and the typed handles the code updates are generated from that one entry,
// so a name cannot be registered in two places with two meanings; code that
// needs another subsystem's metric binds that subsystem's entry
// (GetMetric(r, PcacheCounters::Spec(...))) instead of naming it again.
// docs/stats.md documents every entry (tests/unit/metric_docs_test.cc checks
// both ways, with kind and unit).
//
// A table is an X-macro list, one entry per metric:
//
//   #define REMORA_VICTIM_METRICS(X)
//     X(hit, Counter, "nr_victim_hit", "lookups", "victim cache lookups ...")
//     X(entries_used, Gauge, "victim_entries_used", "entries", "...")
//
// (with a backslash ending each line but the last)
//
//   struct VictimCounters {
//     explicit VictimCounters(StatsRegistry* r) { Register(r); }
//     REMORA_METRIC_TABLE(REMORA_VICTIM_METRICS)
//   };
//
// which gives the handles (`Counter* hit; Gauge* entries_used;`: direct
// pointers, null until Register(), no lookup per update), the table itself
// (`kSpecs`, `Spec(Id::hit)`) and `Register(registry)`.
//
// Kinds: Counter, Gauge, Histogram (the unit of a histogram is what it
// records, "ns"), and CounterFamily: one counter per instance of the
// placeholder in its name (`memnode_req_<type>`, one per message type),
// looked up by the code that knows the instances. A table whose names all
// carry a placeholder (`<transport>_requests`) is registered once per
// instance: Register(r, "tcp").
#pragma once

#include <cassert>
#include <cstddef>
#include <string>
#include <string_view>

#include "remora/stats.h"

namespace remora {

enum class MetricKind { kCounter, kGauge, kHistogram };

constexpr std::string_view MetricKindName(MetricKind k) {
  switch (k) {
    case MetricKind::kCounter:
      return "counter";
    case MetricKind::kGauge:
      return "gauge";
    case MetricKind::kHistogram:
      return "histogram";
  }
  return "?";
}

struct MetricSpec {
  std::string_view name;  // may hold one placeholder, "<type>"
  MetricKind kind;
  std::string_view unit;  // what one count is ("faults", "bytes"), or what a histogram records
  std::string_view help;  // may use the name's placeholder too

  // The placeholder of a family's or a per-instance table's name, or empty.
  constexpr std::string_view placeholder() const {
    const auto open = name.find('<');
    if (open == std::string_view::npos) return {};
    return name.substr(open, name.find('>', open) + 1 - open);
  }
};

// `text` with the placeholder `placeholder` (if any) replaced by `instance`.
std::string ExpandMetricText(std::string_view text, std::string_view placeholder,
                             std::string_view instance);

// The metric `spec` declares, created on first use; `instance` fills the
// name's placeholder. A lookup by name under the registry's lock: keep the
// pointer.
template <class M>
M* GetMetric(StatsRegistry* r, const MetricSpec& spec, std::string_view instance = {});
template <>
Counter* GetMetric<Counter>(StatsRegistry* r, const MetricSpec& spec, std::string_view instance);
template <>
Gauge* GetMetric<Gauge>(StatsRegistry* r, const MetricSpec& spec, std::string_view instance);
template <>
Histogram* GetMetric<Histogram>(StatsRegistry* r, const MetricSpec& spec,
                                std::string_view instance);

// The handle of a family entry: each instance's metric on demand.
template <class M>
class MetricFamily {
 public:
  MetricFamily() = default;
  MetricFamily(StatsRegistry* r, const MetricSpec* spec) : r_(r), spec_(spec) {}
  M* Get(std::string_view instance) const { return GetMetric<M>(r_, *spec_, instance); }
  const MetricSpec& spec() const { return *spec_; }

 private:
  StatsRegistry* r_ = nullptr;
  const MetricSpec* spec_ = nullptr;
};
using CounterFamily = MetricFamily<Counter>;

namespace metric_internal {

template <class T>
struct Traits;
template <>
struct Traits<Counter> {
  static constexpr MetricKind kKind = MetricKind::kCounter;
  using Handle = Counter*;
};
template <>
struct Traits<Gauge> {
  static constexpr MetricKind kKind = MetricKind::kGauge;
  using Handle = Gauge*;
};
template <>
struct Traits<Histogram> {
  static constexpr MetricKind kKind = MetricKind::kHistogram;
  using Handle = Histogram*;
};
template <>
struct Traits<CounterFamily> {
  static constexpr MetricKind kKind = MetricKind::kCounter;
  using Handle = CounterFamily;
};

template <class M>
void Bind(StatsRegistry* r, const MetricSpec& spec, std::string_view instance, M** handle) {
  *handle = GetMetric<M>(r, spec, instance);
}
template <class M>
void Bind(StatsRegistry* r, const MetricSpec& spec, std::string_view, MetricFamily<M>* handle) {
  *handle = MetricFamily<M>(r, &spec);
}

}  // namespace metric_internal

}  // namespace remora

#define REMORA_METRIC_ID_(handle, ...) handle,
#define REMORA_METRIC_SPEC_(handle, type, name, unit, help) \
  ::remora::MetricSpec{name, ::remora::metric_internal::Traits<::remora::type>::kKind, unit, help},
#define REMORA_METRIC_BIND_(handle, ...) \
  ::remora::metric_internal::Bind(r, Spec(Id::handle), instance, &handle);
#define REMORA_METRIC_HANDLE_(handle, type, ...) \
  ::remora::metric_internal::Traits<::remora::type>::Handle handle{};

// Inside a struct: the table LIST declares (see the top of this file).
#define REMORA_METRIC_TABLE(LIST)                                               \
  enum class Id : std::size_t { LIST(REMORA_METRIC_ID_) };                      \
  static constexpr ::remora::MetricSpec kSpecs[] = {LIST(REMORA_METRIC_SPEC_)}; \
  static constexpr const ::remora::MetricSpec& Spec(Id id) {                    \
    return kSpecs[static_cast<std::size_t>(id)];                                \
  }                                                                             \
  void Register(::remora::StatsRegistry* r, std::string_view instance = {}){    \
      LIST(REMORA_METRIC_BIND_)} LIST(REMORA_METRIC_HANDLE_)
