// Constructors of the concrete transports; ConnectTransport() picks one.
#pragma once

#include <memory>

#include "remora/transport.h"

namespace remora {

// TCP: "host:port". net/tcp_transport.cc
std::unique_ptr<Transport> NewTcpTransport(const TransportOptions& opts, Status* status);
// Shared memory: path of the memory node's unix socket. net/shm/shm_transport.cc
std::unique_ptr<Transport> NewShmTransport(const TransportOptions& opts, Status* status);
// RDMA verbs: "host:port" of the memory node's TCP control listener. net/rdma/rdma_transport.h
std::unique_ptr<Transport> NewRdmaTransport(const TransportOptions& opts, Status* status);

}  // namespace remora
