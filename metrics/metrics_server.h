// MetricsServer: `GET /metrics` over HTTP for Prometheus, on cpp-httplib.
//
//   std::unique_ptr<MetricsServer> m;
//   Status st = MetricsServer::Start("127.0.0.1:9400", [&] { return stats.Snapshot(); }, &m);
//   ... m->address() is the address bound (port 0: the one the kernel picked)
//   m.reset();  // stops serving and joins its threads
//
// Every scrape takes a fresh snapshot with `snapshot` and renders it
// (prometheus_text.h). Any other path is 404, any other method 405.
//
// Bounded: it listens only on the address it is given (nothing by default:
// the daemons start it only for --metrics-listen), serves from kThreads
// threads, queues at most kMaxQueued accepted connections (beyond that the
// accept loop waits and the kernel's backlog holds or refuses the rest),
// refuses request bodies over kMaxBody bytes (httplib's own limits bound
// the request line and headers), and gives a connection kTimeoutSec to send
// its request and at most kMaxKeepAlive requests. There is no
// authentication: bind it to a management interface.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "remora/stats.h"
#include "remora/status.h"

namespace remora::metrics {

class MetricsServer {
 public:
  static constexpr int kThreads = 2;
  static constexpr int kMaxQueued = 8;
  static constexpr std::size_t kMaxBody = 1024;
  static constexpr int kTimeoutSec = 5;
  static constexpr int kMaxKeepAlive = 16;

  using SnapshotFn = std::function<StatsSnapshot()>;

  // `listen` is HOST:PORT ([v6addr]:PORT for IPv6); port 0 picks a free port.
  // `snapshot` is called from the server's threads, concurrently with the
  // daemon's work and possibly with itself.
  static Status Start(const std::string& listen, SnapshotFn snapshot,
                      std::unique_ptr<MetricsServer>* out);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // HOST:PORT actually bound.
  const std::string& address() const { return address_; }
  // The scrape URL, http://HOST:PORT/metrics.
  std::string url() const { return "http://" + address_ + "/metrics"; }

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl, std::string address);
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace remora::metrics
