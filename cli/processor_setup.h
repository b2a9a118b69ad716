// What `remora processor` and `remora run` share: the options that shape a
// processor manager (pcache geometry, victim cache, memory node), reading
// them from a TOML file with command-line overrides, and bringing up the
// memory-node connection and the manager itself.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "cli/local_memory_node.h"
#include "processor/runtime/processor_manager.h"
#include "remora/stats.h"
#include "remora/status.h"
#include "remora/transport.h"

namespace remora::cli {

struct ProcessorArgs {
  std::string config;  // TOML file with a [processor] table
  std::string pcache = "64M";
  std::uint32_t ways = 8;
  std::uint32_t victim = 64;
  std::string memory_node;        // empty: start a local one (shared memory)
  std::string transport = "shm";  // shm | tcp (rdma where built)
  std::string secret_file;
  std::string memory_capacity = "4G";  // of the local memory node
  int fault_threads = 2;
  std::uint32_t readahead = 32;          // pages, on sequential misses (0: off)
  bool readahead_stride = false;         // also on strided streams
  std::string replacement = "adaptive";  // adaptive | recency | bimodal
  int timeout_ms = 10000;
  NodeId node_id = 1;
  std::string fault_trace;  // record every fault served here
  // Background reclaim watermarks, free lines per set; -1: scaled to the
  // ways (processor/runtime/reclaimer.h); low 0: no background reclaim.
  int reclaim_low = -1;
  int reclaim_high = -1;
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
  std::unique_ptr<LocalMemoryNode> local_node;
  std::unique_ptr<StatsRegistry> stats;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<ProcessorManager> manager;
  std::string description;  // one line: pcache geometry, memory node

  ~ProcessorStack();  // manager first, then the transport, then the node
};

Status StartProcessorStack(const ProcessorArgs& args, const std::string& socket_path,
                           std::unique_ptr<ProcessorStack>* out);

}  // namespace remora::cli
