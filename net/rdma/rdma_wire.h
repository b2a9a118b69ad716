// Payloads of the RDMA control messages (protocol.h: kRdmaAttach, kRdmaMap).
//
// They travel on the authenticated TCP control connection, so they are plain
// little-endian records like the rest of the protocol. Kept apart from the
// verbs code so that both ends' bookkeeping can be tested on machines without
// RDMA devices.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "remora/protocol.h"
#include "remora/status.h"

namespace remora::rdma {

// Everything the other end needs to connect a reliable-connected queue pair to
// this one: its number and first packet sequence number, the port's GID (RoCE
// and routed InfiniBand address) and LID (InfiniBand subnet address), the
// port's active MTU (an ibv_mtu value), and how many RDMA READs it lets be
// outstanding towards it.
struct QpInfo {
  std::uint32_t qpn = 0;
  std::uint32_t psn = 0;
  std::uint8_t gid[16] = {};
  std::uint16_t lid = 0;
  std::uint8_t mtu = 0;
  std::uint8_t max_rd_atomic = 0;
};

// Where one page of an address space lives on the memory node: a remote
// address and the rkey of the memory region covering it. `present` is false
// for a page never written (the read answer is zeros; addr/rkey are 0).
// `writable` says the frame belongs to this page alone, so an RDMA WRITE may
// overwrite it in place; after a fork a frame is shared and read-only until a
// write mapping breaks the sharing.
struct Mapping {
  std::uint64_t addr = 0;
  std::uint32_t rkey = 0;
  bool present = false;
  bool writable = false;
};

std::string EncodeQpInfos(std::span<const QpInfo> qps);
Status DecodeQpInfos(std::string_view payload, std::size_t n, std::vector<QpInfo>* out);

std::string EncodeMappings(std::span<const Mapping> maps);
Status DecodeMappings(std::string_view payload, std::size_t n, std::vector<Mapping>* out);

// "fe80::…" style text of a GID, for logs and errors.
std::string GidToString(const std::uint8_t gid[16]);

}  // namespace remora::rdma
