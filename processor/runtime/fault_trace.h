// A record of the faults a processor manager serves, one line per fault in
// the trace format of `remora sim` (processor/sim/trace_reader.h):
//
//   r|w HEXADDR ASID
//
// `w` for a write fault (a missing fault on a write, or a write-protect
// fault), `r` otherwise. Accesses to resident pages never reach the manager,
// so this is the program's page reference string as filtered by the pcache
// it ran with: replaying it with `remora sim` at that capacity or larger
// estimates the misses of bigger pcaches (exactly so for LRU, by the
// inclusion property of fully associative LRU caches).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "common/mutex.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora {

class FaultTrace {
 public:
  // Creates (truncates) `path`.
  static Status Open(const std::string& path, std::unique_ptr<FaultTrace>* out);
  ~FaultTrace();  // flushes

  FaultTrace(const FaultTrace&) = delete;
  FaultTrace& operator=(const FaultTrace&) = delete;

  // Safe from any thread; lines of concurrent faults do not interleave.
  void Record(bool write, Asid asid, std::uint64_t page);

 private:
  explicit FaultTrace(std::FILE* f) : f_(f) {}

  // A leaf lock, held across the buffered write of one line.
  Mutex mu_;
  std::FILE* f_ PT_GUARDED_BY(mu_);
  bool failed_ GUARDED_BY(mu_) = false;
};

}  // namespace remora
