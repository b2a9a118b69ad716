// Serving one userfaultfd fault of a program: the heart of the runtime.
//
// Missing fault (the page is not in the program's page table):
//   Fill() a pcache line for (asid, page) — evicting the set's LRU line if
//   the set is full — then fill it as a run of one page (FillRun): FillPlan
//   says where the data is — the victim cache, the memory node if it has a
//   copy, the file of a private file mapping, else zeros with no round trip
//   at all. Install it with UFFDIO_COPY, which also wakes the faulting
//   threads: write-protected if clean (so the first write is seen),
//   writable if the fault was a write or the data is newer than the memory
//   node's. A sequential miss then reads ahead (readahead.h) with the same
//   FillRun.
//
// Write-protect fault (first write to a clean page): pin the line, mark it
// dirty, lift the protection (which wakes the writer). After a fork the line
// may be shared: if another process still maps it, the writer gets a line
// of its own (COW: its rmap moves to a new line in the same set; the kernel
// copies the page itself when the write is retried); if the writer is the
// last mapper it simply keeps the line (reuse). If the line is gone —
// it was being evicted when the program wrote — the write is served like a
// missing fault once the eviction's zap has landed
// (nr_pgfault_due_to_concurrent_eviction). A sequential run of them
// un-protects the next resident pages too (write-protect fault-around).
//
// Concurrent faults on one page resolve once: the pcache's line lock makes
// the second fault wait for the first fill, which finds the line resident and
// only wakes its thread.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "processor/pcache/fill_plan.h"
#include "processor/pcache/geometry.h"
#include "processor/runtime/vma_table.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora {

class ProcessorManager;
class ProcessSession;

// One fault being served, like Linux's struct vm_fault: built once by
// HandleFault and handed down the fault path (fault.cc, readahead.cc).
struct Fault {
  ProcessorManager& manager;
  ProcessSession& session;
  // The managed range the page is in. The fault holds the session's fault
  // gate (ServeFault), so the range cannot go away meanwhile.
  const Vma& vma;
  PageKey key;          // the session's asid and the faulting page (page aligned)
  std::uint64_t flags;  // the uffd_msg pagefault flags
  // The faulting byte, when the kernel reports it exactly
  // (UFFD_FEATURE_EXACT_ADDRESS; else the page), and the faulting thread
  // (0 if not known): for the strided walks read-ahead follows.
  std::uint64_t address;
  pid_t tid;
  // A missing fault of a thread in a confirmed strided walk: the walk's
  // stride in bytes (stride_walks.h), else 0.
  std::int64_t walk;
  // The page is being written: it goes in writable and dirty. Set for a
  // write-protect fault, and for a missing fault the kernel reports as a
  // write.
  bool write;
};

// `flags` are the uffd_msg pagefault flags, `tid` the faulting thread (0:
// not known). An error means the program cannot go on (the memory node is
// unreachable, ...). `vma` is the managed range the address is in (the
// caller holds the session's fault gate, so it stays).
Status HandleFault(ProcessorManager& manager, ProcessSession& session, std::uint64_t address,
                   std::uint64_t flags, pid_t tid, const Vma& vma);

// The most pages one FillRun takes.
inline constexpr std::uint32_t kFillRunMax = FillPlan::kMaxPages;

// Fills a run of n (1..kFillRunMax) consecutive pages of vmf.vma from
// `first` into freshly allocated, locked lines and installs them: one zap
// wait, one read per stretch of pages from the same place (memory node,
// file), and one UFFDIO_COPY per stretch of pages installed alike
// (write-protected or not). Every line is completed or aborted on return.
// A missing fault is a run of one; read-ahead makes longer ones.
Status FillRun(const Fault& vmf, std::uint64_t first, const LineId* lines, std::uint32_t n);

}  // namespace remora
