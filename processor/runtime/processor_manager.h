// The processor manager: the node-wide daemon that owns the pcache for every
// program on this processor node (LegoOS's processor manager, in user space).
//
// Programs started with the shim connect to its unix socket and hand over a
// userfaultfd; from then on the manager serves their faults from the victim
// cache, the memory node, the file of a private mapping, or with zeros, and
// evicts their pages through the pcache. `remora processor` runs one as a
// daemon; `remora run` embeds one when none is given.
//
// Following a miss (the files, in order):
//   processor/shim/shim_mmap.cc     the range was registered at mmap time
//   processor/runtime/fault_threads.cc      a fault thread reads the uffd message
//   processor/runtime/fault.cc      Fill() a line, load the data, UFFDIO_COPY
//   processor/pcache/fill_plan.h    where the data is: victim cache, memory node, ...
//   processor/pcache/fill.cc        the set has no free line: EvictOne()
//   processor/pcache/evict.cc       pick the LRU line, call the hooks below
//   processor/runtime/evict_hooks.cc        write-protect, copy out, queue the zap
//   processor/pcache/victim_cache.cc       dirty data waits for the flush thread
//   net/*_transport.cc              the page goes to / comes from the memory node
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "processor/pcache/pcache.h"
#include "processor/runtime/fault_trace.h"
#include "processor/pcache/refault_shadow.h"
#include "processor/runtime/runtime_stats.h"
#include "processor/pcache/victim_cache.h"
#include "processor/runtime/transport_writeback_sink.h"
#include "remora/stats.h"
#include "remora/status.h"
#include "remora/transport.h"

namespace remora {

class ProcessSession;

struct ProcessorManagerOptions {
  PcacheConfig pcache;
  std::uint32_t victim_entries = 16;
  Transport* transport = nullptr;   // required; not owned
  NodeId node_id = 1;               // this processor node (the high half of asids)
  std::string socket_path;          // unix socket programs connect to
  StatsRegistry* stats = nullptr;   // required; not owned
  int fault_threads = 2;            // per program
  // Readahead on sequential misses: up to this many pages past the fault
  // (0 disables it).
  std::uint32_t readahead_max = 32;
  // How long a fault may wait for an agent's zap before the program is
  // stopped as unresponsive.
  std::chrono::milliseconds zap_timeout{10000};
  // If set, every fault served is recorded here (fault_trace.h).
  std::string fault_trace;
};

class ProcessorManager {
 public:
  // Creates the pcache and the victim cache and starts listening.
  static Status Create(const ProcessorManagerOptions& options,
                       std::unique_ptr<ProcessorManager>* out);
  // Stops accepting, ends every session (their programs are stopped by
  // their agents when the connections close) and removes the socket.
  ~ProcessorManager();

  ProcessorManager(const ProcessorManager&) = delete;
  ProcessorManager& operator=(const ProcessorManager&) = delete;

  const ProcessorManagerOptions& options() const { return options_; }
  Pcache* pcache() { return pcache_.get(); }
  VictimCache* victim() { return victim_.get(); }
  Transport* transport() { return options_.transport; }
  StatsRegistry* stats() { return options_.stats; }
  RuntimeCounters& counters() { return counters_; }
  RefaultShadow& shadow() { return *shadow_; }
  FaultTrace* fault_trace() { return fault_trace_.get(); }

  // Programs attached right now.
  std::size_t sessions() const;
  // Waits until no program is attached (all torn down) or the timeout.
  bool WaitIdle(std::chrono::milliseconds timeout);

  // The node-wide snapshot, with the memory node's page count refreshed.
  StatsSnapshot Snapshot();

  // For the eviction hooks: the live session of an address space, if any.
  std::shared_ptr<ProcessSession> FindSession(Asid asid) const;
  // Called by a session's control thread when its teardown is done.
  void Retire(std::uint64_t id);
  // A new session's id and address space id.
  void NewSessionIds(std::uint64_t* id, Asid* asid);
  // Makes a session visible (FindSession, sessions()) and counts it.
  void Register(std::shared_ptr<ProcessSession> session);

 private:
  explicit ProcessorManager(const ProcessorManagerOptions& options);
  Status Listen();
  void AcceptLoop();
  void Accept(int fd);
  void ReapRetired();
  EvictHooks MakeEvictHooks();  // evict_hooks.cc

  const ProcessorManagerOptions options_;
  RuntimeCounters counters_;
  Gauge* memory_node_used_pages_;
  Gauge* rmaps_;
  std::int64_t rmaps_reported_ = 0;
  std::int64_t memory_node_used_reported_ = 0;
  std::int64_t zaps_pending_reported_ = 0;
  std::mutex snapshot_mu_;

  TransportWritebackSink sink_;
  std::unique_ptr<VictimCache> victim_;
  std::unique_ptr<Pcache> pcache_;
  std::unique_ptr<RefaultShadow> shadow_;
  std::unique_ptr<FaultTrace> fault_trace_;

  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::thread acceptor_;

  mutable std::shared_mutex sessions_mu_;
  std::unordered_map<Asid, std::shared_ptr<ProcessSession>> by_asid_;
  std::unordered_map<std::uint64_t, std::shared_ptr<ProcessSession>> by_id_;
  std::vector<std::shared_ptr<ProcessSession>> retired_;
  std::condition_variable_any idle_cv_;
  std::uint64_t next_id_ = 0;
  std::uint32_t next_local_asid_ = 0;
};

}  // namespace remora
