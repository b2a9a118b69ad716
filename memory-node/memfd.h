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
// file. (Without /proc the read-only reopening is impossible; then ro_fd is
// -1, a warning is logged, and the node offers no shared memory.)
//
// A read-only descriptor alone does not protect the file: anyone holding it
// can open /proc/self/fd/N again for writing. Only SealSharedFile() makes
// the file unwritable for everybody but the mapping the node already has, so
// a file must be sealed before any descriptor of it leaves the process.
Status CreateSharedFile(const std::string& name, std::uint64_t bytes, SharedFile* out);
// Adds F_SEAL_FUTURE_WRITE (no new writable mapping, no write(2), no hole
// punching, by anyone) and F_SEAL_SEAL (no further seal changes). The node's
// own read-write mapping made at creation keeps working. Irreversible: a
// sealed file's freed pages can no longer be returned to the kernel.
Status SealSharedFile(const SharedFile& f);
// Unmaps and closes; safe on a default-constructed or failed SharedFile.
void DestroySharedFile(SharedFile* f);

}  // namespace remora
