#include "net/rdma/rdma_wire.h"

#include <arpa/inet.h>

#include <cstring>

#include "net/wire.h"

namespace remora::rdma {
namespace {

void PutU32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t GetU32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{p[i]} << (8 * i);
  return v;
}

}  // namespace

// QpInfo record: qpn u32 | psn u32 | gid 16 | lid u16 | mtu u8 | max_rd u8 | 4 zero bytes.
std::string EncodeQpInfos(std::span<const QpInfo> qps) {
  std::string out(qps.size() * wire::kRdmaQpInfoLen, '\0');
  auto* p = reinterpret_cast<std::uint8_t*>(out.data());
  for (const QpInfo& q : qps) {
    PutU32(p, q.qpn);
    PutU32(p + 4, q.psn);
    std::memcpy(p + 8, q.gid, 16);
    p[24] = static_cast<std::uint8_t>(q.lid);
    p[25] = static_cast<std::uint8_t>(q.lid >> 8);
    p[26] = q.mtu;
    p[27] = q.max_rd_atomic;
    p += wire::kRdmaQpInfoLen;
  }
  return out;
}

Status DecodeQpInfos(std::string_view payload, std::size_t n, std::vector<QpInfo>* out) {
  if (n == 0 || n > wire::kRdmaMaxQps || payload.size() != n * wire::kRdmaQpInfoLen)
    return {Code::kBadRequest, "rdma_attach: " + std::to_string(payload.size()) +
                                   " bytes do not hold " + std::to_string(n) +
                                   " queue pair addresses"};
  out->assign(n, QpInfo{});
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  for (QpInfo& q : *out) {
    q.qpn = GetU32(p);
    q.psn = GetU32(p + 4);
    std::memcpy(q.gid, p + 8, 16);
    q.lid = static_cast<std::uint16_t>(p[24] | (p[25] << 8));
    q.mtu = p[26];
    q.max_rd_atomic = p[27];
    if (q.qpn == 0 || q.qpn > 0xFFFFFF || q.psn > 0xFFFFFF || q.mtu < 1 || q.mtu > 5 ||
        q.max_rd_atomic == 0)
      return {Code::kBadRequest, "rdma_attach: malformed queue pair address"};
    p += wire::kRdmaQpInfoLen;
  }
  return Status::Ok();
}

// Mapping record: addr u64 | rkey u32 | flags u8 (1 present, 2 writable) | 3 zero bytes.
std::string EncodeMappings(std::span<const Mapping> maps) {
  std::string out(maps.size() * wire::kRdmaMappingLen, '\0');
  auto* p = reinterpret_cast<std::uint8_t*>(out.data());
  for (const Mapping& m : maps) {
    wire::PutU64(p, m.addr);
    PutU32(p + 8, m.rkey);
    p[12] = static_cast<std::uint8_t>((m.present ? 1 : 0) | (m.writable ? 2 : 0));
    p += wire::kRdmaMappingLen;
  }
  return out;
}

Status DecodeMappings(std::string_view payload, std::size_t n, std::vector<Mapping>* out) {
  if (payload.size() != n * wire::kRdmaMappingLen)
    return {Code::kInternal, "rdma_map reply of " + std::to_string(payload.size()) + " bytes for " +
                                 std::to_string(n) + " pages"};
  out->assign(n, Mapping{});
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  for (Mapping& m : *out) {
    m.addr = wire::GetU64(p);
    m.rkey = GetU32(p + 8);
    m.present = p[12] & 1;
    m.writable = p[12] & 2;
    if (p[12] & ~3 || (m.writable && !m.present) || (m.present && (m.addr == 0 || m.addr % 4096)))
      return {Code::kInternal, "rdma_map reply holds a malformed page mapping"};
    p += wire::kRdmaMappingLen;
  }
  return Status::Ok();
}

std::string GidToString(const std::uint8_t gid[16]) {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(AF_INET6, gid, buf, sizeof buf)) return "?";
  return buf;
}

}  // namespace remora::rdma
