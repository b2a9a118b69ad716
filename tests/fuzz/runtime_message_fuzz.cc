// Fuzz target: the processor manager's decoder of what programs send on its
// socket (processor/runtime/runtime_message.h). The first input byte picks
// the connection state (bit 0: a first message or a control connection's)
// and how many descriptors came with the message (bits 1-2, 0..3); the rest
// is the datagram. Whatever the decoder accepts must be a request the
// manager can act on without further checks: the invariants are asserted
// here, so a decoder that lets a bad range or a wrong descriptor count
// through crashes the run.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "processor/runtime/runtime_message.h"
#include "remora/types.h"

namespace {

constexpr std::uint64_t kSession = 0x5eed5eed5eed5eedULL;

void Require(bool ok) {
  if (!ok) std::abort();
}

void CheckAccepted(const remora::rt::Request& r, remora::RequestChannel channel, int nfds) {
  using remora::rt::Op;
  Require(r.magic == remora::rt::kMagic && r.version == remora::rt::kVersion);
  if (channel == remora::RequestChannel::kFirst) {
    Require(r.op == Op::kHello || r.op == Op::kAgentHello || r.op == Op::kStats);
    Require(r.op == Op::kHello ? (nfds == 1 && r.own_fd >= 0) : nfds == 0);
    if (r.op == Op::kAgentHello) Require(r.session != 0);
    return;
  }
  Require(r.session == kSession);
  switch (r.op) {
    case Op::kMap:
      Require(remora::PageAligned(r.start) && remora::PageAligned(r.len) && r.len > 0);
      Require(r.start + r.len > r.start && r.start + r.len <= remora::kUserAddressLimit);
      Require(nfds == ((r.flags & remora::rt::kMapFile) ? 1 : 0));
      break;
    case Op::kUnmap:
    case Op::kDiscard:
      Require(nfds == 0 && r.len > 0 && r.start + r.len > r.start);
      Require(remora::PageUp(r.start + r.len) <= remora::kUserAddressLimit);
      break;
    case Op::kForkPrepare:
      Require(nfds == 2 && r.tid > 0);
      break;
    case Op::kForkDone:
      Require(nfds == 0);
      break;
    default:
      Require(false);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto channel =
      (data[0] & 1) ? remora::RequestChannel::kControl : remora::RequestChannel::kFirst;
  const int nfds = (data[0] >> 1) & 3;
  remora::rt::Request out;
  const remora::Status st =
      remora::DecodeRequest(data + 1, size - 1, nfds, channel, kSession, &out);
  if (st.ok()) CheckAccepted(out, channel, nfds);
  return 0;
}
