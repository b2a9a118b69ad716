#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace remora {

void SetupLogging(const std::string& level) {
  static bool installed = false;
  if (!installed) {
    auto logger = spdlog::stderr_color_mt("remora");
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n %P] [%^%l%$] %v");
    spdlog::set_default_logger(logger);
    installed = true;
  }
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") lvl = spdlog::level::info;
  spdlog::set_level(lvl);
}

}  // namespace remora
