// Access-stream detection for one program: a few independent streams, each
// a run of accesses a constant distance apart, so that interleaved streams
// are all recognised even though their faults alternate — threads each
// scanning their own chunk (a Phoenix map phase), or one loop reading two
// arrays in different orders (a matrix multiply reads A along a row, one
// page after another, and B down a column, one page per row).
//
// A stream is a first page and a stride. The stride is estimated from the
// accesses seen, as (last - first) / steps, so a stride that is not a whole
// number of pages (a column of 1200 doubles: 9600 bytes, pages 2 or 3
// apart) is followed too: an access within a page of the predicted one
// extends such a stream. Sequential streams (a stride of exactly one page)
// match exactly, as they always did.
//
//   an access that extends a stream doubles its window (4, 8, ... up to
//     `max` pages);
//   any other access that is within kMaxStride of a lone access seen
//     before pairs with the nearest one: a stream of that stride. A stride
//     of one page opens a window at once (a sequential run is the common
//     case); another only after four accesses fit it, and its window stays
//     at most 8 steps (stream_detector.cc says why);
//   otherwise the access is a lone access in the least recently used slot.
//
// A stream is never retrained by an access that does not fit it: it ages
// out. The caller acts on the window (reads or un-protects the pages Ahead()
// of the access) and reports how far it went with Advance() /
// AdvanceSteps().
#pragma once

#include <cstdint>

#include "common/mutex.h"

namespace remora {

class StreamDetector {
 public:
  // Farthest apart two accesses of one stream may be (4 MiB: a row of
  // 512 Ki doubles).
  static constexpr std::int64_t kMaxStride = std::int64_t{4} << 20;
  static constexpr int kStreams = 8;

  // An access to `page`: returns the window in steps of the stream (0:
  // none), the slot to Advance(), and *stride, the stream's estimated
  // stride in bytes (kPageSize for a sequential stream; negative for a
  // descending one). Sequential runs alone are followed, any number at
  // once, by SequentialStreams (sequential_streams.h).
  std::uint32_t OnAccessStrided(std::uint64_t page, std::uint32_t max, int* slot,
                                std::int64_t* stride) EXCLUDES(mu_);
  // The page the stream of `slot` expects `i` steps (i >= 1) after its last
  // access or advance.
  std::uint64_t Ahead(int slot, std::uint32_t i) EXCLUDES(mu_);
  // The caller covered pages up to and including `last` of a sequential
  // stream: its next expected access is the page after it.
  void Advance(int slot, std::uint64_t last) EXCLUDES(mu_);
  // The caller covered the next `steps` steps of the stream of `slot`.
  void AdvanceSteps(int slot, std::uint32_t steps) EXCLUDES(mu_);

 private:
  // A stream's accesses are a0 + k * stride for steps k = 0, 1, ...; what
  // is seen is each access's page. The stride is known to lie between
  // stride_lo and stride_hi (each page seen bounds it), and the offset of
  // the last access in its page between offset_lo and offset_hi (carried
  // from step to step and cut by each page seen), so predictions land in
  // the right page even when the stride is not a whole number of pages.
  struct Stream {
    std::uint64_t first = 0;  // page of step 0
    std::uint64_t last = 0;   // page of the last access seen (step `seen`)
    std::uint64_t seen = 0;   // step of the last access seen; 0: a lone access
    std::uint64_t next = 0;   // step expected next (> seen after an advance)
    std::uint32_t window = 0;
    std::uint64_t used = 0;  // for LRU replacement; 0: empty slot
    double stride_lo = 0, stride_hi = 0;
    double offset_lo = 0, offset_hi = 0;
    bool Sequential() const;
    double Stride() const { return (stride_lo + stride_hi) / 2; }
    // Estimated page of step k (k > seen, or any k if sequential).
    std::uint64_t Predict(std::uint64_t k) const;
    bool Extends(std::uint64_t page) const;
    // An access at step `step` to `page`: narrows the bounds.
    void Observe(std::uint64_t step, std::uint64_t page);
  };
  std::uint32_t OnAccessLocked(std::uint64_t page, std::uint32_t max, int* slot) REQUIRES(mu_);
  // The least recently used slot, made a lone access at `page`.
  int StartLoneLocked(std::uint64_t page) REQUIRES(mu_);

  Mutex mu_;  // a leaf lock
  Stream streams_[kStreams] GUARDED_BY(mu_);
  std::uint64_t clock_ GUARDED_BY(mu_) = 0;
};

}  // namespace remora
