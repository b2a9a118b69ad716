// The TCP transport: the whole Transport interface as request/reply messages
// over one TCP connection (StreamTransport), for memory nodes on any machine.
#include "net/stream_transport.h"
#include "net/transport_stats.h"
#include "net/transports.h"

namespace remora {

std::unique_ptr<Transport> NewTcpTransport(const TransportOptions& opts, Status* status) {
  std::unique_ptr<StreamClient> client;
  *status =
      StreamTransport::Dial(opts, /*unix_socket=*/false, std::string(kTcpStatsPrefix), &client);
  if (!status->ok()) return nullptr;
  return std::make_unique<StreamTransport>("tcp", std::move(client));
}

}  // namespace remora
