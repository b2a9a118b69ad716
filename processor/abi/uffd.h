// userfaultfd: the constants Debian's 6.1 headers lack and thin wrappers over
// the ioctls the runtime uses. Header-only and free of other Remora
// dependencies, because the shim (loaded into every program) uses it too.
//
// What the runtime relies on (measured on 6.1 and 6.18 kernels):
//  * A process holding another process's uffd can UFFDIO_COPY and
//    UFFDIO_WRITEPROTECT in that process's memory: the uffd carries its mm.
//    It cannot drop a page there (no cross-process MADV_DONTNEED, and
//    cross-process UFFDIO_MOVE is EINVAL), which is why the shim has an agent
//    thread that zaps pages on the manager's request.
//  * If the last reference to a uffd closes, pending and future faults are
//    silently resolved with zero pages. The shim therefore keeps its own
//    descriptor for the life of the program.
//  * Synchronous write-protect (UFFDIO_REGISTER_MODE_WP without WP_ASYNC) is
//    what lets eviction freeze a page: after UFFDIO_WRITEPROTECT returns, a
//    writer blocks in the kernel until the manager answers. WP_ASYNC cannot
//    freeze writers, so the runtime does not use it.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

// Linux 5.18: the fault message carries the faulting byte, not its page.
#ifndef UFFD_FEATURE_EXACT_ADDRESS
#define UFFD_FEATURE_EXACT_ADDRESS (1 << 11)
#endif

namespace remora::uffd {

// UFFDIO_COPY and UFFDIO_WRITEPROTECT fail with EAGAIN while the address
// space is changing under an event the handler has not read yet — in
// practice a fork between the kernel's copy of the page tables and the
// manager reading the FORK event, a few microseconds to a few
// milliseconds. The operation is simply retried; after this long the
// error is returned.
constexpr long kChangingRetryNs = 10'000'000'000;  // 10 s

// Sleeps a little before the attempt after `*waited_ns`; false once the
// retry budget is spent.
inline bool BackOff(long* waited_ns) {
  if (*waited_ns >= kChangingRetryNs) return false;
  const long step = *waited_ns < 1'000'000 ? 20'000 : 1'000'000;  // 20 us, then 1 ms
  timespec ts{0, step};
  ::nanosleep(&ts, nullptr);
  *waited_ns += step;
  return true;
}

// Opens a userfaultfd (close-on-exec, non-blocking so poll() works on it).
// Returns -1 with errno set on failure.
inline int Open() { return static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)); }

// UFFDIO_API handshake asking for `wanted` features; *available receives
// what the kernel offers. 0 or an errno.
inline int Api(int fd, std::uint64_t wanted, std::uint64_t* available) {
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = wanted;
  if (::ioctl(fd, UFFDIO_API, &api) != 0) return errno;
  if (available) *available = api.features;
  return 0;
}

// Registers [start, start+len) for missing and write-protect faults.
inline int Register(int fd, std::uint64_t start, std::uint64_t len) {
  uffdio_register reg{};
  reg.range.start = start;
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return errno;
  if ((reg.ioctls & (std::uint64_t{1} << _UFFDIO_WRITEPROTECT)) == 0) return EOPNOTSUPP;
  return 0;
}

// Installs the pages copied from `src` at [dst, dst+len) and wakes the
// threads waiting on them. write_protect: install them write-protected
// (clean-page tracking). On an error *copied (if given) says how many bytes
// went in before it: the page at dst + *copied is the one that failed
// (EEXIST: something is mapped there already).
inline int Copy(int fd, std::uint64_t dst, const void* src, std::uint64_t len, bool write_protect,
                std::uint64_t* copied = nullptr) {
  long waited = 0;
  std::uint64_t done = 0;
  for (;;) {
    uffdio_copy c{};
    c.dst = dst + done;
    c.src = reinterpret_cast<std::uint64_t>(src) + done;
    c.len = len - done;
    c.mode = write_protect ? UFFDIO_COPY_MODE_WP : 0;
    if (::ioctl(fd, UFFDIO_COPY, &c) == 0) {
      if (copied) *copied = len;
      return 0;
    }
    const int e = errno;
    if (c.copy > 0) {
      // Part went in: the kernel reports the rest as EAGAIN; go on from
      // there (a real error shows on the next call, at its page).
      done += static_cast<std::uint64_t>(c.copy);
      continue;
    }
    if (e != EAGAIN || !BackOff(&waited)) {
      if (copied) *copied = done;
      return e;
    }
  }
}

// Sets (protect) or clears write protection on present pages; clearing also
// wakes writers blocked on them.
inline int WriteProtect(int fd, std::uint64_t start, std::uint64_t len, bool protect) {
  long waited = 0;
  for (;;) {
    uffdio_writeprotect wp{};
    wp.range.start = start;
    wp.range.len = len;
    wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
    if (::ioctl(fd, UFFDIO_WRITEPROTECT, &wp) == 0) return 0;
    if (errno != EAGAIN || !BackOff(&waited)) return errno;
  }
}

// Wakes threads waiting on [start, start+len) so they retry their access.
inline int Wake(int fd, std::uint64_t start, std::uint64_t len) {
  uffdio_range r{};
  r.start = start;
  r.len = len;
  if (::ioctl(fd, UFFDIO_WAKE, &r) != 0) return errno;
  return 0;
}

}  // namespace remora::uffd
