// Thin, owning wrappers over libibverbs for both ends of the RDMA transport:
// opening a device and choosing its GID, reliable-connected queue pairs and
// their state changes, and turning work completions into Status codes.
//
// Why raw verbs and not rdma_cm: the memory node and the processor already
// share an authenticated TCP connection (the control channel), so queue pair
// addresses travel over it (kRdmaAttach) and no second connection manager,
// port or trust path is needed. The GID is chosen the way rdma_cm would: the
// one bound to the IP address the control connection leaves from.
#pragma once

#include <infiniband/verbs.h>

#include <cstdint>
#include <memory>
#include <string>

#include "net/rdma/rdma_wire.h"
#include "remora/status.h"

namespace remora::rdma {

struct VerbsDeleter {
  void operator()(ibv_context* p) const { ibv_close_device(p); }
  void operator()(ibv_pd* p) const { ibv_dealloc_pd(p); }
  void operator()(ibv_cq* p) const { ibv_destroy_cq(p); }
  void operator()(ibv_comp_channel* p) const { ibv_destroy_comp_channel(p); }
  void operator()(ibv_qp* p) const { ibv_destroy_qp(p); }
  void operator()(ibv_mr* p) const { ibv_dereg_mr(p); }
};
template <typename T>
using VerbsPtr = std::unique_ptr<T, VerbsDeleter>;

// One port of an opened device and the GID this end speaks from.
struct Endpoint {
  VerbsPtr<ibv_context> ctx;
  std::string device;
  std::uint8_t port = 1;
  int gid_index = 0;
  std::uint8_t gid[16] = {};
  std::uint16_t lid = 0;
  ibv_mtu mtu = IBV_MTU_1024;
  int max_rd_atomic = 1;  // READs this end may have outstanding / accept
};

// Opens `device` (empty: the first one listed) at `port`. gid_index < 0
// picks the port's IPv4-mapped RoCE v2 GID if it has one, else index 0.
// Fails with a clear message when there is no such device, the port is not
// active, or the GID entry is empty.
Status OpenEndpoint(const std::string& device, std::uint8_t port, int gid_index, Endpoint* ep);

// Finds the device, port and GID index whose RoCE GID is the IPv4 address
// `ipv4` (network byte order), preferring RoCE v2. kUnsupported if none has it.
Status FindEndpointForIpv4(std::uint32_t ipv4, Endpoint* ep);

// Names of the RDMA devices on this machine, for error messages ("none" if empty).
std::string ListDevices();

// A reliable-connected queue pair in INIT on ep's port. `remote_access`: the
// IBV_ACCESS_REMOTE_* flags the peer may use on this end's memory regions
// through it (0 for the processor, READ|WRITE for the memory node).
Status CreateRcQp(const Endpoint& ep, ibv_pd* pd, ibv_cq* cq, std::uint32_t max_send_wr,
                  int remote_access, VerbsPtr<ibv_qp>* qp);
// INIT -> RTR -> RTS, connected to `remote`. `local_psn` is this end's first
// send PSN (the one advertised in its QpInfo).
Status ConnectRcQp(const Endpoint& ep, ibv_qp* qp, std::uint32_t local_psn, const QpInfo& remote);
// This end's QpInfo for `qp`.
QpInfo LocalQpInfo(const Endpoint& ep, ibv_qp* qp, std::uint32_t psn);
// A random 24-bit packet sequence number.
std::uint32_t RandomPsn();

// The Status for a failed work completion of `op` ("RDMA READ", ...):
// remote access errors -> kPermissionDenied, a peer that stopped answering
// (transport or RNR retries exhausted) and flushed requests -> kDisconnected,
// the rest -> kIoError; the message names the verbs status.
Status CompletionError(const ibv_wc& wc, const char* op, const std::string& peer);

}  // namespace remora::rdma
