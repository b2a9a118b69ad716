#include "cli/cluster_status.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/processor_socket.h"
#include "common/size.h"
#include "managers/cluster_config.h"
#include "net/auth.h"
#include "remora/stats.h"
#include "remora/transport.h"

namespace remora::cli {
namespace {

struct NodeReport {
  bool reachable = false;
  std::string error;
  MemoryNodeInfo info;
};

NodeReport Ask(const ClusterNodeSpec& n, int timeout_ms) {
  NodeReport r;
  TransportOptions o;
  o.kind = n.kind == TransportKind::kShm ? TransportKind::kShm : TransportKind::kTcp;
  o.address = n.address;
  o.timeout_ms = timeout_ms;
  Status st = n.secret_file.empty() ? Status{Code::kInvalidArgument, "no secret_file"}
                                    : auth::LoadSecretFile(n.secret_file, &o.secret);
  std::unique_ptr<Transport> t;
  if (st.ok()) t = ConnectTransport(o, &st);
  if (t) st = t->Info(&r.info);
  r.reachable = t && st.ok();
  if (!r.reachable) r.error = st.ToString();
  return r;
}

}  // namespace

int PrintClusterStatus(const std::string& file, const std::string& processor_socket, bool json,
                       int timeout_ms) {
  ClusterConfig c;
  Status st = LoadClusterConfig(file, &c);
  if (!st.ok()) {
    std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
    return 2;
  }
  StatsSnapshot proc;
  bool have_proc = false;
  if (!processor_socket.empty() && ProcessorListening(processor_socket)) {
    std::string text;
    have_proc = ProcessorStatsJson(processor_socket, &text).ok() &&
                StatsSnapshot::FromJson(text, &proc).ok();
  }
  auto pc = [&](NodeId id, const char* what) -> std::int64_t {
    auto it = proc.counters.find(fmt::format("cluster_node{}_{}", id, what));
    return it == proc.counters.end() ? -1 : it->second;
  };
  static const char* kStates[] = {"up", "reconnecting", "lost"};
  int rc = 0;
  nlohmann::json out = nlohmann::json::object();
  out["nodes"] = nlohmann::json::array();
  if (!json)
    std::printf("%-4s %-28s %-5s %-12s %12s %12s %7s", "node", "address", "kind", "reachable",
                "capacity", "used pages", "spaces");
  if (!json && have_proc)
    std::printf("  %-12s %8s %12s %12s %7s %10s", "processor", "regions", "pages read",
                "pages written", "errors", "reconnects");
  if (!json) std::printf("\n");
  for (const auto& n : c.nodes) {
    NodeReport r = Ask(n, timeout_ms);
    if (!r.reachable) rc = 1;
    const char* kind = n.kind == TransportKind::kShm    ? "shm"
                       : n.kind == TransportKind::kRdma ? "rdma"
                                                        : "tcp";
    nlohmann::json j = {
        {"id", n.id}, {"address", n.address}, {"transport", kind}, {"reachable", r.reachable}};
    if (r.reachable) {
      j["capacity_pages"] = r.info.capacity_pages;
      j["used_pages"] = r.info.used_pages;
      j["spaces"] = r.info.nr_spaces;
    } else {
      j["error"] = r.error;
    }
    const std::int64_t state = have_proc ? pc(n.id, "state") : -1;
    if (have_proc && state >= 0) {
      j["processor"] = {{"state", kStates[std::min<std::int64_t>(state, 2)]},
                        {"regions", pc(n.id, "regions")},
                        {"pages_read", pc(n.id, "pages_read")},
                        {"pages_written", pc(n.id, "pages_written")},
                        {"errors", pc(n.id, "errors")},
                        {"reconnects", pc(n.id, "reconnects")}};
    }
    out["nodes"].push_back(j);
    if (json) continue;
    std::printf("%-4u %-28s %-5s %-12s", n.id, n.address.c_str(), kind, r.reachable ? "yes" : "NO");
    if (r.reachable)
      std::printf(" %12s %12llu %7llu", FormatSize(r.info.capacity_pages * kPageSize).c_str(),
                  static_cast<unsigned long long>(r.info.used_pages),
                  static_cast<unsigned long long>(r.info.nr_spaces));
    else
      std::printf(" %12s %12s %7s", "-", "-", "-");
    if (have_proc && state >= 0)
      std::printf("  %-12s %8lld %12lld %12lld %7lld %10lld",
                  kStates[std::min<std::int64_t>(state, 2)],
                  static_cast<long long>(pc(n.id, "regions")),
                  static_cast<long long>(pc(n.id, "pages_read")),
                  static_cast<long long>(pc(n.id, "pages_written")),
                  static_cast<long long>(pc(n.id, "errors")),
                  static_cast<long long>(pc(n.id, "reconnects")));
    std::printf("\n");
    if (!r.reachable) std::printf("     %s\n", r.error.c_str());
  }
  if (have_proc) {
    nlohmann::json health = nlohmann::json::object();
    for (const char* name :
         {"cluster_regions", "cluster_regions_degraded", "cluster_regions_lost",
          "cluster_nodes_lost", "cluster_read_failovers", "cluster_rereplicated_regions",
          "cluster_rereplicated_pages", "cluster_placement_failures"}) {
      auto it = proc.counters.find(name);
      if (it != proc.counters.end()) health[name] = it->second;
    }
    out["processor"] = health;
    if (!json) {
      std::printf("\nreplica health (processor %s, replicas %d):\n", processor_socket.c_str(),
                  c.policy.replicas);
      for (auto& [k, v] : health.items())
        std::printf("  %-32s %lld\n", k.c_str(), v.get<long long>());
    }
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return rc;
}

}  // namespace remora::cli
