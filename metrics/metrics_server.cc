#include "metrics/metrics_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "metrics/prometheus_text.h"

namespace remora::metrics {
namespace {

// httplib's ThreadPool queues without limit; this one makes the accept loop
// wait when kMaxQueued connections are already waiting for a thread.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, std::size_t max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~BoundedPool() override = default;

  void enqueue(std::function<void()> fn) override {
    MutexLock lk(mu_);
    room_.wait(mu_, [this]() REQUIRES(mu_) { return jobs_.size() < max_queued_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    work_.notify_one();
  }

  // Runs what is queued (each job closes its connection), then joins.
  void shutdown() override {
    {
      MutexLock lk(mu_);
      shutdown_ = true;
    }
    work_.notify_all();
    room_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        MutexLock lk(mu_);
        work_.wait(mu_, [this]() REQUIRES(mu_) { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        room_.notify_one();
      }
      fn();
    }
  }

  const std::size_t max_queued_;
  Mutex mu_;
  CondVar work_, room_;
  std::deque<std::function<void()>> jobs_ GUARDED_BY(mu_);
  bool shutdown_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// "host:port" or "[v6]:port" into its parts.
Status SplitHostPort(const std::string& listen, std::string* host, int* port) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size())
    return {Code::kInvalidArgument, "--metrics-listen wants HOST:PORT, got '" + listen + "'"};
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);
  const std::string p = listen.substr(colon + 1);
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(p.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < 0 || v > 65535)
    return {Code::kInvalidArgument, "--metrics-listen: bad port '" + p + "'"};
  *port = static_cast<int>(v);
  return Status::Ok();
}

}  // namespace

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl, std::string address)
    : impl_(std::move(impl)), address_(std::move(address)) {}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Status MetricsServer::Start(const std::string& listen, SnapshotFn snapshot,
                            std::unique_ptr<MetricsServer>* out) {
  std::string host;
  int port = 0;
  REMORA_RETURN_IF_ERROR(SplitHostPort(listen, &host, &port));
  auto impl = std::make_unique<Impl>();
  httplib::Server& s = impl->server;
  s.new_task_queue = [] { return new BoundedPool(kThreads, kMaxQueued); };
  // httplib's default adds SO_REUSEPORT, which would let a second process
  // bind the same port and take a share of the scrapes: a busy port must be
  // an error instead.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.set_payload_max_length(kMaxBody);
  s.set_read_timeout(kTimeoutSec, 0);
  s.set_write_timeout(kTimeoutSec, 0);
  s.set_keep_alive_timeout(kTimeoutSec);
  s.set_keep_alive_max_count(kMaxKeepAlive);
  s.Get("/metrics", [snapshot](const httplib::Request&, httplib::Response& res) {
    res.set_content(ToPrometheusText(snapshot()), "text/plain; version=0.0.4; charset=utf-8");
  });
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET");
  };
  s.Post("/metrics", not_allowed);
  s.Put("/metrics", not_allowed);
  s.Delete("/metrics", not_allowed);
  s.Patch("/metrics", not_allowed);

  int bound = port;
  if (port == 0) {
    bound = s.bind_to_any_port(host);
    if (bound < 0) bound = 0;
  } else if (!s.bind_to_port(host, port)) {
    bound = 0;
  }
  if (bound == 0)
    return {Code::kIoError, "--metrics-listen: cannot listen on " + listen + ": " +
                                std::strerror(errno ? errno : EADDRNOTAVAIL)};
  impl->thread = std::thread([srv = &impl->server] { srv->listen_after_bind(); });
  // stop() is a no-op until the loop runs: wait for it, so that destroying
  // the server right away cannot leave the thread listening.
  for (int i = 0; i < 5000 && !s.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!s.is_running()) {
    impl->thread.join();  // listen_after_bind gave up before its loop
    return {Code::kIoError, "--metrics-listen: the HTTP server did not start on " + listen};
  }
  const bool v6 = host.find(':') != std::string::npos;
  std::string address = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(bound);
  out->reset(new MetricsServer(std::move(impl), std::move(address)));
  return Status::Ok();
}

}  // namespace remora::metrics
