// Eviction: choose the least recently used line of a set (second chance for
// referenced lines), unmap it through its rmaps, hand dirty data on, free it.
#include <cassert>
#include <iterator>

#include "processor/pcache/pcache.h"
#include "processor/pcache/victim_cache.h"

namespace remora {

// CLOCK over the LRU list. Walk from the LRU end; a busy line (locked,
// pinned, under write-back) is stepped over; a referenced line gets a second
// chance: its bit is cleared and it moves to the MRU end, where the walk will
// meet it again after the older lines. Every idle line is looked at most
// twice, so the walk ends; it returns null only if every line is busy.
PcacheLine* Pcache::PickVictimLocked(PcacheSet& s) {
  auto cursor = s.lru.end();  // the candidate is std::prev(cursor)
  std::size_t budget = 2 * s.lru.size();
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
    return &l;
  }
  return nullptr;
}

std::unique_lock<SharedMutex> Pcache::PauseEvictions() {
  return std::unique_lock<SharedMutex>(evict_gate_);
}

EvictOutcome Pcache::EvictOne(std::uint32_t set, Status* error) {
  assert(set < geometry_.nr_sets());
  PcacheSet& s = sets_[set];
  // Held for the whole eviction: PauseEvictions waits for it.
  ReaderMutexLock gate(evict_gate_);
  PcacheLine* victim;
  std::vector<Rmap> rmaps;
  bool dirty;
  {
    MutexLock lk(s.mu);
    if (s.free.size() == geometry_.ways()) return EvictOutcome::kEmpty;
    counters_.eviction_triggered->Inc();
    victim = PickVictimLocked(s);
    if (victim == nullptr) {
      counters_.eviction_eagain->Inc();
      return EvictOutcome::kBusy;
    }
    // Under reclaim the line is off the LRU list and key lookups wait for
    // it, so nobody else changes its rmaps or dirty bit until it is freed.
    victim->Set(kLineReclaim);
    s.lru.erase(s.lru.iterator_to(*victim));
    victim->rmaps.CopyTo(&rmaps);
    dirty = victim->Test(kLineDirty);
  }

  // The rmap walk: unmap the page from every process that maps it.
  const LineId id = victim->id;
  Status st;
  for (const Rmap& r : rmaps) {
    bool dirtied = false;
    if (options_.hooks.unmap) st = options_.hooks.unmap(id, r, dirty, &dirtied);
    if (!st.ok()) break;
    dirty = dirty || dirtied;
  }
  if (st.ok()) st = HandOffData(id, rmaps, dirty);
  if (st.ok() && options_.hooks.zap) options_.hooks.zap(id, rmaps);

  MutexLock lk(s.mu);
  if (!st.ok()) {
    // Keep the line (and its data): put it back as most recently used so the
    // next attempt picks another line.
    victim->Clear(kLineReclaim);
    if (dirty) victim->Set(kLineDirty);
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
Status Pcache::HandOffData(LineId line, const std::vector<Rmap>& rmaps, bool dirty) {
  const bool keep_clean = options_.victim_clean && options_.victim != nullptr;
  if (rmaps.empty() || (!dirty && !keep_clean)) {
    // Clean: the memory node (or zero-fill) has the same data.
    counters_.eviction_clean_dropped->Inc();
    return Status::Ok();
  }
  auto copy = [&](void* dst) { return options_.hooks.copy_out(line, dst); };
  if (options_.victim != nullptr) {
    REMORA_RETURN_IF_ERROR(options_.victim->Insert(rmaps, dirty, copy));
    counters_.eviction_to_victim->Inc();
    return Status::Ok();
  }
  alignas(64) std::byte buf[kPageSize];
  REMORA_RETURN_IF_ERROR(copy(buf));
  REMORA_RETURN_IF_ERROR(options_.sink->WriteBack(rmaps, buf));
  counters_.eviction_writeback_sync->Inc();
  return Status::Ok();
}

}  // namespace remora
