#include "managers/cluster_config.h"

#include <toml++/toml.h>

#include <fmt/format.h>

#include <set>

#include "common/size.h"

namespace remora {
namespace {

Status CheckKeys(const toml::table& t, const std::string& where,
                 std::initializer_list<const char*> known) {
  for (auto& [k, v] : t) {
    bool ok = false;
    for (const char* name : known) ok = ok || k.str() == name;
    if (!ok) return {Code::kInvalidArgument, fmt::format("unknown key {} {}", where, k.str())};
  }
  return Status::Ok();
}

Status GetString(const toml::table& t, const char* key, const std::string& where,
                 std::string* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  auto v = n->value<std::string>();
  if (!v) return {Code::kInvalidArgument, fmt::format("{} {} must be a string", where, key)};
  *out = *v;
  return Status::Ok();
}

Status GetInt(const toml::table& t, const char* key, const std::string& where, std::int64_t lo,
              std::int64_t hi, std::int64_t* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  auto v = n->value<std::int64_t>();
  if (!v) return {Code::kInvalidArgument, fmt::format("{} {} must be an integer", where, key)};
  if (*v < lo || *v > hi)
    return {Code::kInvalidArgument,
            fmt::format("{} {} = {} is out of range [{}, {}]", where, key, *v, lo, hi)};
  *out = *v;
  return Status::Ok();
}

Status ParsePolicy(const toml::table& t, ClusterPolicy* p) {
  const std::string where = "[policy]";
  REMORA_RETURN_IF_ERROR(CheckKeys(
      t, where,
      {"region_size", "replicas", "stall_deadline_ms", "reconnect_deadline_ms", "secret_file"}));
  std::string region;
  REMORA_RETURN_IF_ERROR(GetString(t, "region_size", where, &region));
  if (!region.empty()) {
    Status st = ParseSize(region, &p->region_bytes);
    if (!st.ok()) return {st.code(), "[policy] region_size: " + st.message()};
  }
  std::int64_t v = p->replicas;
  REMORA_RETURN_IF_ERROR(GetInt(t, "replicas", where, 1, 3, &v));
  p->replicas = static_cast<int>(v);
  v = p->stall_deadline_ms;
  REMORA_RETURN_IF_ERROR(GetInt(t, "stall_deadline_ms", where, 1, 3600000, &v));
  p->stall_deadline_ms = static_cast<int>(v);
  v = p->reconnect_deadline_ms;
  REMORA_RETURN_IF_ERROR(GetInt(t, "reconnect_deadline_ms", where, 1, 3600000, &v));
  p->reconnect_deadline_ms = static_cast<int>(v);
  return GetString(t, "secret_file", where, &p->secret_file);
}

Status ParseNode(const toml::table& t, std::size_t index, ClusterNodeSpec* n) {
  const std::string where = fmt::format("[[memory_node]] #{}", index + 1);
  REMORA_RETURN_IF_ERROR(
      CheckKeys(t, where, {"id", "address", "transport", "secret_file", "capacity"}));
  std::int64_t id = 0;
  REMORA_RETURN_IF_ERROR(GetInt(t, "id", where, 1, 0xffffffffll, &id));
  if (id == 0) return {Code::kInvalidArgument, where + " needs an id"};
  n->id = static_cast<NodeId>(id);
  REMORA_RETURN_IF_ERROR(GetString(t, "address", where, &n->address));
  if (n->address.empty()) return {Code::kInvalidArgument, where + " needs an address"};
  std::string kind = "tcp";
  REMORA_RETURN_IF_ERROR(GetString(t, "transport", where, &kind));
  Status st = ParseTransportKind(kind, &n->kind);
  if (!st.ok()) return {st.code(), where + ": " + st.message()};
  REMORA_RETURN_IF_ERROR(GetString(t, "secret_file", where, &n->secret_file));
  return GetString(t, "capacity", where, &n->capacity);
}

}  // namespace

Status ClusterConfig::Validate() const {
  if (nodes.empty()) return {Code::kInvalidArgument, "a cluster needs at least one memory node"};
  std::set<NodeId> ids;
  std::set<std::string> addresses;
  for (const auto& n : nodes) {
    if (!ids.insert(n.id).second)
      return {Code::kInvalidArgument, fmt::format("memory node id {} appears twice", n.id)};
    if (!addresses.insert(n.address).second)
      return {Code::kInvalidArgument, fmt::format("memory node {} appears twice", n.address)};
  }
  const std::uint64_t r = policy.region_bytes;
  if (r < ClusterPolicy::kMinRegionBytes || r > ClusterPolicy::kMaxRegionBytes || (r & (r - 1)))
    return {Code::kInvalidArgument, "region size must be a power of two from 1 MiB to 1 GiB"};
  if (policy.replicas < 1 || policy.replicas > 3)
    return {Code::kInvalidArgument, "replicas must be 1, 2 or 3"};
  if (static_cast<std::size_t>(policy.replicas) > nodes.size())
    return {Code::kInvalidArgument,
            fmt::format("{} replicas need at least {} memory nodes (the cluster has {})",
                        policy.replicas, policy.replicas, nodes.size())};
  return Status::Ok();
}

const ClusterNodeSpec* ClusterConfig::FindNode(NodeId id) const {
  for (const auto& n : nodes)
    if (n.id == id) return &n;
  return nullptr;
}

Status ParseClusterConfig(const std::string& text, const std::string& source, ClusterConfig* out) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return {Code::kInvalidArgument, fmt::format("{}: {}", source, std::string(e.description()))};
  }
  ClusterConfig c;
  for (auto& [k, v] : root) {
    if (k.str() != "policy" && k.str() != "memory_node")
      return {Code::kInvalidArgument, fmt::format("{}: unknown table [{}]", source, k.str())};
  }
  Status st;
  if (const toml::table* p = root["policy"].as_table()) st = ParsePolicy(*p, &c.policy);
  if (!st.ok()) return {st.code(), source + ": " + st.message()};
  if (const toml::node* nn = root.get("memory_node")) {
    const toml::array* arr = nn->as_array();
    if (arr == nullptr)
      return {Code::kInvalidArgument, source + ": memory nodes are [[memory_node]] tables"};
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::table* t = (*arr)[i].as_table();
      if (t == nullptr)
        return {Code::kInvalidArgument, source + ": memory nodes are [[memory_node]] tables"};
      ClusterNodeSpec n;
      st = ParseNode(*t, i, &n);
      if (!st.ok()) return {st.code(), source + ": " + st.message()};
      if (n.secret_file.empty()) n.secret_file = c.policy.secret_file;
      c.nodes.push_back(std::move(n));
    }
  }
  st = c.Validate();
  if (!st.ok()) return {st.code(), source + ": " + st.message()};
  *out = std::move(c);
  return Status::Ok();
}

Status LoadClusterConfig(const std::string& path, ClusterConfig* out) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return {Code::kInvalidArgument, "cannot open " + path};
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  return ParseClusterConfig(text, path, out);
}

}  // namespace remora
