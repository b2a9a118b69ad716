#include "processor/runtime/local_memory.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"

namespace remora {
namespace {

// A VMA's flags line ("VmFlags: rd wr mr mw me ac um uw") names
// userfaultfd's missing-page tracking "um".
bool Registered(const char* vmflags) {
  for (const char* p = vmflags; (p = std::strstr(p, " um")) != nullptr; p += 3) {
    if (p[3] == ' ' || p[3] == '\n' || p[3] == '\0') return true;
  }
  return false;
}

}  // namespace

std::int64_t UnmanagedAnonBytes(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/smaps", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "re");
  if (f == nullptr) return -1;
  // Two of a VMA's ~25 lines matter; the rest are skipped on their first
  // bytes (a sscanf per line cost more than the kernel's walk).
  std::int64_t total = 0, vma_anon = 0;
  char line[512];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "Anonymous:", 10) == 0) {
      vma_anon = std::strtoll(line + 10, nullptr, 10) * 1024;
    } else if (std::strncmp(line, "VmFlags:", 8) == 0) {  // the last line of a VMA
      if (!Registered(line + 8)) total += vma_anon;
      vma_anon = 0;
    }
  }
  std::fclose(f);
  return total;
}

bool ProcessSession::SampleLocalMemory() {
  const pid_t p = pid();
  if (p <= 0) return true;  // a forked child before ForkDone: look again soon
  const std::int64_t bytes = UnmanagedAnonBytes(p);
  if (bytes < 0) return true;  // exiting
  RuntimeCounters& c = manager_->counters();
  const bool changed = bytes != unmanaged_anon_reported_;
  c.unmanaged_anon_bytes->Add(bytes - unmanaged_anon_reported_);
  unmanaged_anon_reported_ = bytes;
  c.NoteUnmanagedAnon(bytes);
  return changed;
}

void ProcessSession::ForgetLocalMemory() {
  manager_->counters().unmanaged_anon_bytes->Sub(unmanaged_anon_reported_);
  unmanaged_anon_reported_ = 0;
}

}  // namespace remora
