#include "net/stream_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "net/socket_util.h"
#include "net/wire.h"
#include "remora/stats.h"

namespace remora {
namespace {

// epoll user data: connection ids count up from 1; other fds are tagged.
constexpr std::uint64_t kWakeId = 0;
constexpr std::uint64_t kListenerTag = 1ull << 62;
constexpr std::uint64_t kWatchTag = 2ull << 62;
constexpr std::uint64_t kTagMask = 3ull << 62;

// Small: a connection that never authenticates costs little. Grown to fit a
// large message, and shrunk back once it has been served.
constexpr std::size_t kInitialReadBuffer = 4096;
constexpr std::size_t kShrinkReadBufferAbove = 256 * 1024;
// Under the global budget no connection is paused for holding less than this.
constexpr std::size_t kMinFairShare = 1u << 20;
constexpr std::size_t kMaxIov = 64;
// A connection told to close after flushing gets this long to take its data.
constexpr std::uint64_t kCloseGraceNs = 5'000'000'000ull;

std::string PeerName(int fd, bool is_unix) {
  if (is_unix) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
      return "unix:pid" + std::to_string(cred.pid);
    return "unix";
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
}

}  // namespace

void StreamServer::Connection::Send(wire::Header header, std::string body, std::vector<int> fds) {
  header.payload_len = static_cast<std::uint32_t>(body.size());
  Out& o = out_.emplace_back();
  wire::EncodeHeader(header, o.header);
  o.body = std::move(body);
  if (keys_) {
    const auth::Tag tag = auth::FrameTag(keys_->server_to_client, send_seq_++, o.header,
                                         o.body.data(), o.body.size());
    std::memcpy(o.tag, tag.data(), tag.size());
    o.tag_len = tag.size();
  }
  o.fds = is_unix_ ? std::move(fds) : std::vector<int>{};
  out_bytes_ += o.size();
}

void StreamServer::Connection::CloseAfterFlush() {
  closing_ = true;
  std::uint64_t grace = MonotonicNs() + kCloseGraceNs;
  if (deadline_ns_ == 0 || deadline_ns_ > grace) deadline_ns_ = grace;
}

std::string_view StreamServer::CloseReasonName(CloseReason r) {
  switch (r) {
    case CloseReason::kPeerClosed:
      return "peer closed";
    case CloseReason::kTruncated:
      return "peer closed mid-message";
    case CloseReason::kProtocolError:
      return "protocol violation";
    case CloseReason::kIoError:
      return "i/o error";
    case CloseReason::kDeadline:
      return "deadline expired";
    case CloseReason::kByHandler:
      return "closed by server";
    case CloseReason::kShutdown:
      return "server shutdown";
    case CloseReason::kSuperseded:
      return "superseded by a newer connection of the same peer";
  }
  return "?";
}

StreamServer::StreamServer(Handler* handler, Options options)
    : handler_(handler), options_(std::move(options)) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  if (StatsRegistry* s = options_.stats) {
    metrics_.Register(s, options_.stats_prefix);
  }
}

StreamServer::~StreamServer() {
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : conns_) ids.push_back(id);
  for (auto id : ids) CloseConn(id, CloseReason::kShutdown);
  for (const Listener& l : listeners_) {
    close(l.fd);
    if (!l.path.empty()) unlink(l.path.c_str());
  }
  close(wake_fd_);
  close(epfd_);
}

Status StreamServer::ListenTcp(const std::string& host_port, std::string* bound) {
  int fd;
  REMORA_RETURN_IF_ERROR(net::ListenTcp(host_port, &fd, bound));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag | listeners_.size();
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  listeners_.push_back({fd, false, ""});
  return Status::Ok();
}

Status StreamServer::ListenUnix(const std::string& path) {
  int fd;
  REMORA_RETURN_IF_ERROR(net::ListenUnix(path, &fd));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag | listeners_.size();
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  listeners_.push_back({fd, true, path});
  return Status::Ok();
}

Status StreamServer::Watch(int fd, std::function<void()> on_readable) {
  std::uint64_t key = kWatchTag | static_cast<std::uint64_t>(fd);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = key;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    return {Code::kIoError, std::string("epoll_ctl: ") + std::strerror(errno)};
  watches_[key] = std::move(on_readable);
  return Status::Ok();
}

void StreamServer::Stop() {
  std::uint64_t one = 1;
  ssize_t rc = write(wake_fd_, &one, sizeof one);
  (void)rc;
}

void StreamServer::Run() {
  running_ = true;
  while (running_)
    if (Poll(-1) < 0) break;
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : conns_) ids.push_back(id);
  for (auto id : ids) CloseConn(id, CloseReason::kShutdown);
}

int StreamServer::Poll(int timeout_ms) {
  std::uint64_t next = NextDeadline();
  int timeout = timeout_ms;
  if (next) {
    const int until = std::min(net::MsUntil(next), 1000);
    timeout = timeout < 0 ? until : std::min(timeout, until);
  }
  epoll_event evs[64];
  int n = epoll_wait(epfd_, evs, 64, timeout);
  if (n < 0 && errno != EINTR) {
    spdlog::error("epoll_wait: {}", std::strerror(errno));
    return -1;
  }
  for (int i = 0; i < n; ++i) {
    std::uint64_t key = evs[i].data.u64;
    std::uint32_t ev = evs[i].events;
    if (key == kWakeId) {
      std::uint64_t v;
      ssize_t rc = read(wake_fd_, &v, sizeof v);
      (void)rc;
      running_ = false;
    } else if ((key & kTagMask) == kListenerTag) {
      Accept(listeners_[key & ~kTagMask]);
    } else if ((key & kTagMask) == kWatchTag) {
      auto it = watches_.find(key);
      if (it != watches_.end()) it->second();
    } else {
      auto it = conns_.find(key);
      if (it == conns_.end()) continue;  // closed earlier in this batch
      Connection& c = *it->second;
      bool alive = true;
      if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (c.reading_ && !c.held_)
          alive = OnReadable(c);
        else if (ev & (EPOLLHUP | EPOLLERR)) {
          CloseConn(key, CloseReason::kIoError);
          alive = false;
        }
      }
      if (alive && (ev & EPOLLOUT)) Flush(c);
    }
  }
  CheckDeadlines();
  if (listeners_paused_until_ && MonotonicNs() >= listeners_paused_until_) ResumeListeners();
  return std::max(n, 0);
}

void StreamServer::Accept(const Listener& l) {
  for (int i = 0; i < 64; ++i) {
    int fd = accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        spdlog::warn("accept: {}; not accepting for a moment", std::strerror(errno));
        PauseListeners();
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        spdlog::warn("accept: {}", std::strerror(errno));
      }
      return;
    }
    if (!l.is_unix) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto c = std::make_unique<Connection>();
    c->id_ = next_id_++;
    c->fd_ = fd;
    c->is_unix_ = l.is_unix;
    c->peer_ = PeerName(fd, l.is_unix);
    c->trusted_local_ = l.is_unix && net::TrustedLocalPeer(fd);
    c->in_.resize(kInitialReadBuffer);
    c->events_ = EPOLLIN;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->id_;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    if (metrics_.accepted) metrics_.accepted->Inc();
    if (metrics_.open) metrics_.open->Add(1);
    spdlog::debug("connection {} from {}", c->id_, c->peer_);
    Connection& ref = *c;
    conns_[c->id_] = std::move(c);
    handler_->OnOpen(ref);
    Track(ref, 0);
    Flush(ref);
  }
}

bool StreamServer::OnReadable(Connection& c) {
  if (c.in_end_ == c.in_.size() && c.in_start_ > 0) {
    std::memmove(c.in_.data(), c.in_.data() + c.in_start_, c.in_end_ - c.in_start_);
    c.in_end_ -= c.in_start_;
    c.in_start_ = 0;
  }
  ssize_t n = recv(c.fd_, c.in_.data() + c.in_end_, c.in_.size() - c.in_end_, 0);
  if (n == 0) {
    bool partial = c.in_end_ > c.in_start_;
    if (partial && metrics_.truncated) metrics_.truncated->Inc();
    if (partial) spdlog::warn("{}: closed in the middle of a message", c.peer_);
    CloseConn(c.id_, partial ? CloseReason::kTruncated : CloseReason::kPeerClosed);
    return false;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
    spdlog::debug("{}: recv: {}", c.peer_, std::strerror(errno));
    CloseConn(c.id_, CloseReason::kIoError);
    return false;
  }
  c.in_end_ += static_cast<std::size_t>(n);
  if (metrics_.bytes_in) metrics_.bytes_in->Add(static_cast<std::uint64_t>(n));
  if (!DispatchBuffered(c)) return false;
  return Flush(c);
}

bool StreamServer::DispatchBuffered(Connection& c) {
  while (!c.closing_ && c.reading_ && !c.held_ && c.in_end_ - c.in_start_ >= wire::kHeaderSize) {
    wire::Header h = wire::DecodeHeader(c.in_.data() + c.in_start_);
    wire::FrameError fe = wire::CheckFrame(h);
    if (fe == wire::FrameError::kNone && h.payload_len > c.max_payload_)
      fe = wire::FrameError::kTooLarge;
    if (fe != wire::FrameError::kNone) {
      if (metrics_.violations) metrics_.violations->Inc();
      spdlog::warn("{}: {} (type {}, payload_len {}, limit {}); dropping the connection", c.peer_,
                   wire::FrameErrorName(fe), h.type, h.payload_len, c.max_payload_);
      CloseConn(c.id_, CloseReason::kProtocolError);
      return false;
    }
    const std::size_t tag_len = c.keys_ ? wire::kFrameTagLen : 0;
    std::size_t total = wire::kHeaderSize + h.payload_len + tag_len;
    if (c.in_end_ - c.in_start_ < total) {
      if (c.in_.size() - c.in_start_ < total) {  // make room for the whole message
        std::memmove(c.in_.data(), c.in_.data() + c.in_start_, c.in_end_ - c.in_start_);
        c.in_end_ -= c.in_start_;
        c.in_start_ = 0;
        if (c.in_.size() < total) c.in_.resize(total);
      }
      break;
    }
    const std::uint8_t* frame = c.in_.data() + c.in_start_;
    if (c.keys_ && !auth::TagEqual(auth::FrameTag(c.keys_->client_to_server, c.recv_seq_++, frame,
                                                  frame + wire::kHeaderSize, h.payload_len)
                                       .data(),
                                   frame + wire::kHeaderSize + h.payload_len)) {
      if (metrics_.violations) metrics_.violations->Inc();
      if (metrics_.integrity_failures) metrics_.integrity_failures->Inc();
      spdlog::warn("{}: frame {} failed its integrity check; dropping the connection", c.peer_,
                   c.recv_seq_ - 1);
      CloseConn(c.id_, CloseReason::kProtocolError);
      return false;
    }
    std::string_view payload(reinterpret_cast<const char*>(frame) + wire::kHeaderSize,
                             h.payload_len);
    const std::size_t frame_start = c.in_start_;
    c.in_start_ += total;
    const std::size_t before = c.out_bytes_;
    handler_->OnMessage(c, h, payload);
    Track(c, before);
    if (c.held_) {  // deferred: the message stays first in line, tag and all
      c.in_start_ = frame_start;
      if (c.keys_) --c.recv_seq_;
      break;
    }
    // Stop taking requests while the peer is not taking our replies, or
    // holds more than its share of a spent global budget.
    if (OverBudget(c, false)) {
      c.reading_ = false;
      if (c.out_bytes_ <= options_.max_queued_bytes && metrics_.budget_pauses)
        metrics_.budget_pauses->Inc();
    }
  }
  if (c.in_start_ == c.in_end_) {
    c.in_start_ = c.in_end_ = 0;
    if (c.in_.size() > kShrinkReadBufferAbove) {
      c.in_.resize(kInitialReadBuffer);
      c.in_.shrink_to_fit();
    }
  }
  return true;
}

bool StreamServer::Flush(Connection& c) {
  for (;;) {
    while (!c.out_.empty()) {
      iovec iov[kMaxIov];
      std::size_t niov = 0;
      alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 16)];
      msghdr m{};
      for (auto& o : c.out_) {
        bool first = niov == 0;
        // Descriptors ride on the first byte of their own message, and that
        // message goes out alone, so the peer knows which reply they belong to.
        if (!o.fds.empty() && o.sent == 0) {
          if (!first) break;
          std::size_t bytes = sizeof(int) * std::min<std::size_t>(o.fds.size(), 16);
          m.msg_control = cbuf;
          m.msg_controllen = CMSG_SPACE(bytes);
          cmsghdr* cm = CMSG_FIRSTHDR(&m);
          cm->cmsg_level = SOL_SOCKET;
          cm->cmsg_type = SCM_RIGHTS;
          cm->cmsg_len = CMSG_LEN(bytes);
          std::memcpy(CMSG_DATA(cm), o.fds.data(), bytes);
        }
        if (o.sent < wire::kHeaderSize)
          iov[niov++] = {o.header + o.sent, wire::kHeaderSize - o.sent};
        std::size_t body_off = o.sent > wire::kHeaderSize ? o.sent - wire::kHeaderSize : 0;
        if (body_off < o.body.size())
          iov[niov++] = {o.body.data() + body_off, o.body.size() - body_off};
        const std::size_t tag_start = wire::kHeaderSize + o.body.size();
        std::size_t tag_off = o.sent > tag_start ? o.sent - tag_start : 0;
        if (tag_off < o.tag_len) iov[niov++] = {o.tag + tag_off, o.tag_len - tag_off};
        if (m.msg_control || niov + 3 > kMaxIov) break;
      }
      m.msg_iov = iov;
      m.msg_iovlen = niov;
      ssize_t n = sendmsg(c.fd_, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          c.want_write_ = true;
          return UpdateEvents(c);
        }
        spdlog::debug("{}: send: {}", c.peer_, std::strerror(errno));
        CloseConn(c.id_, CloseReason::kIoError);
        return false;
      }
      if (metrics_.bytes_out) metrics_.bytes_out->Add(static_cast<std::uint64_t>(n));
      auto left = static_cast<std::size_t>(n);
      const std::size_t before = c.out_bytes_;
      while (left > 0) {
        auto& o = c.out_.front();
        std::size_t size = o.size();
        std::size_t take = std::min(left, size - o.sent);
        o.sent += take;
        left -= take;
        o.fds.clear();  // sent with the first byte
        if (o.sent == size) {
          c.out_bytes_ -= size;
          c.out_.pop_front();
        }
      }
      Track(c, before);
    }
    c.want_write_ = false;
    if (c.closing_) {
      CloseConn(c.id_, CloseReason::kByHandler);
      return false;
    }
    if (c.reading_ || OverBudget(c, true)) break;
    // The backlog drained: take the requests that waited in our buffer.
    c.reading_ = true;
    if (!DispatchBuffered(c)) return false;
    if (c.out_.empty()) break;
  }
  return UpdateEvents(c);
}

void StreamServer::Resume(std::uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || !it->second->held_) return;
  Connection& c = *it->second;
  c.held_ = false;
  if (!DispatchBuffered(c)) return;
  Flush(c);
}

bool StreamServer::UpdateEvents(Connection& c) {
  std::uint32_t want = 0;
  if (c.reading_ && !c.held_ && !c.closing_) want |= EPOLLIN;
  if (c.want_write_) want |= EPOLLOUT;
  if (want == c.events_) return true;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id_;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd_, &ev);
  c.events_ = want;
  return true;
}

void StreamServer::Close(std::uint64_t id, CloseReason reason) { CloseConn(id, reason); }

void StreamServer::CloseConn(std::uint64_t id, CloseReason reason) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  std::unique_ptr<Connection> c = std::move(it->second);
  conns_.erase(it);
  epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd_, nullptr);
  close(c->fd_);
  const std::size_t before = c->out_bytes_;
  c->out_.clear();
  c->out_bytes_ = 0;
  Track(*c, before);
  if (metrics_.open) metrics_.open->Sub(1);
  if (reason == CloseReason::kDeadline && metrics_.deadline_closes) metrics_.deadline_closes->Inc();
  spdlog::debug("connection {} ({}) closed: {}", id, c->peer_, CloseReasonName(reason));
  handler_->OnClose(*c, reason);
}

bool StreamServer::OverBudget(const Connection& c, bool resume) const {
  const std::size_t budget = options_.reply_budget_bytes;
  std::size_t own_cap = std::min(options_.max_queued_bytes, budget / 2);
  if (resume) own_cap /= 2;
  if (c.out_bytes_ > own_cap) return true;
  if (total_out_bytes_ <= (resume ? budget / 4 * 3 : budget)) return false;
  const std::size_t share =
      std::max(kMinFairShare, budget / std::max<std::size_t>(1, backlogged_conns_));
  return c.out_bytes_ > share;
}

void StreamServer::Track(const Connection& c, std::size_t before) {
  const std::size_t now = c.out_bytes_;
  if (now == before) return;
  if (before == 0) ++backlogged_conns_;
  if (now == 0) --backlogged_conns_;
  total_out_bytes_ = total_out_bytes_ + now - before;
  if (metrics_.queued)
    metrics_.queued->Add(static_cast<std::int64_t>(now) - static_cast<std::int64_t>(before));
}

void StreamServer::PauseListeners() {
  constexpr std::uint64_t kPauseNs = 100'000'000;
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    epoll_event ev{};
    ev.data.u64 = kListenerTag | i;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, listeners_[i].fd, &ev);
  }
  listeners_paused_until_ = MonotonicNs() + kPauseNs;
}

void StreamServer::ResumeListeners() {
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerTag | i;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, listeners_[i].fd, &ev);
  }
  listeners_paused_until_ = 0;
}

std::uint64_t StreamServer::NextDeadline() const {
  std::uint64_t next = listeners_paused_until_;
  for (const auto& [id, c] : conns_)
    if (c->deadline_ns_ && (next == 0 || c->deadline_ns_ < next)) next = c->deadline_ns_;
  return next;
}

void StreamServer::CheckDeadlines() {
  std::uint64_t now = MonotonicNs();
  std::vector<std::uint64_t> expired;
  for (const auto& [id, c] : conns_)
    if (c->deadline_ns_ && c->deadline_ns_ <= now) expired.push_back(id);
  for (auto id : expired) CloseConn(id, CloseReason::kDeadline);
}

}  // namespace remora
