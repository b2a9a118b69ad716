// Small socket helpers shared by the stream client and server: address
// parsing, connect/listen with deadlines, and exact reads/writes on a
// non-blocking fd bounded by a deadline (used during the handshake, before a
// connection is handed to its event loop or reader).
//
// Deadlines are absolute MonotonicNs() values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "remora/status.h"

namespace remora::net {

// "host:port" or "[v6addr]:port". The port must be 0..65535.
Status ParseHostPort(const std::string& s, std::string* host, std::uint16_t* port);

// A connected, non-blocking, close-on-exec stream socket with TCP_NODELAY.
Status ConnectTcp(const std::string& host_port, int timeout_ms, int* fd);
// A connected, non-blocking, close-on-exec AF_UNIX stream socket.
Status ConnectUnix(const std::string& path, int timeout_ms, int* fd);

// A non-blocking listening socket. *bound receives "host:port" with the port
// actually bound (useful with port 0).
Status ListenTcp(const std::string& host_port, int* fd, std::string* bound);
// Replaces a stale socket file at `path` (but never any other kind of file).
// The socket file gets mode 0600: only the owner's processes may connect.
Status ListenUnix(const std::string& path, int* fd);

Status SetNonBlocking(int fd);

// Whether `fd` is a unix socket whose peer runs as this process's effective
// uid or as root (SO_PEERCRED, as the kernel recorded it at connect time).
// Such a peer could read this process's memory anyway, and nobody else can
// touch the stream: the handshake may then agree on untagged frames
// (auth.h, "Local connections").
bool TrustedLocalPeer(int fd);

// Reads/writes exactly `len` bytes or fails with kTimeout / kDisconnected /
// kIoError. The fd must be non-blocking.
Status ReadFull(int fd, void* buf, std::size_t len, std::uint64_t deadline_ns);
Status WriteFull(int fd, const void* buf, std::size_t len, std::uint64_t deadline_ns);

// Waits until `fd` is ready for `events` (POLLIN/POLLOUT) or the deadline.
Status WaitFd(int fd, short events, std::uint64_t deadline_ns);

// Milliseconds from now to a deadline, clamped to [0, INT32_MAX].
int MsUntil(std::uint64_t deadline_ns);
std::uint64_t DeadlineAfterMs(int ms);

}  // namespace remora::net
