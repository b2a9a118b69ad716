// The interposed memory calls: mmap, munmap, mremap, madvise.
//
// Order matters for data integrity. A range is registered with the uffd
// before the manager hears of it and before its address is returned, so its
// first touch already faults to the manager. The manager hears that memory
// goes away *before* it goes (munmap, MADV_DONTNEED, MAP_FIXED over it): it
// drops the pages and waits for zaps it still has queued there, so no zap
// meant for old memory can land on whatever is mapped at that address next.
// The control lock is held across the notification and the system call, so
// a concurrent mmap cannot reuse the address in between.
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>

#include "processor/abi/uffd.h"
#include "processor/shim/shim.h"
#include "processor/shim/shim_ranges.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

namespace remora::shim {
namespace {

class ControlLock {
 public:
  ControlLock() { LockControl(); }
  ~ControlLock() { UnlockControl(); }
};

// Tells the manager that [start, start+len) is about to go (op kUnmap or
// kDiscard), if any of it is registered. Requires the control lock.
void NotifyGoing(rt::Op op, std::uint64_t start, std::uint64_t len) {
  if (len == 0 || !Ranges().Overlaps(start, start + len)) return;
  rt::Request req;
  req.op = op;
  req.start = start;
  req.len = len;
  if (Call(req) != 0) {
    // The manager's reason (the memory node lost, say) says more than ours.
    Fatal(*ReplyText() != '\0' ? ReplyText() : "the processor manager failed to release memory");
  }
  if (op == rt::Op::kUnmap) Ranges().Remove(start, start + len);
}

bool Manageable(int flags, int prot, bool file) {
  if ((flags & MAP_TYPE) != MAP_PRIVATE) return false;  // shared: no single owner
  if (flags & (MAP_HUGETLB | MAP_GROWSDOWN | MAP_STACK)) return false;
  if (file && (prot & PROT_EXEC)) return false;  // code: the page cache serves it
  return true;
}

// Registers a fresh private anonymous mapping (a converted file mapping if
// file_fd >= 0) and announces it. False if it must stay local.
bool Manage(std::uint64_t start, std::uint64_t len, int prot, int file_fd, long offset) {
  if (uffd::Register(Uffd(), start, len) != 0) return false;
  rt::Request req;
  req.op = rt::Op::kMap;
  req.start = start;
  req.len = len;
  if (file_fd >= 0) {
    req.flags = rt::kMapFile;
    req.file_offset = static_cast<std::uint64_t>(offset);
  }
  bool ok = Call(req, file_fd) == 0;
  if (ok && !Ranges().Add(start, start + len, prot)) {
    // Our table is full: the manager recorded the range; take it back.
    rt::Request un;
    un.op = rt::Op::kUnmap;
    un.start = start;
    un.len = len;
    (void)Call(un);
    ok = false;
  }
  if (!ok) {  // keep the memory local
    uffdio_range r{start, len};
    (void)ioctl(Uffd(), UFFDIO_UNREGISTER, &r);
    return false;
  }
  return true;
}

void* DoMmap(void* addr, std::size_t len, int prot, int flags, int fd, long off) {
  if (!Active()) BeforeFirstMmap();
  if (!Active() || len == 0) return RawMmap(addr, len, prot, flags, fd, off);
  const bool file = (flags & MAP_ANONYMOUS) == 0;
  const std::uint64_t rlen = PageUp(len);
  ControlLock lock;
  const bool fixed = (flags & MAP_FIXED) != 0;
  if (fixed) NotifyGoing(rt::Op::kUnmap, reinterpret_cast<std::uint64_t>(addr), rlen);
  if (!Manageable(flags, prot, file)) return RawMmap(addr, len, prot, flags, fd, off);

  // Pages must not be populated before registration: they would be local
  // zero (or file) pages the manager never sees.
  const int anon_flags = (flags & ~MAP_POPULATE) | MAP_ANONYMOUS;
  void* p;
  if (file) {
    // Map the file first: that checks the descriptor, its mode and the
    // offset exactly as the program expects. Then put anonymous memory in
    // its place, to be filled from the file on first touch.
    p = RawMmap(addr, len, prot, flags & ~MAP_POPULATE, fd, off);
    if (p == MAP_FAILED) return p;
    if (RawMmap(p, len, prot, anon_flags | MAP_FIXED, -1, 0) == MAP_FAILED) return p;
  } else {
    p = RawMmap(addr, len, prot, anon_flags, -1, 0);
    if (p == MAP_FAILED) return p;
  }
  const std::uint64_t start = reinterpret_cast<std::uint64_t>(p);
  if (!Manage(start, rlen, prot, file ? fd : -1, off) && file) {
    // Could not manage it: give the program its real file mapping back.
    return RawMmap(p, len, prot, (flags & ~MAP_FIXED_NOREPLACE) | MAP_FIXED, fd, off);
  }
  return p;
}

}  // namespace
}  // namespace remora::shim

using namespace remora;
using namespace remora::shim;

extern "C" {

void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return DoMmap(addr, len, prot, flags, fd, off);
}
void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return DoMmap(addr, len, prot, flags, fd, off);
}

int munmap(void* addr, size_t len) {
  if (!Active()) return RawMunmap(addr, len);
  ControlLock lock;
  NotifyGoing(rt::Op::kUnmap, reinterpret_cast<std::uint64_t>(addr), PageUp(len));
  return RawMunmap(addr, len);
}

int madvise(void* addr, size_t len, int advice) {
  const bool drops = advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
                     advice == MADV_DONTNEED_LOCKED;
  if (!Active() || !drops) return RawMadvise(addr, len, advice);
  ControlLock lock;
  const std::uint64_t start = reinterpret_cast<std::uint64_t>(addr);
  if (!Ranges().Overlaps(start, start + PageUp(len))) return RawMadvise(addr, len, advice);
  NotifyGoing(rt::Op::kDiscard, start, PageUp(len));
  // MADV_FREE's pages may later read old data or zero; the manager has
  // already dropped them, so make it zero now.
  return RawMadvise(addr, len, advice == MADV_FREE ? MADV_DONTNEED : advice);
}

// mremap of managed memory. Shrinking drops the tail; growing in place keeps
// the range's registration (the kernel extends the registered mapping) and
// announces the new part; moving copies into a fresh managed mapping, because
// the manager keys pages by address and the kernel would move them behind
// its back. Copying costs a pass over the data; programs that mremap large
// managed ranges often should expect that.
void* mremap(void* old_addr, size_t old_len, size_t new_len, int flags, ...) {
  void* new_addr = nullptr;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    new_addr = va_arg(ap, void*);
    va_end(ap);
  }
  if (!Active()) return RawMremap(old_addr, old_len, new_len, flags, new_addr);
  const std::uint64_t old_start = reinterpret_cast<std::uint64_t>(old_addr);
  int prot;
  {
    ControlLock lock;
    const ShimRange* r = Ranges().Find(old_start);
    if (r == nullptr || old_len == 0) {
      if (flags & MREMAP_FIXED)
        NotifyGoing(rt::Op::kUnmap, reinterpret_cast<std::uint64_t>(new_addr), PageUp(new_len));
      return RawMremap(old_addr, old_len, new_len, flags, new_addr);
    }
    prot = r->prot;
    const std::uint64_t old_rlen = PageUp(old_len), new_rlen = PageUp(new_len);
    if (!(flags & MREMAP_FIXED) && new_rlen <= old_rlen) {
      NotifyGoing(rt::Op::kUnmap, old_start + new_rlen, old_rlen - new_rlen);
      return RawMremap(old_addr, old_len, new_len, 0, nullptr);
    }
    if (!(flags & MREMAP_FIXED) && r->end == old_start + old_rlen) {
      void* p = RawMremap(old_addr, old_len, new_len, 0, nullptr);  // in place only
      if (p != MAP_FAILED) {
        rt::Request req;
        req.op = rt::Op::kMap;
        req.start = old_start + old_rlen;
        req.len = new_rlen - old_rlen;
        if (Call(req) != 0 || !Ranges().Add(req.start, req.start + req.len, prot))
          Fatal("the processor manager refused a grown mapping");
        return p;
      }
    }
  }
  if (!(flags & MREMAP_MAYMOVE)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  int mflags = MAP_PRIVATE | MAP_ANONYMOUS | ((flags & MREMAP_FIXED) ? MAP_FIXED : 0);
  void* p = DoMmap(new_addr, new_len, prot | PROT_READ | PROT_WRITE, mflags, -1, 0);
  if (p == MAP_FAILED) return p;
  memcpy(p, old_addr, old_len < new_len ? old_len : new_len);
  if ((prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE)) mprotect(p, new_len, prot);
  munmap(old_addr, old_len);
  return p;
}

}  // extern "C"
