#include "memory-node/config.h"

#include <toml++/toml.h>

#include <optional>
#include <set>
#include <sstream>

#include "common/size.h"

namespace remora {
namespace {

Status Bad(const std::string& path, const std::string& msg) {
  return {Code::kInvalidArgument, path + ": " + msg};
}

Status GetString(const toml::table& t, const char* key, const std::string& path, std::string* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  auto v = n->value<std::string>();
  if (!v) return Bad(path, std::string("memory_node.") + key + " must be a string");
  *out = *v;
  return Status::Ok();
}

Status GetInt(const toml::table& t, const char* key, const std::string& path, std::int64_t lo,
              std::int64_t hi, std::int64_t* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  // Integers only: toml++'s value<int64_t>() also converts a float, and a
  // float beyond int64 makes that conversion undefined (found by fuzzing).
  auto v = n->is_integer() ? n->value<std::int64_t>() : std::nullopt;
  if (!v || *v < lo || *v > hi)
    return Bad(path, std::string("memory_node.") + key + " must be an integer in " +
                         std::to_string(lo) + ".." + std::to_string(hi));
  *out = *v;
  return Status::Ok();
}

}  // namespace

Status LoadMemoryNodeConfig(const std::string& path, MemoryNodeConfig* config) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << e.description() << " (line " << e.source().begin.line << ")";
    return Bad(path, msg.str());
  }
  const toml::table* t = root["memory_node"].as_table();
  if (!t) return Bad(path, "no [memory_node] table");

  static const std::set<std::string> kKnown = {
      "listen",         "capacity",        "secret_file",         "shm_socket",   "node_id",
      "log_level",      "auth_timeout_ms", "transport",           "rdma_device",  "rdma_port",
      "rdma_gid_index", "lease_ms",        "max_unauthenticated", "reply_budget", "metrics_listen"};
  for (const auto& [key, value] : *t)
    if (!kKnown.count(std::string(key.str())))
      return Bad(path, "unknown key memory_node." + std::string(key.str()));

  REMORA_RETURN_IF_ERROR(GetString(*t, "listen", path, &config->listen));
  REMORA_RETURN_IF_ERROR(GetString(*t, "secret_file", path, &config->secret_file));
  REMORA_RETURN_IF_ERROR(GetString(*t, "shm_socket", path, &config->shm_socket));
  REMORA_RETURN_IF_ERROR(GetString(*t, "log_level", path, &config->log_level));
  REMORA_RETURN_IF_ERROR(GetString(*t, "transport", path, &config->transport));
  if (config->transport != "tcp" && config->transport != "rdma")
    return Bad(path, "memory_node.transport must be \"tcp\" or \"rdma\"");
  REMORA_RETURN_IF_ERROR(GetString(*t, "rdma_device", path, &config->rdma_device));
  REMORA_RETURN_IF_ERROR(GetString(*t, "metrics_listen", path, &config->metrics_listen));
  if (const toml::node* n = t->get("capacity")) {
    if (auto s = n->value<std::string>()) {
      REMORA_RETURN_IF_ERROR(ParseSize(*s, &config->capacity_bytes));
    } else if (auto i = n->is_integer() ? n->value<std::int64_t>() : std::nullopt; i && *i > 0) {
      config->capacity_bytes = static_cast<std::uint64_t>(*i);
    } else {
      return Bad(path, "memory_node.capacity must be a size (\"4G\") or a number of bytes");
    }
  }
  std::int64_t v = config->node_id;
  REMORA_RETURN_IF_ERROR(GetInt(*t, "node_id", path, 0, UINT32_MAX, &v));
  config->node_id = static_cast<NodeId>(v);
  v = config->auth_timeout_ms;
  REMORA_RETURN_IF_ERROR(GetInt(*t, "auth_timeout_ms", path, 1, 3'600'000, &v));
  config->auth_timeout_ms = static_cast<int>(v);
  v = config->lease_ms;
  REMORA_RETURN_IF_ERROR(GetInt(*t, "lease_ms", path, 0, 86'400'000, &v));
  config->lease_ms = static_cast<int>(v);
  v = config->max_unauthenticated;
  REMORA_RETURN_IF_ERROR(GetInt(*t, "max_unauthenticated", path, 1, 1'000'000, &v));
  config->max_unauthenticated = static_cast<int>(v);
  if (const toml::node* n = t->get("reply_budget")) {
    if (auto s = n->value<std::string>()) {
      REMORA_RETURN_IF_ERROR(ParseSize(*s, &config->reply_budget_bytes));
    } else if (auto i = n->is_integer() ? n->value<std::int64_t>() : std::nullopt; i && *i > 0) {
      config->reply_budget_bytes = static_cast<std::uint64_t>(*i);
    } else {
      return Bad(path, "memory_node.reply_budget must be a size (\"256M\") or a number of bytes");
    }
    if (config->reply_budget_bytes < (std::uint64_t{4} << 20))
      return Bad(path, "memory_node.reply_budget must be at least 4M");
  }
  v = config->rdma_port;
  REMORA_RETURN_IF_ERROR(GetInt(*t, "rdma_port", path, 1, 255, &v));
  config->rdma_port = static_cast<int>(v);
  v = config->rdma_gid_index;
  REMORA_RETURN_IF_ERROR(GetInt(*t, "rdma_gid_index", path, -1, 255, &v));
  config->rdma_gid_index = static_cast<int>(v);
  return Status::Ok();
}

}  // namespace remora
