#include "cli/demo_paged_region.h"

#include <algorithm>
#include <cstring>

#include "processor/pcache/fill_plan.h"

namespace remora {

PagedRegion::PagedRegion(const PagedRegionOptions& options)
    : opts_(options),
      sink_(options.transport),
      nr_pgfault_(
          GetMetric<Counter>(options.stats, RuntimeCounters::Spec(RuntimeCounters::Id::pgfault))),
      fault_service_ns_(GetMetric<Histogram>(
          options.stats, PagedRegionMetrics::Spec(PagedRegionMetrics::Id::fault_service_ns))) {}

Status PagedRegion::Create(const PagedRegionOptions& options, std::unique_ptr<PagedRegion>* out) {
  if (!options.transport || !options.stats)
    return {Code::kInvalidArgument, "PagedRegion needs a transport and a stats registry"};
  if (!PageAligned(options.base) || options.length == 0)
    return {Code::kInvalidArgument, "PagedRegion needs a page-aligned base and a length"};
  std::unique_ptr<PagedRegion> r(new PagedRegion(options));
  r->opts_.length = PageUp(options.length);

  VictimCacheOptions vo;
  vo.entries = options.victim_entries;
  vo.sink = &r->sink_;
  vo.stats = options.stats;
  if (options.victim_entries > 0) REMORA_RETURN_IF_ERROR(VictimCache::Create(vo, &r->victim_));

  PcacheOptions po;
  po.victim = r->victim_.get();
  po.sink = &r->sink_;
  po.stats = options.stats;
  PagedRegion* self = r.get();
  // No process maps these lines: unmapping is only the pcache's own rmap
  // removal, and the data is in the frame array.
  po.hooks.wrprotect = [](EvictionContext&, std::size_t) { return Status::Ok(); };
  po.hooks.copy_out = [self](const EvictionContext& ctx, void* dst) {
    std::memcpy(dst, self->frames_.get() + std::size_t{ctx.line()} * kPageSize, kPageSize);
    return Status::Ok();
  };
  REMORA_RETURN_IF_ERROR(Pcache::Create(options.pcache, std::move(po), &r->pcache_));
  r->frames_.reset(new std::byte[std::size_t{r->pcache_->geometry().nr_lines()} * kPageSize]);

  REMORA_RETURN_IF_ERROR(options.transport->CreateSpace(options.asid));
  Status st = options.transport->RegisterRange(options.asid, options.base, r->opts_.length);
  if (!st.ok()) {
    (void)options.transport->DestroySpace(options.asid);
    return st;
  }
  r->released_ = false;  // from here on the space is ours to destroy
  *out = std::move(r);
  return Status::Ok();
}

PagedRegion::~PagedRegion() {
  if (!released_) (void)Release();
}

Status PagedRegion::FillLine(const PageKey& key, LineId line) {
  std::byte* frame = frames_.get() + std::size_t{line} * kPageSize;
  // A run of one page, straight into the line's frame.
  FillPlan plan;
  plan.Decide(victim_.get(), key, 1, frame, /*file=*/false, [this](std::uint64_t uva) {
    std::lock_guard lk(written_mu_);
    return written_.count(uva) != 0;
  });
  switch (plan.source(0)) {
    case FillSource::kMemoryNode: {
      bool present = false;
      Status st = opts_.transport->ReadPage(key.asid, key.uva, frame, &present);
      if (!st.ok()) {
        pcache_->AbortFill(line);
        return st;
      }
      break;
    }
    case FillSource::kZeroFill:
      std::memset(frame, 0, kPageSize);
      break;
    case FillSource::kVictimCache:  // in the frame already
    case FillSource::kFile:         // no file behind the region
    case FillSource::kCowBreak:     // never planned
      break;
  }
  // Dirtiness (a victim entry not written back yet) must be set before the
  // line lock drops: a clean line could be evicted (and dropped) in
  // between, losing the only copy of the page.
  pcache_->CompleteFill(line, plan.source(0), plan.dirty(0));
  return Status::Ok();
}

Status PagedRegion::Acquire(std::uint64_t page, bool write, LineId* line) {
  const PageKey key{opts_.asid, page};
  for (;;) {
    if (pcache_->Pin(key, line)) {
      // A pin does not wait for a fill in progress (the line lock): take and
      // drop the lock so the frame holds the page before we copy, and check
      // the fill did not fail and give the line up meanwhile.
      pcache_->Lock(*line);
      const bool ours = pcache_->Lookup(key) == *line;
      pcache_->Unlock(*line);
      if (!ours) {
        pcache_->Unpin(*line);
        continue;
      }
      // The load/store itself is the access: record it exactly.
      pcache_->Touch(*line);
      if (write) {
        {
          std::lock_guard lk(written_mu_);
          written_.insert(page);
        }
        pcache_->SetDirty(key);
      }
      return Status::Ok();
    }
    nr_pgfault_->Inc();
    ScopedLatency t(fault_service_ns_);
    FillResult fr;
    REMORA_RETURN_IF_ERROR(pcache_->Fill(key, &fr));
    if (fr.allocated) REMORA_RETURN_IF_ERROR(FillLine(key, fr.line));
    // Loop: pin the now-resident line (it may be evicted again in between,
    // which only costs another fill).
  }
}

// Splits [uva, uva+len) at page boundaries and runs copy(frame + off, done, n)
// for each piece with its page pinned.
template <typename CopyFn>
Status PagedRegion::ForEachPage(std::uint64_t uva, std::size_t len, bool write, CopyFn copy) {
  if (uva < opts_.base || len > opts_.base + opts_.length - uva)  // no wrap-around
    return {Code::kInvalidArgument, write ? "write outside the region" : "read outside the region"};
  std::size_t done = 0;
  while (done < len) {
    std::uint64_t page = PageDown(uva + done);
    std::size_t off = uva + done - page;
    std::size_t n = std::min(len - done, kPageSize - off);
    LineId line;
    REMORA_RETURN_IF_ERROR(Acquire(page, write, &line));
    copy(frames_.get() + std::size_t{line} * kPageSize + off, done, n);
    pcache_->Unpin(line);
    done += n;
  }
  return Status::Ok();
}

Status PagedRegion::Read(std::uint64_t uva, void* dst, std::size_t len) {
  auto* out = static_cast<std::byte*>(dst);
  return ForEachPage(uva, len, false,
                     [out](const std::byte* frame, std::size_t done, std::size_t n) {
                       std::memcpy(out + done, frame, n);
                     });
}

Status PagedRegion::Write(std::uint64_t uva, const void* src, std::size_t len) {
  auto* in = static_cast<const std::byte*>(src);
  return ForEachPage(uva, len, true, [in](std::byte* frame, std::size_t done, std::size_t n) {
    std::memcpy(frame, in + done, n);
  });
}

Status PagedRegion::Release() {
  if (released_) return Status::Ok();
  released_ = true;
  pcache_->RemoveSpace(opts_.asid);
  if (victim_) victim_->DropSpace(opts_.asid);
  return opts_.transport->DestroySpace(opts_.asid);
}

}  // namespace remora
