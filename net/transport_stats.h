// The transports' metrics, one table per part (see remora/metric_table.h):
// the stream client and server, registered once per prefix, and the shared
// memory and RDMA transports' own. docs/stats.md describes each.
#pragma once

#include <string_view>

#include "remora/metric_table.h"

namespace remora {

// The prefixes stream clients register under: one per transport that talks
// to the memory node through one (RDMA's is its control connection).
inline constexpr std::string_view kTcpStatsPrefix = "tcp";
inline constexpr std::string_view kShmStatsPrefix = "shm";
inline constexpr std::string_view kRdmaControlStatsPrefix = "rdma_ctl";
// The prefix of the memory node's stream server.
inline constexpr std::string_view kMemoryNodeServerStatsPrefix = "memnode";

#define REMORA_STREAM_CLIENT_METRICS(X)                                                          \
  X(requests, Counter, "<transport>_requests", "requests", "requests sent to the memory node")   \
  X(bytes_sent, Counter, "<transport>_bytes_sent", "bytes", "bytes sent to the memory node")     \
  X(bytes_received, Counter, "<transport>_bytes_received", "bytes",                              \
    "bytes received from the memory node")                                                       \
  X(timeouts, Counter, "<transport>_timeouts", "requests", "requests that got no reply in time") \
  X(rtt, Histogram, "<transport>_rtt_ns", "ns", "request round trip, send to reply")

struct StreamClientMetrics {
  static constexpr std::string_view kInstances[] = {kTcpStatsPrefix, kShmStatsPrefix,
                                                    kRdmaControlStatsPrefix};
  REMORA_METRIC_TABLE(REMORA_STREAM_CLIENT_METRICS)
};

#define REMORA_STREAM_SERVER_METRICS(X)                                                    \
  X(accepted, Counter, "<server>_connections", "connections", "connections accepted")      \
  X(open, Gauge, "<server>_connections_open", "connections", "connections currently open") \
  X(bytes_in, Counter, "<server>_bytes_in", "bytes", "bytes received from peers")          \
  X(bytes_out, Counter, "<server>_bytes_out", "bytes", "bytes sent to peers")              \
  X(violations, Counter, "<server>_protocol_violations", "connections",                    \
    "connections dropped for bad magic, version or size")                                  \
  X(truncated, Counter, "<server>_truncated_messages", "connections",                      \
    "connections that ended in the middle of a message")                                   \
  X(deadline_closes, Counter, "<server>_deadline_closes", "connections",                   \
    "connections dropped for missing a deadline")                                          \
  X(integrity_failures, Counter, "<server>_integrity_failures", "connections",             \
    "connections dropped for a frame whose tag did not verify")                            \
  X(queued, Gauge, "<server>_queued_bytes", "bytes", "replies queued for all peers")       \
  X(budget_pauses, Counter, "<server>_budget_pauses", "pauses",                            \
    "times a peer was not read from because the global reply budget was spent")

struct StreamServerMetrics {
  static constexpr std::string_view kInstances[] = {kMemoryNodeServerStatsPrefix};
  REMORA_METRIC_TABLE(REMORA_STREAM_SERVER_METRICS)
};

#define REMORA_SHM_TRANSPORT_METRICS(X)                                                    \
  X(onesided, Counter, "shm_reads_onesided", "pages", "pages read from the shared region") \
  X(retries, Counter, "shm_read_retries", "reads",                                         \
    "one-sided read attempts discarded by the sequence check")                             \
  X(fallbacks, Counter, "shm_read_fallbacks", "pages",                                     \
    "page reads answered by the memory node instead")                                      \
  X(read_ns, Histogram, "shm_read_ns", "ns", "page read latency (either path)")

struct ShmTransportMetrics {
  REMORA_METRIC_TABLE(REMORA_SHM_TRANSPORT_METRICS)
};

#define REMORA_RDMA_TRANSPORT_METRICS(X)                                                         \
  X(read_ops, Counter, "rdma_read_ops", "pages", "RDMA READs of pages")                          \
  X(read_bytes, Counter, "rdma_read_bytes", "bytes", "bytes read by RDMA READ")                  \
  X(write_ops, Counter, "rdma_write_ops", "pages", "RDMA WRITEs of pages")                       \
  X(write_bytes, Counter, "rdma_write_bytes", "bytes", "bytes written by RDMA WRITE")            \
  X(zero_reads, Counter, "rdma_absent_reads", "pages",                                           \
    "pages read as zeros: never written (no transfer)")                                          \
  X(map_requests, Counter, "rdma_map_requests", "requests", "kRdmaMap round trips")              \
  X(map_pages, Counter, "rdma_map_pages", "pages", "page mappings fetched")                      \
  X(map_hits, Counter, "rdma_map_hits", "pages", "page transfers served by a cached mapping")    \
  X(cq_sleeps, Counter, "rdma_cq_sleeps", "waits", "waits that slept on the completion channel") \
  X(errors, Counter, "rdma_errors", "completions", "failed work completions")                    \
  X(timeouts, Counter, "rdma_timeouts", "requests", "requests without completion in time")       \
  X(read_ns, Histogram, "rdma_read_ns", "ns", "page read request latency")                       \
  X(write_ns, Histogram, "rdma_write_ns", "ns", "page write request latency")

struct RdmaTransportMetrics {
  REMORA_METRIC_TABLE(REMORA_RDMA_TRANSPORT_METRICS)
};

}  // namespace remora
