// Serving one userfaultfd fault of a program: the heart of the runtime.
//
// Missing fault (the page is not in the program's page table):
//   Fill() a pcache line for (asid, page) — evicting the set's LRU line if
//   the set is full — then load the data: the victim cache first, then the
//   memory node if the page was ever written back, then the file of a
//   private file mapping, else zeros with no round trip at all. Install it
//   with UFFDIO_COPY, which also wakes the faulting threads: write-protected
//   if clean (so the first write is seen), writable if the fault was a write
//   or the data is newer than the memory node's.
//
// Write-protect fault (first write to a clean page): pin the line, mark it
// dirty, lift the protection (which wakes the writer). After a fork the line
// may be shared: if another process still maps it, the writer gets a line
// of its own (COW: its rmap moves to a new line in the same set; the kernel
// copies the page itself when the write is retried); if the writer is the
// last mapper it simply keeps the line (reuse). If the line is gone —
// it was being evicted when the program wrote — the write is served like a
// missing fault once the eviction's zap has landed
// (nr_pgfault_due_to_concurrent_eviction).
//
// Concurrent faults on one page resolve once: the pcache's line lock makes
// the second fault wait for the first fill, which finds the line resident and
// only wakes its thread.
#pragma once

#include <cstdint>

#include "processor/runtime/vma_table.h"
#include "remora/status.h"

namespace remora {

class ProcessorManager;
class ProcessSession;

// `flags` are the uffd_msg pagefault flags. An error means the program
// cannot go on (the memory node is unreachable, ...).
// `vma` is the managed range the address is in (the caller holds the
// session's fault gate, so it stays).
Status HandleFault(ProcessorManager& manager, ProcessSession& session, std::uint64_t address,
                   std::uint64_t flags, const Vma& vma);

}  // namespace remora
