// The gauge of what stays local: resident anonymous memory of a program
// outside its managed ranges (docs/runtime.md, "What stays local").
//
// Managed ranges are the VMAs registered with the program's userfaultfd
// (the kernel splits VMAs at registration boundaries and flags them "um" in
// /proc/PID/smaps); everything else that is anonymous and resident — thread
// stacks, the loader's and libraries' own data, brk memory — counts here.
// Each session's control thread samples its program every
// kLocalMemorySamplePeriod while it runs; the manager's gauges add the
// samples up (unmanaged_anon_bytes) and keep the largest one
// (unmanaged_anon_peak_bytes).
//
// Reading smaps walks every VMA's page tables (milliseconds for a Python
// process), so a program that sleeps must not pay for it ten times a
// second: while neither the sample nor the node's fault count moves, the
// period doubles up to kLocalMemoryIdleSamplePeriod, and it drops back to
// kLocalMemorySamplePeriod at the first change.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>

namespace remora {

inline constexpr std::chrono::milliseconds kLocalMemorySamplePeriod{100};
inline constexpr std::chrono::milliseconds kLocalMemoryIdleSamplePeriod{3200};

// Resident anonymous bytes of process pid in VMAs not registered with a
// userfaultfd, read from /proc/pid/smaps. -1 if the process is gone.
std::int64_t UnmanagedAnonBytes(pid_t pid);

}  // namespace remora
