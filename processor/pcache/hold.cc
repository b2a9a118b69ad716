// Holding a line across I/O: pins (refcount), the line lock, and write-back
// of a line that stays resident.
#include <cassert>

#include "processor/pcache/pcache.h"

namespace remora {

bool Pcache::Pin(const PageKey& key, LineId* line) {
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  MutexLock lk(sets_[set].mu);
  PcacheLine* l = FindSettledLocked(set, key);
  if (l == nullptr) return false;
  ++l->refcount;
  *line = l->id;
  return true;
}

void Pcache::Unpin(LineId line) {
  PcacheSet& s = SetOf(line);
  MutexLock lk(s.mu);
  PcacheLine& l = Line(line);
  assert(l.Test(kLineValid) && l.refcount > 1);
  --l.refcount;
  if (!FreeIfUnusedLocked(s, l)) s.cv.notify_all();
}

void Pcache::Lock(LineId line) {
  PcacheSet& s = SetOf(line);
  MutexLock lk(s.mu);
  PcacheLine& l = Line(line);
  assert(l.Test(kLineValid) && l.refcount > 1);  // only pin holders may lock
  s.cv.wait(s.mu, [&] { return !l.Test(kLineLocked); });
  l.Set(kLineLocked);
}

void Pcache::Unlock(LineId line) {
  PcacheSet& s = SetOf(line);
  MutexLock lk(s.mu);
  PcacheLine& l = Line(line);
  assert(l.Test(kLineValid) && l.Test(kLineLocked));
  l.Clear(kLineLocked);
  if (!FreeIfUnusedLocked(s, l)) s.cv.notify_all();
}

bool Pcache::BeginWriteback(const PageKey& key, LineId* line, std::vector<Rmap>* owners) {
  const std::uint32_t set = geometry_.SetIndex(key.uva);
  MutexLock lk(sets_[set].mu);
  PcacheLine* l = FindSettledLocked(set, key);
  if (l == nullptr || !l->Test(kLineDirty) || l->Test(kLineWriteback)) return false;
  // Clear dirty now: a write during the write-back dirties the line again.
  l->Clear(kLineDirty);
  l->Set(kLineWriteback);
  ++l->refcount;
  *line = l->id;
  owners->clear();
  l->rmaps.CopyTo(owners);
  return true;
}

void Pcache::EndWriteback(LineId line, const Status& result) {
  PcacheSet& s = SetOf(line);
  MutexLock lk(s.mu);
  PcacheLine& l = Line(line);
  assert(l.Test(kLineValid) && l.Test(kLineWriteback) && l.refcount > 1);
  l.Clear(kLineWriteback);
  if (!result.ok()) l.Set(kLineDirty);  // the memory node still has old data
  --l.refcount;
  if (!FreeIfUnusedLocked(s, l)) s.cv.notify_all();
}

}  // namespace remora
