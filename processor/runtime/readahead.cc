#include "processor/runtime/readahead.h"

#include <algorithm>
#include <cstdint>

#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"

namespace remora {
namespace {

// Pages read ahead with one zap wait, one read and one install at most.
constexpr std::uint32_t kReadaheadBatch = kFillRunMax;

// A strided stream: its pages are not adjacent, so each goes in as a run of
// its own (one fill, one read, one install), at the back of its set (a
// strided guess is weaker than a sequential one: FillIntent). Pages outside
// the fault's vma or resident already are stepped over; the stream is
// advanced by the whole window either way, so its next miss is the one past
// it. While the program's PrefetchAccuracy backs off, nothing is read.
void StridedReadahead(const Fault& vmf, int slot, std::uint32_t window) {
  ProcessorManager& m = vmf.manager;
  ProcessSession& s = vmf.session;
  if (!s.stride_accuracy.Allow()) {
    m.counters().readahead_stride_backoff->Inc();
    return;
  }
  Pcache* pcache = m.pcache();
  std::uint64_t previous = vmf.key.uva;
  for (std::uint32_t i = 1; i <= window && !s.dead(); ++i) {
    const std::uint64_t page = s.miss_streams.Ahead(slot, i);
    // Two steps rounding down to one page (a stride under a page and a
    // half): read it once.
    if (page == previous || page < vmf.vma.start || page >= vmf.vma.end) continue;
    previous = page;
    const PageKey key{s.asid(), page};
    if (pcache->Lookup(key)) continue;
    FillResult fr;
    if (!pcache->Fill(key, &fr, FillIntent::kReadaheadCold).ok()) break;
    if (!fr.allocated) continue;
    if (!FillRun(vmf, page, &fr.line, 1).ok()) break;
    s.stride_accuracy.Issued(page);
    m.counters().readahead_pages->Inc();
    m.counters().readahead_stride_pages->Inc();
  }
  s.miss_streams.AdvanceSteps(slot, window);
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
  const bool strided = m.options().readahead_stride;
  int slot = 0;
  std::uint32_t window;
  if (strided) {
    // This miss may be on a page read ahead and evicted unused.
    if (s.stride_accuracy.Missed(page)) m.counters().readahead_stride_wasted->Inc();
    std::int64_t stride = 0;
    window = s.miss_streams.OnAccessStrided(page, max, &slot, &stride);
    if (window == 0) return;
    if (stride != static_cast<std::int64_t>(kPageSize)) {
      StridedReadahead(vmf, slot, window);
      return;
    }
  } else {
    // Sequential runs only: no stride estimation on every miss, and no
    // limit on how many are followed at once. Together their windows take
    // at most a quarter of the pcache.
    window = s.sequential_misses.OnAccess(page, max, pcache->geometry().nr_lines() / 4);
    if (window == 0) return;
  }
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
  if (strided)
    s.miss_streams.Advance(slot, page + window * kPageSize);
  else
    s.sequential_misses.Advance(page, page + window * kPageSize);
}

}  // namespace remora
