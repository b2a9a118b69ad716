// Fuzzes the memory node's TOML configuration loader with arbitrary file
// contents. Oracle: whatever it accepts is within the documented ranges.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "memory-node/config.h"

using namespace remora;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = memfd_create("config", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  std::size_t off = 0;
  while (off < size) {
    ssize_t n = write(fd, data + off, size - off);
    if (n <= 0) std::abort();
    off += static_cast<std::size_t>(n);
  }
  MemoryNodeConfig c;
  Status st = LoadMemoryNodeConfig("/proc/self/fd/" + std::to_string(fd), &c);
  close(fd);
  if (st.ok()) {
    if (c.transport != "tcp" && c.transport != "rdma") std::abort();
    if (c.auth_timeout_ms < 1 || c.lease_ms < 0 || c.max_unauthenticated < 1) std::abort();
    if (c.rdma_port < 1 || c.rdma_port > 255 || c.rdma_gid_index < -1) std::abort();
    if (c.reply_budget_bytes < (std::uint64_t{4} << 20)) std::abort();
  }
  return 0;
}
