// RunMemoryNode: the `remora memory-node` process from start to exit.
//
// Creates the PageStore, listens on TCP (and on the unix socket for
// shared-memory clients if configured), prints exactly one line on stdout
//   remora memory-node ready tcp=HOST:PORT shm=PATH   (shm=- if none)
// once it serves — launchers wait for it — and then serves until SIGTERM or
// SIGINT, which end it cleanly (exit status 0).
//
// Without a secret file the node generates a secret and writes it, mode 0600,
// to remora-memnode-<port>.secret in this user's private runtime directory
// (common/private_dir.h: $XDG_RUNTIME_DIR, /run/remora for root, or a
// verified 0700 /tmp/remora-UID; never a name anyone could predict and
// plant in /tmp), logs the path, and removes the file when it exits. A given
// secret file must be mode 0600 or stricter and hold at least 32 bytes, or
// the node refuses to start.
//
// Nothing is written to stdout after the ready line: launchers may have
// stopped reading it.
#pragma once

#include "memory-node/config.h"

namespace remora {

// Returns the process exit status.
int RunMemoryNode(const MemoryNodeConfig& config);

}  // namespace remora
