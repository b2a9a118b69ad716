// Small helpers for the manager's side of the shim protocol
// (runtime_protocol.h): SEQPACKET messages with an optional descriptor.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "remora/status.h"
#include "remora/types.h"

namespace remora {

// Receives one message and at most one passed descriptor (*fd = -1 if
// none; extra descriptors are closed). Returns what recvmsg returned.
ssize_t RecvWithFd(int sock, void* buf, std::size_t len, int* fd);
// The same for up to `max` descriptors (unused slots -1; extra ones closed).
ssize_t RecvWithFds(int sock, void* buf, std::size_t len, int* fds, int max);
// Sends a ForkWelcome (an rt::Reply) with one descriptor attached.
Status SendReplyWithFd(int sock, Code code, std::uint64_t session, Asid asid, int fd);

// Connects a SOCK_SEQPACKET unix socket (close-on-exec) to `path`; -1 with
// errno set on failure.
int ConnectSeqpacket(const std::string& path);

// Sends an rt::Reply followed by `text`.
Status SendReply(int sock, Code code, std::uint64_t session, Asid asid, const std::string& text,
                 std::uint32_t flags = 0);

}  // namespace remora
