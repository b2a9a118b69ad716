// A real memory node inside the fuzzing process: PageStore, MemoryNodeService
// and StreamServer on a unix socket, served by a thread of its own from the
// first use until the process exits. Fuzz targets connect to it like a
// processor would, so every input goes through the same bytes-to-effects
// path as on a live node (framing, frame tags, handshake, dispatch).
#pragma once

#include <cstdint>
#include <string>

#include "remora/types.h"

namespace remora::fuzz {

class MemnodeUnderFuzz {
 public:
  static MemnodeUnderFuzz& Get();
  // A connected, blocking unix socket to the node (the caller closes it).
  int Connect() const;
  const std::string& secret() const { return secret_; }
  static constexpr NodeId kNodeId = 77;  // the memory node's own id

 private:
  MemnodeUnderFuzz() = default;
  void Start();
  std::string secret_ = "fuzzing-cluster-secret-0123456789abcdef";
  std::string path_;
};

// Full reads and writes with a deadline on a blocking socket; false on EOF,
// error or timeout.
bool WriteAll(int fd, const void* data, std::size_t len);
bool ReadAll(int fd, void* data, std::size_t len, int timeout_ms);

}  // namespace remora::fuzz
