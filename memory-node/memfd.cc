#include "memory-node/memfd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace remora {

namespace {

Status Errno(const std::string& what) {
  return {Code::kIoError, what + ": " + std::strerror(errno)};
}

}  // namespace

Status CreateSharedFile(const std::string& name, std::uint64_t bytes, SharedFile* out) {
  SharedFile f;
  f.bytes = bytes;
  f.fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (f.fd < 0) return Errno("memfd_create " + name);
  if (ftruncate(f.fd, static_cast<off_t>(bytes)) != 0) {
    Status st = Errno("ftruncate " + name);
    DestroySharedFile(&f);
    return st;
  }
  // Sizes are fixed for the file's life: a mapping past EOF would SIGBUS.
  // F_SEAL_SEAL comes with SealSharedFile(), before a descriptor is shared.
  if (fcntl(f.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    Status st = Errno("sealing " + name);
    DestroySharedFile(&f);
    return st;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
  if (p == MAP_FAILED) {
    Status st = Errno("mmap " + name);
    DestroySharedFile(&f);
    return st;
  }
  f.base = static_cast<char*>(p);
  // A new open file description with read-only access to the same file.
  std::string self = "/proc/self/fd/" + std::to_string(f.fd);
  f.ro_fd = open(self.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.ro_fd < 0) {
    // Without /proc there is no other way to get a read-only description of
    // a memfd, and a writable one would let any local client corrupt every
    // stored page and the index the node itself reads. Offer no shared
    // memory then: kAttachShm is refused and clients use TCP.
    spdlog::warn(
        "memory node: cannot reopen {} read-only via {} ({}); the shared-memory "
        "transport is disabled, use TCP",
        name, self, std::strerror(errno));
  }
  *out = f;
  return Status::Ok();
}

Status SealSharedFile(const SharedFile& f) {
  if (fcntl(f.fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0)
    return Errno("sealing a shared file against writes");
  return Status::Ok();
}

void DestroySharedFile(SharedFile* f) {
  if (f->base) munmap(f->base, f->bytes);
  if (f->ro_fd >= 0) close(f->ro_fd);
  if (f->fd >= 0) close(f->fd);
  *f = SharedFile{};
}

}  // namespace remora
