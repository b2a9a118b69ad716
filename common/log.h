// Logging: spdlog to stderr with a "remora" prefix and a process-wide level.
#pragma once

#include <string>

namespace remora {

// level: trace | debug | info | warn | error | off. Unknown levels mean info.
void SetupLogging(const std::string& level);

}  // namespace remora
