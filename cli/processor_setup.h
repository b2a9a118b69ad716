// What `remora processor` and `remora run` share: the options that shape a
// processor manager (pcache geometry, victim cache, memory node), reading
// them from a TOML file with command-line overrides, and bringing up the
// memory-node connection and the manager itself.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cli/embedded_memory_node.h"
#include "metrics/metrics_server.h"
#include "processor/runtime/processor_manager.h"
#include "remora/stats.h"
#include "remora/status.h"
#include "remora/transport.h"

namespace remora::cli {

struct ProcessorArgs {
  std::string config;  // TOML file with a [processor] table
  std::string pcache = "64M";
  std::uint32_t ways = 0;  // 0: chosen from the size (PcacheGeometry::ForCapacity)
  std::uint32_t victim = 64;
  // Empty: start a local one (shared memory). More than one: a cluster of
  // them (managers/cluster_transport.h), as with --cluster.
  std::vector<std::string> memory_nodes;
  std::string cluster;            // cluster description (managers/cluster_config.h)
  int replicas = 0;               // 0: the cluster file's, else 1
  std::string transport = "shm";  // shm | tcp (rdma where built)
  std::string secret_file;
  std::string memory_capacity = "4G";  // of the local memory node
  int fault_threads = 2;
  std::uint32_t readahead = 64;         // pages, on sequential misses (0: off)
  bool readahead_stride = true;         // follow strided walks too
  std::string replacement = "recency";  // recency | adaptive | bimodal
  int timeout_ms = 10000;
  NodeId node_id = 1;
  std::string fault_trace;  // record every fault served here
  // Background reclaim watermarks, free lines per set; -1: scaled to the
  // ways (processor/runtime/reclaimer.h); low 0: no background reclaim.
  int reclaim_low = -1;
  int reclaim_high = -1;
  // auto: a CPU latency QoS request while faults are dense, where the
  // device can be opened (processor/runtime/cpu_latency_qos.h); off: never.
  std::string cpu_latency_qos = "auto";
  // `remora processor --socket-group`: a group (name or number) whose
  // members may attach; empty: the socket is this user's only (0600).
  std::string socket_group;
  // HOST:PORT for Prometheus's /metrics (metrics/metrics_server.h); empty: off.
  std::string metrics_listen;
};

// Adds the options above to `sub`. Values given on the command line win
// over the config file's.
void AddProcessorOptions(CLI::App* sub, ProcessorArgs* args);

// Applies --config (the keys of its [processor] table that were not given
// on the command line).
Status ApplyProcessorConfig(CLI::App* sub, ProcessorArgs* args);

// A running manager with its memory-node connection and, for the embedded
// default, the local memory node it started.
struct ProcessorStack {
  std::unique_ptr<EmbeddedMemoryNode> local_node;
  std::unique_ptr<StatsRegistry> stats;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<ProcessorManager> manager;
  std::string description;                          // one line: pcache geometry, memory node
  std::string geometry;                             // "48 MiB = 1024 sets x 12 ways"
  std::unique_ptr<metrics::MetricsServer> metrics;  // with --metrics-listen

  ~ProcessorStack();  // metrics, manager, then the transport, then the node
};

// The pcache geometry of --pcache and --ways (ways 0: chosen from the size).
// A size and an associativity that do not fit give an error naming the
// nearest sizes that do.
Status ChoosePcacheGeometry(const std::string& size, std::uint32_t ways, PcacheGeometry* out);

Status StartProcessorStack(const ProcessorArgs& args, const std::string& socket_path,
                           std::unique_ptr<ProcessorStack>* out);

// The cluster transport --cluster or several --memory-node ask for.
Status ConnectClusterFromArgs(const ProcessorArgs& args, StatsRegistry* stats,
                              std::unique_ptr<Transport>* out, std::string* description);

}  // namespace remora::cli
