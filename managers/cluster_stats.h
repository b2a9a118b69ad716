// The cluster transport's metrics (see remora/metric_table.h): the pool as a
// whole, and one table per memory node, registered once per node under
// "node<id>" (cluster_node2_pages_read). docs/stats.md describes each.
#pragma once

#include <string_view>

#include "remora/metric_table.h"

namespace remora {

#define REMORA_CLUSTER_METRICS(X)                                                                 \
  X(regions_placed, Counter, "cluster_regions_placed", "regions",                                 \
    "regions placed on memory nodes (first write-back into them)")                                \
  X(regions, Gauge, "cluster_regions", "regions", "regions placed and not yet freed")             \
  X(regions_degraded, Gauge, "cluster_regions_degraded", "regions",                               \
    "regions with fewer in-sync replicas than the replication factor")                            \
  X(regions_lost, Gauge, "cluster_regions_lost", "regions",                                       \
    "regions whose every replica was on lost nodes (their pages read as errors)")                 \
  X(placement_failures, Counter, "cluster_placement_failures", "regions",                         \
    "regions that found no memory node with room")                                                \
  X(nodes_lost, Counter, "cluster_nodes_lost", "nodes",                                           \
    "memory nodes given up as lost (dead past the reconnect deadline, stalled past the stall "    \
    "deadline, or restarted empty)")                                                              \
  X(read_failovers, Counter, "cluster_read_failovers", "reads",                                   \
    "page reads that failed on one replica and were served by another")                           \
  X(write_failovers, Counter, "cluster_write_failovers", "write-backs",                           \
    "write-backs acknowledged without a replica whose connection had broken (it leaves the "      \
    "region until re-replication gives the region its copies back)")                              \
  X(skipped_dead, Counter, "cluster_changes_skipped_on_dead_nodes", "requests",                   \
    "range changes, forks and destroys not sent to a node whose connection broke and whose "      \
    "reconnect was refused (it counts as lost if it answers again)")                              \
  X(rereplicated_regions, Counter, "cluster_rereplicated_regions", "regions",                     \
    "regions copied to a new replica after losing one")                                           \
  X(rereplicated_pages, Counter, "cluster_rereplicated_pages", "pages",                           \
    "pages copied by re-replication")                                                             \
  X(rereplicate_ns, Histogram, "cluster_rereplicate_ns", "ns", "time to re-replicate one region") \
  X(write_ns, Histogram, "cluster_write_ns", "ns", "write-back latency until every replica has it")

struct ClusterMetrics {
  REMORA_METRIC_TABLE(REMORA_CLUSTER_METRICS)
};

#define REMORA_CLUSTER_NODE_METRICS(X)                                                            \
  X(state, Gauge, "cluster_<node>_state", "state", "0 up, 1 reconnecting or stalled, 2 lost")     \
  X(regions, Gauge, "cluster_<node>_regions", "regions", "regions with a replica on the node")    \
  X(pages_read, Counter, "cluster_<node>_pages_read", "pages", "pages read from the node")        \
  X(pages_written, Counter, "cluster_<node>_pages_written", "pages", "pages written to the node") \
  X(errors, Counter, "cluster_<node>_errors", "requests",                                         \
    "requests to the node that failed (timeouts and broken connections included)")                \
  X(reconnects, Counter, "cluster_<node>_reconnects", "connections",                              \
    "connections to the node re-established")                                                     \
  X(capacity_pages, Gauge, "cluster_<node>_capacity_pages", "pages",                              \
    "capacity the node last reported")                                                            \
  X(used_pages, Gauge, "cluster_<node>_used_pages", "pages", "pages the node last reported in use")

struct ClusterNodeMetrics {
  REMORA_METRIC_TABLE(REMORA_CLUSTER_NODE_METRICS)
};

}  // namespace remora
