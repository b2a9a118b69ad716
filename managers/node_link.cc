#include "managers/node_link.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "net/auth.h"

namespace remora {
namespace {

// One incarnation for every connection of a link, so that the node keeps
// this processor's spaces across a reconnect (memory-node/server.h).
NodeLinkOptions WithIncarnation(NodeLinkOptions o) {
  if (o.transport.incarnation == 0) o.transport.incarnation = auth::NewIncarnation();
  return o;
}

void SetGauge(Gauge* g, std::int64_t v) {
  if (g) g->Add(v - g->Value());
}

}  // namespace

const char* NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kUp:
      return "up";
    case NodeState::kDown:
      return "reconnecting";
    case NodeState::kLost:
      return "lost";
  }
  return "?";
}

NodeLink::NodeLink(const ClusterNodeSpec& spec, NodeLinkOptions opts, NodeLinkHooks hooks,
                   StatsRegistry* stats)
    : spec_(spec), opts_(WithIncarnation(std::move(opts))), hooks_(std::move(hooks)) {
  metrics_.Register(stats, fmt::format("node{}", spec_.id));
}

NodeLink::~NodeLink() {
  {
    MutexLock lk(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::string NodeLink::Describe() const {
  return fmt::format("memory node {} ({})", spec_.id, spec_.address);
}

NodeState NodeLink::state() const {
  MutexLock lk(mu_);
  return state_;
}

bool NodeLink::healthy() const {
  MutexLock lk(mu_);
  return state_ == NodeState::kUp && !stalled_;
}

std::uint64_t NodeLink::epoch() const {
  MutexLock lk(mu_);
  return epoch_;
}

void NodeLink::Load(std::uint64_t* capacity_pages, std::uint64_t* used_pages,
                    std::uint64_t* pending_pages, bool* full) const {
  MutexLock lk(mu_);
  *capacity_pages = capacity_pages_;
  *used_pages = used_pages_;
  *pending_pages = pending_pages_;
  *full = full_;
}

void NodeLink::NotePlaced(std::uint64_t pages) {
  MutexLock lk(mu_);
  pending_pages_ += pages;
}

void NodeLink::MarkFull() {
  MutexLock lk(mu_);
  full_ = true;
}

void NodeLink::SetState(NodeState s) {
  state_ = s;
  SetGauge(metrics_.state, static_cast<std::int64_t>(s));
  cv_.notify_all();
}

Status NodeLink::Start() {
  Status st;
  std::shared_ptr<Transport> t = ConnectTransport(opts_.transport, &st);
  {
    MutexLock lk(mu_);
    if (t) {
      transport_ = t;
      SetState(NodeState::kUp);
    } else {
      SetState(NodeState::kLost);
    }
  }
  if (t) Poll();
  thread_ = std::thread([this] { Loop(); });
  return st;
}

std::shared_ptr<Transport> NodeLink::Current(std::uint64_t epoch, bool* gone) {
  MutexLock lk(mu_);
  for (;;) {
    if (stop_ || epoch_ != epoch || state_ == NodeState::kLost) {
      *gone = true;
      return nullptr;
    }
    if (state_ == NodeState::kUp) return transport_;
    cv_.wait(mu_);  // down: the link's thread reconnects or gives the node up
  }
}

Status NodeLink::Call(std::uint64_t epoch, const std::function<Status(Transport*)>& fn,
                      bool* gone) {
  *gone = false;
  for (;;) {
    std::shared_ptr<Transport> t = Current(epoch, gone);
    if (*gone) return {Code::kDisconnected, Describe() + " is lost"};
    Status st = fn(t.get());
    NoteOutcome(t, st);
    if (!TransportFailure(st)) return st;
  }
}

Status NodeLink::CallUnlessBroken(std::uint64_t epoch, const std::function<Status(Transport*)>& fn,
                                  bool* gone, bool* broken) {
  *gone = false;
  *broken = false;
  for (;;) {
    std::shared_ptr<Transport> t;
    {
      MutexLock lk(mu_);
      for (;;) {
        if (stop_ || epoch_ != epoch || state_ == NodeState::kLost) {
          *gone = true;
          return {Code::kDisconnected, Describe() + " is lost"};
        }
        if (state_ == NodeState::kUp) break;
        if (broken_) {
          *broken = true;
          return {Code::kDisconnected, Describe() + ": connection broken, reconnecting"};
        }
        cv_.wait(mu_);  // down after a stall: wait as Call() does
      }
      t = transport_;
    }
    Status st = fn(t.get());
    NoteOutcome(t, st);  // a break: down until a reconnect (refused: broken_)
    if (!TransportFailure(st)) return st;
  }
}

Status NodeLink::CallOrSkipIfDead(std::uint64_t epoch, const std::function<Status(Transport*)>& fn,
                                  bool* gone, bool* skipped) {
  bool broken = false;
  Status st = CallUnlessBroken(epoch, fn, gone, &broken);
  *skipped = broken;
  if (!broken) return st;
  MutexLock lk(mu_);
  if (epoch_ == epoch) missed_ = true;
  return Status::Ok();
}

Status NodeLink::TryOnce(std::uint64_t epoch, const std::function<Status(Transport*)>& fn,
                         bool* gone) {
  *gone = false;
  std::shared_ptr<Transport> t;
  {
    MutexLock lk(mu_);
    if (stop_ || epoch_ != epoch || state_ == NodeState::kLost) {
      *gone = true;
      return {Code::kDisconnected, Describe() + " is lost"};
    }
    if (state_ != NodeState::kUp) return {Code::kDisconnected, Describe() + " is reconnecting"};
    t = transport_;
  }
  Status st = fn(t.get());
  NoteOutcome(t, st);
  return st;
}

std::shared_ptr<Transport> NodeLink::UpTransport(std::uint64_t epoch) {
  MutexLock lk(mu_);
  if (stop_ || epoch_ != epoch || state_ != NodeState::kUp) return nullptr;
  return transport_;
}

void NodeLink::NoteOutcome(const std::shared_ptr<Transport>& t, const Status& st) {
  if (st.ok()) NoteSuccess();
  if (TransportFailure(st)) NoteFailure(t, st);
}

void NodeLink::NoteSuccess() {
  MutexLock lk(mu_);
  stalled_ = false;
}

void NodeLink::NoteFailure(const std::shared_ptr<Transport>& t, const Status& st) {
  metrics_.errors->Inc();
  std::uint64_t epoch = 0;
  std::string why;
  {
    MutexLock lk(mu_);
    if (t != transport_ || state_ != NodeState::kUp) return;  // someone else noticed first
    const auto now = Clock::now();
    if (st.code() == Code::kDisconnected) {
      spdlog::warn("cluster: {}: connection lost ({}); reconnecting", Describe(), st.message());
      SetState(NodeState::kDown);
      down_since_ = now;
      broken_ = false;  // until a reconnect is refused (Reconnect)
      stalled_ = false;
      return;
    }
    if (!stalled_) {
      stalled_ = true;
      // The first timeout already waited a whole request timeout.
      stalled_since_ = now - std::chrono::milliseconds(opts_.transport.timeout_ms);
      spdlog::warn("cluster: {}: not answering ({}); waiting up to {} ms", Describe(), st.message(),
                   opts_.stall_deadline_ms);
    }
    if (now - stalled_since_ < std::chrono::milliseconds(opts_.stall_deadline_ms)) return;
    epoch = epoch_;
    why = fmt::format("no answer for {} ms", opts_.stall_deadline_ms);
  }
  DeclareLost(epoch, why);
}

void NodeLink::DeclareLost(std::uint64_t epoch, const std::string& why) {
  {
    MutexLock lk(mu_);
    if (epoch_ != epoch) return;
    ++epoch_;
    transport_.reset();
    stalled_ = false;
    broken_ = false;
    missed_ = false;
    SetState(NodeState::kLost);
  }
  spdlog::error("cluster: {} is lost: {}", Describe(), why);
  std::vector<Asid> spaces = hooks_.on_lost ? hooks_.on_lost(why) : std::vector<Asid>{};
  MutexLock lk(mu_);
  stale_spaces_.insert(stale_spaces_.end(), spaces.begin(), spaces.end());
}

void NodeLink::Poll() {
  std::shared_ptr<Transport> t;
  {
    MutexLock lk(mu_);
    if (state_ != NodeState::kUp) return;
    t = transport_;
  }
  MemoryNodeInfo info;
  Status st = t->Info(&info);
  if (!st.ok()) {
    if (TransportFailure(st)) NoteFailure(t, st);
    return;
  }
  MutexLock lk(mu_);
  stalled_ = false;
  capacity_pages_ = info.capacity_pages;
  used_pages_ = info.used_pages;
  pending_pages_ = 0;
  full_ = info.used_pages >= info.capacity_pages;
  SetGauge(metrics_.capacity_pages, static_cast<std::int64_t>(info.capacity_pages));
  SetGauge(metrics_.used_pages, static_cast<std::int64_t>(info.used_pages));
}

void NodeLink::Reconnect() {
  NodeState was;
  std::uint64_t epoch;
  {
    MutexLock lk(mu_);
    was = state_;
    epoch = epoch_;
  }
  Status st;
  std::shared_ptr<Transport> t = ConnectTransport(opts_.transport, &st);
  if (!t) {
    if (was != NodeState::kDown) return;
    std::chrono::milliseconds elapsed;
    {
      MutexLock lk(mu_);
      elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - down_since_);
      // Refused (not timed out): no process listens there any more. Its
      // connection did not merely break after a stall, and write-backs
      // with other replicas stop waiting for it (CallUnlessBroken).
      if (st.code() != Code::kTimeout && epoch_ == epoch && state_ == NodeState::kDown &&
          !broken_) {
        broken_ = true;
        cv_.notify_all();
      }
    }
    // A stopped node still completes TCP connects (its listen backlog) and
    // then says nothing: that is a stall, not a death.
    const int deadline =
        st.code() == Code::kTimeout ? opts_.stall_deadline_ms : opts_.reconnect_deadline_ms;
    if (elapsed.count() >= deadline)
      DeclareLost(epoch, fmt::format("unreachable for {} ms: {}", elapsed.count(), st.message()));
    return;
  }
  bool missed = false;
  {
    MutexLock lk(mu_);
    missed = missed_ && epoch_ == epoch;
  }
  if (was == NodeState::kDown && missed) {
    // It did not see a range change, fork or destroy (skipped while its
    // reconnects were refused): what it holds may be stale.
    DeclareLost(epoch, "it missed changes to this processor's memory while it was down");
    was = NodeState::kLost;
  } else if (was == NodeState::kDown) {
    // Same node process, or a restarted one that lost everything?
    Asid probe = 0;
    if (hooks_.any_hosted && hooks_.any_hosted(&probe)) {
      Status p = t->CreateSpace(probe);
      if (p.ok()) {
        (void)t->DestroySpace(probe);
        DeclareLost(epoch, "it came back empty (restarted)");
        was = NodeState::kLost;
      } else if (p.code() != Code::kSpaceExists) {
        return;  // try again after the backoff
      }
    }
  }
  if (was == NodeState::kLost) {
    std::vector<Asid> stale;
    {
      MutexLock lk(mu_);
      stale.swap(stale_spaces_);
    }
    // Spaces this processor had there before it was given up: free them in
    // case the node merely was unreachable and still holds them.
    for (Asid a : stale) (void)t->DestroySpace(a);
    spdlog::info("cluster: {} answers again: used as a new, empty node", Describe());
  } else {
    spdlog::info("cluster: {}: reconnected", Describe());
  }
  {
    MutexLock lk(mu_);
    if (stop_) return;
    transport_ = t;
    stalled_ = false;
    broken_ = false;
    SetState(NodeState::kUp);
  }
  metrics_.reconnects->Inc();
  Poll();
}

void NodeLink::Loop() {
  auto backoff = std::chrono::milliseconds(10);
  auto next_poll = Clock::now() + std::chrono::milliseconds(opts_.poll_ms);
  for (;;) {
    NodeState s;
    {
      MutexLock lk(mu_);
      if (stop_) return;
      s = state_;
    }
    if (s == NodeState::kUp) {
      backoff = std::chrono::milliseconds(10);
      if (Clock::now() >= next_poll) {
        Poll();
        next_poll = Clock::now() + std::chrono::milliseconds(opts_.poll_ms);
      }
      MutexLock lk(mu_);
      if (!stop_ && state_ == NodeState::kUp) cv_.wait_until(mu_, next_poll);
      continue;
    }
    Reconnect();
    MutexLock lk(mu_);
    if (stop_ || state_ == NodeState::kUp) continue;
    // Lost: look for the node coming back once a second.
    const auto wait = state_ == NodeState::kLost ? std::chrono::milliseconds(1000) : backoff;
    cv_.wait_for(mu_, wait);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(250));
  }
}

}  // namespace remora
