// A stats snapshot in the Prometheus text exposition format (0.0.4).
//
// Naming, from the registry's names (docs/stats.md):
//   counter    nr_pgfault          -> remora_nr_pgfault_total       (TYPE counter)
//   gauge      pcache_lines_used   -> remora_pcache_lines_used      (TYPE gauge)
//   histogram  pgfault_service_ns  -> remora_pgfault_service_seconds (TYPE histogram)
// Characters outside [a-zA-Z0-9_] become '_'. HELP is the metric table's
// description.
//
// Histograms: the registry records integers (ns for latencies) into
// log-linear buckets whose edges fall on every power of two, so the exported
// cumulative buckets end at powers of two — 128 ns to 2^34 ns (17 s) for
// latencies, in seconds, then +Inf — and are exact: `le="1.024e-06"` counts
// the latencies below 1024 ns. (A value of exactly 2^k ns counts in the next
// bucket up; at ns resolution that is immaterial.) A histogram in another
// unit keeps its unit and its name, with buckets 1, 2, 4, ... 2^40.
// `_count` and the +Inf bucket are the sum of the bucket counts, so they
// agree even while other threads record.
#pragma once

#include <string>

#include "remora/stats.h"

namespace remora::metrics {

std::string ToPrometheusText(const StatsSnapshot& snapshot);

// The exposition-format name of a registry name (`remora_` + sanitized).
std::string PrometheusName(const std::string& name);

}  // namespace remora::metrics
