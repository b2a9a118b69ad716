// Holding a line across I/O: pins (refcount) and the line lock.
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

}  // namespace remora
