// Reverse-map maintenance: sharing a line after fork, unmapping pages, and
// tearing down an address space.
#include <cassert>
#include <vector>

#include "processor/pcache/pcache.h"

namespace remora {

RemoveResult Pcache::RemoveRmap(const PageKey& key) {
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  MutexLock lk(sets_[set].mu);
  PcacheLine* l = FindSettledLocked(set, key);
  if (l == nullptr) return RemoveResult::kNotMapped;
  l->rmaps.Remove(key);
  return FreeIfUnusedLocked(sets_[set], *l) ? RemoveResult::kFreed : RemoveResult::kRemoved;
}

// Calls fn(set, line) for every line mapped by `asid`, with the set's lock
// held, after waiting out its eviction if one is under way: so a caller
// dropping or sharing the space sees that eviction's data in the victim
// cache, not in the line.
template <typename Fn>
void Pcache::ForEachLineOfSpace(Asid asid, Fn&& fn) {
  for (std::uint32_t set = 0; set < geometry_.nr_sets(); ++set) {
    PcacheSet& s = sets_[set];
    MutexLock lk(s.mu);
    const LineId first = geometry_.FirstLineOfSet(set);
    for (LineId id = first; id < first + geometry_.ways();) {
      PcacheLine& l = lines_[id];
      if (!l.Test(kLineValid) || !l.rmaps.ContainsSpace(asid)) {
        ++id;
        continue;
      }
      if (l.Test(kLineReclaim)) {
        s.cv.wait(s.mu);
        continue;  // recheck the same line
      }
      fn(s, l);
      ++id;
    }
  }
}

std::size_t Pcache::RemoveSpace(Asid asid) {
  std::size_t removed = 0;
  ForEachLineOfSpace(asid, [&](PcacheSet& s, PcacheLine& l) {
    // Called with the set locked; the analysis cannot carry that into a
    // callback's parameter (clang 14 misplaces REQUIRES on a lambda's).
    s.mu.AssertHeld();
    removed += l.rmaps.RemoveSpace(asid);
    FreeIfUnusedLocked(s, l);
  });
  return removed;
}

std::size_t Pcache::RemoveRange(Asid asid, std::uint64_t start, std::uint64_t end) {
  std::size_t removed = 0;
  ForEachLineOfSpace(asid, [&](PcacheSet& s, PcacheLine& l) {
    s.mu.AssertHeld();  // as in RemoveSpace
    Rmap in_range[4];
    std::vector<Rmap> more;
    std::uint32_t n = 0;
    l.rmaps.Walk([&](const Rmap& r) {
      if (r.asid != asid || r.uva < start || r.uva >= end) return;
      if (n < 4)
        in_range[n++] = r;
      else
        more.push_back(r);
    });
    if (n == 0) return;
    for (std::uint32_t i = 0; i < n; ++i) l.rmaps.Remove(in_range[i]);
    for (const Rmap& r : more) l.rmaps.Remove(r);
    removed += n + more.size();
    FreeIfUnusedLocked(s, l);
  });
  return removed;
}

std::size_t Pcache::ShareSpace(Asid parent, Asid child) {
  std::size_t shared = 0;
  ForEachLineOfSpace(parent, [&](PcacheSet&, PcacheLine& l) {
    // Collect first: Add may reallocate the spill vector Walk reads. A
    // line nearly always has one mapping of the parent: no allocation.
    Rmap inline_added[4];
    std::vector<Rmap> spilled;
    std::uint32_t n = 0;
    l.rmaps.Walk([&](const Rmap& r) {
      if (r.asid != parent) return;
      const Rmap c{child, r.uva};
      if (n < 4)
        inline_added[n++] = c;
      else
        spilled.push_back(c);
    });
    for (std::uint32_t i = 0; i < n; ++i) {
      if (!l.rmaps.Contains(inline_added[i])) l.rmaps.Add(inline_added[i]);
    }
    for (const Rmap& r : spilled) {
      if (!l.rmaps.Contains(r)) l.rmaps.Add(r);
    }
    l.Set(kLineForked);
    ++shared;
  });
  return shared;
}

std::uint64_t Pcache::CountRmaps() {
  std::uint64_t n = 0;
  for (std::uint32_t set = 0; set < geometry_.nr_sets(); ++set) {
    MutexLock lk(sets_[set].mu);
    const LineId first = geometry_.FirstLineOfSet(set);
    for (LineId id = first; id < first + geometry_.ways(); ++id) n += lines_[id].mapcount();
  }
  return n;
}

void Pcache::WalkRmaps(LineId line, const std::function<void(const Rmap&)>& fn) {
  MutexLock lk(SetOf(line).mu);
  Line(line).rmaps.Walk(fn);
}

}  // namespace remora
