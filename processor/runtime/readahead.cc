#include "processor/runtime/readahead.h"

#include <algorithm>
#include <cstdint>

#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"

namespace remora {
namespace {

// Pages read ahead with one zap wait, one read and one install at most.
constexpr std::uint32_t kReadaheadBatch = kFillRunMax;

// How many strides a walk is looked ahead. Measured on the Phoenix-shaped
// matmul (N = 800, two threads) under a quarter-size pcache (32 sets x 29
// ways), everything on one CPU: about 140 rows of the product per 10 s
// with 8 or 16, 100 to 135 with 64, 44 with none (the walk detected but
// only sequential read-ahead kept off it). The further ahead, the more of
// a set the walk's guesses take while the program still needs what they
// evict.
constexpr std::uint32_t kWalkWindow = 16;

// A strided walk with gaps (stride_walks.h): the thread's misses are whole
// strides apart, and the pages between them are the walk's hits. Up to
// `window` strides ahead of the faulting byte, a page still resident is
// marked used — the access information fill-order replacement lacks, so
// that the lines its set gives up are ones the walk has left behind — and
// a page not resident is read ahead, a run of one each, where its set's
// policy inserts, write-protected and clean even after a write fault (a
// guess is not a write). The walk-ahead ends at the edge of the fault's vma.
// While the program's PrefetchAccuracy backs off, pages are marked but
// none is read.
void WalkAhead(const Fault& fault, std::uint32_t window) {
  Fault vmf = fault;
  vmf.write = false;
  ProcessorManager& m = vmf.manager;
  ProcessSession& s = vmf.session;
  Pcache* pcache = m.pcache();
  const bool read = s.stride_accuracy.Allow();
  if (!read) m.counters().readahead_stride_backoff->Inc();
  std::uint64_t previous = vmf.key.uva;
  std::uint64_t at = vmf.address;
  for (std::uint32_t i = 1; i <= window && !s.dead(); ++i) {
    at += static_cast<std::uint64_t>(vmf.walk);  // wraps for a walk downwards
    if (at < vmf.vma.start || at >= vmf.vma.end) break;
    const std::uint64_t page = PageDown(at);
    if (page == previous) continue;
    previous = page;
    const PageKey key{s.asid(), page};
    if (pcache->Touch(key)) {
      m.counters().readahead_stride_touched->Inc();
      continue;
    }
    if (!read) continue;
    FillResult fr;
    if (!pcache->Fill(key, &fr, FillIntent::kReadahead).ok()) break;
    if (!fr.allocated) continue;
    if (!FillRun(vmf, page, &fr.line, 1).ok()) break;
    s.stride_accuracy.Issued(page);
    m.counters().readahead_pages->Inc();
    m.counters().readahead_stride_pages->Inc();
  }
}

}  // namespace

// Lines are allocated in ascending address order, like write-protect
// fault-around's (fault.cc), and a run never holds two lines of one set:
// a batch is at most one page per set.
void Readahead(const Fault& vmf) {
  ProcessorManager& m = vmf.manager;
  ProcessSession& s = vmf.session;
  const std::uint64_t page = vmf.key.uva;
  const std::uint32_t max = m.options().readahead_max;
  if (max == 0) return;
  Pcache* pcache = m.pcache();
  // This miss may be on a page a walk read ahead that was evicted unused.
  if (vmf.tid != 0 && m.options().readahead_stride && s.stride_accuracy.Missed(page))
    m.counters().readahead_stride_wasted->Inc();
  // Sequential runs, any number at once. Together their windows take at
  // most a quarter of the pcache.
  bool extends = false;
  const std::uint32_t window =
      s.sequential_misses.OnAccess(page, max, pcache->geometry().nr_lines() / 4, &extends);
  // A miss that continues a sequential run is the run's, even when the
  // thread's misses also look like a strided walk: a scan's misses are one
  // read-ahead window apart, a constant number of pages. A miss of a walk
  // that merely opens a run (a stride of one and a half pages is one page
  // every other step) is the walk's: sequential windows along a column
  // would evict most of it.
  if (vmf.walk != 0 && !extends) {
    // The walk's path is what its coming hits are on, on this column and the
    // next: eviction spares it (walk_paths.h).
    pcache->NoteWalk(s.asid(), static_cast<std::uint32_t>(vmf.tid), vmf.address, vmf.walk);
    WalkAhead(vmf, std::min(max, kWalkWindow));
    return;
  }
  if (window == 0) return;
  const std::uint32_t batch = std::max<std::uint32_t>(
      1, std::min<std::uint32_t>(kReadaheadBatch, pcache->geometry().nr_sets()));
  const std::uint64_t stop = std::min(page + (window + 1) * kPageSize, vmf.vma.end);
  for (std::uint64_t next = page + kPageSize; next < stop && !s.dead();) {
    LineId lines[kReadaheadBatch];
    std::uint32_t n = 0;
    bool failed = false;
    while (n < batch && next + n * kPageSize < stop) {
      const PageKey key{s.asid(), next + n * kPageSize};
      if (pcache->Lookup(key)) break;
      FillResult fr;
      if (!pcache->Fill(key, &fr, FillIntent::kReadahead).ok()) {
        failed = true;
        break;
      }
      if (!fr.allocated) break;
      lines[n++] = fr.line;
    }
    if (n > 0) {
      if (!FillRun(vmf, next, lines, n).ok()) break;
      m.counters().readahead_pages->Add(n);
      next += n * kPageSize;
    } else {
      next += kPageSize;  // resident already: step over it
    }
    if (failed) break;
  }
  // The pages read ahead were not misses: the next sequential miss is the
  // one just past the window.
  s.sequential_misses.Advance(page, page + window * kPageSize);
}

}  // namespace remora
