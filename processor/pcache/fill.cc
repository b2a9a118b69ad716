// Filling the pcache on a miss: find a line for the page (evicting one if the
// set is full), let the caller load the data under the line lock, and count
// where the data came from.
#include <cassert>
#include <string>

#include "processor/pcache/pcache.h"

namespace remora {

Status Pcache::Fill(const PageKey& key, FillResult* out, FillIntent intent) {
  assert(PageAligned(key.uva));
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  // The set is named sets_[set] throughout, the name FindLocked requires.
  int busy_attempts = 0;
  // Once per fault; a speculative fill has no fault to count.
  bool count_wait = intent == FillIntent::kFault;
  bool direct = false;  // this fill has evicted (counted once)
  MutexLock lk(sets_[set].mu);
  for (;;) {
    if (PcacheLine* l = FindLocked(set, key)) {
      if (l->Test(kLineReclaim)) {
        // The page is on its way out (unmapped, data going to the victim
        // cache). Wait for that to finish, then fill it back from there.
        if (count_wait) counters_.fault_concurrent_eviction->Inc();
        count_wait = false;
        sets_[set].cv.wait(sets_[set].mu);
        continue;
      }
      if (l->Test(kLineLocked)) {  // another fault is filling it
        sets_[set].cv.wait(sets_[set].mu);
        continue;
      }
      *out = {l->id, false};
      return Status::Ok();
    }
    if (!sets_[set].free.empty()) {
      *out = {AllocateLocked(sets_[set], key, intent)->id, true};
      const auto free_left = static_cast<std::uint32_t>(sets_[set].free.size());
      lk.unlock();
      if (options_.on_allocate) options_.on_allocate(set, free_left);
      return Status::Ok();
    }
    // Direct reclaim: evict without the set lock (eviction calls the hooks
    // and may wait for the victim cache). Another thread may take the freed
    // line first; then the loop simply evicts again.
    if (!direct) counters_.direct_reclaim->Inc();
    direct = true;
    lk.unlock();
    Status error;
    const EvictOutcome outcome = EvictOne(set, &error);
    if (outcome == EvictOutcome::kSucceed) counters_.direct_reclaim_lines->Inc();
    lk.lock();
    // kSucceed and kEmpty (lines were freed meanwhile): look again.
    if (outcome == EvictOutcome::kFailed) return error;
    if (outcome == EvictOutcome::kBusy) {
      if (++busy_attempts >= options_.busy_evict_attempts) {
        return {Code::kBusy, "pcache set " + std::to_string(set) + ": all " +
                                 std::to_string(geometry_.ways()) +
                                 " lines busy (locked, pinned or being evicted)"};
      }
      sets_[set].cv.wait_for(sets_[set].mu, options_.busy_retry_wait);
    }
  }
}

void Pcache::CompleteFill(LineId line, FillSource source, bool dirty) {
  PcacheSet& s = SetOf(line);
  MutexLock lk(s.mu);
  PcacheLine& l = Line(line);
  assert(l.Test(kLineValid) && l.Test(kLineLocked));
  switch (source) {
    case FillSource::kMemoryNode:
      counters_.fill_from_memory->Inc();
      break;
    case FillSource::kVictimCache:
      counters_.fill_from_victim->Inc();
      break;
    case FillSource::kZeroFill:
      counters_.fill_zerofill->Inc();
      break;
    case FillSource::kCowBreak:
      counters_.fill_copy->Inc();
      break;
    case FillSource::kFile:
      counters_.fill_from_file->Inc();
      break;
  }
  if (dirty) l.Set(kLineDirty);
  l.Clear(kLineLocked);
  // The mapping may have gone while the data was loading (the process
  // exited): then nobody wants the line.
  if (!FreeIfUnusedLocked(s, l)) s.cv.notify_all();
}

void Pcache::AbortFill(LineId line) {
  PcacheSet& s = SetOf(line);
  MutexLock lk(s.mu);
  PcacheLine& l = Line(line);
  assert(l.Test(kLineValid) && l.Test(kLineLocked));
  counters_.fill_aborted->Inc();
  l.Clear(kLineLocked | kLineDirty);
  l.rmaps.Clear();  // waiters for this page retry and allocate afresh
  if (!FreeIfUnusedLocked(s, l)) s.cv.notify_all();
}

}  // namespace remora
