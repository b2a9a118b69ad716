// StreamClient: request/reply over one connected SOCK_STREAM socket (TCP or
// AF_UNIX), shared by any number of threads.
//
// Requests carry a fresh req_id; replies may come back in any order and are
// matched by it. There is no dedicated reader thread on the synchronous path:
// a caller waiting for its reply becomes the reader if nobody else is reading
// (leader/follower), so a lone caller reads its own reply with no thread
// hand-off, and a reader that receives someone else's reply passes it on and
// keeps reading until its own arrives. A small background thread reads only
// while asynchronous requests are outstanding and nobody else is reading, and
// it is the only thread that runs CallAsync() callbacks — so a callback never
// runs inside a caller that may hold its own locks.
//
// Failure model: every request has a deadline (Options::timeout_ms) and ends
// with kTimeout if no reply arrived by then; the connection stays usable (a
// late reply is dropped). When the peer closes, the socket breaks, the peer
// violates framing, or a request cannot even be sent before its deadline (the
// peer stopped reading), every outstanding and future request fails with
// kDisconnected; the client does not reconnect.
//
// Replies carrying SCM_RIGHTS file descriptors (kAttachShm on a unix socket)
// are supported: the descriptors come back in Reply::fds.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "net/auth.h"
#include "net/transport_stats.h"
#include "remora/protocol.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora {

class StreamClient {
 public:
  struct Options {
    int timeout_ms = 10000;  // per request
    // Who is at the other end, as errors name it ("memory node at
    // 10.0.0.2:7000"): in a cluster, which node failed is the first thing
    // an operator needs. Empty: "memory node".
    std::string peer;
    StatsRegistry* stats = nullptr;  // <prefix>_requests, _bytes_sent, ... if set
    std::string stats_prefix{kTcpStatsPrefix};
    bool receive_fds = false;  // unix sockets: accept SCM_RIGHTS in replies
    // From the handshake (net/handshake.h; every connection to a memory node
    // has them): every frame is tagged and every reply's tag checked
    // (auth.h). A reply that fails the check breaks the connection like a
    // framing violation. Unset only for bare streams in tests.
    std::optional<auth::FrameKeys> frame_keys;
  };

  struct Request {
    wire::MsgType type = wire::MsgType::kPing;
    Asid asid = 0;
    std::uint64_t arg0 = 0;
    std::uint64_t arg1 = 0;
    // Payload, gathered from these pieces without copying. Must stay valid
    // until Call() returns (CallAsync: until the callback runs).
    std::span<const iovec> payload;
    // Where the payload of a successful reply goes, in order, before anything
    // left over is put into Reply::payload. Same lifetime rule as `payload`.
    std::span<const iovec> reply_into;
  };

  struct Reply {
    wire::Header header{};
    std::string payload;   // the part that did not fit into reply_into
    std::vector<int> fds;  // received descriptors; the caller owns them
  };

  // Takes ownership of `fd`, a connected socket that already passed the
  // handshake. The fd is made non-blocking.
  StreamClient(int fd, Options options);
  ~StreamClient();  // fails outstanding requests with kDisconnected, closes
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  // Sends `req` and waits for its reply. Returns the reply's status (with the
  // peer's message for errors), or kTimeout / kDisconnected / kIoError.
  // `reply` may be null when only the status matters.
  Status Call(const Request& req, Reply* reply = nullptr);

  // Call() in two halves, so that one thread can have requests in flight on
  // several connections at once (a write-back to every replica of a region)
  // without a thread per connection: Post() sends `req` from this thread and
  // returns; Wait() waits for the reply exactly as Call() does, reading the
  // socket itself if nobody else is. `req.payload` may go once Post()
  // returned, `req.reply_into` must stay valid until Wait() returns. A
  // Posted dropped without Wait() waits for its reply in its destructor.
  class Posted;
  struct PostedDeleter {
    void operator()(Posted* p) const;
  };
  using PostedPtr = std::unique_ptr<Posted, PostedDeleter>;
  PostedPtr Post(const Request& req);
  Status Wait(PostedPtr posted, Reply* reply = nullptr);

  // Sends `req` now, from this thread, and returns without waiting for the
  // reply; `done` runs later on the client's background thread with the same
  // status Call() would return. If sending fails, `done` still runs there.
  void CallAsync(const Request& req, std::function<void(Status, Reply*)> done);

  // False once the connection broke; every call then fails fast.
  bool connected() const;

 private:
  std::string Peer() const { return options_.peer.empty() ? "memory node" : options_.peer; }
  struct Pending;
  struct Frame;

  // Registers `p` for `req` and sends it; on failure `p` is out of the
  // table again (and done) when this returns.
  Status Begin(const Request& req, Pending* p);
  // Waits for a begun request's reply and hands it to `reply`.
  Status End(Pending* p, Reply* reply);
  Status Send(const Request& req, std::uint64_t req_id, std::uint64_t deadline_ns);
  Status WaitFor(Pending* p);
  // Reads what the socket has (waiting at most until deadline_ns) and
  // delivers every complete reply. Called by the one current reader.
  void ReadSome(std::uint64_t deadline_ns);
  void Deliver(Frame&& f);
  void Break(const Status& why);
  // Picks a waiting thread to take over reading. Requires mu_.
  void HandOffReading();
  void Finish(Pending* p, Status st);  // requires mu_
  void BackgroundLoop();

  const int fd_;
  const Options options_;
  std::atomic<std::uint64_t> next_id_{1};
  std::mutex write_mu_;         // one message at a time on the socket
  std::uint64_t send_seq_ = 0;  // frames sent; guarded by write_mu_

  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, Pending*> pending_;
  std::size_t async_outstanding_ = 0;
  bool reader_active_ = false;
  bool broken_ = false;
  bool stopping_ = false;
  Status broken_status_;
  std::deque<Pending*> completed_async_;  // run by BackgroundLoop
  // Async requests whose bytes are still being sent from the caller's buffer.
  // Neither a timeout nor Break() may complete them meanwhile: their callback
  // would tell the caller the buffer is free while sendmsg still reads it.
  // CallAsync completes them itself once Send() returned, if still needed.
  std::unordered_set<std::uint64_t> sending_;
  std::condition_variable background_cv_;

  // Reader-owned state: touched only by the thread holding the reader role
  // (handed over under mu_, which orders the accesses).
  std::vector<std::uint8_t> rbuf_;
  std::size_t rstart_ = 0, rend_ = 0;
  std::deque<std::vector<int>> received_fds_;
  std::uint64_t recv_seq_ = 0;  // replies received and verified

  StreamClientMetrics metrics_;  // null handles without stats

  std::thread background_;
};

}  // namespace remora
