#include "processor/sim/pcache_sim.h"

#include <algorithm>

#include "processor/pcache/fill_plan.h"

namespace remora {

Status ParseSimPolicy(const std::string& s, SimPolicy* policy) {
  if (s == "runtime")
    *policy = SimPolicy::kRuntime;
  else if (s == "clock")
    *policy = SimPolicy::kClock;
  else if (s == "lru")
    *policy = SimPolicy::kLru;
  else
    return {Code::kInvalidArgument, "unknown policy '" + s + "' (runtime, clock, lru)"};
  return Status::Ok();
}

const char* SimPolicyName(SimPolicy policy) {
  switch (policy) {
    case SimPolicy::kRuntime:
      return "runtime";
    case SimPolicy::kClock:
      return "clock";
    case SimPolicy::kLru:
      return "lru";
  }
  return "?";
}

Status PcacheSim::Create(const SimOptions& options, std::unique_ptr<PcacheSim>* out) {
  std::unique_ptr<PcacheSim> sim(new PcacheSim(options));
  if (options.victim_entries > 0) {
    VictimCacheOptions vo;
    vo.entries = options.victim_entries;
    vo.sink = &sim->store_;
    vo.stats = &sim->stats_;
    REMORA_RETURN_IF_ERROR(VictimCache::Create(vo, &sim->victim_));
  }
  PcacheOptions po;
  // The simulated program's pages need no unmapping; the data is the frame.
  po.hooks.copy_out = [s = sim.get()](const EvictionContext& ctx, void* dst) {
    return s->HookCopyOut(ctx.line(), dst);
  };
  if (options.policy == SimPolicy::kRuntime) {
    // The runtime's zap hook remembers every evicted page (evict_hooks.cc);
    // so does this one, with the runtime's shadow size.
    const std::uint64_t lines = options.pcache.capacity_bytes / kPageSize;
    sim->shadow_ = std::make_unique<RefaultShadow>(std::max<std::uint64_t>(1, lines / 4));
    po.hooks.zap = [s = sim.get()](const EvictionContext& ctx) {
      for (const Rmap& r : ctx.rmaps())
        s->shadow_->Evicted({r.asid, r.uva}, {.dirty = ctx.dirty()});
    };
  }
  po.replacement = options.policy == SimPolicy::kLru ? Replacement::kRecency : options.replacement;
  po.victim = sim->victim_.get();
  po.sink = &sim->store_;
  po.victim_clean = options.victim_clean;
  po.stats = &sim->stats_;
  REMORA_RETURN_IF_ERROR(Pcache::Create(options.pcache, std::move(po), &sim->pcache_));
  const PcacheGeometry& g = sim->pcache_->geometry();
  sim->lru_ = std::make_unique<LruReference>(g);
  sim->frames_.resize(g.nr_lines());
  sim->r_.sets = g.nr_sets();
  sim->r_.ways = g.ways();
  *out = std::move(sim);
  return Status::Ok();
}

// The pcache goes before the victim cache it points to.
PcacheSim::~PcacheSim() { pcache_.reset(); }

Status PcacheSim::HookCopyOut(LineId line, void* dst) {
  EncodeSimPage(frames_[line].key, frames_[line].version, dst);
  return Status::Ok();
}

Status PcacheSim::Access(const TraceRecord& rec) {
  const PageKey key{rec.asid, PageDown(rec.addr)};
  ++r_.accesses;
  ++(rec.write ? r_.writes : r_.reads);
  if (!lru_->Access(key)) ++r_.lru_misses;
  if (options_.belady) min_.Add(key);

  if (auto line = pcache_->Lookup(key)) {
    ++r_.hits;
    switch (options_.policy) {
      case SimPolicy::kRuntime:
        // A hit does not fault; a first write to a clean line does.
        if (rec.write && (pcache_->Inspect(*line).flags & kLineDirty) == 0)
          REMORA_RETURN_IF_ERROR(WriteProtectFault(*line, key));
        break;
      case SimPolicy::kClock:
        pcache_->MarkReferenced(*line);
        break;
      case SimPolicy::kLru:
        pcache_->Touch(*line);
        break;
    }
  } else {
    ++r_.misses;
    REMORA_RETURN_IF_ERROR(Miss(key, rec.write));
  }
  if (rec.write) {
    if (!pcache_->SetDirty(key)) return {Code::kInternal, "sim: written page not resident"};
    const std::uint64_t v = ++latest_[key];
    frames_[*pcache_->Lookup(key)].version = v;
  }
  return Status::Ok();
}

// As the runtime serves it: the line pinned and locked, OnWrite.
Status PcacheSim::WriteProtectFault(LineId line, const PageKey& key) {
  ++r_.wp_faults;
  LineId pinned;
  if (!pcache_->Pin(key, &pinned) || pinned != line)
    return {Code::kInternal, "sim: written page not resident"};
  pcache_->Lock(line);
  (void)pcache_->OnWrite(line, key);
  pcache_->Unlock(line);
  pcache_->Unpin(line);
  return Status::Ok();
}

Status PcacheSim::Miss(const PageKey& key, bool write) {
  FillResult fill;
  REMORA_RETURN_IF_ERROR(pcache_->Fill(key, &fill));
  if (!fill.allocated) return {Code::kInternal, "sim: missed page was resident"};

  // A run of one page; the store answers "has a copy" and "which version"
  // at once.
  std::uint64_t version = 0;
  FillPlan plan;
  plan.Decide(victim_.get(), key, 1, page_.data(), /*file=*/false,
              [&](std::uint64_t) { return store_.Read(key, &version); });
  const FillSource source = plan.source(0);
  switch (source) {
    case FillSource::kVictimCache:
      ++r_.victim_hits;
      break;
    case FillSource::kMemoryNode:
      ++r_.fills_memory;
      EncodeSimPage(key, version, page_.data());
      break;
    case FillSource::kZeroFill:
      ++r_.fills_zero;
      EncodeSimPage(key, 0, page_.data());
      break;
    case FillSource::kFile:      // no files in a trace
    case FillSource::kCowBreak:  // never planned
      break;
  }
  // Whatever the source, the page must be the latest version written.
  auto it = latest_.find(key);
  const std::uint64_t expected = it == latest_.end() ? 0 : it->second;
  if (!DecodeSimPage(key, page_.data(), &version) || version != expected) ++r_.data_errors;
  frames_[fill.line] = {key, expected};
  if (!shadow_) {
    pcache_->CompleteFill(fill.line, source, plan.dirty(0));
    return Status::Ok();
  }
  // The runtime's FillRun: a write miss, a dirty victim and a refault of a
  // page that was dirty are installed dirty (no write-protect fault
  // follows); a refault is marked referenced once installed.
  ShadowEntry was;
  const bool refault = shadow_->Refault(key, &was);
  pcache_->CompleteFill(fill.line, source, write || plan.dirty(0) || (refault && was.dirty));
  if (refault) {
    ++r_.refaults;
    pcache_->MarkReferenced(key);
  }
  return Status::Ok();
}

Status PcacheSim::Finish(SimResult* result) {
  if (victim_) REMORA_RETURN_IF_ERROR(victim_->Flush());
  REMORA_RETURN_IF_ERROR(pcache_->CheckInvariants());
  r_.stats = stats_.Snapshot();
  r_.evictions = static_cast<std::uint64_t>(r_.stats.Counter("nr_pcache_eviction_succeed"));
  r_.writebacks = store_.writes();
  r_.data_errors += store_.corrupt();
  if (options_.belady) {
    r_.has_min = true;
    r_.min_misses = min_.Misses(pcache_->geometry().nr_lines());
  }
  *result = r_;
  return Status::Ok();
}

Status ReplayTrace(TraceReader* reader, const SimOptions& options, SimResult* result) {
  std::unique_ptr<PcacheSim> sim;
  REMORA_RETURN_IF_ERROR(PcacheSim::Create(options, &sim));
  for (;;) {
    TraceRecord rec;
    bool done = false;
    REMORA_RETURN_IF_ERROR(reader->Next(&rec, &done));
    if (done) break;
    REMORA_RETURN_IF_ERROR(sim->Access(rec));
  }
  return sim->Finish(result);
}

}  // namespace remora
