// StreamServer: an epoll event loop serving protocol.h messages on
// SOCK_STREAM sockets (TCP and AF_UNIX listeners, any number of each).
//
// One thread runs the loop (Run()). Sockets are non-blocking; each connection
// has its own read buffer, in which complete messages are cut out and handed
// to the Handler, and its own queue of outgoing messages, flushed with
// scatter/gather writes. A client may pipeline any number of requests; the
// handler's replies are queued in order and flushed together after each read,
// so a burst of requests costs one write.
//
// The server enforces framing (wire::CheckFrame): a wrong magic or version, a
// payload larger than wire::kMaxPayload (or the connection's SetMaxPayload()),
// or a peer closing in the middle of a message ends that connection only, and
// is counted. Running out of file descriptors pauses accepting briefly rather
// than spinning. Everything about a
// message's meaning is the Handler's business.
//
// Memory is bounded per peer and globally. A connection whose unsent
// replies exceed Options::max_queued_bytes is not read from until its queue
// drains to half of that. On top of that, all connections together may queue
// at most Options::reply_budget_bytes: past it, a connection that already
// has more than its fair share queued (the budget split over the connections
// that have anything queued, at least kMinFairShare) is not read from until
// the total is back under three quarters of the budget. So peers that send
// without reading cannot grow the server's memory beyond the budget, however
// many they are, and a peer that reads its replies keeps being served. A
// read buffer starts small and shrinks back once a large message is done.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/auth.h"
#include "net/transport_stats.h"
#include "remora/protocol.h"
#include "remora/status.h"

namespace remora {

class StreamServer {
 public:
  // Per-connection state a Handler attaches to a connection.
  struct Context {
    virtual ~Context() = default;
  };

  class Connection {
   public:
    std::uint64_t id() const { return id_; }
    bool is_unix() const { return is_unix_; }
    // A unix socket whose peer runs as this process's uid or as root
    // (net::TrustedLocalPeer): the handshake may agree on untagged frames.
    bool trusted_local_peer() const { return trusted_local_; }
    const std::string& peer() const { return peer_; }  // for logs

    // Queues one message: `header` (payload_len is set from `body`) and
    // `body`. `fds` (not owned; they must stay open until the loop sends the
    // message) travel with it as SCM_RIGHTS — unix sockets only.
    void Send(wire::Header header, std::string body = {}, std::vector<int> fds = {});
    // Stops reading, sends what is queued, then closes.
    void CloseAfterFlush();
    // Closes once the monotonic clock passes `deadline_ns` (0 = never), e.g.
    // a peer that does not authenticate in time.
    void SetDeadline(std::uint64_t deadline_ns) { deadline_ns_ = deadline_ns; }
    // Messages with a larger payload are a framing violation on this
    // connection (default wire::kMaxPayload). Lets a handler keep peers that
    // have not authenticated from making the server buffer a megabyte each.
    void SetMaxPayload(std::uint32_t bytes) { max_payload_ = bytes; }
    // From now on every message sent carries a tag and every message received
    // must carry a valid one (auth.h, "Frames"); one that does not ends the
    // connection as a protocol violation (counted in
    // <prefix>_integrity_failures too).
    void EnableFrameAuth(const auth::FrameKeys& keys) { keys_ = keys; }
    // Called from OnMessage: hands the message being handled back. The
    // server keeps it, reads and dispatches nothing more of this connection,
    // and hands the same message to OnMessage again after
    // StreamServer::Resume(id()). Replies queued meanwhile are still sent.
    // Lets a handler park a request behind work done elsewhere without
    // blocking the loop and without reordering the connection's replies.
    void Defer() { held_ = true; }
    // Bytes of replies queued on this connection, not yet sent.
    std::size_t queued_bytes() const { return out_bytes_; }

    Context* context() const { return context_.get(); }
    void set_context(std::unique_ptr<Context> c) { context_ = std::move(c); }

   private:
    friend class StreamServer;
    struct Out {
      std::uint8_t header[48];
      std::string body;
      std::uint8_t tag[wire::kFrameTagLen];
      std::size_t tag_len = 0;  // 0 or kFrameTagLen (frame auth)
      std::vector<int> fds;
      std::size_t sent = 0;  // bytes of header+body+tag already written
      std::size_t size() const { return 48 + body.size() + tag_len; }
    };

    std::uint64_t id_ = 0;
    int fd_ = -1;
    bool is_unix_ = false;
    bool trusted_local_ = false;
    std::string peer_;
    std::vector<std::uint8_t> in_;
    std::size_t in_start_ = 0, in_end_ = 0;
    std::deque<Out> out_;
    std::size_t out_bytes_ = 0;
    bool closing_ = false;      // CloseAfterFlush() called
    bool held_ = false;         // Defer() called, Resume() not yet
    bool reading_ = true;       // EPOLLIN registered
    bool want_write_ = false;   // output is waiting for the socket
    std::uint32_t events_ = 0;  // what epoll currently watches for
    std::uint64_t deadline_ns_ = 0;
    std::uint32_t max_payload_ = wire::kMaxPayload;
    std::unique_ptr<Context> context_;
    std::optional<auth::FrameKeys> keys_;
    std::uint64_t send_seq_ = 0, recv_seq_ = 0;
  };

  enum class CloseReason {
    kPeerClosed,     // orderly EOF between messages
    kTruncated,      // EOF in the middle of a message
    kProtocolError,  // bad magic / version / oversized payload
    kIoError,        // read or write failed (reset, broken pipe)
    kDeadline,       // SetDeadline() expired
    kByHandler,      // CloseAfterFlush() completed
    kShutdown,       // server stopped
    kSuperseded,     // the handler closed it for a newer one (Close)
  };
  static std::string_view CloseReasonName(CloseReason r);

  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnOpen(Connection& conn) = 0;
    // `payload` is valid only during the call. May Send() any number of
    // messages and call CloseAfterFlush().
    virtual void OnMessage(Connection& conn, const wire::Header& header,
                           std::string_view payload) = 0;
    virtual void OnClose(Connection& conn, CloseReason reason) = 0;
  };

  struct Options {
    std::size_t max_queued_bytes = 64u << 20;
    std::size_t reply_budget_bytes = 256u << 20;
    StatsRegistry* stats = nullptr;
    std::string stats_prefix = "server";  // <prefix>_connections, _bytes_in, ...
  };

  StreamServer(Handler* handler, Options options);
  ~StreamServer();  // closes every socket; unlinks unix socket files it created
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  Status ListenTcp(const std::string& host_port, std::string* bound);
  Status ListenUnix(const std::string& path);
  // Runs `on_readable` in the loop whenever `fd` is readable (e.g. a signalfd).
  Status Watch(int fd, std::function<void()> on_readable);

  // Serves until Stop(). Connections still open are closed with kShutdown.
  void Run();
  // One turn of the loop Run() repeats: waits up to `timeout_ms` (-1: until
  // something is ready; never past the next connection deadline), serves
  // what is ready and returns how many events it handled (-1 if the loop
  // broke). For a caller that drives the server from its own thread, such as
  // a fuzz harness that plays client and server in turn without waiting.
  int Poll(int timeout_ms);
  // Hands connection `id` its deferred message again (Connection::Defer)
  // and lets it read on; nothing if it is gone or not deferred. Loop thread.
  void Resume(std::uint64_t id);
  // Closes connection `id` at once, dropping whatever it has not read or
  // sent yet; OnClose runs before this returns. Nothing if it is gone.
  // Loop thread, from a handler serving another connection (a connection
  // ends its own life with CloseAfterFlush).
  void Close(std::uint64_t id, CloseReason reason);
  // Thread-safe and async-signal-safe: makes Run() return soon.
  void Stop();

  std::size_t connection_count() const { return conns_.size(); }
  std::size_t queued_bytes() const { return total_out_bytes_; }

 private:
  struct Listener {
    int fd;
    bool is_unix;
    std::string path;
  };
  // Out of file descriptors: stop watching the listeners for a moment instead
  // of spinning on a readiness that accept() cannot consume.
  void PauseListeners();
  void ResumeListeners();

  void Accept(const Listener& l);
  // Each returns false if it closed the connection (which is then gone).
  bool OnReadable(Connection& c);
  // Cuts complete messages out of the read buffer and dispatches them.
  bool DispatchBuffered(Connection& c);
  // Writes queued output; resumes reading once the backlog is small again.
  bool Flush(Connection& c);
  bool UpdateEvents(Connection& c);
  // Whether `c` must stop reading for its own or the global backlog
  // (`resume`: the lower marks that let a paused connection read again).
  bool OverBudget(const Connection& c, bool resume) const;
  // Keeps total_out_bytes_, backlogged_conns_ and the gauge in step after
  // c.out_bytes_ changed from `before`.
  void Track(const Connection& c, std::size_t before);
  void CloseConn(std::uint64_t id, CloseReason reason);
  void CheckDeadlines();
  std::uint64_t NextDeadline() const;

  Handler* handler_;
  Options options_;
  int epfd_ = -1;
  int wake_fd_ = -1;  // eventfd for Stop()
  bool running_ = false;
  std::uint64_t listeners_paused_until_ = 0;
  std::uint64_t next_id_ = 1;
  std::vector<Listener> listeners_;
  std::unordered_map<std::uint64_t, std::function<void()>> watches_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> conns_;
  std::size_t total_out_bytes_ = 0;   // queued replies of every connection
  std::size_t backlogged_conns_ = 0;  // connections with out_bytes_ > 0

  StreamServerMetrics metrics_;  // null handles without stats
};

}  // namespace remora
