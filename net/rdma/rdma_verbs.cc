#include "net/rdma/rdma_verbs.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace remora::rdma {
namespace {

Status Errno(const std::string& what) {
  return {Code::kIoError, what + ": " + std::strerror(errno)};
}

// Device list as a vector that frees itself.
struct DeviceList {
  ibv_device** list = nullptr;
  int n = 0;
  DeviceList() { list = ibv_get_device_list(&n); }
  ~DeviceList() {
    if (list) ibv_free_device_list(list);
  }
};

bool GidEmpty(const std::uint8_t* g) {
  return std::all_of(g, g + 16, [](std::uint8_t b) { return b == 0; });
}

bool IsIpv4Mapped(const std::uint8_t* g) {
  static const std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(g, kPrefix, 12) == 0;
}

// Fills ep's port fields from the (already opened) context.
Status QueryPort(Endpoint* ep) {
  ibv_port_attr pa{};
  if (ibv_query_port(ep->ctx.get(), ep->port, &pa) != 0)
    return Errno("ibv_query_port(" + ep->device + " port " + std::to_string(ep->port) + ")");
  if (pa.state != IBV_PORT_ACTIVE)
    return {Code::kUnsupported, "RDMA device " + ep->device + " port " + std::to_string(ep->port) +
                                    " is not active (state " + ibv_port_state_str(pa.state) + ")"};
  ep->lid = pa.lid;
  ep->mtu = pa.active_mtu;
  ibv_device_attr da{};
  if (ibv_query_device(ep->ctx.get(), &da) != 0) return Errno("ibv_query_device");
  ep->max_rd_atomic = std::clamp(std::min(da.max_qp_rd_atom, da.max_qp_init_rd_atom), 1, 16);
  return Status::Ok();
}

// Index of the port's IPv4-mapped GID (RoCE v2 first, then v1), or -1.
int FindIpv4Gid(ibv_context* ctx, std::uint8_t port, std::uint32_t ipv4, bool any_ipv4) {
  ibv_port_attr pa{};
  if (ibv_query_port(ctx, port, &pa) != 0) return -1;
  int best = -1;
  for (int i = 0; i < pa.gid_tbl_len; ++i) {
    ibv_gid_entry e{};
    if (ibv_query_gid_ex(ctx, port, static_cast<std::uint32_t>(i), &e, 0) != 0) continue;
    const std::uint8_t* g = e.gid.raw;
    if (!IsIpv4Mapped(g)) continue;
    if (!any_ipv4 && std::memcmp(g + 12, &ipv4, 4) != 0) continue;
    if (e.gid_type == IBV_GID_TYPE_ROCE_V2) return i;
    if (best < 0) best = i;
  }
  return best;
}

}  // namespace

std::string ListDevices() {
  DeviceList dl;
  std::string out;
  for (int i = 0; dl.list && i < dl.n; ++i) {
    if (!out.empty()) out += ", ";
    out += ibv_get_device_name(dl.list[i]);
  }
  return out.empty() ? "none" : out;
}

Status OpenEndpoint(const std::string& device, std::uint8_t port, int gid_index, Endpoint* ep) {
  DeviceList dl;
  if (!dl.list || dl.n == 0)
    return {Code::kUnsupported,
            "no RDMA device on this machine (is the driver loaded? for "
            "soft-RoCE: modprobe rdma_rxe; rdma link add rxe0 type rxe "
            "netdev IFACE)"};
  ibv_device* dev = nullptr;
  for (int i = 0; i < dl.n; ++i)
    if (device.empty() || device == ibv_get_device_name(dl.list[i])) {
      dev = dl.list[i];
      break;
    }
  if (!dev)
    return {Code::kInvalidArgument,
            "no RDMA device named '" + device + "' (devices: " + ListDevices() + ")"};
  ep->device = ibv_get_device_name(dev);
  ep->ctx.reset(ibv_open_device(dev));
  if (!ep->ctx) return Errno("cannot open RDMA device " + ep->device);
  ep->port = port;
  REMORA_RETURN_IF_ERROR(QueryPort(ep));
  if (gid_index < 0) {
    gid_index = FindIpv4Gid(ep->ctx.get(), port, 0, /*any_ipv4=*/true);
    if (gid_index < 0) gid_index = 0;
  }
  ep->gid_index = gid_index;
  ibv_gid gid{};
  if (ibv_query_gid(ep->ctx.get(), port, gid_index, &gid) != 0)
    return Errno("GID index " + std::to_string(gid_index) + " of " + ep->device);
  std::memcpy(ep->gid, gid.raw, 16);
  if (GidEmpty(ep->gid) && ep->lid == 0)
    return {Code::kInvalidArgument, "GID index " + std::to_string(gid_index) + " of " + ep->device +
                                        " port " + std::to_string(port) +
                                        " is empty (see `ibv_devinfo -v` for the GID table)"};
  return Status::Ok();
}

Status FindEndpointForIpv4(std::uint32_t ipv4, Endpoint* ep) {
  DeviceList dl;
  for (int i = 0; dl.list && i < dl.n; ++i) {
    VerbsPtr<ibv_context> ctx(ibv_open_device(dl.list[i]));
    if (!ctx) continue;
    ibv_device_attr da{};
    if (ibv_query_device(ctx.get(), &da) != 0) continue;
    for (std::uint8_t port = 1; port <= da.phys_port_cnt; ++port) {
      const int idx = FindIpv4Gid(ctx.get(), port, ipv4, /*any_ipv4=*/false);
      if (idx < 0) continue;
      ctx.reset();
      return OpenEndpoint(ibv_get_device_name(dl.list[i]), port, idx, ep);
    }
  }
  return {Code::kUnsupported, "no RDMA device has a RoCE GID for this address"};
}

Status CreateRcQp(const Endpoint& ep, ibv_pd* pd, ibv_cq* cq, std::uint32_t max_send_wr,
                  int remote_access, VerbsPtr<ibv_qp>* qp) {
  ibv_qp_init_attr ia{};
  ia.send_cq = cq;
  ia.recv_cq = cq;
  ia.qp_type = IBV_QPT_RC;
  ia.sq_sig_all = 1;
  ia.cap.max_send_wr = max_send_wr;
  ia.cap.max_recv_wr = 1;  // nothing is ever received: data moves one-sided
  ia.cap.max_send_sge = 1;
  ia.cap.max_recv_sge = 1;
  qp->reset(ibv_create_qp(pd, &ia));
  if (!*qp) return Errno("ibv_create_qp on " + ep.device);
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_INIT;
  a.pkey_index = 0;
  a.port_num = ep.port;
  a.qp_access_flags = remote_access;
  if (ibv_modify_qp(qp->get(), &a,
                    IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) != 0)
    return Errno("queue pair to INIT");
  return Status::Ok();
}

Status ConnectRcQp(const Endpoint& ep, ibv_qp* qp, std::uint32_t local_psn, const QpInfo& remote) {
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_RTR;
  a.path_mtu = std::min(ep.mtu, static_cast<ibv_mtu>(remote.mtu));
  a.dest_qp_num = remote.qpn;
  a.rq_psn = remote.psn;
  // READs the peer may have outstanding towards this end.
  a.max_dest_rd_atomic = static_cast<std::uint8_t>(ep.max_rd_atomic);
  a.min_rnr_timer = 12;
  a.ah_attr.is_global = 1;
  a.ah_attr.grh.dgid = *reinterpret_cast<const ibv_gid*>(remote.gid);
  a.ah_attr.grh.sgid_index = static_cast<std::uint8_t>(ep.gid_index);
  a.ah_attr.grh.hop_limit = 64;
  a.ah_attr.dlid = remote.lid;
  a.ah_attr.sl = 0;
  a.ah_attr.port_num = ep.port;
  if (ibv_modify_qp(qp, &a,
                    IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                        IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER) != 0)
    return Errno("queue pair to RTR (peer GID " + GidToString(remote.gid) + ")");
  ibv_qp_attr r{};
  r.qp_state = IBV_QPS_RTS;
  r.sq_psn = local_psn;
  // 4.096 us * 2^14 = 67 ms per try, 7 retries: a peer that vanished is
  // reported as a retry-exceeded completion after about half a second.
  r.timeout = 14;
  r.retry_cnt = 7;
  r.rnr_retry = 7;
  r.max_rd_atomic =
      static_cast<std::uint8_t>(std::min<int>(ep.max_rd_atomic, remote.max_rd_atomic));
  if (ibv_modify_qp(qp, &r,
                    IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                        IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC) != 0)
    return Errno("queue pair to RTS");
  return Status::Ok();
}

QpInfo LocalQpInfo(const Endpoint& ep, ibv_qp* qp, std::uint32_t psn) {
  QpInfo q;
  q.qpn = qp->qp_num;
  q.psn = psn;
  std::memcpy(q.gid, ep.gid, 16);
  q.lid = ep.lid;
  q.mtu = static_cast<std::uint8_t>(ep.mtu);
  q.max_rd_atomic = static_cast<std::uint8_t>(ep.max_rd_atomic);
  return q;
}

std::uint32_t RandomPsn() {
  std::uint32_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = 0x1234;
  return v & 0xFFFFFF;
}

Status CompletionError(const ibv_wc& wc, const char* op, const std::string& peer) {
  std::string what =
      std::string(op) + " to memory node " + peer + " failed: " + ibv_wc_status_str(wc.status);
  switch (wc.status) {
    case IBV_WC_REM_ACCESS_ERR:
    case IBV_WC_LOC_PROT_ERR:
      return {Code::kPermissionDenied, what + " (the memory region does not grant this access)"};
    case IBV_WC_RETRY_EXC_ERR:
    case IBV_WC_RNR_RETRY_EXC_ERR:
      return {Code::kDisconnected, what + " (the memory node stopped answering)"};
    case IBV_WC_WR_FLUSH_ERR:
      return {Code::kDisconnected, what + " (the queue pair is in the error state)"};
    default:
      return {Code::kIoError, what};
  }
}

}  // namespace remora::rdma
