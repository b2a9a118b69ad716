// `remora memory-node`: serve pages to processor nodes.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <memory>

#include "cli/command.h"
#include "common/log.h"
#include "common/size.h"
#include "managers/cluster_config.h"
#include "memory-node/config.h"
#include "memory-node/daemon.h"

namespace remora::cli {
namespace {

struct Flags {
  std::string config_file, cluster_file, listen, capacity, secret_file, shm_socket, transport,
      device;
  std::string metrics_listen;
  std::uint32_t node_id = 0;
  int auth_timeout_ms = 0;
  int lease_ms = 0;
  int rdma_port = 1, gid_index = -1;
};

// This node's [[memory_node]] entry of a cluster description: where it
// listens (a shm entry's address is its unix socket), what it offers, its
// secret and id.
Status ApplyClusterEntry(const Flags& f, bool have_id, MemoryNodeConfig* c) {
  ClusterConfig cluster;
  REMORA_RETURN_IF_ERROR(LoadClusterConfig(f.cluster_file, &cluster));
  if (!have_id) return {Code::kInvalidArgument, "--cluster needs --node-id (its id in the file)"};
  const ClusterNodeSpec* n = cluster.FindNode(f.node_id);
  if (n == nullptr)
    return {Code::kInvalidArgument,
            f.cluster_file + " has no [[memory_node]] with id " + std::to_string(f.node_id)};
  if (n->kind == TransportKind::kShm) {
    c->shm_socket = n->address;
    c->listen = "127.0.0.1:0";
  } else {
    c->listen = n->address;
  }
  if (n->kind == TransportKind::kRdma) c->transport = "rdma";
  if (!n->capacity.empty()) REMORA_RETURN_IF_ERROR(ParseSize(n->capacity, &c->capacity_bytes));
  if (!n->secret_file.empty()) c->secret_file = n->secret_file;
  c->node_id = n->id;
  return Status::Ok();
}

// Config file first, then the cluster description's entry, then every flag
// the user actually gave.
Status BuildConfig(CLI::App* sub, const Flags& f, MemoryNodeConfig* c) {
  if (!f.config_file.empty()) REMORA_RETURN_IF_ERROR(LoadMemoryNodeConfig(f.config_file, c));
  auto given = [sub](const char* name) { return sub->get_option(name)->count() > 0; };
  if (!f.cluster_file.empty()) REMORA_RETURN_IF_ERROR(ApplyClusterEntry(f, given("--node-id"), c));
  if (given("--listen")) c->listen = f.listen;
  if (given("--capacity")) REMORA_RETURN_IF_ERROR(ParseSize(f.capacity, &c->capacity_bytes));
  if (given("--secret-file")) c->secret_file = f.secret_file;
  if (given("--shm-socket")) c->shm_socket = f.shm_socket;
  if (given("--node-id")) c->node_id = f.node_id;
  if (given("--auth-timeout-ms")) c->auth_timeout_ms = f.auth_timeout_ms;
  if (given("--lease-ms")) c->lease_ms = f.lease_ms;
  if (given("--transport")) c->transport = f.transport;
  if (given("--device")) c->rdma_device = f.device;
  if (given("--rdma-port")) c->rdma_port = f.rdma_port;
  if (given("--gid-index")) c->rdma_gid_index = f.gid_index;
  if (given("--metrics-listen")) c->metrics_listen = f.metrics_listen;
  if (given("--log-level")) c->log_level.clear();  // already applied by the flag
  if (c->capacity_bytes < 4096)
    return {Code::kInvalidArgument, "capacity must be at least one page (4096 bytes)"};
  return Status::Ok();
}

CommandRegistration reg("memory-node", [](CLI::App& app) {
  auto* sub = app.add_subcommand("memory-node", "Serve pages to processor nodes (TCP, shm, RDMA)");
  auto f = std::make_shared<Flags>();
  sub->add_option("--config", f->config_file, "TOML file with a [memory_node] table")
      ->check(CLI::ExistingFile);
  sub->add_option("--cluster", f->cluster_file,
                  "cluster description: serve as its [[memory_node]] whose id is --node-id")
      ->check(CLI::ExistingFile);
  sub->add_option("--listen", f->listen,
                  "TCP HOST:PORT to listen on (port 0: any free port; default 0.0.0.0:7400)");
  sub->add_option("--capacity", f->capacity, "memory offered, e.g. 4G (default 1G)");
  sub->add_option("--secret-file", f->secret_file,
                  "shared secret; without it one is generated and written next to the node");
  sub->add_option("--shm-socket", f->shm_socket,
                  "unix socket for processors on this machine (shared-memory transport)");
  sub->add_option("--node-id", f->node_id, "this memory node's id");
  sub->add_option("--auth-timeout-ms", f->auth_timeout_ms,
                  "drop peers that do not authenticate within this time (default 5000)")
      ->check(CLI::Range(1, 3'600'000));
  sub->add_option("--lease-ms", f->lease_ms,
                  "free the address spaces of a processor node without a connection for this "
                  "long (default 30000)")
      ->check(CLI::Range(0, 86'400'000));
  sub->add_option("--transport", f->transport,
                  "tcp (default) or rdma: also let processors attach over RDMA verbs")
      ->check(CLI::IsMember({"tcp", "rdma"}));
  sub->add_option("--device", f->device,
                  "rdma: device to serve on, e.g. mlx5_0 or rxe0 "
                  "(default: the first one)");
  sub->add_option("--rdma-port", f->rdma_port, "rdma: port of the device (default 1)")
      ->check(CLI::Range(1, 255));
  sub->add_option("--gid-index", f->gid_index,
                  "rdma: GID index (default: the port's IPv4 RoCE v2 GID, else 0)")
      ->check(CLI::Range(-1, 255));
  sub->add_option("--metrics-listen", f->metrics_listen,
                  "serve Prometheus /metrics over HTTP on HOST:PORT (port 0: any free port; "
                  "default: off)");
  auto exit_with_parent = std::make_shared<bool>(false);
  sub->add_flag("--exit-with-parent", *exit_with_parent,
                "stop when the process that started this node dies (an embedded node of remora "
                "run or remora processor)");
  AddLogLevelOption(sub);
  sub->callback([sub, f, exit_with_parent] {
    if (*exit_with_parent) {
      // SIGTERM (a clean shutdown) when the parent dies; it may have died
      // already, before the request took effect.
      const pid_t parent = ::getppid();
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) {
        SetExitCode(0);
        return;
      }
    }
    MemoryNodeConfig config;
    Status st = BuildConfig(sub, *f, &config);
    if (!st.ok()) {
      spdlog::error("{}", st.ToString());
      SetExitCode(2);
      return;
    }
    if (!config.log_level.empty()) SetupLogging(config.log_level);
    SetExitCode(RunMemoryNode(config));
  });
});

}  // namespace
}  // namespace remora::cli
