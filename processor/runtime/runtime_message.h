// The manager's decoder of what programs send on its socket
// (processor/abi/runtime_protocol.h). Everything a client sends passes
// through DecodeRequest before the manager acts on it: the size, magic and
// version, whether the operation may come on this connection at this point,
// how many descriptors came with it, and that its range is one a program
// could have (page-aligned where it must be, no wrap-around, below the top
// of any user address space). A message it refuses ends that connection's
// session (or the connection, before there is one), never the manager.
#pragma once

#include <cstddef>
#include <cstdint>

#include "processor/abi/runtime_protocol.h"
#include "remora/status.h"

namespace remora {

enum class RequestChannel {
  kFirst,    // a new connection's first message: Hello, AgentHello or Stats
  kControl,  // a session's control connection: Map, Unmap, Discard, Fork*
};

// Above any user address on Linux (57-bit with 5-level page tables).
constexpr std::uint64_t kUserAddressLimit = std::uint64_t{1} << 57;

// Decodes the `len` bytes at `buf`, which came with `nfds` descriptors, as a
// request allowed on `channel`; on a control connection its session must be
// `session`. On success *out is the request.
Status DecodeRequest(const void* buf, std::size_t len, int nfds, RequestChannel channel,
                     std::uint64_t session, rt::Request* out);

}  // namespace remora
