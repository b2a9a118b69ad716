#include "fuzz_node.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "memory-node/page_store.h"
#include "memory-node/server.h"
#include "net/stream_server.h"
#include "remora/stats.h"

namespace remora::fuzz {

StreamServer* StartFuzzNode(const FuzzNodeOptions& options) {
  spdlog::set_level(spdlog::level::off);
  auto* stats = new StatsRegistry;
  Status st;
  PageStore::Options so;
  so.capacity_pages = options.capacity_pages;
  so.node_id = options.node_id;
  auto* store = PageStore::Create(so, stats, &st).release();
  if (!store) std::abort();
  MemoryNodeService::Options mo;
  mo.secret = options.secret;
  mo.node_id = options.node_id;
  auto* service = new MemoryNodeService(store, stats, mo);
  StreamServer::Options svo;
  svo.stats = stats;
  svo.stats_prefix = "memnode";
  auto* server = new StreamServer(service, svo);
  if (!server->ListenUnix(options.socket_path).ok()) std::abort();
  if (!service->Attach(server).ok()) std::abort();
  static std::vector<std::string>* unlink_at_exit = [] {
    std::atexit([] {
      for (const std::string& p : *unlink_at_exit) unlink(p.c_str());
    });
    return new std::vector<std::string>;
  }();
  unlink_at_exit->push_back(options.socket_path);
  return server;
}

}  // namespace remora::fuzz
