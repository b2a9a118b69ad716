// Human sizes on the command line and in config files: "4096", "64K", "256M",
// "2G", "1.5G", "64MiB". Powers of 1024.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "remora/status.h"

namespace remora {

Status ParseSize(std::string_view text, std::uint64_t* bytes);
std::string FormatSize(std::uint64_t bytes);  // "256 MiB", "4 KiB", "1.5 GiB"

}  // namespace remora
