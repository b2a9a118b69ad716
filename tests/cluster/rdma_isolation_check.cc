// rdma_isolation_check: shows, on a real verbs device, who reaches the page
// frames of a processor's address spaces (docs/cluster.md, "Isolation"; the
// residence rules in memory-node/rdma_service.h). Run inside the emulated
// cluster by guest-tests.sh:
//
//   rdma_isolation_check HOST:PORT SECRET_FILE DEVICE
//
// A (processor node 1) owns an address space and one page, written with
// one-sided RDMA. Then:
//  * B (processor node 2) is refused the page's mapping and, handed A's
//    remote address and rkey, is refused by the device on its own queue pair;
//  * C (node 1, A's incarnation: the same processor reconnecting) finds the
//    page under the same rkey, and A's older connection stops: its queue pair
//    no longer reaches the frames and its requests are refused;
//  * after A and C close, D (same incarnation) still finds the page (the
//    lease keeps it);
//  * after D closes, E (node 1, a new incarnation: a restarted processor)
//    takes over: the space is gone and the old rkey is refused.
// Prints "isolation PASS|FAIL what" per check; exit 0 if all hold.
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/auth.h"
#include "net/rdma/rdma_verbs.h"
#include "net/rdma/rdma_wire.h"
#include "net/stream_transport.h"
#include "net/wire.h"
#include "remora/stats.h"

namespace remora {
namespace {

using wire::MsgType;

int failures = 0;
void Check(bool ok, const std::string& what, const std::string& detail = "") {
  std::printf("isolation %s %s%s%s\n", ok ? "PASS" : "FAIL", what.c_str(),
              detail.empty() ? "" : ": ", detail.c_str());
  if (!ok) ++failures;
}

// One attached connection with a single queue pair and a one-page buffer.
struct Conn {
  std::unique_ptr<StreamClient> client;
  rdma::Endpoint ep;
  rdma::VerbsPtr<ibv_pd> pd;
  rdma::VerbsPtr<ibv_cq> cq;
  rdma::VerbsPtr<ibv_qp> qp;
  std::vector<char> buf = std::vector<char>(kPageSize);
  rdma::VerbsPtr<ibv_mr> mr;

  Status Open(const TransportOptions& o, const std::string& device) {
    REMORA_RETURN_IF_ERROR(StreamTransport::Dial(o, false, "iso", &client));
    REMORA_RETURN_IF_ERROR(rdma::OpenEndpoint(device, 1, -1, &ep));
    pd.reset(ibv_alloc_pd(ep.ctx.get()));
    cq.reset(ibv_create_cq(ep.ctx.get(), 4, nullptr, nullptr, 0));
    mr.reset(ibv_reg_mr(pd.get(), buf.data(), kPageSize, IBV_ACCESS_LOCAL_WRITE));
    if (!pd || !cq || !mr) return {Code::kIoError, "verbs setup failed"};
    REMORA_RETURN_IF_ERROR(rdma::CreateRcQp(ep, pd.get(), cq.get(), 4, 0, &qp));
    const std::uint32_t psn = rdma::RandomPsn();
    const std::string body =
        rdma::EncodeQpInfos(std::vector<rdma::QpInfo>{rdma::LocalQpInfo(ep, qp.get(), psn)});
    iovec iov{const_cast<char*>(body.data()), body.size()};
    StreamClient::Request r;
    r.type = MsgType::kRdmaAttach;
    r.arg1 = 1;
    r.payload = {&iov, 1};
    StreamClient::Reply reply;
    REMORA_RETURN_IF_ERROR(client->Call(r, &reply));
    std::vector<rdma::QpInfo> remote;
    REMORA_RETURN_IF_ERROR(rdma::DecodeQpInfos(reply.payload, 1, &remote));
    return rdma::ConnectRcQp(ep, qp.get(), psn, remote[0]);
  }

  Status Simple(MsgType t, Asid asid, std::uint64_t a0 = 0, std::uint64_t a1 = 0) {
    StreamClient::Request r;
    r.type = t;
    r.asid = asid;
    r.arg0 = a0;
    r.arg1 = a1;
    return client->Call(r);
  }

  Status Map(Asid asid, std::uint64_t uva, bool write, rdma::Mapping* m) {
    std::uint8_t body[8];
    wire::PutU64(body, uva);
    iovec iov{body, 8};
    StreamClient::Request r;
    r.type = MsgType::kRdmaMap;
    r.asid = asid;
    r.arg0 = write ? 1 : 0;
    r.arg1 = 1;
    r.payload = {&iov, 1};
    StreamClient::Reply reply;
    REMORA_RETURN_IF_ERROR(client->Call(r, &reply));
    std::vector<rdma::Mapping> maps;
    REMORA_RETURN_IF_ERROR(rdma::DecodeMappings(reply.payload, 1, &maps));
    *m = maps[0];
    return Status::Ok();
  }

  // One RDMA READ or WRITE of the buffer; the work completion's status.
  ibv_wc_status Op(ibv_wr_opcode op, const rdma::Mapping& m) {
    ibv_sge sge{reinterpret_cast<std::uint64_t>(buf.data()), kPageSize, mr->lkey};
    ibv_send_wr wr{};
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = op;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.rdma.remote_addr = m.addr;
    wr.wr.rdma.rkey = m.rkey;
    ibv_send_wr* bad = nullptr;
    if (ibv_post_send(qp.get(), &wr, &bad) != 0) return IBV_WC_GENERAL_ERR;
    const std::uint64_t deadline = MonotonicNs() + 10'000'000'000ull;
    ibv_wc wc{};
    while (MonotonicNs() < deadline)
      if (ibv_poll_cq(cq.get(), 1, &wc) == 1) return wc.status;
    return IBV_WC_RESP_TIMEOUT_ERR;
  }
};

int Run(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: rdma_isolation_check HOST:PORT SECRET_FILE DEVICE\n");
    return 2;
  }
  TransportOptions o;
  o.address = argv[1];
  o.timeout_ms = 10000;
  if (Status st = auth::LoadSecretFile(argv[2], &o.secret); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 2;
  }
  // Held by pointer: a connection closes by destruction, in member order.
  auto a = std::make_unique<Conn>(), b = std::make_unique<Conn>(), c = std::make_unique<Conn>();
  o.node_id = 1;
  o.incarnation = 0x1111;
  Status st = a->Open(o, argv[3]);
  o.node_id = 2;
  o.incarnation = 0x2222;
  if (st.ok()) st = b->Open(o, argv[3]);
  if (!st.ok()) {
    Check(false, "attach two processors' connections", st.ToString());
    return 1;
  }
  const Asid asid = MakeAsid(1, 42);
  const std::uint64_t uva = 0x40000000;
  rdma::Mapping ma;
  st = a->Simple(MsgType::kCreateSpace, asid);
  if (st.ok()) st = a->Simple(MsgType::kRegisterRange, asid, uva, 16 * kPageSize);
  if (st.ok()) st = a->Map(asid, uva, true, &ma);
  std::memset(a->buf.data(), 0x5A, kPageSize);
  const bool wrote = st.ok() && a->Op(IBV_WR_RDMA_WRITE, ma) == IBV_WC_SUCCESS;
  std::memset(a->buf.data(), 0, kPageSize);
  const bool read = wrote && a->Op(IBV_WR_RDMA_READ, ma) == IBV_WC_SUCCESS &&
                    a->buf == std::vector<char>(kPageSize, 0x5A);
  Check(read, "the owner writes and reads its page with one-sided RDMA", st.ToString());
  if (!read) return 1;

  // Another processor node.
  rdma::Mapping m;
  st = b->Map(asid, uva, false, &m);
  Check(st.code() == Code::kPermissionDenied,
        "another processor node is refused the page's mapping", st.ToString());
  ibv_wc_status s = b->Op(IBV_WR_RDMA_READ, ma);
  Check(s == IBV_WC_REM_ACCESS_ERR, "the owner's rkey is refused on another node's queue pair",
        ibv_wc_status_str(s));

  // The same processor reconnecting while its old connection lingers.
  o.node_id = 1;
  o.incarnation = 0x1111;
  st = c->Open(o, argv[3]);
  if (st.ok()) st = c->Map(asid, uva, false, &m);
  Check(st.ok() && m.present && m.addr == ma.addr && m.rkey == ma.rkey,
        "a reconnect of the same processor finds its page where it was", st.ToString());
  std::memset(c->buf.data(), 0, kPageSize);
  Check(st.ok() && c->Op(IBV_WR_RDMA_READ, m) == IBV_WC_SUCCESS &&
            c->buf == std::vector<char>(kPageSize, 0x5A),
        "the reconnected processor reads the page on its new queue pair");
  st = a->Map(asid, uva, false, &m);
  Check(st.code() == Code::kDisconnected, "the superseded connection's requests are refused",
        st.ToString());
  std::memset(a->buf.data(), 0x77, kPageSize);
  s = a->Op(IBV_WR_RDMA_WRITE, ma);
  Check(s != IBV_WC_SUCCESS, "the superseded connection's queue pair no longer reaches the frame",
        ibv_wc_status_str(s));
  std::memset(c->buf.data(), 0x33, kPageSize);
  Check(c->Op(IBV_WR_RDMA_WRITE, ma) == IBV_WC_SUCCESS,
        "the reconnected processor writes the page");

  // Both connections closed: the lease keeps the page for the same processor.
  a.reset();
  c.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the node sees both close
  auto d = std::make_unique<Conn>();
  st = d->Open(o, argv[3]);
  if (st.ok()) st = d->Map(asid, uva, false, &m);
  std::memset(d->buf.data(), 0, kPageSize);
  Check(st.ok() && m.present && d->Op(IBV_WR_RDMA_READ, m) == IBV_WC_SUCCESS &&
            d->buf == std::vector<char>(kPageSize, 0x33),
        "after every connection closed, the same processor finds its last write", st.ToString());
  d.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // A restarted processor (new incarnation) starts clean.
  o.incarnation = 0x3333;
  auto e = std::make_unique<Conn>();
  st = e->Open(o, argv[3]);
  Status gone = st.ok() ? e->Map(asid, uva, false, &m) : st;
  Check(gone.code() == Code::kNoSuchSpace, "a new incarnation does not see the old space",
        gone.ToString());
  s = st.ok() ? e->Op(IBV_WR_RDMA_READ, ma) : IBV_WC_GENERAL_ERR;
  Check(s == IBV_WC_REM_ACCESS_ERR, "the old rkey is refused after the takeover",
        ibv_wc_status_str(s));
  std::printf("isolation: %d failed\n", failures);
  return failures ? 1 : 0;
}

}  // namespace
}  // namespace remora

int main(int argc, char** argv) { return remora::Run(argc, argv); }
