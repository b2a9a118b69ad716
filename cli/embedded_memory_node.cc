#include "cli/embedded_memory_node.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <utility>

#include "cli/local_memory_node.h"
#include "common/thread_name.h"
#include "memory-node/page_store.h"
#include "memory-node/server.h"
#include "net/auth.h"
#include "net/stream_server.h"
#include "remora/stats.h"

namespace remora {

EmbeddedMemoryNode::EmbeddedMemoryNode() = default;

std::unique_ptr<EmbeddedMemoryNode> EmbeddedMemoryNode::Start(std::uint64_t capacity_bytes,
                                                              Status* status) {
  std::unique_ptr<EmbeddedMemoryNode> node(new EmbeddedMemoryNode);
  if (capacity_bytes < kPageSize) {
    *status = {Code::kInvalidArgument, "the memory node's capacity is below one page"};
    return nullptr;
  }
  // mkdtemp makes the directory 0700 whatever the umask: nobody else can
  // replace the socket in it.
  char tmpl[] = "/tmp/remora-node-XXXXXX";
  if (!mkdtemp(tmpl)) {
    *status = {Code::kIoError, "mkdtemp failed"};
    return nullptr;
  }
  node->dir_ = tmpl;
  node->shm_path_ = node->dir_ + "/memnode.sock";
  Status st = auth::GenerateSecret(&node->secret_);
  if (!st.ok()) {
    *status = st;
    return nullptr;
  }

  node->stats_ = std::make_unique<StatsRegistry>();
  PageStore::Options so;
  so.capacity_pages = capacity_bytes / kPageSize;
  node->store_ = PageStore::Create(so, node->stats_.get(), &st);
  if (!node->store_) {
    *status = {st.code(), "cannot create the page store: " + st.message()};
    return nullptr;
  }
  MemoryNodeService::Options mo;
  mo.secret = node->secret_;
  mo.log_connections = false;
  node->service_ = std::make_unique<MemoryNodeService>(node->store_.get(), node->stats_.get(), mo);
  StreamServer::Options svo;
  svo.stats = node->stats_.get();
  svo.stats_prefix = "memnode";
  node->server_ = std::make_unique<StreamServer>(node->service_.get(), svo);
  st = node->server_->ListenTcp("127.0.0.1:0", &node->tcp_address_);
  if (st.ok()) st = node->server_->ListenUnix(node->shm_path_);
  if (st.ok()) st = node->service_->Attach(node->server_.get());
  if (!st.ok()) {
    *status = st;
    return nullptr;
  }
  node->loop_ = std::thread([server = node->server_.get()] {
    NameThisThread("remora-memnode");
    server->Run();
  });
  *status = Status::Ok();
  return node;
}

EmbeddedMemoryNode::~EmbeddedMemoryNode() {
  if (loop_.joinable()) {
    server_->Stop();
    loop_.join();
  }
  server_.reset();
  service_.reset();
  store_.reset();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

TransportOptions EmbeddedMemoryNode::ClientOptions(TransportKind kind, NodeId node_id) const {
  return LocalClientOptions(kind, tcp_address_, shm_path_, secret_, node_id);
}

}  // namespace remora
