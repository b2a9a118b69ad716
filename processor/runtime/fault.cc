#include "processor/runtime/fault.h"

#include <linux/userfaultfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <shared_mutex>
#include <vector>

#include "processor/abi/uffd.h"
#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"
#include "processor/runtime/readahead.h"

namespace remora {
namespace {

alignas(kPageSize) const std::byte kZeroPage[kPageSize] = {};

bool ProcessGone(int e) { return e == ESRCH || e == ENOENT; }

// Reads `count` consecutive pages of a file mapping, starting at uva, into
// buf; past the end of the file reads as zeros.
Status ReadFilePages(const Vma& vma, std::uint64_t uva, std::size_t count, std::byte* buf) {
  const std::size_t len = count * kPageSize;
  std::size_t done = 0;
  const off_t off = static_cast<off_t>(vma.FileOffsetOf(uva));
  while (done < len) {
    ssize_t n = ::pread(vma.file->fd, buf + done, len - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return {Code::kIoError, std::string("reading a mapped file: ") + std::strerror(errno)};
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  std::memset(buf + done, 0, len - done);
  return Status::Ok();
}

// Whether the page being filled was evicted recently (the refault shadow).
// One that was dirty then is installed writable and dirty (*dirty set): it
// is about to be written again, and its write-protect fault is saved.
bool Refaulted(ProcessorManager& m, const PageKey& key, bool* dirty) {
  ShadowEntry was;
  if (!m.shadow().Refault(key, &was)) return false;
  if (was.reserve) {
    const std::uint32_t set = m.pcache()->geometry().SetIndex(key.uva);
    m.reclaimer().OnRefault(m.pcache()->SetEvictions(set) - was.set_eviction);
  }
  if (was.dirty && !*dirty) {
    *dirty = true;
    m.counters().refault_writable->Inc();
  }
  return true;
}

// Reads a stretch of `count` pages from the memory node into buf: a lone
// page (a missing fault's) with ReadPage, the cheapest request; more with
// one ReadPages.
Status ReadMemoryNodePages(ProcessorManager& m, Asid asid, std::uint64_t uva, std::uint32_t count,
                           std::byte* buf) {
  Status st;
  if (count == 1) {
    st = m.transport()->ReadPage(asid, uva, buf);
  } else {
    std::uint64_t uvas[kFillRunMax];
    for (std::uint32_t k = 0; k < count; ++k) uvas[k] = uva + k * kPageSize;
    st = m.transport()->ReadPages(asid, {uvas, count}, buf);
  }
  // A lost connection already names its node ("memory node at ..."); a
  // node's own error reply ("no such space") gets said whose it is.
  if (!st.ok() && st.message().rfind("memory node", 0) != 0)
    return {st.code(), "memory node: " + st.message()};
  return st;
}

}  // namespace

Status FillRun(const Fault& vmf, std::uint64_t first, const LineId* lines, std::uint32_t n) {
  ProcessorManager& m = vmf.manager;
  ProcessSession& s = vmf.session;
  Pcache* pcache = m.pcache();
  std::uint32_t installed = 0;  // lines [0, installed) are completed
  auto abort_rest = [&] {
    for (std::uint32_t i = installed; i < n; ++i) pcache->AbortFill(lines[i]);
  };
  // A zap from an earlier eviction of these pages must land before the new
  // pages are installed, or it would drop them.
  Status st = s.zaps().WaitClear(first, first + n * kPageSize, m.options().zap_timeout);
  if (!st.ok()) {
    if (s.dead()) m.counters().fill_owner_gone->Add(n);
    abort_rest();
    return s.dead() ? Status::Ok() : st;
  }
  // The run's pages, per fault thread (a fault's run and its read-ahead's
  // runs follow each other, never overlap).
  alignas(kPageSize) thread_local std::byte bufs[kFillRunMax * kPageSize];
  FillPlan plan;
  plan.Decide(m.victim(), {s.asid(), first}, n, bufs, vmf.vma.file != nullptr,
              [&s](std::uint64_t uva) { return s.HasRemoteCopy(uva); });
  // Victim pages are in bufs already; read the rest, a stretch at a time.
  const std::byte* data = bufs;
  for (const FillPlan::Stretch& x : plan.stretches()) {
    const std::uint64_t uva = first + x.first * kPageSize;
    std::byte* at = bufs + x.first * kPageSize;
    switch (x.source) {
      case FillSource::kMemoryNode:
        st = ReadMemoryNodePages(m, s.asid(), uva, x.count, at);
        break;
      case FillSource::kFile:
        st = ReadFilePages(vmf.vma, uva, x.count, at);
        break;
      case FillSource::kZeroFill:
        // A lone zero page goes in straight from the shared zero page.
        if (n == 1)
          data = kZeroPage;
        else
          std::memset(at, 0, x.count * kPageSize);
        break;
      case FillSource::kVictimCache:
      case FillSource::kCowBreak:  // never planned
        break;
    }
    if (!st.ok()) break;
  }
  if (!st.ok()) {
    abort_rest();
    return st;
  }
  bool dirty[kFillRunMax];
  bool refault[kFillRunMax];
  for (std::uint32_t i = 0; i < n; ++i) {
    dirty[i] = vmf.write || plan.dirty(i);
    refault[i] = Refaulted(m, {s.asid(), first + i * kPageSize}, &dirty[i]);
  }
  // The faulting page of a read miss goes in writable too if the program's
  // reads are being followed by writes (write_predictor.h). The line is new
  // and this process's alone (a fork waits for the fault gate), so it may
  // be mapped writable: it is marked dirty below, before anything can
  // evict it, and eviction write-protects it before copying it out.
  if (!vmf.write && vmf.key.uva >= first && vmf.key.uva < first + n * kPageSize) {
    const std::uint32_t k = static_cast<std::uint32_t>((vmf.key.uva - first) / kPageSize);
    if (!dirty[k]) {
      switch (s.write_predictor.Decide(vmf.key.uva)) {
        case WritePredictor::Install::kWritable:
          dirty[k] = true;
          m.counters().write_predicted->Inc();
          break;
        case WritePredictor::Install::kProbe:
          m.counters().write_probe->Inc();
          break;
        case WritePredictor::Install::kClean:
          break;
      }
    }
  }
  // Install: clean pages write-protected (their first write faults, which
  // is how a line becomes dirty), dirty ones writable.
  while (installed < n) {
    std::uint32_t j = installed + 1;
    while (j < n && dirty[j] == dirty[installed]) ++j;
    std::uint64_t copied = 0;
    const int e = uffd::Copy(s.uffd(), first + installed * kPageSize, data + installed * kPageSize,
                             (j - installed) * kPageSize,
                             /*write_protect=*/!dirty[installed], &copied);
    const std::uint32_t done = installed + static_cast<std::uint32_t>(copied / kPageSize);
    for (; installed < done; ++installed) {
      pcache->CompleteFill(lines[installed], plan.source(installed), dirty[installed]);
      if (!dirty[installed]) s.write_predictor.OnCleanInstall();
    }
    if (e == 0) continue;
    if (e == EEXIST) {
      // Something is mapped there already (memory touched before it was
      // registered). Its content is the program's: keep it, and treat it as
      // dirty so eviction saves it rather than dropping it.
      (void)uffd::Wake(s.uffd(), first + installed * kPageSize, kPageSize);
      pcache->CompleteFill(lines[installed], plan.source(installed), true);
      ++installed;
      continue;
    }
    // The program exited, or unmapped the range, while we filled it.
    const bool gone = ProcessGone(e) || s.dead();
    if (gone) m.counters().fill_owner_gone->Add(n - installed);
    abort_rest();
    if (gone) return Status::Ok();
    return {Code::kIoError, std::string("UFFDIO_COPY: ") + std::strerror(e)};
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    const PageKey key{s.asid(), first + i * kPageSize};
    if (refault[i] && pcache->MarkReferenced(key)) m.counters().refault_activate->Inc();
  }
  return Status::Ok();
}

namespace {

// Write-protect fault-around: a run of write-protect faults on consecutive
// pages (a sequential write pass over data that is resident, like Phoenix
// rewriting its input) un-protects the next resident clean pages too, with
// one ioctl, marking them dirty. Only lines that are resident, settled and
// clean are taken, in address order (line locks are taken in ascending
// order, so two fault-around runs cannot deadlock; fills hold one line lock
// and wait for none).
void WpFaultAround(const Fault& vmf) {
  ProcessorManager& m = vmf.manager;
  ProcessSession& s = vmf.session;
  const std::uint64_t page = vmf.key.uva;
  const std::uint32_t max = m.options().readahead_max;
  if (max == 0) return;
  const std::uint32_t window = s.wp_fault_around_streams.OnAccess(page, max);
  if (window == 0) return;
  Pcache* pcache = m.pcache();
  LineId held[256];
  std::uint32_t n = 0, reused = 0;
  for (std::uint32_t i = 1; i <= window && n < 256; ++i) {
    const PageKey key{s.asid(), page + i * kPageSize};
    LineId line;
    if (!pcache->Pin(key, &line)) break;
    pcache->Lock(line);
    // A line shared with another process needs a COW fault of its own.
    WriteOutcome w = WriteOutcome::kShared;
    if (pcache->Lookup(key) == line) w = pcache->OnWrite(line, key);
    if (w == WriteOutcome::kShared) {
      pcache->Unlock(line);
      pcache->Unpin(line);
      break;
    }
    if (w == WriteOutcome::kReused) ++reused;
    held[n++] = line;
  }
  if (n > 0) {
    (void)uffd::WriteProtect(s.uffd(), page + kPageSize, n * kPageSize, false);
    m.counters().write_ahead_pages->Add(n);
    if (reused > 0) m.counters().pgfault_wp_reuse->Add(reused);
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    pcache->Unlock(held[i]);
    pcache->Unpin(held[i]);
  }
  s.wp_fault_around_streams.Advance(page, page + window * kPageSize);
}

// The missing fault: a line for the page, filled as a run of one, then
// read-ahead.
Status MissingFault(const Fault& vmf) {
  ProcessorManager& m = vmf.manager;
  ProcessSession& s = vmf.session;
  const std::uint64_t page = vmf.key.uva;
  for (int attempt = 0;; ++attempt) {
    FillResult fr;
    Status st = m.pcache()->Fill(vmf.key, &fr);
    if (!st.ok()) return st;
    if (fr.allocated) {
      REMORA_RETURN_IF_ERROR(FillRun(vmf, page, &fr.line, 1));
      Readahead(vmf);
      return Status::Ok();
    }
    // Resident already: normally another fault on the same page filled it
    // while we waited, and the faulting thread only needs a wake-up.
    if (s.PagePresent(page) || attempt >= 2) {
      m.counters().pgfault_already_filled->Inc();
      int e = uffd::Wake(s.uffd(), page, kPageSize);
      if (e != 0 && !ProcessGone(e))
        return {Code::kIoError, std::string("UFFDIO_WAKE: ") + std::strerror(e)};
      return Status::Ok();
    }
    // The line is resident but the page is not: it was dropped behind our
    // back (the program discarded memory while touching it). Forget the
    // line and fill again.
    m.counters().pgfault_stale_line->Inc();
    m.pcache()->RemoveRmap(vmf.key);
  }
}

// COW: the writer's rmap leaves the shared line (pinned and locked by the
// caller, so it stays for the other mappers) for a new line in the same
// set. No data moves here: the page the writer maps is still the shared
// one, and the kernel copies it when the write is retried after the
// protection is lifted.
Status BreakCow(const Fault& vmf) {
  ProcessorManager& m = vmf.manager;
  Pcache* pcache = m.pcache();
  pcache->RemoveRmap(vmf.key);
  FillResult fr;
  Status st = pcache->Fill(vmf.key, &fr);
  if (!st.ok()) return st;
  // Not allocated: another thread of the writer faulted on the page
  // meanwhile and gave it a line (as a fill that found the page present).
  if (fr.allocated) pcache->CompleteFill(fr.line, FillSource::kCowBreak, /*dirty=*/true);
  m.counters().pgfault_wp_cow->Inc();
  return Status::Ok();
}

// OnWrite, after dropping the rmaps of mappers that have exited or exec'd
// but whose teardown has not reached this line yet: a parent writing right
// after waitpid() on its child is the line's only mapper (a reuse), not a
// COW against a process that is gone.
WriteOutcome SettleWrite(const Fault& vmf, LineId line) {
  ProcessorManager& m = vmf.manager;
  const PageKey& key = vmf.key;
  Pcache* pcache = m.pcache();
  const WriteOutcome w = pcache->OnWrite(line, key);
  if (w != WriteOutcome::kShared) return w;
  std::vector<Rmap> others;
  pcache->WalkRmaps(line, [&](const Rmap& r) {
    if (!(r == key)) others.push_back(r);
  });
  bool dropped = false;
  for (const Rmap& r : others) {
    std::shared_ptr<ProcessSession> o = m.FindSession(r.asid);
    if (o && !o->Departed()) continue;
    pcache->RemoveRmap(r);
    dropped = true;
  }
  return dropped ? pcache->OnWrite(line, key) : w;
}

Status WriteProtectFault(const Fault& vmf) {
  ProcessorManager& m = vmf.manager;
  ProcessSession& s = vmf.session;
  const std::uint64_t page = vmf.key.uva;
  RuntimeCounters& c = m.counters();
  ScopedLatency t(c.wp_fault_service_ns);
  LineId line;
  // The pin keeps eviction away between marking the line dirty and lifting
  // the protection: eviction write-protects and copies only idle lines.
  Pcache* pcache = m.pcache();
  if (pcache->Pin(vmf.key, &line)) {
    // A pin does not wait for a fill in progress. The page mapped right now
    // may still be the previous line's, evicted and waiting for its zap:
    // un-protecting it would let a write land in a page about to be
    // dropped. The line lock waits the fill out; then the mapped page is
    // this line's (or the fill failed and the line is not ours any more).
    pcache->Lock(line);
    const bool ours = pcache->Lookup(vmf.key) == line;
    Status st;
    bool shared = false;
    int e = 0;
    if (ours) {
      switch (SettleWrite(vmf, line)) {
        case WriteOutcome::kShared:
          shared = true;
          st = BreakCow(vmf);
          break;
        case WriteOutcome::kReused:
          c.pgfault_wp_reuse->Inc();
          break;
        case WriteOutcome::kDirtied:
          // A private clean line written: evidence for the write predictor.
          if (s.write_predictor.OnWriteAfterRead(page)) c.write_probe_written->Inc();
          break;
      }
      if (st.ok()) e = uffd::WriteProtect(s.uffd(), page, kPageSize, false);
    }
    pcache->Unlock(line);
    pcache->Unpin(line);
    if (!st.ok()) return st;
    if (e != 0 && !ProcessGone(e) && !s.dead())
      return {Code::kIoError, std::string("UFFDIO_WRITEPROTECT: ") + std::strerror(e)};
    if (ours) {
      if (!shared) WpFaultAround(vmf);
      return Status::Ok();
    }
  }
  // Evicted while the program was writing: its data is in the victim cache
  // (or on the memory node); serve the write as a missing fault.
  c.pgfault_concurrent_eviction->Inc();
  return MissingFault(vmf);
}

}  // namespace

Status HandleFault(ProcessorManager& m, ProcessSession& s, std::uint64_t address,
                   std::uint64_t flags, pid_t tid, const Vma& vma) {
  RuntimeCounters& c = m.counters();
  c.pgfault->Inc();
  const bool wp = (flags & UFFD_PAGEFAULT_FLAG_WP) != 0;
  // Every missing fault of a known thread tells its strided walk where it
  // is, before the fill (readahead.cc acts on it after).
  std::int64_t walk = 0;
  if (!wp && tid != 0 && m.options().readahead_stride && m.options().readahead_max > 0)
    walk = s.stride_walks.OnMiss(tid, address);
  const Fault vmf{m,
                  s,
                  vma,
                  {s.asid(), PageDown(address)},
                  flags,
                  address,
                  tid,
                  walk,
                  /*write=*/wp || (flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0};
  if (FaultTrace* trace = m.fault_trace()) trace->Record(vmf.write, s.asid(), vmf.key.uva);
  if (wp) {
    c.pgfault_wp->Inc();
    return WriteProtectFault(vmf);
  }
  c.pgfault_missing->Inc();
  ScopedLatency t(c.pgfault_service_ns);
  return MissingFault(vmf);
}

}  // namespace remora
