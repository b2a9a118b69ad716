#include "memory-node/space_errors.h"

#include <string>

namespace remora {

Status CheckRangeArgs(std::uint64_t start, std::uint64_t len) {
  if (!PageAligned(start) || !PageAligned(len) || len == 0)
    return {Code::kBadRequest, "range start and length must be page aligned and non-empty"};
  if (start + len < start) return {Code::kBadRequest, "range wraps around the address space"};
  return Status::Ok();
}

Status NoSuchSpace(Asid asid) {
  return {Code::kNoSuchSpace, "no address space " + std::to_string(asid)};
}

Status SpaceExists(Asid asid) {
  return {Code::kSpaceExists, "address space " + std::to_string(asid) + " exists"};
}

}  // namespace remora
