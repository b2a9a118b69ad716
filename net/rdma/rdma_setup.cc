// Setting up and tearing down the RDMA transport (rdma_transport.h): the
// control connection, the device and GID, the protection domain, and per
// lane a bounce buffer, completion channel and queue, queue pair and memory
// region, whose queue pair is connected to the memory node's by kRdmaAttach.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/rdma/rdma_transport.h"
#include "net/socket_util.h"
#include "net/transports.h"

namespace remora {
namespace {

using wire::MsgType;

// The local IPv4 address the kernel would use to reach host:port (a UDP
// connect sends nothing).
Status LocalIpv4Toward(const std::string& host_port, std::uint32_t* ip) {
  std::string host;
  std::uint16_t port = 0;
  REMORA_RETURN_IF_ERROR(net::ParseHostPort(host_port, &host, &port));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return {Code::kInvalidArgument, "cannot resolve " + host + " to an IPv4 address"};
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  Status st{Code::kIoError, "no local route to " + host};
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      *ip = local.sin_addr.s_addr;
      st = Status::Ok();
    }
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  return st;
}

}  // namespace

void RdmaTransport::Lane::Unmap::operator()(char* p) const { munmap(p, kLanePages * kPageSize); }

RdmaTransport::RdmaTransport(std::unique_ptr<StreamClient> client, const TransportOptions& opts)
    : StreamTransport("rdma", std::move(client)),
      peer_(opts.address),
      timeout_ms_(opts.timeout_ms) {
  if (StatsRegistry* s = opts.stats) {
    m_.Register(s);
  }
}

RdmaTransport::~RdmaTransport() {
  // Lanes hold verbs objects of the endpoint's context: free them first.
  lanes_.clear();
  pd_.reset();
}

Status RdmaTransport::Setup(const TransportOptions& opts) {
  const int nqps = std::clamp(opts.rdma_qps, 1, static_cast<int>(wire::kRdmaMaxQps));
  Status st;
  if (!opts.rdma_device.empty()) {
    st = rdma::OpenEndpoint(opts.rdma_device, static_cast<std::uint8_t>(opts.rdma_port),
                            opts.rdma_gid_index, &ep_);
  } else {
    std::uint32_t ip = 0;
    st = LocalIpv4Toward(opts.address, &ip);
    if (st.ok()) st = rdma::FindEndpointForIpv4(ip, &ep_);
    if (!st.ok())  // InfiniBand proper, or no RoCE GID for that address
      st = rdma::OpenEndpoint("", static_cast<std::uint8_t>(opts.rdma_port), opts.rdma_gid_index,
                              &ep_);
  }
  REMORA_RETURN_IF_ERROR(st);
  pd_.reset(ibv_alloc_pd(ep_.ctx.get()));
  if (!pd_) return {Code::kIoError, std::string("ibv_alloc_pd: ") + std::strerror(errno)};

  std::vector<rdma::QpInfo> local;
  for (int i = 0; i < nqps; ++i) {
    auto lane = std::make_unique<Lane>();
    void* mem = mmap(nullptr, kLanePages * kPageSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return {Code::kIoError, "cannot map an RDMA bounce buffer"};
    lane->buf.reset(static_cast<char*>(mem));
    lane->channel.reset(ibv_create_comp_channel(ep_.ctx.get()));
    if (!lane->channel)
      return {Code::kIoError, std::string("ibv_create_comp_channel: ") + std::strerror(errno)};
    lane->cq.reset(ibv_create_cq(ep_.ctx.get(), static_cast<int>(kLanePages) + 1, nullptr,
                                 lane->channel.get(), 0));
    if (!lane->cq) return {Code::kIoError, std::string("ibv_create_cq: ") + std::strerror(errno)};
    REMORA_RETURN_IF_ERROR(rdma::CreateRcQp(ep_, pd_.get(), lane->cq.get(), kLanePages,
                                            /*remote_access=*/0, &lane->qp));
    lane->mr.reset(
        ibv_reg_mr(pd_.get(), lane->buf.get(), kLanePages * kPageSize, IBV_ACCESS_LOCAL_WRITE));
    if (!lane->mr) return {Code::kIoError, std::string("ibv_reg_mr: ") + std::strerror(errno)};
    lane->psn = rdma::RandomPsn();
    local.push_back(rdma::LocalQpInfo(ep_, lane->qp.get(), lane->psn));
    lanes_.push_back(std::move(lane));
  }

  const std::string body = rdma::EncodeQpInfos(local);
  iovec iov{const_cast<char*>(body.data()), body.size()};
  StreamClient::Request req;
  req.type = MsgType::kRdmaAttach;
  req.arg1 = local.size();
  req.payload = std::span<const iovec>(&iov, 1);
  StreamClient::Reply reply;
  st = client()->Call(req, &reply);
  if (!st.ok()) return {st.code(), "memory node at " + peer_ + " refused RDMA: " + st.message()};
  std::vector<rdma::QpInfo> remote;
  REMORA_RETURN_IF_ERROR(rdma::DecodeQpInfos(reply.payload, local.size(), &remote));
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    REMORA_RETURN_IF_ERROR(rdma::ConnectRcQp(ep_, lanes_[i]->qp.get(), lanes_[i]->psn, remote[i]));
    free_lanes_.push_back(lanes_[i].get());
  }
  live_lanes_ = lanes_.size();
  return Status::Ok();
}

std::unique_ptr<Transport> NewRdmaTransport(const TransportOptions& opts, Status* status) {
  std::unique_ptr<StreamClient> client;
  *status = StreamTransport::Dial(opts, /*unix_socket=*/false, std::string(kRdmaControlStatsPrefix),
                                  &client);
  if (!status->ok()) return nullptr;
  auto t = std::make_unique<RdmaTransport>(std::move(client), opts);
  *status = t->Setup(opts);
  if (!status->ok()) {
    *status = {status->code(), "RDMA to memory node at " + opts.address + ": " + status->message()};
    return nullptr;
  }
  return t;
}

}  // namespace remora
