// Small helpers for the manager's side of the shim protocol
// (runtime_protocol.h): replies, with a descriptor attached
// (processor/abi/fd_passing.h, whose RecvWithFds reads the requests).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "remora/status.h"
#include "remora/types.h"

namespace remora {

// Sends a ForkWelcome (an rt::Reply) with one descriptor attached.
Status SendReplyWithFd(int sock, Code code, std::uint64_t session, Asid asid, int fd);

// Connects a SOCK_SEQPACKET unix socket (close-on-exec) to `path`; -1 with
// errno set on failure.
int ConnectSeqpacket(const std::string& path);

// Sends an rt::Reply followed by `text`.
Status SendReply(int sock, Code code, std::uint64_t session, Asid asid, const std::string& text,
                 std::uint32_t flags = 0);

}  // namespace remora
