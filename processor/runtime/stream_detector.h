// Sequential-access detection for one program: a few independent streams,
// so that threads each scanning their own chunk (a Phoenix map phase) are
// all recognised even though their faults interleave.
//
// Each stream remembers where its next access is expected. An access there
// extends the stream and doubles its window (up to `max` pages); any other
// access starts a new stream in the least recently used slot with no
// window. The caller acts on the window (reads or un-protects that many
// pages ahead) and reports how far it went with Advance().
#pragma once

#include <cstdint>

#include "common/mutex.h"

namespace remora {

class StreamDetector {
 public:
  // An access to `page`; returns the window in pages (0: not sequential)
  // and the slot to Advance().
  std::uint32_t OnAccess(std::uint64_t page, std::uint32_t max, int* slot);
  // The caller covered pages up to and including `last`: the stream's next
  // expected access is the page after it.
  void Advance(int slot, std::uint64_t last);

  static constexpr int kStreams = 8;

 private:
  struct Stream {
    std::uint64_t next = 0;  // page address expected next
    std::uint32_t window = 0;
    std::uint64_t used = 0;  // for LRU replacement
  };
  Mutex mu_;  // a leaf lock
  Stream streams_[kStreams] GUARDED_BY(mu_);
  std::uint64_t clock_ GUARDED_BY(mu_) = 0;
};

}  // namespace remora
