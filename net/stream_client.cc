#include "net/stream_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "common/thread_name.h"
#include "net/socket_util.h"
#include "net/wire.h"
#include "remora/stats.h"

namespace remora {
namespace {

constexpr std::size_t kInitialReadBuffer = 256 * 1024;
constexpr std::size_t kMaxFdsPerMessage = 16;
// How long the background thread reads or sleeps before it re-checks the
// deadlines of asynchronous requests.
constexpr std::uint64_t kBackgroundSliceNs = 50'000'000;

std::chrono::steady_clock::time_point ToTimePoint(std::uint64_t ns) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
}

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

// Saturates instead of wrapping, so Send() can refuse an oversized request.
std::uint32_t PayloadLen(const StreamClient::Request& req) {
  std::uint64_t total = 0;
  for (const iovec& v : req.payload) total += v.iov_len;
  return total > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(total);
}

Status RemoteError(std::int32_t code, const std::uint8_t* text, std::size_t len) {
  std::string msg(reinterpret_cast<const char*>(text), len);
  if (code <= 0 || code > static_cast<std::int32_t>(Code::kInternal))
    return {Code::kInternal, "memory node answered with unknown code " + std::to_string(code) +
                                 (msg.empty() ? "" : ": " + msg)};
  return {static_cast<Code>(code), std::move(msg)};
}

}  // namespace

struct StreamClient::Pending {
  wire::Header request{};
  std::span<const iovec> into;
  Reply reply;
  Status status;
  std::uint64_t start_ns = 0;
  std::uint64_t deadline_ns = 0;
  bool claimed = false;  // a reader took it out of pending_ and is filling it in
  bool done = false;
  bool waiting = false;  // its (synchronous) owner sleeps on cv
  bool async = false;
  std::function<void(Status, Reply*)> callback;
  std::condition_variable cv;
};

struct StreamClient::Frame {
  wire::Header header;
  const std::uint8_t* payload;
};

StreamClient::StreamClient(int fd, Options options) : fd_(fd), options_(std::move(options)) {
  (void)net::SetNonBlocking(fd_);
  rbuf_.resize(kInitialReadBuffer);
  if (StatsRegistry* s = options_.stats) {
    metrics_.Register(s, options_.stats_prefix);
  }
  background_ = std::thread([this] {
    NameThisThread("remora-client");
    BackgroundLoop();
  });
}

StreamClient::~StreamClient() {
  // Break first: it queues every outstanding async callback. Only then may
  // the background thread see stopping_, because it drains the queue before
  // it looks at the flag (both under mu_); the other order could let it exit
  // between the two and never run those callbacks.
  Break({Code::kDisconnected, "client closed"});
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  background_cv_.notify_all();
  background_.join();
  close(fd_);
  for (const auto& fds : received_fds_) CloseAll(fds);
}

bool StreamClient::connected() const {
  std::lock_guard<std::mutex> l(mu_);
  return !broken_;
}

Status StreamClient::Begin(const Request& req, Pending* p) {
  p->request = wire::MakeRequest(req.type, next_id_.fetch_add(1), req.asid, req.arg0, req.arg1,
                                 PayloadLen(req));
  p->into = req.reply_into;
  p->start_ns = MonotonicNs();
  p->deadline_ns = p->start_ns + static_cast<std::uint64_t>(options_.timeout_ms) * 1000000ull;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (broken_) {
      p->done = true;
      return broken_status_;
    }
    pending_[p->request.req_id] = p;
  }
  Status st = Send(req, p->request.req_id, p->deadline_ns);
  if (!st.ok()) {
    std::unique_lock<std::mutex> l(mu_);
    if (pending_.erase(p->request.req_id) == 0)  // finished or being finished by someone else
      p->cv.wait(l, [&] { return p->done; });
    p->done = true;
    CloseAll(p->reply.fds);
    p->reply.fds.clear();
  }
  return st;
}

Status StreamClient::End(Pending* p, Reply* reply) {
  Status st = WaitFor(p);
  if (reply)
    *reply = std::move(p->reply);
  else
    CloseAll(p->reply.fds);
  return st;
}

Status StreamClient::Call(const Request& req, Reply* reply) {
  Pending p;
  Status st = Begin(req, &p);
  if (!st.ok()) return st;
  return End(&p, reply);
}

// A request Post() sent; its Pending stays registered until End().
class StreamClient::Posted {
 public:
  explicit Posted(StreamClient* client) : client_(client) {}
  ~Posted() {
    if (!ended_) (void)Finish(nullptr);
  }
  Posted(const Posted&) = delete;
  Posted& operator=(const Posted&) = delete;

  void Start(const Request& req) { sent_ = client_->Begin(req, &p_); }
  Status Finish(Reply* reply) {
    ended_ = true;
    return sent_.ok() ? client_->End(&p_, reply) : sent_;
  }

 private:
  StreamClient* const client_;
  Pending p_;
  Status sent_;
  bool ended_ = false;
};

void StreamClient::PostedDeleter::operator()(Posted* p) const { delete p; }

StreamClient::PostedPtr StreamClient::Post(const Request& req) {
  PostedPtr posted(new Posted(this));
  posted->Start(req);
  return posted;
}

Status StreamClient::Wait(PostedPtr posted, Reply* reply) { return posted->Finish(reply); }

void StreamClient::CallAsync(const Request& req, std::function<void(Status, Reply*)> done) {
  auto* p = new Pending;
  p->async = true;
  p->callback = std::move(done);
  p->request = wire::MakeRequest(req.type, next_id_.fetch_add(1), req.asid, req.arg0, req.arg1,
                                 PayloadLen(req));
  p->into = req.reply_into;
  p->start_ns = MonotonicNs();
  p->deadline_ns = p->start_ns + static_cast<std::uint64_t>(options_.timeout_ms) * 1000000ull;
  // Once published, `p` belongs to whoever completes it (it may be deleted
  // before Send() returns), so only these copies are used afterwards.
  const std::uint64_t id = p->request.req_id;
  const std::uint64_t deadline_ns = p->deadline_ns;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (broken_) {
      Finish(p, broken_status_);
      return;
    }
    pending_[id] = p;
    sending_.insert(id);
    ++async_outstanding_;
    if (!reader_active_) background_cv_.notify_one();
  }
  Status st = Send(req, id, deadline_ns);
  std::lock_guard<std::mutex> l(mu_);
  sending_.erase(id);
  // A reply may already have completed it (the node answers only once it has
  // the whole message). Otherwise complete it here if the send failed or the
  // connection broke while we were sending (Break left it to us).
  if ((!st.ok() || broken_) && pending_.erase(id)) {
    --async_outstanding_;
    Finish(p, st.ok() ? broken_status_ : st);
  }
}

Status StreamClient::Send(const Request& req, std::uint64_t req_id, std::uint64_t deadline_ns) {
  std::size_t total = 0;
  for (const iovec& v : req.payload) total += v.iov_len;
  if (total > wire::kMaxPayload)
    return {Code::kInvalidArgument, "request payload exceeds the protocol maximum"};
  wire::Header h = wire::MakeRequest(req.type, req_id, req.asid, req.arg0, req.arg1,
                                     static_cast<std::uint32_t>(total));
  std::uint8_t hb[wire::kHeaderSize];
  wire::EncodeHeader(h, hb);
  std::vector<iovec> iov;
  iov.reserve(2 + req.payload.size());
  iov.push_back({hb, sizeof hb});
  for (const iovec& v : req.payload)
    if (v.iov_len) iov.push_back(v);

  std::lock_guard<std::mutex> wl(write_mu_);
  // The tag's sequence number is the frame's place on the stream, so it is
  // taken under the lock that orders the frames.
  auth::Tag tag;
  if (options_.frame_keys) {
    tag = auth::FrameTag(options_.frame_keys->client_to_server, send_seq_++, hb,
                         std::span<const iovec>(iov).subspan(1));
    iov.push_back({tag.data(), tag.size()});
  }
  std::size_t idx = 0, sent = 0;
  while (idx < iov.size()) {
    msghdr m{};
    m.msg_iov = iov.data() + idx;
    m.msg_iovlen = std::min<std::size_t>(iov.size() - idx, IOV_MAX);
    ssize_t n = sendmsg(fd_, &m, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        st = net::WaitFd(fd_, POLLOUT, deadline_ns);
        if (st.ok()) continue;
        if (metrics_.timeouts) metrics_.timeouts->Inc();
      } else {
        st = {Code::kDisconnected, "send to " + Peer() + ": " + std::strerror(errno)};
      }
      // Either half a message is on the stream, which would corrupt
      // everything after it, or the peer has not read anything for a whole
      // timeout; both ways the connection is done for, and failing everyone
      // now beats making every later caller wait out its own timeout.
      Break({Code::kDisconnected,
             st.code() == Code::kTimeout ? Peer() + " stopped taking requests" : st.message()});
      return st;
    }
    sent += static_cast<std::size_t>(n);
    auto left = static_cast<std::size_t>(n);
    while (idx < iov.size() && left >= iov[idx].iov_len) left -= iov[idx++].iov_len;
    if (left) {
      iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
      iov[idx].iov_len -= left;
    }
  }
  if (metrics_.requests) metrics_.requests->Inc();
  if (metrics_.bytes_sent) metrics_.bytes_sent->Add(sent);
  return Status::Ok();
}

Status StreamClient::WaitFor(Pending* p) {
  std::unique_lock<std::mutex> l(mu_);
  // A posted request may be waited for only after its deadline (its thread
  // was sending or waiting elsewhere), with the reply already on the
  // socket: read once without waiting before calling it a timeout.
  bool last_look = false;
  while (!p->done) {
    bool expired = MonotonicNs() >= p->deadline_ns;
    if (!p->claimed && expired && !last_look && !reader_active_ && !broken_) {
      last_look = true;
      reader_active_ = true;
      l.unlock();
      ReadSome(0);  // a deadline in the past: poll() does not wait
      l.lock();
      reader_active_ = false;
      continue;
    }
    if (!p->claimed && expired) {
      pending_.erase(p->request.req_id);
      p->status = {Code::kTimeout, std::string(wire::TypeName(p->request.type)) +
                                       ": no reply from " + Peer() + " within " +
                                       std::to_string(options_.timeout_ms) + " ms"};
      p->done = true;
      if (metrics_.timeouts) metrics_.timeouts->Inc();
      break;
    }
    if (!p->claimed && !reader_active_ && !broken_) {
      reader_active_ = true;
      l.unlock();
      ReadSome(p->deadline_ns);
      l.lock();
      reader_active_ = false;
      if (p->done || MonotonicNs() >= p->deadline_ns) HandOffReading();
      continue;
    }
    p->waiting = true;
    if (p->claimed)
      p->cv.wait(l);
    else
      p->cv.wait_until(l, ToTimePoint(p->deadline_ns));
    p->waiting = false;
  }
  HandOffReading();
  return p->status;
}

void StreamClient::HandOffReading() {
  if (reader_active_ || broken_) return;
  for (auto& [id, p] : pending_) {
    if (p->waiting) {
      p->cv.notify_one();
      return;
    }
  }
  if (async_outstanding_ > 0) background_cv_.notify_one();
}

void StreamClient::ReadSome(std::uint64_t deadline_ns) {
  pollfd pfd{fd_, POLLIN, 0};
  int rc = poll(&pfd, 1, net::MsUntil(deadline_ns));
  if (rc <= 0) return;  // timeout or EINTR: the caller re-checks its deadline

  if (rend_ == rbuf_.size()) {  // make room: drop consumed bytes first
    std::memmove(rbuf_.data(), rbuf_.data() + rstart_, rend_ - rstart_);
    rend_ -= rstart_;
    rstart_ = 0;
  }
  iovec iov{rbuf_.data() + rend_, rbuf_.size() - rend_};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (options_.receive_fds) {
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
  }
  ssize_t n = recvmsg(fd_, &m, MSG_CMSG_CLOEXEC);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    Break({Code::kDisconnected, "connection to " + Peer() + " lost: " + std::strerror(errno)});
    return;
  }
  if (n == 0) {
    Break({Code::kDisconnected, Peer() + " closed the connection"});
    return;
  }
  if (options_.receive_fds) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      std::vector<int> fds(count);
      std::memcpy(fds.data(), CMSG_DATA(c), count * sizeof(int));
      received_fds_.push_back(std::move(fds));
    }
    if (m.msg_flags & MSG_CTRUNC) {
      Break({Code::kDisconnected, Peer() + " sent more descriptors than expected"});
      return;
    }
  }
  rend_ += static_cast<std::size_t>(n);
  if (metrics_.bytes_received) metrics_.bytes_received->Add(static_cast<std::uint64_t>(n));

  while (rend_ - rstart_ >= wire::kHeaderSize) {
    wire::Header h = wire::DecodeHeader(rbuf_.data() + rstart_);
    wire::FrameError fe = wire::CheckFrame(h);
    if (fe != wire::FrameError::kNone) {
      Break({Code::kDisconnected,
             "protocol violation by " + Peer() + ": " + std::string(wire::FrameErrorName(fe))});
      return;
    }
    const std::size_t tag_len = options_.frame_keys ? wire::kFrameTagLen : 0;
    std::size_t total = wire::kHeaderSize + h.payload_len + tag_len;
    if (rend_ - rstart_ < total) {
      if (rbuf_.size() - rstart_ < total) {  // this message needs a larger buffer
        std::memmove(rbuf_.data(), rbuf_.data() + rstart_, rend_ - rstart_);
        rend_ -= rstart_;
        rstart_ = 0;
        if (rbuf_.size() < total) rbuf_.resize(total);
      }
      break;
    }
    const std::uint8_t* frame = rbuf_.data() + rstart_;
    if (options_.frame_keys &&
        !auth::TagEqual(auth::FrameTag(options_.frame_keys->server_to_client, recv_seq_++, frame,
                                       frame + wire::kHeaderSize, h.payload_len)
                            .data(),
                        frame + wire::kHeaderSize + h.payload_len)) {
      Break({Code::kDisconnected, "a frame from " + Peer() +
                                      " failed its integrity check (altered, replayed or "
                                      "injected on the way)"});
      return;
    }
    Deliver({h, frame + wire::kHeaderSize});
    rstart_ += total;
  }
  if (rstart_ == rend_) rstart_ = rend_ = 0;
}

void StreamClient::Deliver(Frame&& f) {
  const wire::Header& h = f.header;
  std::vector<int> fds;
  if (wire::BaseType(h) == static_cast<std::uint16_t>(wire::MsgType::kAttachShm) && h.status == 0 &&
      !received_fds_.empty()) {
    fds = std::move(received_fds_.front());
    received_fds_.pop_front();
  }
  Pending* p = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pending_.find(h.req_id);
    if (it != pending_.end()) {
      p = it->second;
      pending_.erase(it);
      p->claimed = true;
      if (p->async) --async_outstanding_;
    }
  }
  if (!p) {  // its caller gave up (timeout): drop it
    CloseAll(fds);
    return;
  }
  Status st = wire::ValidateReply(p->request, h);
  if (st.ok() && h.status != 0) {
    st = RemoteError(h.status, f.payload, h.payload_len);
  } else if (st.ok()) {
    std::size_t off = 0;
    for (const iovec& v : p->into) {
      std::size_t take = std::min<std::size_t>(v.iov_len, h.payload_len - off);
      std::memcpy(v.iov_base, f.payload + off, take);
      off += take;
    }
    p->reply.payload.assign(reinterpret_cast<const char*>(f.payload) + off, h.payload_len - off);
  }
  p->reply.header = h;
  p->reply.fds = std::move(fds);
  if (metrics_.rtt) metrics_.rtt->Record(MonotonicNs() - p->start_ns);
  std::lock_guard<std::mutex> l(mu_);
  Finish(p, std::move(st));
}

void StreamClient::Finish(Pending* p, Status st) {
  p->status = std::move(st);
  p->done = true;
  if (p->async) {
    completed_async_.push_back(p);
    background_cv_.notify_one();
  } else {
    p->cv.notify_one();
  }
}

void StreamClient::Break(const Status& why) {
  std::lock_guard<std::mutex> l(mu_);
  if (broken_) return;
  broken_ = true;
  broken_status_ = why;
  // Wakes a reader blocked in poll(); the fd itself stays open until the
  // destructor, so no other thread can ever act on a recycled descriptor.
  shutdown(fd_, SHUT_RDWR);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (sending_.count(it->first)) {  // CallAsync finishes it after Send()
      ++it;
      continue;
    }
    if (it->second->async) --async_outstanding_;
    Finish(it->second, why);
    it = pending_.erase(it);
  }
}

void StreamClient::BackgroundLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    while (!completed_async_.empty()) {
      Pending* p = completed_async_.front();
      completed_async_.pop_front();
      l.unlock();
      p->callback(p->status, &p->reply);
      CloseAll(p->reply.fds);
      delete p;
      l.lock();
    }
    if (stopping_ && !reader_active_) break;

    // Asynchronous requests past their deadline end here.
    std::uint64_t now = MonotonicNs();
    for (auto it = pending_.begin(); it != pending_.end();) {
      Pending* p = it->second;
      if (p->async && now >= p->deadline_ns && !sending_.count(it->first)) {
        it = pending_.erase(it);
        --async_outstanding_;
        if (metrics_.timeouts) metrics_.timeouts->Inc();
        Finish(p, {Code::kTimeout, std::string(wire::TypeName(p->request.type)) +
                                       ": no reply from " + Peer() + " in time"});
      } else {
        ++it;
      }
    }
    if (!completed_async_.empty()) continue;

    if (async_outstanding_ > 0 && !reader_active_ && !broken_) {
      reader_active_ = true;
      l.unlock();
      ReadSome(now + kBackgroundSliceNs);
      l.lock();
      reader_active_ = false;
      HandOffReading();
      continue;
    }
    // With nothing outstanding nothing can time out: sleep until a request,
    // a completion or Stop notifies, so an idle client costs no wake-ups.
    if (async_outstanding_ == 0)
      background_cv_.wait(l);
    else
      background_cv_.wait_for(l, std::chrono::nanoseconds(kBackgroundSliceNs));
  }
}

}  // namespace remora
