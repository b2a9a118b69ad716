// Where a node's processor manager listens, and asking it for its stats.
#pragma once

#include <string>

#include "remora/status.h"

namespace remora::cli {

// $REMORA_PROCESSOR_SOCKET if set, else /run/remora/processor.sock for root
// and $XDG_RUNTIME_DIR/remora-processor.sock (or /tmp/...-UID) otherwise.
std::string DefaultProcessorSocket();

// True if a manager answers on `path`.
bool ProcessorListening(const std::string& path);

// The manager's snapshot as JSON text.
Status ProcessorStatsJson(const std::string& path, std::string* json);

}  // namespace remora::cli
