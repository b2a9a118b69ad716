// The argument checks and errors every store of address spaces gives alike
// (the page store behind TCP and shared memory, the RDMA frame spaces), so a
// client sees the same code and text whichever transport it uses.
#pragma once

#include <cstdint>

#include "remora/status.h"
#include "remora/types.h"

namespace remora {

// A range must be page aligned, non-empty and must not wrap around.
Status CheckRangeArgs(std::uint64_t start, std::uint64_t len);
Status NoSuchSpace(Asid asid);
Status SpaceExists(Asid asid);

}  // namespace remora
