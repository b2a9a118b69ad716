// Eviction: choose the least recently used line of a set (second chance for
// referenced lines), write-protect it through its rmaps, hand dirty data on,
// zap it, free it.
#include <cassert>
#include <iterator>

#include "processor/pcache/pcache.h"
#include "processor/pcache/victim_cache.h"

namespace remora {

// CLOCK over the LRU list. Walk from the LRU end; a busy line (locked or
// pinned) is stepped over; a referenced line gets a second
// chance: its bit is cleared and it moves to the MRU end, where the walk will
// meet it again after the older lines. Every idle line is looked at most
// twice, so the walk ends; it returns null only if every line is busy.
// The same walk serves both insertion policies (replacement.h): under
// bimodal insertion the back holds the newest fills, and a referenced one —
// a refault, back soon after its eviction — is spared like any other.
//
// A line on an active strided walk's path (walk_paths.h) is stepped over
// too, without a second chance (it stays where it is): it is taken only if
// the set has no other candidate, the oldest such line first.
PcacheLine* Pcache::PickVictimLocked(PcacheSet& s, bool take_path_line, bool* only_path) {
  *only_path = false;
  WalkPaths::Lattice paths[WalkPaths::kSlots];
  const std::uint64_t now = eviction_clock_.load(std::memory_order_relaxed);
  const int nr_paths = walk_paths_.MayBeActive(now) ? walk_paths_.Snapshot(now, paths) : 0;
  PcacheLine* on_path = nullptr;  // the oldest idle line a walk will come back to
  auto cursor = s.lru.end();      // the candidate is std::prev(cursor)
  std::size_t budget = 2 * s.lru.size();
  PcacheLine* victim = nullptr;
  while (cursor != s.lru.begin() && budget-- > 0) {
    auto candidate = std::prev(cursor);
    PcacheLine& l = *candidate;
    assert(l.Test(kLineValid) && !l.Test(kLineReclaim));
    if (!l.Idle()) {
      cursor = candidate;
      continue;
    }
    if (l.Test(kLineReferenced)) {
      l.Clear(kLineReferenced);
      s.lru.erase(candidate);
      s.lru.push_front(l);
      counters_.second_chance->Inc();
      continue;  // cursor is unchanged: its predecessor is the next older line
    }
    if (nr_paths > 0 && OnWalkPath(l.rmaps, paths, nr_paths)) {
      if (on_path == nullptr) on_path = &l;
      cursor = candidate;
      continue;
    }
    victim = &l;
    break;
  }
  if (on_path != nullptr) {  // victim, if any, is off every path
    if (victim != nullptr) {
      counters_.walk_path_spared->Inc();
    } else if (take_path_line) {
      victim = on_path;
    } else {
      *only_path = true;
    }
  }
  return victim;
}

bool Pcache::OnWalkPath(const RmapList& rmaps, const WalkPaths::Lattice* paths, int n) {
  bool on = false;
  rmaps.Walk([&](const Rmap& r) {
    for (int i = 0; i < n && !on; ++i) on = paths[i].Covers(r.asid, r.uva);
  });
  return on;
}

std::unique_lock<SharedMutex> Pcache::PauseEvictions() {
  return std::unique_lock<SharedMutex>(evict_gate_);
}

EvictOutcome Pcache::EvictOne(std::uint32_t set, Status* error, EvictFor why) {
  assert(set < geometry_.nr_sets());
  PcacheSet& s = sets_[set];
  // Held for the whole eviction: PauseEvictions waits for it.
  ReaderMutexLock gate(evict_gate_);
  PcacheLine* victim;
  EvictionContext ctx;
  {
    MutexLock lk(s.mu);
    if (s.free.size() == geometry_.ways()) return EvictOutcome::kEmpty;
    bool only_path;
    victim = PickVictimLocked(s, why == EvictFor::kFill, &only_path);
    if (victim == nullptr && only_path) return EvictOutcome::kOnPath;  // not an attempt
    counters_.eviction_triggered->Inc();
    if (victim == nullptr) {
      counters_.eviction_eagain->Inc();
      return EvictOutcome::kBusy;
    }
    eviction_clock_.fetch_add(1, std::memory_order_relaxed);
    // Under reclaim the line is off the LRU list and key lookups wait for
    // it, so nobody else changes its rmaps or dirty bit until it is freed.
    victim->Set(kLineReclaim);
    s.lru.erase(s.lru.iterator_to(*victim));
    ctx.line_ = victim->id;
    victim->rmaps.Walk([&](const Rmap& r) { ctx.rmaps_.push_back(r); });
    ctx.held_.resize(ctx.rmaps_.size());
    ctx.dirty_ = victim->Test(kLineDirty);
    ctx.set_eviction_ = s.evictions.load(std::memory_order_relaxed) + 1;
    s.evictions.store(ctx.set_eviction_, std::memory_order_relaxed);
  }

  // The rmap walk: write-protect the page in every process that maps it.
  Status st;
  for (std::size_t i = 0; i < ctx.rmaps_.size() && st.ok(); ++i) {
    if (options_.hooks.wrprotect) st = options_.hooks.wrprotect(ctx, i);
  }
  if (st.ok()) st = HandOffData(ctx);
  if (st.ok() && options_.hooks.zap) options_.hooks.zap(ctx);

  MutexLock lk(s.mu);
  if (!st.ok()) {
    // Keep the line (and its data): put it back as most recently used so the
    // next attempt picks another line. Its dirty bit was never cleared.
    victim->Clear(kLineReclaim);
    s.lru.push_front(*victim);
    counters_.eviction_failure->Inc();
    s.cv.notify_all();
    if (error) *error = st;
    return EvictOutcome::kFailed;
  }
  FreeLocked(s, *victim);
  counters_.eviction_succeed->Inc();
  return EvictOutcome::kSucceed;
}

// Runs without any set lock: the victim cache may block until its flush
// thread made room, and the sink does I/O.
Status Pcache::HandOffData(const EvictionContext& ctx) {
  const bool keep_clean = options_.victim_clean && options_.victim != nullptr;
  if (ctx.rmaps().empty() || (!ctx.dirty() && !keep_clean)) {
    // Clean: the memory node (or zero-fill) has the same data.
    counters_.eviction_clean_dropped->Inc();
    return Status::Ok();
  }
  auto copy = [&](void* dst) { return options_.hooks.copy_out(ctx, dst); };
  if (options_.victim != nullptr) {
    REMORA_RETURN_IF_ERROR(options_.victim->Insert(ctx.rmaps(), ctx.dirty(), copy));
    counters_.eviction_to_victim->Inc();
    return Status::Ok();
  }
  alignas(64) std::byte buf[kPageSize];
  REMORA_RETURN_IF_ERROR(copy(buf));
  REMORA_RETURN_IF_ERROR(options_.sink->WriteBack(ctx.rmaps(), buf));
  counters_.eviction_writeback_sync->Inc();
  return Status::Ok();
}

}  // namespace remora
