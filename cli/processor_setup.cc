#include "cli/processor_setup.h"

#include <grp.h>

#include <cstdlib>
#include <vector>

#include <toml++/toml.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/size.h"
#include "managers/cluster_transport.h"
#include "net/auth.h"

namespace remora::cli {
namespace {

// A group name, or a number (which need not be in the group database).
Status ResolveGroup(const std::string& name, gid_t* gid) {
  char* end = nullptr;
  const unsigned long n = std::strtoul(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0') {
    *gid = static_cast<gid_t>(n);
    return Status::Ok();
  }
  group g{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  if (::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    return {Code::kInvalidArgument, "no such group: " + name};
  *gid = found->gr_gid;
  return Status::Ok();
}

}  // namespace

void AddProcessorOptions(CLI::App* sub, ProcessorArgs* a) {
  sub->add_option("--config", a->config, "TOML file with a [processor] table")
      ->check(CLI::ExistingFile);
  sub->add_option("--pcache", a->pcache,
                  "pcache capacity: any size from 64K (e.g. 48M, 1.5G); without --ways the "
                  "largest geometry not above it is used")
      ->capture_default_str();
  sub->add_option("--ways", a->ways,
                  "pcache associativity, 1..64 (default: chosen from --pcache among 4..32 ways, "
                  "8 when it fits exactly)")
      ->check(CLI::Range(1, 64));
  sub->add_option("--victim", a->victim, "victim cache entries (0: none)")
      ->check(CLI::Range(0, 65536))
      ->capture_default_str();
  sub->add_option("--memory-node", a->memory_nodes,
                  "memory node to use: HOST:PORT (tcp), or its unix socket (shm); default: "
                  "start a local one. Repeat it for a cluster of nodes (ids 1, 2, ... in order)");
  sub->add_option("--cluster", a->cluster,
                  "cluster description: memory nodes and placement policy (TOML, "
                  "configs/cluster.example.toml)")
      ->check(CLI::ExistingFile);
  sub->add_option("--replicas", a->replicas,
                  "copies of every page on different memory nodes of the cluster (1-3)")
      ->check(CLI::Range(1, 3));
  sub->add_option("--transport", a->transport,
                  "shm | tcp | rdma (rdma needs --memory-node, a verbs device and a memory node "
                  "started with --transport rdma)")
      ->check(CLI::IsMember({"shm", "tcp", "rdma"}))
      ->capture_default_str();
  sub->add_option("--secret-file", a->secret_file, "shared secret of --memory-node")
      ->check(CLI::ExistingFile);
  sub->add_option("--memory-capacity", a->memory_capacity,
                  "capacity of the local memory node (without --memory-node)")
      ->capture_default_str();
  sub->add_option("--fault-threads", a->fault_threads, "fault-serving threads per program")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_option("--readahead", a->readahead,
                  "pages filled ahead of a sequential run of misses (0: off)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  sub->add_flag("--readahead-stride,!--no-readahead-stride", a->readahead_stride,
                "follow each thread's strided walk (a column of a matrix): mark its coming "
                "hits used and read its missing pages ahead (default: on; docs/runtime.md, "
                "Read-ahead)");
  sub->add_option("--replacement", a->replacement,
                  "pcache replacement: adaptive (set dueling between recency and bimodal "
                  "insertion), recency, bimodal (docs/pcache.md, Replacement)")
      ->check(CLI::IsMember({"adaptive", "recency", "bimodal"}))
      ->capture_default_str();
  sub->add_option("--timeout-ms", a->timeout_ms, "memory-node request timeout")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--node-id", a->node_id, "this processor node's id (cluster-unique)")
      ->check(CLI::Range(1u, 0xffffffffu))
      ->capture_default_str();
  sub->add_option("--reclaim-low", a->reclaim_low,
                  "background reclaim starts when a fill leaves a set fewer free lines than "
                  "this (0: off; default: ways/16 for 16 ways or more, pcaches of 1 MiB or more "
                  "and two CPUs or more in the affinity mask, else 0)")
      ->check(CLI::Range(0, 63));
  sub->add_option("--reclaim-high", a->reclaim_high,
                  "background reclaim frees lines of a set until it has this many (default: "
                  "twice --reclaim-low)")
      ->check(CLI::Range(0, 63));
  sub->add_option("--cpu-latency-qos", a->cpu_latency_qos,
                  "auto: while programs fault densely, ask the kernel to keep idle CPUs quick "
                  "to wake (/dev/cpu_dma_latency: root or a group with write access); off: never "
                  "(docs/runtime.md, Waking CPUs)")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  sub->add_option("--fault-trace", a->fault_trace,
                  "write every fault served to FILE ('r|w ADDR ASID' per line: a trace for "
                  "remora sim)");
  sub->add_option("--metrics-listen", a->metrics_listen,
                  "serve the manager's counters as Prometheus /metrics over HTTP on HOST:PORT "
                  "(port 0: any free port; default: off)");
}

namespace {

template <typename T>
Status Take(const toml::table& t, CLI::App* sub, const char* key, const char* option, T* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr || sub->count(option) > 0) return Status::Ok();
  if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = n->value<std::string>()) {
      *out = *v;
      return Status::Ok();
    }
  } else {
    if (auto v = n->value<std::int64_t>()) {
      if (*v < 0 || *v > 0xffffffffll)
        return {Code::kInvalidArgument, fmt::format("{} out of range", key)};
      *out = static_cast<T>(*v);
      return Status::Ok();
    }
  }
  return {Code::kInvalidArgument, fmt::format("[processor] {} has the wrong type", key)};
}

}  // namespace

Status ApplyProcessorConfig(CLI::App* sub, ProcessorArgs* a) {
  if (a->config.empty()) return Status::Ok();
  toml::table root;
  try {
    root = toml::parse_file(a->config);
  } catch (const toml::parse_error& e) {
    return {Code::kInvalidArgument, fmt::format("{}: {}", a->config, e.description())};
  }
  const toml::table* t = root["processor"].as_table();
  if (t == nullptr) return {Code::kInvalidArgument, a->config + ": no [processor] table"};
  for (auto& [k, v] : *t) {
    static const char* known[] = {"pcache",      "ways",        "victim",          "memory_node",
                                  "transport",   "secret_file", "memory_capacity", "fault_threads",
                                  "readahead",   "timeout_ms",  "node_id",         "socket",
                                  "fault_trace", "reclaim_low", "reclaim_high",    "cluster",
                                  "replicas",    "replacement", "cpu_latency_qos"};
    bool ok = k.str() == "metrics_listen";
    for (const char* name : known) ok = ok || k.str() == name;
    if (!ok)
      return {Code::kInvalidArgument,
              fmt::format("{}: unknown key [processor] {}", a->config, k.str())};
  }
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "pcache", "--pcache", &a->pcache));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "ways", "--ways", &a->ways));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "victim", "--victim", &a->victim));
  std::string node;
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "memory_node", "--memory-node", &node));
  if (!node.empty()) a->memory_nodes = {node};
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "cluster", "--cluster", &a->cluster));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "replicas", "--replicas", &a->replicas));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "transport", "--transport", &a->transport));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "secret_file", "--secret-file", &a->secret_file));
  REMORA_RETURN_IF_ERROR(
      Take(*t, sub, "memory_capacity", "--memory-capacity", &a->memory_capacity));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "fault_threads", "--fault-threads", &a->fault_threads));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "readahead", "--readahead", &a->readahead));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "timeout_ms", "--timeout-ms", &a->timeout_ms));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "node_id", "--node-id", &a->node_id));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "fault_trace", "--fault-trace", &a->fault_trace));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "reclaim_low", "--reclaim-low", &a->reclaim_low));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "reclaim_high", "--reclaim-high", &a->reclaim_high));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "metrics_listen", "--metrics-listen", &a->metrics_listen));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "replacement", "--replacement", &a->replacement));
  REMORA_RETURN_IF_ERROR(
      Take(*t, sub, "cpu_latency_qos", "--cpu-latency-qos", &a->cpu_latency_qos));
  if (a->cpu_latency_qos != "auto" && a->cpu_latency_qos != "off")
    return {Code::kInvalidArgument,
            fmt::format("{}: [processor] cpu_latency_qos must be \"auto\" or \"off\"", a->config)};
  return Status::Ok();
}

ProcessorStack::~ProcessorStack() {
  metrics.reset();  // its scrapes read the manager
  manager.reset();
  transport.reset();
  local_node.reset();
}

Status ChoosePcacheGeometry(const std::string& size, std::uint32_t ways, PcacheGeometry* out) {
  std::uint64_t bytes = 0;
  Status st = ParseSize(size, &bytes);
  if (!st.ok()) return {st.code(), "--pcache: " + st.message()};
  st = PcacheGeometry::ForCapacity(bytes, ways, out);
  if (!st.ok() && ways != 0)
    return {st.code(), st.message() + "; or leave out --ways to have the geometry chosen"};
  return st;
}

Status StartProcessorStack(const ProcessorArgs& a, const std::string& socket_path,
                           std::unique_ptr<ProcessorStack>* out) {
  auto stack = std::make_unique<ProcessorStack>();
  PcacheGeometry geometry;
  Status st = ChoosePcacheGeometry(a.pcache, a.ways, &geometry);
  if (!st.ok()) return st;
  stack->geometry = geometry.ToString();
  spdlog::info("pcache {} (--pcache {}{})", stack->geometry, a.pcache,
               a.ways ? fmt::format(" --ways {}", a.ways) : std::string());

  TransportOptions topt;
  REMORA_RETURN_IF_ERROR(ParseTransportKind(a.transport, &topt.kind));
  std::string node_desc;
  stack->stats = std::make_unique<StatsRegistry>();
  // Remote memory nodes, one or many, are always reached through a cluster
  // of links (managers/): a single node gets its reconnects, its stall
  // handling and its clear loss errors from the same code as a pool.
  if (!a.cluster.empty() || !a.memory_nodes.empty() || a.replicas > 1) {
    REMORA_RETURN_IF_ERROR(
        ConnectClusterFromArgs(a, stack->stats.get(), &stack->transport, &node_desc));
  } else {
    if (topt.kind == TransportKind::kRdma)
      return {Code::kInvalidArgument, "--transport rdma needs --memory-node"};
    std::uint64_t capacity = 0;
    st = ParseSize(a.memory_capacity, &capacity);
    if (!st.ok()) return {st.code(), "--memory-capacity: " + st.message()};
    stack->local_node = EmbeddedMemoryNode::Start(capacity, &st);
    if (!stack->local_node) return {st.code(), "starting the local memory node: " + st.message()};
    topt = stack->local_node->ClientOptions(topt.kind);
    node_desc = fmt::format("local memory node ({})", a.transport);
    topt.node_id = a.node_id;
    // The embedded node lives and dies with this process: no lease to keep
    // (memory-node/server.h, "Leases"), but an incarnation all the same.
    topt.incarnation = auth::NewIncarnation();
    topt.timeout_ms = a.timeout_ms;
    topt.stats = stack->stats.get();
    stack->transport = ConnectTransport(topt, &st);
    if (!stack->transport)
      return {st.code(), "cannot reach the local memory node: " + st.message()};
  }

  ProcessorManagerOptions mo;
  mo.pcache = geometry.config();
  mo.victim_entries = a.victim;
  mo.transport = stack->transport.get();
  mo.node_id = a.node_id;
  mo.socket_path = socket_path;
  if (!a.socket_group.empty()) {
    st = ResolveGroup(a.socket_group, &mo.socket_group);
    if (!st.ok()) return st;
  }
  mo.stats = stack->stats.get();
  mo.fault_threads = a.fault_threads;
  mo.readahead_max = a.readahead;
  mo.readahead_stride = a.readahead_stride;
  if (a.replacement == "adaptive") {
    mo.replacement = Replacement::kAdaptive;
  } else if (a.replacement == "recency") {
    mo.replacement = Replacement::kRecency;
  } else if (a.replacement == "bimodal") {
    mo.replacement = Replacement::kBimodal;
  } else {
    return {Code::kInvalidArgument,
            "replacement: '" + a.replacement + "' is not adaptive, recency or bimodal"};
  }
  mo.fault_trace = a.fault_trace;
  mo.reclaim_low = a.reclaim_low;
  mo.reclaim_high = a.reclaim_high;
  mo.cpu_latency_qos =
      a.cpu_latency_qos == "off" ? CpuLatencyQosMode::kOff : CpuLatencyQosMode::kAuto;
  st = ProcessorManager::Create(mo, &stack->manager);
  if (!st.ok()) return st;
  const Watermarks& w = stack->manager->reclaimer().watermarks();
  const std::string reclaim =
      w.enabled() ? fmt::format("reclaim watermarks {}/{} free lines per set", w.low, w.high)
                  : std::string("no background reclaim");
  stack->description =
      fmt::format("pcache {} ({}), victim cache {} entries, {}, {}", stack->geometry, reclaim,
                  a.victim, node_desc, stack->manager->cpu_latency_qos().description());
  if (!a.metrics_listen.empty()) {
    ProcessorManager* m = stack->manager.get();
    REMORA_RETURN_IF_ERROR(metrics::MetricsServer::Start(
        a.metrics_listen, [m] { return m->Snapshot(); }, &stack->metrics));
    stack->description += ", Prometheus metrics on " + stack->metrics->url();
  }
  *out = std::move(stack);
  return Status::Ok();
}

Status ConnectClusterFromArgs(const ProcessorArgs& a, StatsRegistry* stats,
                              std::unique_ptr<Transport>* out, std::string* description) {
  ClusterOptions co;
  if (!a.cluster.empty()) {
    if (!a.memory_nodes.empty())
      return {Code::kInvalidArgument, "--cluster and --memory-node exclude each other"};
    REMORA_RETURN_IF_ERROR(LoadClusterConfig(a.cluster, &co.config));
  } else {
    if (a.memory_nodes.empty())
      return {Code::kInvalidArgument, "--replicas needs --cluster or --memory-node"};
    if (a.secret_file.empty()) return {Code::kInvalidArgument, "--memory-node needs --secret-file"};
    TransportKind kind;
    REMORA_RETURN_IF_ERROR(ParseTransportKind(a.transport, &kind));
    for (std::size_t i = 0; i < a.memory_nodes.size(); ++i) {
      ClusterNodeSpec n;
      n.id = static_cast<NodeId>(i + 1);
      n.address = a.memory_nodes[i];
      n.kind = kind;
      n.secret_file = a.secret_file;
      co.config.nodes.push_back(n);
    }
  }
  if (a.replicas > 0) co.config.policy.replicas = a.replicas;
  REMORA_RETURN_IF_ERROR(co.config.Validate());
  co.processor_id = a.node_id;
  co.timeout_ms = a.timeout_ms;
  co.stats = stats;
  std::unique_ptr<ClusterTransport> cluster;
  Status st = ClusterTransport::Connect(co, &cluster);
  const bool one = a.cluster.empty() && a.memory_nodes.size() == 1;
  if (!st.ok() && one)
    return {st.code(),
            "cannot reach the memory node at " + a.memory_nodes[0] + ": " + st.message()};
  if (!st.ok()) return {st.code(), "cannot start the memory-node cluster: " + st.message()};
  *description = one ? fmt::format("memory node {} ({}, {})", a.memory_nodes[0], a.transport,
                                   cluster->Describe())
                     : "cluster of " + cluster->Describe();
  *out = std::move(cluster);
  return Status::Ok();
}

}  // namespace remora::cli
