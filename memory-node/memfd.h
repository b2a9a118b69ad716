// Memfd files the memory node shares with processors on the same machine.
#pragma once

#include <cstdint>
#include <string>

#include "remora/status.h"

namespace remora {

struct SharedFile {
  int fd = -1;           // read-write, for the memory node
  int ro_fd = -1;        // read-only, handed to processors
  char* base = nullptr;  // the memory node's read-write MAP_SHARED mapping
  std::uint64_t bytes = 0;
};

// Creates a sparse memfd of `bytes` (no memory until pages are touched), seals
// its size, maps it read-write, and opens a read-only descriptor of the same
// file. A processor given the read-only descriptor can map it only PROT_READ
// and cannot resize it, so it can never corrupt the memory node's data.
// (Without /proc the read-only reopening is impossible; then ro_fd is -1, a
// warning is logged, and the node offers no shared memory.)
Status CreateSharedFile(const std::string& name, std::uint64_t bytes, SharedFile* out);
// Unmaps and closes; safe on a default-constructed or failed SharedFile.
void DestroySharedFile(SharedFile* f);

}  // namespace remora
