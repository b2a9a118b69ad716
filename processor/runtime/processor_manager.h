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
//                                   (usually the reclaimer freed one ahead:
//                                   processor/runtime/reclaimer.h)
//   processor/pcache/evict.cc       pick the LRU line, call the hooks below
//   processor/runtime/evict_hooks.cc        write-protect, copy out, queue the zap
//   processor/pcache/victim_cache.cc       dirty data waits for the flush thread
//   net/*_transport.cc              the page goes to / comes from the memory node
//
// Locking. The one global order of the manager's locks: a thread holding
// one of them may only take those below it. Every mutex is a common/mutex.h
// wrapper, every field one guards is GUARDED_BY it, and the clang build
// (scripts/check-thread-safety.sh) checks that each is held where its data
// is touched; the order itself is checked by review (ACQUIRED_BEFORE marks
// the pairs within one class).
//
//    1  ProcessorManager::snapshot_mu_   across the memory node's Info (I/O)
//    2  ProcessSession::fault_mu_        fault gate: shared per fault,
//                                        exclusive by Release and fork;
//                                        across I/O (fills, Release's calls)
//    3  line lock (kLineLocked flag)     across I/O (the fill's read, the
//                                        UFFDIO_COPY); several only in
//                                        ascending address order; a holder
//                                        may Fill (COW, readahead), and so
//                                        evict: eviction skips locked lines,
//                                        it never waits for one
//    4  Pcache::evict_gate_              shared per eviction, exclusive by
//                                        PauseEvictions (fork); across the
//                                        hooks and the fork's ForkSpace (I/O)
//    5  line under reclaim (kLineReclaim flag)  the evicting thread's, across
//                                        the hooks (I/O); key lookups wait
//                                        for it to end
//    6  ProcessorManager::sessions_mu_   FindSession (hooks), Register
//    7  ProcessSession::fork_mu_         NoteZap (zap hook); across uffd
//                                        ioctls only
//    8  ZapQueue::send_mu_               across the send to the agent
//    9  ZapQueue::mu_                    never across I/O
//   leaves: nothing is taken under them, and none is held with another:
//       PcacheSet::mu (set locks)        one at a time; never across I/O, a
//                                        hook or a victim cache call
//       Reclaimer::mu_                   taken by fills after the set lock is
//                                        dropped (a line lock may be held);
//                                        the reclaimer thread drops it before
//                                        each eviction and batch's zap flush
//       VictimCache::mu_                 never across I/O or a page copy: the
//                                        flush thread writes back without it
//       ProcessSession::written_mu_      (a parent's before its new child's)
//       VmaTable::mu_, StrideWalks::mu_, SequentialStreams::mu_, PrefetchAccuracy::mu_,
//       RefaultShadow::mu_,
//       FaultTrace::mu_ (across one buffered fprintf), StatsRegistry::mu_
//       (registration and snapshots; counters are atomics, taken anywhere)
//   below everything: the transport's own locks (the stream client's; with
//       a cluster, ClusterTransport's topology_mu_ > place_mu_ > map_mu_ >
//       repair_mu_ > NodeLink::mu_, managers/cluster_transport.h), taken
//       only inside a Transport call, which never calls back into the
//       manager; any of the above may be held across one.
//
// Waiting counts as holding: a thread waits for a line lock (Pcache::Lock,
// Fill) or for a reclaim to end only while holding locks above that flag.
// docs/runtime.md ("Locking") has the same order with the reasons.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "processor/abi/runtime_protocol.h"
#include "processor/pcache/pcache.h"
#include "processor/pcache/refault_shadow.h"
#include "processor/pcache/victim_cache.h"
#include "processor/runtime/cpu_latency_qos.h"
#include "processor/runtime/fault_trace.h"
#include "processor/runtime/peer.h"
#include "processor/runtime/reclaimer.h"
#include "processor/runtime/runtime_stats.h"
#include "processor/runtime/transport_writeback_sink.h"
#include "remora/stats.h"
#include "remora/status.h"
#include "remora/transport.h"

namespace remora {

class ProcessSession;

struct ProcessorManagerOptions {
  PcacheConfig pcache;
  std::uint32_t victim_entries = 16;
  Transport* transport = nullptr;  // required; not owned
  NodeId node_id = 1;              // this processor node (the high half of asids)
  std::string socket_path;         // unix socket programs connect to
  // The socket is 0600 (only this user's programs attach) unless a group is
  // given: then 0660 with that group, its directory 0750 with that group
  // (a node-wide manager serving several users). Its directory must be one
  // only this user can write (created if missing; docs/security.md).
  gid_t socket_group = static_cast<gid_t>(-1);
  // Connections that have not sent their first message yet: at most this
  // many per user (a client silent past first_message_timeout is dropped).
  std::uint32_t pending_per_user = 32;
  std::chrono::milliseconds first_message_timeout{5000};
  StatsRegistry* stats = nullptr;  // required; not owned
  int fault_threads = 2;           // per program
  // Readahead on sequential misses: up to this many pages past the fault
  // (0 disables it).
  std::uint32_t readahead_max = 64;
  // Also follow each thread's strided walk (stride_walks.h, readahead.cc):
  // mark the walk's coming hits used and read its missing pages ahead,
  // backing off while too many are evicted unused (prefetch_accuracy.h).
  // Needs the faulting thread (THREAD_ID) and, for strides that are not a
  // whole number of pages, the faulting byte (EXACT_ADDRESS, Linux 5.18).
  bool readahead_stride = true;
  // The pcache's replacement policy (processor/pcache/replacement.h).
  Replacement replacement = Replacement::kRecency;
  // How long a fault may wait for an agent's zap before the program is
  // stopped as unresponsive.
  std::chrono::milliseconds zap_timeout{10000};
  // If set, every fault served is recorded here (fault_trace.h).
  std::string fault_trace;
  // Background reclaim watermarks, free lines per set (reclaimer.h);
  // negative: the default for the geometry; reclaim_low 0: no background
  // reclaim, every eviction is done by the fault that needs the line.
  int reclaim_low = -1;
  int reclaim_high = -1;
  std::uint32_t reclaim_batch = 32;  // lines per reclaim batch
  // A CPU latency QoS request while faults are dense (cpu_latency_qos.h):
  // kAuto where the device can be opened, kOff never.
  CpuLatencyQosMode cpu_latency_qos = CpuLatencyQosMode::kAuto;
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
  Reclaimer& reclaimer() { return *reclaimer_; }
  FaultTrace* fault_trace() { return fault_trace_.get(); }
  CpuLatencyQos& cpu_latency_qos() { return *cpu_latency_qos_; }

  // Programs attached right now.
  std::size_t sessions() const EXCLUDES(sessions_mu_);
  // Waits until no program is attached (all torn down) or the timeout.
  bool WaitIdle(std::chrono::milliseconds timeout) EXCLUDES(sessions_mu_);

  // The node-wide snapshot, with the memory node's page count refreshed.
  StatsSnapshot Snapshot() EXCLUDES(snapshot_mu_, sessions_mu_);
  // The reply to a Stats request from `peer` (JSON): the snapshot, and the
  // sessions `peer` may see (root: all; others: their own), as
  // {"sessions": [{"id", "pid", "uid", "asid", "ranges"}...]}. For a
  // non-root peer the gauge processes_attached counts its programs only.
  std::string StatsFor(const Peer& peer) EXCLUDES(snapshot_mu_, sessions_mu_);

  // For the eviction hooks: the live session of an address space, if any.
  std::shared_ptr<ProcessSession> FindSession(Asid asid) const EXCLUDES(sessions_mu_);
  // Called by a session's control thread when its teardown is done.
  void Retire(std::uint64_t id) EXCLUDES(sessions_mu_);
  // A new session's id (random, unguessable, never 0 or a live one's) and
  // address space id.
  void NewSessionIds(std::uint64_t* id, Asid* asid) EXCLUDES(sessions_mu_);
  // Makes a session visible (FindSession, sessions()) and counts it.
  void Register(std::shared_ptr<ProcessSession> session) EXCLUDES(sessions_mu_);

 private:
  explicit ProcessorManager(const ProcessorManagerOptions& options);
  Status Listen();  // listen_socket.cc
  // The acceptor thread (greeter.cc): accepts connections and waits for
  // their first messages side by side, so a silent client holds up nobody.
  void AcceptLoop();
  // Receives and acts on a new connection's first message; false (nothing
  // consumed) if it has not arrived yet. Otherwise the connection and
  // `peer` are taken (kept by a session, or closed).
  bool ServeFirstMessage(int fd, Peer* peer);
  // A new connection's first message (from `peer`, already decoded).
  void Greet(int fd, Peer* peer, const rt::Request& req, int passed);
  void GreetHello(int fd, Peer* peer, const rt::Request& req, int uffd);
  // Ends sessions whose agent never came (first_message_timeout after
  // their hello): a client that stops half-way holds nothing for long.
  void EndAgentless();
  void GreetAgent(int fd, const Peer& peer, const rt::Request& req);
  // Joins retired sessions: without sessions_mu_, which their threads take.
  void ReapRetired() EXCLUDES(sessions_mu_);
  EvictHooks MakeEvictHooks();  // evict_hooks.cc
  // Sends every program's queued zaps (the end of a reclaim batch).
  void FlushZaps() EXCLUDES(sessions_mu_);

  const ProcessorManagerOptions options_;
  RuntimeCounters counters_;
  Gauge* memory_node_used_pages_;
  Gauge* rmaps_;
  // One snapshot at a time; held across the memory node's Info round trip.
  Mutex snapshot_mu_ ACQUIRED_BEFORE(sessions_mu_);
  std::int64_t rmaps_reported_ GUARDED_BY(snapshot_mu_) = 0;
  std::int64_t memory_node_used_reported_ GUARDED_BY(snapshot_mu_) = 0;
  std::int64_t zaps_pending_reported_ GUARDED_BY(snapshot_mu_) = 0;

  TransportWritebackSink sink_;
  std::unique_ptr<VictimCache> victim_;
  std::unique_ptr<Pcache> pcache_;
  std::unique_ptr<RefaultShadow> shadow_;
  std::unique_ptr<FaultTrace> fault_trace_;
  // After the pcache: stopped (and destroyed) before it.
  std::unique_ptr<Reclaimer> reclaimer_;
  std::unique_ptr<CpuLatencyQos> cpu_latency_qos_;

  int listen_fd_ = -1;
  bool bound_ = false;
  // Sessions made by a hello whose agent has not come yet, with the time
  // by which it must. The acceptor thread's only (no lock).
  std::vector<std::pair<std::uint64_t, std::chrono::steady_clock::time_point>>
      awaiting_agent_;  // the socket file is ours (removed at the end)
  int stop_fd_ = -1;
  std::thread acceptor_;

  // Never held across I/O or a call into a session that locks.
  mutable SharedMutex sessions_mu_;
  std::unordered_map<Asid, std::shared_ptr<ProcessSession>> by_asid_ GUARDED_BY(sessions_mu_);
  std::unordered_map<std::uint64_t, std::shared_ptr<ProcessSession>> by_id_
      GUARDED_BY(sessions_mu_);
  std::vector<std::shared_ptr<ProcessSession>> retired_ GUARDED_BY(sessions_mu_);
  // Waits on sessions_mu_ itself (held exclusively), which it unlocks and
  // relocks through SharedMutex's lock()/unlock().
  std::condition_variable_any idle_cv_;
  std::uint32_t next_local_asid_ GUARDED_BY(sessions_mu_) = 0;
};

}  // namespace remora
