#include "processor/runtime/fault_trace.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>

namespace remora {

Status FaultTrace::Open(const std::string& path, std::unique_ptr<FaultTrace>* out) {
  std::FILE* f = std::fopen(path.c_str(), "we");
  if (f == nullptr) {
    return {Code::kInvalidArgument,
            "cannot write the fault trace " + path + ": " + std::strerror(errno)};
  }
  // Faults come at hundreds of thousands per second: write in large blocks.
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  out->reset(new FaultTrace(f));
  return Status::Ok();
}

FaultTrace::~FaultTrace() {
  if (std::fclose(f_) != 0 || failed_)
    spdlog::error("fault trace: write failed; the trace is incomplete");
}

void FaultTrace::Record(bool write, Asid asid, std::uint64_t page) {
  MutexLock lk(mu_);
  if (std::fprintf(f_, "%c %" PRIx64 " %" PRIu64 "\n", write ? 'w' : 'r', page,
                   static_cast<std::uint64_t>(asid)) < 0) {
    failed_ = true;
  }
}

}  // namespace remora
