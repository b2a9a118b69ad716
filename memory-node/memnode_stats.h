// The memory node's metrics, one table per part (see remora/metric_table.h):
// the page store, the request service and the RDMA service. Its stream
// server's (memnode_connections, ...) are in net/transport_stats.h.
// docs/stats.md describes each.
#pragma once

#include "remora/metric_table.h"

namespace remora {

#define REMORA_PAGE_STORE_METRICS(X)                                                             \
  X(pages_used, Gauge, "memnode_pages_used", "pages", "pages stored (a COW-shared page once)")   \
  X(spaces, Gauge, "memnode_spaces", "spaces", "address spaces")                                 \
  X(meta_pages, Gauge, "memnode_meta_pages", "pages",                                            \
    "capacity charged for spaces, page tables and ranges")                                       \
  X(index_live, Gauge, "memnode_index_entries", "mappings", "mappings in the shared page index") \
  X(backed_free, Gauge, "memnode_free_backed_pages", "pages",                                    \
    "freed pages whose memory is kept for reuse")                                                \
  X(pages_written, Counter, "memnode_pages_written", "pages", "pages written back")              \
  X(pages_read, Counter, "memnode_pages_read", "pages", "pages read through the memory node")    \
  X(zero_reads, Counter, "memnode_pages_read_absent", "pages",                                   \
    "reads of never-written pages (answered with zeros)")                                        \
  X(shared_writes, Counter, "memnode_shared_writes", "pages",                                    \
    "pages written once for several address spaces")                                             \
  X(cow_breaks, Counter, "memnode_cow_breaks", "pages",                                          \
    "write-backs that copied a page shared after fork")                                          \
  X(oom, Counter, "memnode_oom_errors", "writes", "writes refused: capacity exhausted")          \
  X(forks, Counter, "memnode_forks", "spaces", "address spaces forked")                          \
  X(pages_freed, Counter, "memnode_pages_freed", "pages", "slots returned to the pool")          \
  X(punched, Counter, "memnode_pages_punched", "pages",                                          \
    "freed pages whose memory went back to the kernel")                                          \
  X(index_rebuilds, Counter, "memnode_index_rebuilds", "rebuilds",                               \
    "shared index rehashes (growth or tombstones)")                                              \
  X(index_overflow, Counter, "memnode_index_overflow", "mappings",                               \
    "mappings left out of a full shared index")

struct PageStoreMetrics {
  REMORA_METRIC_TABLE(REMORA_PAGE_STORE_METRICS)
};

// <type>: a request type's name (wire::TypeName); <code>: a status code's
// name, '-' made '_'.
#define REMORA_MEMORY_NODE_SERVICE_METRICS(X)                                               \
  X(requests, CounterFamily, "memnode_req_<type>", "requests", "<type> requests served")    \
  X(req_unknown, Counter, "memnode_req_unknown", "requests", "requests of an unknown type") \
  X(errors, CounterFamily, "memnode_err_<code>", "replies", "error replies: <code>")        \
  X(auth_failures, Counter, "memnode_auth_failures", "peers",                               \
    "peers refused for failing or skipping authentication")                                 \
  X(auth_timeouts, Counter, "memnode_auth_timeouts", "peers",                               \
    "peers dropped for not authenticating in time")                                         \
  X(untagged_connections, Counter, "memnode_connections_untagged", "connections",           \
    "authenticated unix-socket connections from a trusted uid that use untagged frames")    \
  X(refused, Counter, "memnode_connections_refused", "connections",                         \
    "connections closed at once: too many not yet authenticated")                           \
  X(lease_expiries, Counter, "memnode_lease_expiries", "nodes",                             \
    "processor nodes whose spaces were destroyed when their lease expired")                 \
  X(takeovers, Counter, "memnode_takeovers", "nodes",                                       \
    "processor nodes that reconnected and found their old spaces destroyed")                \
  X(resumes, Counter, "memnode_resumes", "connections",                                     \
    "processors that reconnected (same incarnation) and kept their address spaces")         \
  X(superseded, Counter, "memnode_connections_superseded", "connections",                   \
    "older connections closed when their processor authenticated again (same incarnation)") \
  X(reclaimed_spaces, Counter, "memnode_reclaimed_spaces", "spaces",                        \
    "address spaces destroyed by lease expiry or takeover")                                 \
  X(offloaded, Counter, "memnode_offloaded", "operations",                                  \
    "long operations run off the event loop (fork, destroy, big discards, takeovers)")      \
  X(deferred, Counter, "memnode_deferred", "requests",                                      \
    "requests that waited behind a long operation on their address space")                  \
  X(latency, Histogram, "memnode_request_ns", "ns", "time to serve one request")

struct MemoryNodeServiceMetrics {
  REMORA_METRIC_TABLE(REMORA_MEMORY_NODE_SERVICE_METRICS)
};

#define REMORA_RDMA_SERVICE_METRICS(X)                                 \
  X(attaches, Counter, "memnode_rdma_attaches", "connections",         \
    "connections that attached over RDMA")                             \
  X(reattaches, Counter, "memnode_rdma_reattaches", "connections",     \
    "attaches that found the processor node's frames and spaces kept") \
  X(map_pages, Counter, "memnode_rdma_map_pages", "pages",             \
    "page mappings handed to RDMA processors")                         \
  X(cow_breaks, Counter, "memnode_rdma_cow_breaks", "pages",           \
    "RDMA frames copied for a writer after fork")                      \
  X(frames_used, Gauge, "memnode_rdma_frames_used", "pages",           \
    "pages stored in RDMA-registered frames")                          \
  X(peers, Gauge, "memnode_rdma_peers", "connections", "connections attached over RDMA")

struct RdmaServiceMetrics {
  REMORA_METRIC_TABLE(REMORA_RDMA_SERVICE_METRICS)
};

}  // namespace remora
