#include "cli/processor_setup.h"

#include <toml++/toml.h>

#include <fmt/format.h>

#include "common/size.h"
#include "net/auth.h"

namespace remora::cli {

void AddProcessorOptions(CLI::App* sub, ProcessorArgs* a) {
  sub->add_option("--config", a->config, "TOML file with a [processor] table")
      ->check(CLI::ExistingFile);
  sub->add_option("--pcache", a->pcache, "pcache capacity (e.g. 64M)")->capture_default_str();
  sub->add_option("--ways", a->ways, "pcache associativity")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_option("--victim", a->victim, "victim cache entries (0: none)")
      ->check(CLI::Range(0, 65536))
      ->capture_default_str();
  sub->add_option("--memory-node", a->memory_node,
                  "memory node to use: HOST:PORT (tcp), or its unix socket (shm); default: "
                  "start a local one");
  sub->add_option("--transport", a->transport, "shm | tcp")
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
  sub->add_flag("--readahead-stride", a->readahead_stride,
                "also read ahead on strided and interleaved streams (experimental: "
                "docs/runtime.md, Read-ahead)");
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
  sub->add_option(
         "--reclaim-low", a->reclaim_low,
         "background reclaim starts when a fill leaves a set fewer free lines than "
         "this (0: off; default: ways/16 for 16 ways or more and pcaches of 1 MiB or more, else 0)")
      ->check(CLI::Range(0, 63));
  sub->add_option("--reclaim-high", a->reclaim_high,
                  "background reclaim frees lines of a set until it has this many (default: "
                  "twice --reclaim-low)")
      ->check(CLI::Range(0, 63));
  sub->add_option("--fault-trace", a->fault_trace,
                  "write every fault served to FILE ('r|w ADDR ASID' per line: a trace for "
                  "remora sim)");
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
                                  "fault_trace", "reclaim_low", "reclaim_high",    "replacement"};
    bool ok = false;
    for (const char* name : known) ok = ok || k.str() == name;
    if (!ok)
      return {Code::kInvalidArgument,
              fmt::format("{}: unknown key [processor] {}", a->config, k.str())};
  }
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "pcache", "--pcache", &a->pcache));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "ways", "--ways", &a->ways));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "victim", "--victim", &a->victim));
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "memory_node", "--memory-node", &a->memory_node));
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
  REMORA_RETURN_IF_ERROR(Take(*t, sub, "replacement", "--replacement", &a->replacement));
  return Status::Ok();
}

ProcessorStack::~ProcessorStack() {
  manager.reset();
  transport.reset();
  local_node.reset();
}

Status StartProcessorStack(const ProcessorArgs& a, const std::string& socket_path,
                           std::unique_ptr<ProcessorStack>* out) {
  auto stack = std::make_unique<ProcessorStack>();
  std::uint64_t pcache_bytes = 0;
  Status st = ParseSize(a.pcache, &pcache_bytes);
  if (!st.ok()) return {st.code(), "--pcache: " + st.message()};

  TransportOptions topt;
  REMORA_RETURN_IF_ERROR(ParseTransportKind(a.transport, &topt.kind));
  std::string node_desc;
  if (a.memory_node.empty()) {
    if (topt.kind == TransportKind::kRdma)
      return {Code::kInvalidArgument, "--transport rdma needs --memory-node"};
    LocalMemoryNodeOptions lo;
    lo.capacity = a.memory_capacity;
    lo.extra_args = {"--log-level", "warn"};
    stack->local_node = LocalMemoryNode::Start(lo, &st);
    if (!stack->local_node) return {st.code(), "starting the local memory node: " + st.message()};
    topt = stack->local_node->ClientOptions(topt.kind);
    node_desc = fmt::format("local memory node ({})", a.transport);
  } else {
    topt.address = a.memory_node;
    if (a.secret_file.empty()) return {Code::kInvalidArgument, "--memory-node needs --secret-file"};
    REMORA_RETURN_IF_ERROR(auth::LoadSecretFile(a.secret_file, &topt.secret));
    node_desc = fmt::format("memory node {} ({})", a.memory_node, a.transport);
  }
  topt.node_id = a.node_id;
  topt.timeout_ms = a.timeout_ms;
  stack->stats = std::make_unique<StatsRegistry>();
  topt.stats = stack->stats.get();
  stack->transport = ConnectTransport(topt, &st);
  if (!stack->transport)
    return {st.code(), "cannot reach the memory node at " + topt.address + ": " + st.message()};

  ProcessorManagerOptions mo;
  mo.pcache.capacity_bytes = pcache_bytes;
  mo.pcache.ways = a.ways;
  mo.victim_entries = a.victim;
  mo.transport = stack->transport.get();
  mo.node_id = a.node_id;
  mo.socket_path = socket_path;
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
  st = ProcessorManager::Create(mo, &stack->manager);
  if (!st.ok()) return st;
  const auto& g = stack->manager->pcache()->geometry();
  const Watermarks& w = stack->manager->reclaimer().watermarks();
  const std::string reclaim =
      w.enabled() ? fmt::format("reclaim watermarks {}/{} free lines per set", w.low, w.high)
                  : std::string("no background reclaim");
  stack->description =
      fmt::format("pcache {} ({}-way, {} sets, {}), victim cache {} entries, {}",
                  FormatSize(pcache_bytes), g.ways(), g.nr_sets(), reclaim, a.victim, node_desc);
  *out = std::move(stack);
  return Status::Ok();
}

}  // namespace remora::cli
