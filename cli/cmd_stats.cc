// remora stats: print a running daemon's counters and histograms.
//
// A memory node (over TCP or its unix socket, authenticated) or a processor
// manager (its unix socket, local to this node).
#include <cstdio>

#include "cli/cluster_status.h"
#include "cli/command.h"
#include "cli/processor_socket.h"
#include "net/auth.h"
#include "remora/stats.h"
#include "remora/transport.h"

namespace remora::cli {
namespace {

struct StatsArgs {
  std::string memory_node;
  std::string shm;
  std::string processor;
  std::string secret_file;
  std::string cluster;
  bool json = false;
  bool prometheus = false;
  int timeout_ms = 5000;
};

// Prints a snapshot given as JSON text the way the flags ask.
int Print(const StatsArgs& a, const std::string& json) {
  if (a.json) {
    std::fputs(json.c_str(), stdout);
    if (json.empty() || json.back() != '\n') std::fputc('\n', stdout);
    return 0;
  }
  StatsSnapshot snap;
  Status st = StatsSnapshot::FromJson(json, &snap);
  if (!st.ok()) {
    std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
    return 1;
  }
  std::fputs(a.prometheus ? snap.ToPrometheus().c_str() : snap.ToTable().c_str(), stdout);
  return 0;
}

int RunStats(const StatsArgs& a) {
  if (!a.cluster.empty())
    return PrintClusterStatus(a.cluster,
                              a.processor.empty() ? DefaultProcessorSocket() : a.processor, a.json,
                              a.timeout_ms);
  if (!a.processor.empty()) {
    std::string json;
    Status st = ProcessorStatsJson(a.processor, &json);
    if (!st.ok()) {
      std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
      return 1;
    }
    return Print(a, json);
  }
  if (a.secret_file.empty()) {
    std::fprintf(stderr, "remora stats: a memory node needs --secret-file\n");
    return 2;
  }
  TransportOptions o;
  if (!a.shm.empty()) {
    o.kind = TransportKind::kShm;
    o.address = a.shm;
  } else {
    o.kind = TransportKind::kTcp;
    o.address = a.memory_node;
  }
  o.timeout_ms = a.timeout_ms;
  Status st = auth::LoadSecretFile(a.secret_file, &o.secret);
  if (!st.ok()) {
    std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
    return 2;
  }
  auto t = ConnectTransport(o, &st);
  if (!t) {
    std::fprintf(stderr, "remora stats: cannot reach %s: %s\n", o.address.c_str(),
                 st.ToString().c_str());
    return 1;
  }
  std::string json;
  st = t->RemoteStatsJson(&json);
  if (!st.ok()) {
    std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
    return 1;
  }
  return Print(a, json);
}

CommandRegistration reg("stats", [](CLI::App& app) {
  auto args = std::make_shared<StatsArgs>();
  auto* sub = app.add_subcommand(
      "stats", "Print a running processor manager's or memory node's counters and histograms");
  auto* pm =
      sub->add_option("--processor", args->processor,
                      "processor manager socket (default: " + DefaultProcessorSocket() + ")");
  auto* mn = sub->add_option("--memory-node", args->memory_node, "memory node HOST:PORT (TCP)");
  auto* shm = sub->add_option("--shm", args->shm, "memory node unix socket (shared memory)");
  auto* cl = sub->add_option("--cluster", args->cluster,
                             "every memory node of a cluster description, with the processor "
                             "manager's view of each (--processor, or the default socket)")
                 ->check(CLI::ExistingFile);
  cl->excludes(mn);
  cl->excludes(shm);
  mn->excludes(shm);
  pm->excludes(mn);
  pm->excludes(shm);
  sub->add_option("--secret-file", args->secret_file,
                  "file holding the memory node's shared secret")
      ->check(CLI::ExistingFile);
  auto* j = sub->add_flag("--json", args->json, "print JSON");
  auto* p = sub->add_flag("--prometheus", args->prometheus, "print Prometheus text format");
  j->excludes(p);
  sub->add_option("--timeout-ms", args->timeout_ms, "request timeout")->check(CLI::PositiveNumber);
  AddLogLevelOption(sub);
  sub->callback([args] {
    if (args->memory_node.empty() && args->shm.empty() && args->processor.empty() &&
        args->cluster.empty())
      args->processor = DefaultProcessorSocket();
    SetExitCode(RunStats(*args));
  });
});

}  // namespace
}  // namespace remora::cli
