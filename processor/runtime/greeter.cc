// The acceptor thread: new connections and their first message.
//
// Connections are accepted as they come and wait side by side for their
// first message (one poll over all of them), so a client that connects and
// says nothing delays nobody; it is dropped after first_message_timeout. At
// most pending_per_user silent connections per uid are kept, so one user
// cannot crowd out another's programs.
//
// Every connection is pinned to its peer first (peer.h: SO_PEERCRED and a
// pidfd). Then its first message (runtime_message.h) decides:
//   Hello       a new session, owned by the peer's uid and pid (any pid in
//               the message is ignored), for the userfaultfd passed with it
//               once CheckPeerUserfaultfd proves it is the peer's own;
//   AgentHello  joins the session it names if that session is the peer's
//               own process (the same pid and uid). A second agent for a
//               live session is the program misbehaving: its session ends,
//               and nothing else does.
//   Stats       the snapshot, with the sessions the peer may see.
// Anything else closes that connection.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <vector>

#include <spdlog/spdlog.h>

#include "processor/abi/fd_passing.h"
#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"
#include "processor/runtime/runtime_message.h"
#include "processor/runtime/runtime_socket.h"

namespace remora {
namespace {

using Clock = std::chrono::steady_clock;

struct Pending {
  int fd = -1;
  Peer peer;
  Clock::time_point deadline;
};

void Refuse(int fd, const Peer& peer, const std::string& why) {
  spdlog::warn("processor manager: refused a connection from pid {} uid {}: {}", peer.pid, peer.uid,
               why);
  // Never blocks: a client that does not read its refusal loses it.
  rt::Reply r;
  r.code = static_cast<std::int32_t>(Code::kPermissionDenied);
  std::string buf(reinterpret_cast<const char*>(&r), sizeof(r));
  buf += why;
  reinterpret_cast<rt::Reply*>(buf.data())->text_len = static_cast<std::uint32_t>(why.size());
  (void)::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

void ProcessorManager::AcceptLoop() {
  std::vector<Pending> pending;
  std::vector<pollfd> fds;
  auto drop = [&](std::size_t i) {
    ::close(pending[i].fd);
    ClosePeer(&pending[i].peer);
    pending[i] = std::move(pending.back());
    pending.pop_back();
  };
  for (;;) {
    fds.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    fds.push_back({stop_fd_, POLLIN, 0});
    auto wake = Clock::now() + std::chrono::seconds(1);  // reap retired sessions
    for (const Pending& p : pending) {
      fds.push_back({p.fd, POLLIN, 0});
      wake = std::min(wake, p.deadline);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now());
    const int n =
        ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long>(0, wait.count())) + 1);
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents) break;
    ReapRetired();
    EndAgentless();
    // First messages (and hang-ups), newest last: indices shift as we drop.
    const auto now = Clock::now();
    for (std::size_t i = pending.size(); i-- > 0;) {
      const short ev = fds[2 + i].revents;
      if (ev == 0) {
        if (now >= pending[i].deadline) drop(i);
        continue;
      }
      if (!ServeFirstMessage(pending[i].fd, &pending[i].peer)) continue;  // not yet after all
      pending[i] = std::move(pending.back());
      pending.pop_back();
    }
    if (fds[0].revents & POLLIN) {
      for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;  // EAGAIN: all taken
        Pending p;
        p.fd = fd;
        Status st = GetPeer(fd, &p.peer);
        if (!st.ok()) {
          spdlog::warn("processor manager: refused a connection: {}", st.ToString());
          ::close(fd);
          continue;
        }
        // Usually the first message is already there (the shim sends it
        // right after connecting): a burst of programs starting together is
        // served at once and never counts against the per-user cap.
        if (ServeFirstMessage(fd, &p.peer)) continue;
        const auto same_user = std::count_if(pending.begin(), pending.end(), [&](const Pending& q) {
          return q.peer.uid == p.peer.uid;
        });
        if (static_cast<std::uint32_t>(same_user) >= options_.pending_per_user) {
          Refuse(fd, p.peer, "too many connections of this user waiting to say hello");
          ::close(fd);
          ClosePeer(&p.peer);
          continue;
        }
        p.deadline = Clock::now() + options_.first_message_timeout;
        pending.push_back(std::move(p));
      }
    }
  }
  for (std::size_t i = pending.size(); i-- > 0;) drop(i);
}

bool ProcessorManager::ServeFirstMessage(int fd, Peer* peer) {
  alignas(rt::Request) char buf[sizeof(rt::Request) + 1];
  int passed[2];
  const ssize_t got = rt::RecvWithFds(fd, buf, sizeof(buf), passed, 2);  // fd is non-blocking
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  const int nfds = (passed[0] >= 0) + (passed[1] >= 0);
  rt::Request req;
  Status st = got < 0 ? Status{Code::kDisconnected, "receive failed"}
                      : DecodeRequest(buf, static_cast<std::size_t>(got), nfds,
                                      RequestChannel::kFirst, 0, &req);
  if (st.ok()) {
    if (passed[1] >= 0) ::close(passed[1]);
    Greet(fd, peer, req, passed[0]);  // takes fd, peer and passed[0]
    return true;
  }
  if (got > 0) Refuse(fd, *peer, st.message());
  for (int f : passed) {
    if (f >= 0) ::close(f);
  }
  ::close(fd);
  ClosePeer(peer);
  return true;
}

void ProcessorManager::Greet(int fd, Peer* peer, const rt::Request& req, int passed) {
  // Sessions talk blocking; the acceptor's own sends never wait.
  (void)::fcntl(fd, F_SETFL, 0);
  switch (req.op) {
    case rt::Op::kHello:
      return GreetHello(fd, peer, req, passed);
    case rt::Op::kAgentHello:
      GreetAgent(fd, *peer, req);
      break;
    case rt::Op::kStats: {
      const std::string json = StatsFor(*peer);
      rt::Reply r;
      r.text_len = static_cast<std::uint32_t>(json.size());
      std::string buf(reinterpret_cast<const char*>(&r), sizeof(r));
      buf += json;
      (void)::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      break;
    }
    default:  // DecodeRequest lets no other op through
      ::close(fd);
  }
  if (passed >= 0) ::close(passed);
  ClosePeer(peer);
}

void ProcessorManager::GreetHello(int fd, Peer* peer, const rt::Request& req, int uffd) {
  Status st = CheckPeerUserfaultfd(uffd, *peer, req.own_fd);
  if (!st.ok()) {
    // Nothing was read from it and nothing is signalled: the client is
    // told, and its descriptors go.
    Refuse(fd, *peer, st.message());
    ::close(uffd);
    ::close(fd);
    ClosePeer(peer);
    return;
  }
  std::uint64_t id;
  Asid asid;
  NewSessionIds(&id, &asid);
  st = options_.transport->CreateSpace(asid);
  if (!st.ok()) {
    spdlog::error("processor manager: cannot create an address space for pid {}: {}", peer->pid,
                  st.ToString());
    (void)SendReply(fd, st.code(), 0, 0, st.ToString());
    ::close(uffd);
    ::close(fd);
    ClosePeer(peer);
    return;
  }
  // The session owns the pidfd from here.
  Register(std::make_shared<ProcessSession>(this, id, asid, *peer, fd, uffd));
  peer->pidfd = -1;
  awaiting_agent_.emplace_back(id, Clock::now() + options_.first_message_timeout);
  (void)SendReply(fd, Code::kOk, id, asid, "");
}

void ProcessorManager::EndAgentless() {
  const auto now = Clock::now();
  for (std::size_t i = awaiting_agent_.size(); i-- > 0;) {
    std::shared_ptr<ProcessSession> s;
    {
      ReaderMutexLock lk(sessions_mu_);
      auto it = by_id_.find(awaiting_agent_[i].first);
      if (it != by_id_.end()) s = it->second;
    }
    if (s && !s->agent_attached() && now < awaiting_agent_[i].second) continue;
    if (s && !s->agent_attached() && s->Start(-1, 0)) {
      // Started only to be stopped: its control thread tears it down.
      s->Fail({Code::kTimeout, "the program's agent never connected"});
    }
    awaiting_agent_[i] = awaiting_agent_.back();
    awaiting_agent_.pop_back();
  }
}

void ProcessorManager::GreetAgent(int fd, const Peer& peer, const rt::Request& req) {
  std::shared_ptr<ProcessSession> s;
  {
    ReaderMutexLock lk(sessions_mu_);
    auto it = by_id_.find(req.session);
    if (it != by_id_.end()) s = it->second;
  }
  // The same answer for a session that does not exist and one that is not
  // the peer's: ids of other users' sessions are not to be probed.
  if (!s || s->pid() != peer.pid || s->uid() != peer.uid) {
    Refuse(fd, peer, "agent for an unknown program");
    ::close(fd);
    return;
  }
  // A second agent for a session that has one (or a forked child's, which
  // gets its agent from the fork): the program is not following the
  // protocol. It ends, alone.
  if (s->agent_attached() || !s->Start(fd, options_.fault_threads)) {
    Refuse(fd, peer, "a second agent connection for the program");
    ::close(fd);
    s->Fail({Code::kBadRequest, "a second agent connection for the program"});
    return;
  }
  // After Start: nothing is registered before the program has this
  // reply, so no zap can go to the agent ahead of it.
  (void)SendReply(fd, Code::kOk, s->id(), s->asid(), "");
}

}  // namespace remora
