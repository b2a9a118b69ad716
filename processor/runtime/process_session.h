// One program attached to the processor manager: its address space, its
// userfaultfd, its managed ranges and the threads that serve it.
//
// Threads (all joined before the session ends), one file each:
//   control   (control_server.cc) the program's control connection
//             (Map/Unmap/Discard/Fork*, in the order the program made them)
//             and the agent's ZapAcks; it also notices the program's exit
//             (both connections close) and runs the teardown.
//   fault ×N  (fault_threads.cc) poll the uffd and serve faults (fault.cc)
//             on the thread that read them: the only thread hand-off on the
//             fault path is the one userfaultfd itself makes.
// process_session.cc has the rest: starting, failing, tearing down, and
// reading the program's pages.
//
// Fork (fork.cc): PrepareFork, the uffd FORK event (OnForkEvent, on
// a fault thread) and FinishFork; between PrepareFork and the end of
// OnForkEvent the program's faults are held back (deferred), except the
// forking thread's own before the event (it cannot wait: the event comes
// only after it enters the kernel).
//
// Teardown order (and why): stop the fault threads; RemoveSpace in the
// pcache, which waits out evictions of our lines in flight (their data
// reaches the victim cache first); drop our victim entries; destroy the
// address space on the memory node; close the descriptors. After it the
// program holds no line, no victim entry and no memory-node page.
//
// Lifecycle (SessionState, one atomic; a state never comes back once left,
// except the fork hold-back):
//
//   kAttached -> kForkPending              PrepareFork
//   kForkPending -> kAttached              OnForkEvent, EndFork
//   kAttached, kForkPending -> kFailed     Fail (the first call)
//   any -> kDead                           Teardown (the control thread)
//
//   kAttached     registered with the manager: evictions treat it as an
//                 owner and its faults are served (a forked child is
//                 attached before its threads start).
//   kForkPending  a fork is being set up: faults are held back (deferred).
//                 Entered and left only with fault_mu_ held exclusively, so
//                 a fault served under it held shared sees one value.
//   kFailed       Fail() stopped the program (once): its connections are
//                 shut down and the control thread is about to tear down.
//   kDead         teardown began: evictions skip the program's pages and a
//                 fill that finds the program gone is not a failure. Final.
//
// A fork's hold-back outlives kForkPending when the session fails or dies
// meanwhile: in those states fork_.pending (under fork_mu_) says whether
// faults are still held back.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "processor/runtime/page_set.h"
#include "processor/runtime/peer.h"
#include "processor/runtime/prefetch_accuracy.h"
#include "processor/runtime/sequential_streams.h"
#include "processor/runtime/stride_walks.h"
#include "processor/runtime/vma_table.h"
#include "processor/runtime/write_predictor.h"
#include "processor/runtime/zap_queue.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora {

class FaultReader;
class ProcessorManager;

enum class SessionState : std::uint8_t { kAttached, kForkPending, kFailed, kDead };

class ProcessSession {
 public:
  // `owner` is the program as the kernel named it (peer.h; its pidfd is
  // owned from here on). A forked child's session is made before its pid
  // is known: owner.pid 0, the parent's uid, until AdoptChild.
  ProcessSession(ProcessorManager* manager, std::uint64_t id, Asid asid, const Peer& owner,
                 int control_fd, int uffd);
  ~ProcessSession();  // requires Join()

  ProcessSession(const ProcessSession&) = delete;
  ProcessSession& operator=(const ProcessSession&) = delete;

  // Starts the threads once the agent connected (agent_fd -1: attached
  // already). Once only: false (and nothing done) if it already started.
  bool Start(int agent_fd, int fault_threads);
  // A forked child's agent connection, known before it starts: zaps can be
  // queued to it from the moment it shares lines.
  void AttachAgent(int agent_fd);
  // Waits for every thread of the session (after the program exited).
  void Join();

  std::uint64_t id() const { return id_; }
  Asid asid() const { return asid_; }
  pid_t pid() const { return pid_.load(std::memory_order_acquire); }
  // The user the program runs as (a forked child: its parent's).
  uid_t uid() const { return uid_; }
  // A forked child's pid arrives after its session was made (ForkDone),
  // checked by CheckForkedChild (peer.h); `child`'s pidfd is owned from here.
  void AdoptChild(const Peer& child);
  int uffd() const { return uffd_; }
  // True once teardown began (kDead): evictions skip the program's pages.
  bool dead() const { return state_.load(std::memory_order_acquire) == SessionState::kDead; }
  // The program has exited or exec'd (its control connection is closed),
  // even if the control thread has not noticed yet. A process's descriptors
  // close before its parent can reap it, so a parent back from waitpid()
  // always sees its child as departed.
  bool Departed() const;

  VmaTable& vmas() { return vmas_; }
  // Valid once the agent is attached (before any line of the program can
  // be evicted). Snapshots read zaps_pending() from the moment the session
  // is registered.
  ZapQueue& zaps() { return *zaps_.load(std::memory_order_acquire); }
  // The agent's connection is known (Start with one, or AttachAgent).
  bool agent_attached() const { return zaps_.load(std::memory_order_acquire) != nullptr; }
  std::size_t zaps_pending() const {
    const ZapQueue* z = zaps_.load(std::memory_order_acquire);
    return z != nullptr ? z->pending() : 0;
  }

  // Pages with a copy on the memory node (or on its way there through the
  // victim cache): marked when an eviction copies the page out. Every other
  // page is zero, or its file's, and fills without a round trip.
  bool HasRemoteCopy(std::uint64_t uva) EXCLUDES(written_mu_);
  void MarkRemoteCopy(std::uint64_t uva) EXCLUDES(written_mu_);

  // Copies the program's page at uva into dst. ESRCH or EFAULT mean the
  // page or the process is gone; ESRCH also when the pid may have been
  // reused meanwhile. Never waits for a fault: a page that is no longer in
  // the program's page table (dropped behind the manager's back) is EFAULT,
  // where a read that faulted on it would wait for this very manager.
  //
  // One pread of /proc/PID/mem, opened while the program lived (the file
  // holds the program's address space, not its pid, so a reused pid cannot
  // be read). The kernel's read of it takes no userfault (it cannot retry:
  // a missing page fails the read) — one call where process_vm_readv needs
  // a presence check from pagemap before and a liveness check of the pidfd
  // after. Without the file (it could not be opened), those three calls.
  int ReadProcessPage(std::uint64_t uva, void* dst);
  // Whether the page at uva is present in the program's page table.
  bool PagePresent(std::uint64_t uva);

  // Runs of misses, for read-ahead (readahead.cc): sequential runs, any
  // number interleaved, and each thread's strided walk (exact fault
  // addresses: stride_walks.h).
  SequentialStreams sequential_misses;
  StrideWalks stride_walks;
  // Sequential runs of write-protect faults, for write-protect
  // fault-around (fault.cc: un-protecting ahead of a write run).
  SequentialStreams wp_fault_around_streams;
  // How many pages read ahead of strided walks were evicted unused, and the
  // back-off when too many are (readahead.cc).
  PrefetchAccuracy stride_accuracy;
  // Whether read misses are followed by writes: such misses go in writable
  // and dirty (fault.cc).
  WritePredictor write_predictor;

  // Samples the program's resident anonymous memory outside managed ranges
  // into the unmanaged_anon gauges (local_memory.cc; the control thread, at
  // the period local_memory.h describes); true if the sample moved.
  // ForgetLocalMemory takes the program's share out of the node-wide gauge
  // when it is gone.
  bool SampleLocalMemory();
  void ForgetLocalMemory();

  // Stops the program with `why` (sent to the agent, which exits it with a
  // clear message). Used when a fault cannot be served.
  void Fail(const Status& why);

  // ---- fork (fork.cc) ----
  // ForkPrepare: hold back faults, write-protect every registered range,
  // remember the child's connection ends (owned from here on).
  // *fresh: nothing is registered, no FORK event will come, and the child
  // attaches as a new program (the connection ends are closed).
  Status PrepareFork(int child_control, int child_agent, pid_t tid, bool* fresh)
      EXCLUDES(fault_mu_, fork_mu_);
  // The FORK event (child_uffd is the manager's descriptor for the child's
  // uffd): set up the child's session and share everything with it.
  void OnForkEvent(int child_uffd) EXCLUDES(fault_mu_, fork_mu_);
  // ForkDone: the child's pid (<= 0: the fork failed); starts the child.
  Status FinishFork(pid_t child_pid) EXCLUDES(fault_mu_, fork_mu_);
  // A zap queued for this program (eviction hook): while a fork is being
  // set up, the child gets it too (it inherited the page table entry).
  void NoteZap(std::uint64_t uva) EXCLUDES(fork_mu_);

 private:
  // The control thread (control_server.cc).
  void ControlLoop();
  Status Release(std::uint64_t start, std::uint64_t len, bool unmap) EXCLUDES(fault_mu_);
  // The fault threads (fault_threads.cc).
  void FaultLoop(int index);
  // Serves one fault message, or defers it while a fork is being set up.
  void ServeFault(std::uint64_t address, std::uint64_t flags, pid_t tid)
      EXCLUDES(fault_mu_, fork_mu_);
  void ServeDeferred() EXCLUDES(fault_mu_, fork_mu_);
  // Fork helpers (fork.cc).
  Status ShareWithChild(const std::shared_ptr<ProcessSession>& child) EXCLUDES(fork_mu_);
  void InheritFrom(ProcessSession& parent) EXCLUDES(written_mu_);
  // Ends the fault hold-back and serves what was held.
  void EndFork() EXCLUDES(fault_mu_, fork_mu_);
  // fork_.pending and the state with it (fault_mu_ held exclusively and
  // fork_mu_): kAttached <-> kForkPending. A failed or dead session keeps
  // its state; fork_.pending alone then says faults are held back.
  void SetForkPendingLocked(bool pending) REQUIRES(fork_mu_);
  // Records the program's pid and opens its pagemap (pidfd_ set first).
  void SetPid(pid_t pid);
  // The program as a Peer (uid and pid; no pidfd of its own).
  Peer Owner() const;
  // Forgets the fork state except the faults still held (fork_mu_ held).
  void ResetForkLocked() REQUIRES(fork_mu_);
  void AbandonFork() EXCLUDES(fork_mu_);
  // The end of the control thread, once the program is gone.
  void Teardown();
  // After Fail with a fault left unserved: the program's agent ends it. An
  // agent that cannot run (a thread blocked on a fault of its own, or one
  // not started yet) would leave the program blocked on its userfaultfd for
  // good, so after kStopGrace the kernel ends it (SIGKILL through the
  // pidfd). A session failed for anything else (a client that broke the
  // protocol) is only disconnected.
  void EnsureStopped();
  static constexpr std::chrono::milliseconds kStopGrace{3000};

  ProcessorManager* const manager_;
  const std::uint64_t id_;
  const Asid asid_;
  std::atomic<pid_t> pid_;
  const uid_t uid_;
  // The program's pidfd (peer.h): proves a pid still names the program after
  // a /proc read or process_vm_readv; -1 for a child not adopted yet.
  std::atomic<int> pidfd_{-1};
  std::atomic<bool> started_{false};
  // A fault failed and its thread was left blocked (EnsureStopped).
  std::atomic<bool> fault_unserved_{false};
  const int control_fd_;
  const int uffd_;
  int agent_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: tells the fault threads to stop
  std::unique_ptr<FaultReader> reader_;
  std::atomic<int> pagemap_fd_{-1};
  std::atomic<int> mem_fd_{-1};  // /proc/PID/mem (ReadProcessPage)

  VmaTable vmas_;
  std::int64_t unmanaged_anon_reported_ = 0;  // the control thread's
  std::unique_ptr<ZapQueue> zap_queue_;       // owns what zaps_ points to
  std::atomic<ZapQueue*> zaps_{nullptr};
  // A leaf lock.
  Mutex written_mu_;
  PageSet written_ GUARDED_BY(written_mu_);

  // Fault gate: held shared while a fault is served (readahead included),
  // exclusively by Release (munmap, discard: nothing fills pages of a range
  // being released), to start a fork (no fault is half-served when the
  // ranges are write-protected) and to end one. Held across I/O (the
  // fault's reads from the memory node, Release's calls to it); guards no
  // field of its own (fork_.pending changes only with it held exclusively).
  SharedMutex fault_mu_ ACQUIRED_BEFORE(fork_mu_);
  // One fork at a time (the shim serialises them). Guarded by fork_mu_;
  // `pending` changes only with fault_mu_ held exclusively too, and with it
  // the state between kAttached and kForkPending (SetForkPending).
  struct ForkState {
    bool pending = false;
    bool event_seen = false;
    bool shared = false;  // the child shares the lines (NoteZap stops)
    bool fresh = false;   // nothing registered: the child attaches anew
    pid_t tid = 0;
    int control = -1, agent = -1;       // the child's connection ends
    std::vector<std::uint64_t> zapped;  // pages the child must drop
    std::vector<std::uint64_t> served;  // the forking thread's faults meanwhile
    std::vector<std::pair<std::uint64_t, std::uint64_t>> deferred;  // (address, flags)
    std::shared_ptr<ProcessSession> child;
    Status error;
    bool done = false;  // the event was handled (child or error set)
  };
  Mutex fork_mu_;
  CondVar fork_cv_;
  ForkState fork_ GUARDED_BY(fork_mu_);

  // The lifecycle (see the top of this file). kForkPending mirrors
  // fork_.pending, readable without fork_mu_ under fault_mu_ held shared.
  std::atomic<SessionState> state_{SessionState::kAttached};
  std::thread control_;
  std::vector<std::thread> faulters_;
};

}  // namespace remora
