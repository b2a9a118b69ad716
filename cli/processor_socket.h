// Where a node's processor manager listens, and asking it for its stats.
#pragma once

#include <string>

#include "remora/status.h"

namespace remora::cli {

// $REMORA_PROCESSOR_SOCKET if set, else the socket in this user's private
// runtime directory (common/private_dir.h): /run/remora/processor.sock for
// root, $XDG_RUNTIME_DIR/remora-processor.sock, or a verified 0700
// /tmp/remora-UID/processor.sock; the directory is created if missing and
// refused if anyone else could write it.
Status DefaultProcessorSocket(std::string* path);

// True if a manager answers on `path`.
bool ProcessorListening(const std::string& path);

// The manager's snapshot as JSON text.
Status ProcessorStatsJson(const std::string& path, std::string* json);

}  // namespace remora::cli
