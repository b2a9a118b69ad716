// Directories for a daemon's sockets and secrets that nobody else can
// tamper with. A unix socket or a secret file is only as safe as the
// directory it lives in: whoever can write the directory can replace the
// file (a squatted socket hands the squatter every program's userfaultfd),
// and a file's own mode means nothing before it is created.
#pragma once

#include <sys/types.h>

#include <string>

#include "remora/status.h"

namespace remora {

// Makes sure `dir` is a directory only this user (the effective uid) or
// root can write: creates it with `mode` if it is missing (its parent must
// exist), and refuses a symbolic link, another user's directory, or one
// that its group or others can write. `mode` is applied exactly (the umask
// does not weaken or widen it) when the directory is created.
Status EnsurePrivateDir(const std::string& dir, mode_t mode = 0700);

// Where this user's daemons keep sockets and generated secrets:
// $XDG_RUNTIME_DIR (the user's own 0700 directory, shared with other
// software: *shared_dir is set and names in it should carry a "remora-"
// prefix) if set, else /run/remora for root, else /tmp/remora-UID. The
// directory is created 0700 if missing and verified by EnsurePrivateDir on
// every call: one someone else made there first is refused, never used.
Status PrivateRuntimeDir(std::string* dir, bool* shared_dir);

}  // namespace remora
