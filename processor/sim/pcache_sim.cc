#include "processor/sim/pcache_sim.h"

#include "processor/pcache/fill_plan.h"

namespace remora {

Status ParseSimPolicy(const std::string& s, SimPolicy* policy) {
  if (s == "clock")
    *policy = SimPolicy::kClock;
  else if (s == "lru")
    *policy = SimPolicy::kLru;
  else
    return {Code::kInvalidArgument, "unknown policy '" + s + "' (clock, lru)"};
  return Status::Ok();
}

const char* SimPolicyName(SimPolicy policy) {
  return policy == SimPolicy::kClock ? "clock" : "lru";
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
    if (options_.policy == SimPolicy::kClock)
      pcache_->MarkReferenced(*line);
    else
      pcache_->Touch(*line);
  } else {
    ++r_.misses;
    REMORA_RETURN_IF_ERROR(Miss(key));
  }
  if (rec.write) {
    if (!pcache_->SetDirty(key)) return {Code::kInternal, "sim: written page not resident"};
    const std::uint64_t v = ++latest_[key];
    frames_[*pcache_->Lookup(key)].version = v;
  }
  return Status::Ok();
}

Status PcacheSim::Miss(const PageKey& key) {
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
  pcache_->CompleteFill(fill.line, source, plan.dirty(0));
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
