// NodeLink: the processor's connection to one memory node of a cluster, kept
// alive across the node's failures. It wraps the node's ordinary per-node
// Transport (ConnectTransport: TCP, shared memory or RDMA, whatever
// handshake that does) and adds what one connection lacks:
//
//  * a broken connection is re-established in the background, with
//    exponential backoff (10 ms doubling to 250 ms);
//  * callers that need this node wait while it is down or stalled, and
//    retry, until it answers or is given up — except a write-back with
//    other replicas (CallUnlessBroken), which does not wait for a node
//    whose connection broke and whose first reconnect was refused (its
//    process is gone; a stalled node's connects time out instead): the
//    replicas that took the write are enough, and re-replication restores
//    the missing copy;
//  * a node is given up as *lost* when it refuses connections for longer
//    than the reconnect deadline (its process died), when it answers nothing
//    for longer than the stall deadline, or when it comes back empty (it was
//    restarted: the spaces this processor had there are gone). A lost node's
//    contents count as gone for good; if it answers again it is used as a
//    new, empty node.
//
// Each loss bumps the link's epoch. A caller takes the epoch with its view of
// which regions the node holds (under the map lock) and passes it to Call(),
// which reports the node *gone* instead of writing to a node that no longer
// holds what the caller thinks it does.
//
// A background thread per link reconnects, polls the node's capacity and use
// (Info, every 500 ms), and declares it lost.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "managers/cluster_config.h"
#include "managers/cluster_stats.h"
#include "remora/transport.h"

namespace remora {

enum class NodeState { kUp = 0, kDown = 1, kLost = 2 };
const char* NodeStateName(NodeState s);

struct NodeLinkOptions {
  TransportOptions transport;  // address, kind, secret, timeout, this processor's id
  int stall_deadline_ms = 30000;
  int reconnect_deadline_ms = 1000;
  int poll_ms = 500;
};

struct NodeLinkHooks {
  // A space this processor has on the node, to tell a reconnect to the same
  // node process (the space still exists) from a restarted one.
  std::function<bool(Asid*)> any_hosted;
  // The node's contents are gone. Returns the spaces it had there (destroyed
  // if the node ever answers again, in case it merely was unreachable).
  // Called without the link's lock.
  std::function<std::vector<Asid>(const std::string& why)> on_lost;
};

class NodeLink {
 public:
  // `stats` (required) gets the node's cluster_node<id>_* metrics.
  NodeLink(const ClusterNodeSpec& spec, NodeLinkOptions opts, NodeLinkHooks hooks,
           StatsRegistry* stats);
  ~NodeLink();  // stops the background thread, closes the connection
  NodeLink(const NodeLink&) = delete;
  NodeLink& operator=(const NodeLink&) = delete;

  // First connection and the background thread. A node that cannot be
  // reached starts out lost (and is retried as a new node); the status says
  // why.
  Status Start();

  const ClusterNodeSpec& spec() const { return spec_; }
  std::string Describe() const;  // "memory node 2 (127.0.0.1:7401)"
  NodeState state() const;
  // Up and answering: not stalled since its last answer. Reads with a
  // choice go to healthy replicas first.
  bool healthy() const;
  std::uint64_t epoch() const;
  // Capacity and use as last reported, and the pages of the regions placed
  // on the node since (NotePlaced), for placement.
  void Load(std::uint64_t* capacity_pages, std::uint64_t* used_pages, std::uint64_t* pending_pages,
            bool* full) const;
  void NotePlaced(std::uint64_t pages);
  // A write found the node out of memory: no new regions until its next
  // report shows room.
  void MarkFull();
  // Asks the node for its capacity and use now (the background thread does
  // every poll_ms); nothing if it is not up.
  void Poll();

  // Runs fn on the node's connection, waiting through a broken connection or
  // a stall and retrying until fn's answer is not a transport failure. Sets
  // *gone (and returns an error) if the node was lost or restarted since
  // `epoch`.
  Status Call(std::uint64_t epoch, const std::function<Status(Transport*)>& fn, bool* gone);
  // As Call(), but a dead node is not waited for: once the connection is
  // broken (EOF, reset, an RDMA error) and a reconnect was refused, sets
  // *broken and returns (the first reconnect is tried at once, so that is
  // a round trip after the break). Stalls — timeouts, and reconnects that
  // time out — are waited through as in Call(). Reconnecting goes on in
  // the background.
  Status CallUnlessBroken(std::uint64_t epoch, const std::function<Status(Transport*)>& fn,
                          bool* gone, bool* broken);
  // As CallUnlessBroken(), but a dead node is skipped: returns Ok with
  // *skipped set, and the node is marked as having missed a change to this
  // processor's memory (a range change, a fork, a destroy). Such a node is
  // never trusted again: if it answers before it is given up, it is given
  // up then (its contents are stale) and used as a new, empty node.
  Status CallOrSkipIfDead(std::uint64_t epoch, const std::function<Status(Transport*)>& fn,
                          bool* gone, bool* skipped);
  // CallUnlessBroken()'s first attempt in two halves, for a request sent to
  // several nodes before any answer is awaited: the node's connection if it
  // is up at `epoch` (else null), and the outcome of a request made on it —
  // noted as CallUnlessBroken() notes it. After a transport failure the
  // caller retries through CallUnlessBroken(), which waits through a stall.
  std::shared_ptr<Transport> UpTransport(std::uint64_t epoch);
  void NoteOutcome(const std::shared_ptr<Transport>& t, const Status& st);
  static bool TransportFailure(const Status& st) {
    return st.code() == Code::kDisconnected || st.code() == Code::kTimeout;
  }
  // One attempt, no waiting (a read with another replica to try).
  Status TryOnce(std::uint64_t epoch, const std::function<Status(Transport*)>& fn, bool* gone);

  ClusterNodeMetrics& metrics() { return metrics_; }

 private:
  using Clock = std::chrono::steady_clock;
  std::shared_ptr<Transport> Current(std::uint64_t epoch, bool* gone);
  // A request on `t` failed with `st`: note a broken connection or a stall.
  void NoteFailure(const std::shared_ptr<Transport>& t, const Status& st);
  void NoteSuccess();
  // Gives the node up (its contents are gone) unless `epoch` is stale.
  void DeclareLost(std::uint64_t epoch, const std::string& why);
  void SetState(NodeState s) REQUIRES(mu_);
  void Loop();
  void Reconnect();

  const ClusterNodeSpec spec_;
  const NodeLinkOptions opts_;
  const NodeLinkHooks hooks_;
  ClusterNodeMetrics metrics_;

  mutable Mutex mu_;
  CondVar cv_;  // state, epoch or stop changed
  std::shared_ptr<Transport> transport_ GUARDED_BY(mu_);
  NodeState state_ GUARDED_BY(mu_) = NodeState::kLost;
  std::uint64_t epoch_ GUARDED_BY(mu_) = 1;
  Clock::time_point down_since_ GUARDED_BY(mu_);
  Clock::time_point stalled_since_ GUARDED_BY(mu_);
  bool stalled_ GUARDED_BY(mu_) = false;
  // Down, and a reconnect was refused (the node's process is gone):
  // CallUnlessBroken does not wait for it.
  bool broken_ GUARDED_BY(mu_) = false;
  // A change was skipped while broken (CallOrSkipIfDead), in this epoch.
  bool missed_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  std::uint64_t capacity_pages_ GUARDED_BY(mu_) = 0;
  std::uint64_t used_pages_ GUARDED_BY(mu_) = 0;
  std::uint64_t pending_pages_ GUARDED_BY(mu_) = 0;
  bool full_ GUARDED_BY(mu_) = false;
  std::vector<Asid> stale_spaces_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace remora
