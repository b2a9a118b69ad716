#include "net/stream_transport.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "net/handshake.h"
#include "net/socket_util.h"
#include "net/wire.h"

namespace remora {

using wire::MsgType;

namespace {

iovec Iov(const void* p, std::size_t len) { return {const_cast<void*>(p), len}; }

}  // namespace

StreamTransport::StreamTransport(std::string name, std::unique_ptr<StreamClient> client)
    : name_(std::move(name)), client_(std::move(client)) {}

Status StreamTransport::Dial(const TransportOptions& opts, bool unix_socket,
                             const std::string& stats_prefix,
                             std::unique_ptr<StreamClient>* client) {
  int fd = -1;
  Status st = unix_socket ? net::ConnectUnix(opts.address, opts.timeout_ms, &fd)
                          : net::ConnectTcp(opts.address, opts.timeout_ms, &fd);
  if (!st.ok())
    return {st.code(), "cannot reach memory node at " + opts.address + ": " + st.message()};
  net::HandshakeResult hs;
  st = net::ClientHandshake(fd, opts.secret, opts.node_id, opts.incarnation, opts.timeout_ms, &hs);
  if (!st.ok()) {
    close(fd);
    return {st.code(), "memory node at " + opts.address + ": " + st.message()};
  }
  StreamClient::Options co;
  co.timeout_ms = opts.timeout_ms;
  co.peer = "memory node at " + opts.address;
  co.stats = opts.stats;
  co.stats_prefix = stats_prefix;
  co.receive_fds = unix_socket;
  co.frame_keys = hs.frame_keys;
  *client = std::make_unique<StreamClient>(fd, co);
  return Status::Ok();
}

Status StreamTransport::Simple(MsgType type, Asid asid, std::uint64_t arg0, std::uint64_t arg1) {
  StreamClient::Request r;
  r.type = type;
  r.asid = asid;
  r.arg0 = arg0;
  r.arg1 = arg1;
  return client_->Call(r);
}

Status StreamTransport::CreateSpace(Asid asid) { return Simple(MsgType::kCreateSpace, asid); }
Status StreamTransport::DestroySpace(Asid asid) { return Simple(MsgType::kDestroySpace, asid); }
Status StreamTransport::ForkSpace(Asid parent, Asid child) {
  return Simple(MsgType::kForkSpace, parent, child);
}
Status StreamTransport::RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  return Simple(MsgType::kRegisterRange, asid, start, len);
}
Status StreamTransport::UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  return Simple(MsgType::kUnregisterRange, asid, start, len);
}
Status StreamTransport::DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  return Simple(MsgType::kDiscardRange, asid, start, len);
}
Status StreamTransport::Ping() { return Simple(MsgType::kPing, 0); }

Status StreamTransport::Info(MemoryNodeInfo* info) {
  wire::InfoPayload ip{};
  iovec into = Iov(&ip, sizeof ip);
  StreamClient::Request r;
  r.type = MsgType::kInfo;
  r.reply_into = {&into, 1};
  REMORA_RETURN_IF_ERROR(client_->Call(r));
  info->capacity_pages = ip.capacity_pages;
  info->used_pages = ip.used_pages;
  info->nr_spaces = ip.nr_spaces;
  info->node_id = ip.node_id;
  return Status::Ok();
}

Status StreamTransport::RemoteStatsJson(std::string* json) {
  StreamClient::Request r;
  r.type = MsgType::kStats;
  StreamClient::Reply reply;
  REMORA_RETURN_IF_ERROR(client_->Call(r, &reply));
  *json = std::move(reply.payload);
  return Status::Ok();
}

Status StreamTransport::ReadPage(Asid asid, std::uint64_t uva, void* buf, bool* present) {
  iovec into = Iov(buf, kPageSize);
  StreamClient::Request r;
  r.type = MsgType::kReadPage;
  r.asid = asid;
  r.arg0 = uva;
  r.reply_into = {&into, 1};
  StreamClient::Reply reply;
  REMORA_RETURN_IF_ERROR(client_->Call(r, &reply));
  bool p = reply.header.arg1 != 0;
  if (!p) std::memset(buf, 0, kPageSize);
  if (present) *present = p;
  return Status::Ok();
}

Status StreamTransport::WritePage(Asid asid, std::uint64_t uva, const void* buf) {
  iovec data = Iov(buf, kPageSize);
  StreamClient::Request r;
  r.type = MsgType::kWritePage;
  r.asid = asid;
  r.arg0 = uva;
  r.payload = {&data, 1};
  return client_->Call(r);
}

Status StreamTransport::ReadBatch(Asid asid, std::span<const std::uint64_t> uvas, char* out,
                                  bool* present) {
  const std::size_t n = uvas.size();
  std::vector<std::uint8_t> addrs(8 * n);
  for (std::size_t i = 0; i < n; ++i) wire::PutU64(addrs.data() + 8 * i, uvas[i]);
  std::vector<std::uint8_t> flags(wire::PresenceBytes(n));
  iovec payload = Iov(addrs.data(), addrs.size());
  iovec into[2] = {Iov(flags.data(), flags.size()), Iov(out, n * kPageSize)};
  StreamClient::Request r;
  r.type = MsgType::kReadPages;
  r.asid = asid;
  r.arg1 = n;
  r.payload = {&payload, 1};
  r.reply_into = into;
  REMORA_RETURN_IF_ERROR(client_->Call(r));
  if (present)
    for (std::size_t i = 0; i < n; ++i) present[i] = flags[i] != 0;
  return Status::Ok();
}

Status StreamTransport::ReadPages(Asid asid, std::span<const std::uint64_t> uvas, void* bufs,
                                  bool* present) {
  auto* out = static_cast<char*>(bufs);
  for (std::size_t i = 0; i < uvas.size(); i += wire::kMaxBatchPages) {
    std::size_t n = std::min<std::size_t>(wire::kMaxBatchPages, uvas.size() - i);
    REMORA_RETURN_IF_ERROR(
        ReadBatch(asid, uvas.subspan(i, n), out + i * kPageSize, present ? present + i : nullptr));
  }
  return Status::Ok();
}

StreamClient::Request StreamTransport::WriteBatchRequest(Asid asid,
                                                         std::span<const std::uint64_t> uvas,
                                                         const char* in,
                                                         std::vector<std::uint8_t>* addrs,
                                                         iovec (&payload)[2]) {
  const std::size_t n = uvas.size();
  addrs->resize(8 * n);
  for (std::size_t i = 0; i < n; ++i) wire::PutU64(addrs->data() + 8 * i, uvas[i]);
  payload[0] = Iov(addrs->data(), addrs->size());
  payload[1] = Iov(in, n * kPageSize);
  StreamClient::Request r;
  r.type = MsgType::kWritePages;
  r.asid = asid;
  r.arg1 = n;
  r.payload = payload;
  return r;
}

Status StreamTransport::WriteBatch(Asid asid, std::span<const std::uint64_t> uvas, const char* in) {
  std::vector<std::uint8_t> addrs;
  iovec payload[2];
  return client_->Call(WriteBatchRequest(asid, uvas, in, &addrs, payload));
}

namespace {

// The batches of one PostWritePages(), sent; their replies still to come.
class PostedBatches final : public Transport::PostedWrite {
 public:
  explicit PostedBatches(StreamClient* client) : client_(client) {}
  void Add(StreamClient::PostedPtr p) { posted_.push_back(std::move(p)); }
  Status Wait() override {
    Status first = Status::Ok();
    for (auto& p : posted_) {  // every reply is collected, the first error kept
      Status st = client_->Wait(std::move(p));
      if (first.ok()) first = st;
    }
    posted_.clear();
    return first;
  }

 private:
  StreamClient* const client_;
  std::vector<StreamClient::PostedPtr> posted_;
};

}  // namespace

std::unique_ptr<Transport::PostedWrite> StreamTransport::PostWritePages(
    Asid asid, std::span<const std::uint64_t> uvas, const void* bufs) {
  const auto* in = static_cast<const char*>(bufs);
  auto posted = std::make_unique<PostedBatches>(client_.get());
  std::vector<std::uint8_t> addrs;
  iovec payload[2];
  for (std::size_t i = 0; i < uvas.size(); i += wire::kMaxBatchPages) {
    const std::size_t n = std::min<std::size_t>(wire::kMaxBatchPages, uvas.size() - i);
    // Post() has sent the batch when it returns: `addrs` may be reused.
    posted->Add(client_->Post(
        WriteBatchRequest(asid, uvas.subspan(i, n), in + i * kPageSize, &addrs, payload)));
  }
  return posted;
}

Status StreamTransport::WritePages(Asid asid, std::span<const std::uint64_t> uvas,
                                   const void* bufs) {
  const auto* in = static_cast<const char*>(bufs);
  for (std::size_t i = 0; i < uvas.size(); i += wire::kMaxBatchPages) {
    std::size_t n = std::min<std::size_t>(wire::kMaxBatchPages, uvas.size() - i);
    REMORA_RETURN_IF_ERROR(WriteBatch(asid, uvas.subspan(i, n), in + i * kPageSize));
  }
  return Status::Ok();
}

// The payload is gathered from the pages themselves (sendmsg with one iovec
// each): no staging copy.
Status StreamTransport::WritePagesGather(Asid asid, std::span<const std::uint64_t> uvas,
                                         std::span<const void* const> pages) {
  if (uvas.size() != pages.size())
    return {Code::kInvalidArgument, "WritePagesGather: one page per uva"};
  std::uint8_t addrs[8 * wire::kMaxBatchPages];
  iovec payload[1 + wire::kMaxBatchPages];
  for (std::size_t i = 0; i < uvas.size(); i += wire::kMaxBatchPages) {
    const std::size_t n = std::min<std::size_t>(wire::kMaxBatchPages, uvas.size() - i);
    payload[0] = Iov(addrs, 8 * n);
    for (std::size_t k = 0; k < n; ++k) {
      wire::PutU64(addrs + 8 * k, uvas[i + k]);
      payload[1 + k] = Iov(pages[i + k], kPageSize);
    }
    StreamClient::Request r;
    r.type = MsgType::kWritePages;
    r.asid = asid;
    r.arg1 = n;
    r.payload = {payload, 1 + n};
    REMORA_RETURN_IF_ERROR(client_->Call(r));
  }
  return Status::Ok();
}

Status StreamTransport::WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                                        const void* buf) {
  if (asids.empty() || asids.size() > wire::kMaxBatchPages)
    return {Code::kInvalidArgument,
            "WritePageShared needs 1.." + std::to_string(wire::kMaxBatchPages) + " address spaces"};
  std::vector<std::uint8_t> ids(8 * asids.size());
  for (std::size_t i = 0; i < asids.size(); ++i) wire::PutU64(ids.data() + 8 * i, asids[i]);
  iovec payload[2] = {Iov(ids.data(), ids.size()), Iov(buf, kPageSize)};
  StreamClient::Request r;
  r.type = MsgType::kWritePageShared;
  r.asid = asids[0];
  r.arg0 = uva;
  r.arg1 = asids.size();
  r.payload = payload;
  return client_->Call(r);
}

}  // namespace remora
