// Consistency checks of the pcache's lists and line fields, for tests and
// debugging. Each set is checked under its own lock.
#include <string>

#include "processor/pcache/pcache.h"

namespace remora {
namespace {

Status Broken(std::uint32_t set, LineId line, const std::string& what) {
  return {Code::kInternal,
          "pcache set " + std::to_string(set) + " line " + std::to_string(line) + ": " + what};
}

}  // namespace

Status Pcache::CheckSetLocked(std::uint32_t set) {
  const LineId first = geometry_.FirstLineOfSet(set);
  const LineId end = first + geometry_.ways();
  for (const PcacheLine& l : sets_[set].free) {
    if (l.id < first || l.id >= end) return Broken(set, l.id, "on another set's free list");
    if (l.flags != 0 || l.refcount != 0 || !l.rmaps.empty())
      return Broken(set, l.id, "free line with state");
  }
  for (const PcacheLine& l : sets_[set].lru) {
    if (l.id < first || l.id >= end) return Broken(set, l.id, "on another set's LRU list");
    if (!l.Test(kLineValid) || l.Test(kLineReclaim))
      return Broken(set, l.id, "LRU line not valid or under reclaim");
    if (l.refcount < 1) return Broken(set, l.id, "LRU line without a reference");
  }
  std::size_t reclaiming = 0;
  for (LineId id = first; id < end; ++id) {
    const PcacheLine& l = lines_[id];
    if (l.Test(kLineReclaim)) ++reclaiming;
    if (!l.Test(kLineValid)) continue;
    // A line nobody maps only lives while someone holds it.
    if (l.mapcount() == 0 && l.Idle()) return Broken(set, id, "unmapped idle line not freed");
    std::string bad;
    l.rmaps.Walk([&](const Rmap& r) {
      if (geometry_.SetIndex(r.uva) != set) bad = "rmap in the wrong set";
      for (LineId other = first; other < end; ++other) {
        if (other != id && lines_[other].Test(kLineValid) && lines_[other].rmaps.Contains(r))
          bad = "page mapped by two lines";
      }
    });
    if (!bad.empty()) return Broken(set, id, bad);
  }
  if (sets_[set].free.size() + sets_[set].lru.size() + reclaiming != geometry_.ways()) {
    return Broken(set, first, "free + LRU + reclaim != ways (a line leaked)");
  }
  return Status::Ok();
}

Status Pcache::CheckInvariants() {
  const int selector = dueling_.selector();
  if (selector < 0 || selector > SetDueling::kSelectorMax) {
    return {Code::kInternal,
            "pcache: policy selector " + std::to_string(selector) + " out of range"};
  }
  std::uint64_t used = 0;
  for (std::uint32_t set = 0; set < geometry_.nr_sets(); ++set) {
    MutexLock lk(sets_[set].mu);
    REMORA_RETURN_IF_ERROR(CheckSetLocked(set));
    used += geometry_.ways() - sets_[set].free.size();
  }
  if (used != lines_used()) {
    return {Code::kInternal, "pcache: " + std::to_string(used) + " lines in use but counted " +
                                 std::to_string(lines_used())};
  }
  return Status::Ok();
}

}  // namespace remora
