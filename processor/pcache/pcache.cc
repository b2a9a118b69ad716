#include "processor/pcache/pcache.h"

#include <cassert>

namespace remora {

Status Pcache::Create(const PcacheConfig& config, PcacheOptions options,
                      std::unique_ptr<Pcache>* out) {
  PcacheGeometry geometry;
  REMORA_RETURN_IF_ERROR(PcacheGeometry::FromConfig(config, &geometry));
  if (!options.hooks.copy_out) {
    return {Code::kInvalidArgument, "pcache needs a copy_out hook to read evicted lines"};
  }
  if (options.victim == nullptr && options.sink == nullptr) {
    return {Code::kInvalidArgument, "pcache needs a victim cache or a write-back sink"};
  }
  if (options.busy_evict_attempts < 1) {
    return {Code::kInvalidArgument, "busy_evict_attempts must be at least 1"};
  }
  out->reset(new Pcache(geometry, std::move(options)));
  return Status::Ok();
}

// The constructor fills the sets' free lists without their locks: nobody
// else can see the cache yet. (The analysis skips constructors.)
Pcache::Pcache(const PcacheGeometry& geometry, PcacheOptions options)
    : geometry_(geometry),
      options_(std::move(options)),
      own_stats_(options_.stats ? nullptr : std::make_unique<StatsRegistry>()),
      counters_(options_.stats ? options_.stats : own_stats_.get()),
      lines_(new PcacheLine[geometry.nr_lines()]),
      sets_(new PcacheSet[geometry.nr_sets()]),
      dueling_(options_.replacement, geometry.nr_sets()),
      walk_paths_(geometry.nr_lines()) {
  for (LineId id = 0; id < geometry_.nr_lines(); ++id) {
    lines_[id].id = id;
    sets_[geometry_.SetOfLine(id)].free.push_back(lines_[id]);
  }
}

Pcache::~Pcache() {
  // The cache goes away with its lines: the gauge must not keep them.
  counters_.lines_used->Sub(static_cast<std::int64_t>(used_.load()));
}

// ---- helpers; the caller holds the set's lock ----

PcacheLine* Pcache::FindLocked(std::uint32_t set, const PageKey& key) {
  const LineId first = geometry_.FirstLineOfSet(set);
  for (LineId id = first; id < first + geometry_.ways(); ++id) {
    PcacheLine& l = lines_[id];
    if (l.Test(kLineValid) && l.rmaps.Contains(key)) return &l;
  }
  return nullptr;
}

PcacheLine* Pcache::FindSettledLocked(std::uint32_t set, const PageKey& key) {
  for (;;) {
    PcacheLine* l = FindLocked(set, key);
    if (l == nullptr || !l->Test(kLineReclaim)) return l;
    sets_[set].cv.wait(sets_[set].mu);
  }
}

PcacheLine* Pcache::AllocateLocked(PcacheSet& s, const PageKey& key, FillIntent intent) {
  assert(!s.free.empty());
  PcacheLine& l = s.free.front();
  s.free.pop_front();
  assert(l.flags == 0 && l.refcount == 0 && l.rmaps.empty());
  l.flags = kLineValid | kLineLocked;
  l.refcount = 1;
  l.rmaps.Add(key);
  const std::uint32_t set = SetIndexOf(s);
  // Only a fault's fill votes: a read-ahead fill is a guess, and counting it
  // would charge a leader set for misses its policy did not cause (a strided
  // read-ahead into bimodal leaders pushed every follower the wrong way).
  if (intent == FillIntent::kFault) dueling_.OnFill(set);
  if (!dueling_.Bimodal(set)) {
    s.lru.push_front(l);  // a fill is an access: most recently used
  } else if (++s.bimodal_fills % SetDueling::kBimodalThrottle == 0) {
    s.lru.push_front(l);
    counters_.bimodal_front->Inc();
  } else {
    s.lru.push_back(l);  // the next victim, unless used again (Touch)
  }
  used_.fetch_add(1, std::memory_order_relaxed);
  counters_.lines_used->Add(1);
  return &l;
}

void Pcache::FreeLocked(PcacheSet& s, PcacheLine& l) {
  assert(l.Test(kLineValid) && l.refcount == 1);
  assert(!l.Test(kLineLocked));
  if (!l.Test(kLineReclaim)) s.lru.erase(s.lru.iterator_to(l));
  l.rmaps.Clear();
  l.flags = 0;
  l.refcount = 0;
  s.free.push_back(l);
  used_.fetch_sub(1, std::memory_order_relaxed);
  counters_.lines_used->Sub(1);
  s.cv.notify_all();
}

bool Pcache::FreeIfUnusedLocked(PcacheSet& s, PcacheLine& l) {
  if (!l.Test(kLineValid) || l.mapcount() != 0 || !l.Idle()) return false;
  FreeLocked(s, l);
  return true;
}

// ---- lookup and access information ----

std::optional<LineId> Pcache::Lookup(const PageKey& key) {
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  MutexLock lk(sets_[set].mu);
  PcacheLine* l = FindLocked(set, key);
  if (l == nullptr || l->Test(kLineReclaim)) return std::nullopt;
  return l->id;
}

// A hint about a line id that may have been reused since the caller saw it is
// harmless: at worst another page gets one undeserved second chance.
void Pcache::MarkReferenced(LineId line) {
  MutexLock lk(SetOf(line).mu);
  PcacheLine& l = Line(line);
  if (l.Test(kLineValid)) l.Set(kLineReferenced);
}

bool Pcache::MarkReferenced(const PageKey& key) {
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  MutexLock lk(sets_[set].mu);
  PcacheLine* l = FindLocked(set, key);
  if (l == nullptr || l->Test(kLineReclaim)) return false;
  l->Set(kLineReferenced);
  return true;
}

void Pcache::Touch(LineId line) {
  PcacheSet& s = SetOf(line);
  MutexLock lk(s.mu);
  PcacheLine& l = Line(line);
  if (!l.Test(kLineValid) || l.Test(kLineReclaim)) return;
  MoveToFrontLocked(s, l);
}

bool Pcache::Touch(const PageKey& key) {
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  MutexLock lk(sets_[set].mu);
  PcacheLine* l = FindLocked(set, key);
  if (l == nullptr || l->Test(kLineReclaim)) return false;
  MoveToFrontLocked(sets_[set], *l);
  return true;
}

void Pcache::MoveToFrontLocked(PcacheSet& s, PcacheLine& l) {
  s.lru.erase(s.lru.iterator_to(l));
  s.lru.push_front(l);
  l.Clear(kLineReferenced);  // recency is now in the list position
}

bool Pcache::SetDirty(const PageKey& key) {
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  MutexLock lk(sets_[set].mu);
  PcacheLine* l = FindSettledLocked(set, key);
  if (l == nullptr) return false;
  l->Set(kLineDirty);
  return true;
}

WriteOutcome Pcache::OnWrite(LineId line, const PageKey& key, bool allow_reuse) {
  PcacheSet& s = SetOf(line);
  MutexLock lk(s.mu);
  PcacheLine& l = Line(line);
  assert(l.Test(kLineValid) && l.rmaps.Contains(key));
  (void)key;
  if (l.mapcount() > 1 || (l.Test(kLineForked) && !allow_reuse)) return WriteOutcome::kShared;
  const bool reused = l.Test(kLineForked);
  l.Clear(kLineForked | kLineReferenced);
  l.Set(kLineDirty);
  // A write is an access: most recently used. Under bimodal insertion a
  // line stays where it is: the first write of a page usually follows its
  // fill at once (read, then update), and promoting it would make bimodal
  // insertion recency again for every page a loop writes.
  if (!l.Test(kLineReclaim) && !dueling_.Bimodal(SetIndexOf(s))) {
    s.lru.erase(s.lru.iterator_to(l));
    s.lru.push_front(l);
  }
  return reused ? WriteOutcome::kReused : WriteOutcome::kDirtied;
}

// ---- accounting ----

std::uint64_t Pcache::lines_used() const { return used_.load(std::memory_order_relaxed); }

std::uint32_t Pcache::FreeLines(std::uint32_t set) {
  assert(set < geometry_.nr_sets());
  MutexLock lk(sets_[set].mu);
  return static_cast<std::uint32_t>(sets_[set].free.size());
}

LineInfo Pcache::Inspect(LineId line) {
  MutexLock lk(SetOf(line).mu);
  const PcacheLine& l = Line(line);
  LineInfo info{l.id, l.flags, l.refcount, l.mapcount(), {}};
  l.rmaps.CopyTo(&info.rmaps);
  return info;
}

}  // namespace remora
