#include "memory-node/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/private_dir.h"
#include "common/size.h"
#include "memory-node/page_store.h"
#include "memory-node/rdma_service.h"
#include "memory-node/server.h"
#include "metrics/metrics_server.h"
#include "net/auth.h"
#include "net/rdma/rdma_verbs.h"
#include "net/socket_util.h"
#include "net/stream_server.h"
#include "remora/stats.h"

namespace remora {
namespace {

Status DefaultSecretPath(const std::string& bound, std::string* path) {
  std::string host;
  std::uint16_t port = 0;
  (void)net::ParseHostPort(bound, &host, &port);
  std::string dir;
  bool shared = false;
  REMORA_RETURN_IF_ERROR(PrivateRuntimeDir(&dir, &shared));
  *path = dir + "/remora-memnode-" + std::to_string(port) + ".secret";
  return Status::Ok();
}

// SIGTERM/SIGINT arrive through a signalfd watched by the event loop, so the
// shutdown runs in the loop thread like everything else.
int BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a vanished peer is an error return, not death
  return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

void LogSummary(const StatsRegistry& stats) {
  StatsSnapshot s = stats.Snapshot();
  spdlog::info("served {} connections; {} auth failures, {} protocol violations; pages used {}",
               s.Counter("memnode_connections"), s.Counter("memnode_auth_failures"),
               s.Counter("memnode_protocol_violations"), s.Counter("memnode_pages_used"));
}

}  // namespace

int RunMemoryNode(const MemoryNodeConfig& config) {
  int sig_fd = BlockShutdownSignals();
  if (sig_fd < 0) {
    spdlog::error("signalfd: {}", std::strerror(errno));
    return 1;
  }
  std::string secret;
  bool generated = config.secret_file.empty();
  Status st =
      generated ? auth::GenerateSecret(&secret) : auth::LoadSecretFile(config.secret_file, &secret);
  if (!st.ok()) {
    spdlog::error("{}", st.ToString());
    return 1;
  }

  StatsRegistry stats;
  PageStore::Options so;
  so.capacity_pages = config.capacity_bytes / kPageSize;
  so.node_id = config.node_id;
  std::unique_ptr<PageStore> store = PageStore::Create(so, &stats, &st);
  if (!store) {
    spdlog::error("cannot create the page store: {}", st.ToString());
    return 1;
  }

  MemoryNodeService::Options mo;
  mo.secret = secret;
  mo.node_id = config.node_id;
  mo.auth_timeout_ms = config.auth_timeout_ms;
  mo.lease_ms = config.lease_ms;
  mo.max_unauthenticated = config.max_unauthenticated;
  // With RDMA the device is opened before anything listens, so a wrong
  // device or GID is reported at start, not at the first processor.
  rdma::Endpoint endpoint;
  std::unique_ptr<MemoryNodeService> service;
  if (config.transport == "rdma") {
    st = rdma::OpenEndpoint(config.rdma_device, static_cast<std::uint8_t>(config.rdma_port),
                            config.rdma_gid_index, &endpoint);
    if (!st.ok()) {
      spdlog::error("cannot serve RDMA: {}", st.ToString());
      return 1;
    }
    spdlog::info("RDMA on {} port {} GID index {} ({})", endpoint.device, config.rdma_port,
                 endpoint.gid_index, rdma::GidToString(endpoint.gid));
    service = std::make_unique<RdmaMemoryNodeService>(store.get(), &stats, mo, &endpoint,
                                                      so.capacity_pages);
  } else {
    service = std::make_unique<MemoryNodeService>(store.get(), &stats, mo);
  }
  StreamServer::Options svo;
  svo.stats = &stats;
  svo.stats_prefix = "memnode";
  svo.reply_budget_bytes = config.reply_budget_bytes;
  StreamServer server(service.get(), svo);

  std::string bound;
  st = server.ListenTcp(config.listen, &bound);
  if (st.ok() && !config.shm_socket.empty()) st = server.ListenUnix(config.shm_socket);
  if (!st.ok()) {
    spdlog::error("{}", st.ToString());
    return 1;
  }
  // Before the ready line, so that a bad address fails the start.
  std::unique_ptr<metrics::MetricsServer> metrics;
  if (!config.metrics_listen.empty()) {
    st = metrics::MetricsServer::Start(
        config.metrics_listen, [&stats] { return stats.Snapshot(); }, &metrics);
    if (!st.ok()) {
      spdlog::error("{}", st.ToString());
      return 1;
    }
    spdlog::info("Prometheus metrics on {}", metrics->url());
  }
  std::string secret_path = config.secret_file;
  std::string secret_dir;
  if (generated) {
    st = DefaultSecretPath(bound, &secret_path);
    if (st.ok()) st = auth::WriteSecretFile(secret_path, secret);
    if (!st.ok()) {
      spdlog::error("{}", st.ToString());
      return 1;
    }
    spdlog::info("generated a secret; processor nodes must use the file {}", secret_path);
  }

  st = service->Attach(&server);
  if (!st.ok()) {
    spdlog::error("{}", st.ToString());
    return 1;
  }
  (void)server.Watch(sig_fd, [&] {
    signalfd_siginfo si;
    if (read(sig_fd, &si, sizeof si) == sizeof si)
      spdlog::info("received {}, shutting down", strsignal(static_cast<int>(si.ssi_signo)));
    server.Stop();
  });

  spdlog::info("memory node {} serving {} ({} pages) on tcp {}{}{}", config.node_id,
               FormatSize(so.capacity_pages * kPageSize), so.capacity_pages, bound,
               config.shm_socket.empty() ? "" : " and unix ", config.shm_socket);
  std::printf("remora memory-node ready tcp=%s shm=%s%s%s\n", bound.c_str(),
              config.shm_socket.empty() ? "-" : config.shm_socket.c_str(),
              config.transport == "rdma" ? " rdma=" : "",
              config.transport == "rdma" ? endpoint.device.c_str() : "");
  std::fflush(stdout);

  server.Run();
  metrics.reset();  // no scrape may outlive the registry

  LogSummary(stats);
  if (generated) unlink(secret_path.c_str());
  if (!secret_dir.empty()) rmdir(secret_dir.c_str());
  close(sig_fd);
  spdlog::info("memory node stopped");
  return 0;
}

}  // namespace remora
