// An in-memory write-back sink: a map from (asid, uva) to 4 KiB of data.
//
// Used by `remora sim` and by tests as a real store the victim cache writes
// into, so a test can check that data arrives byte-exact and exactly once. It
// can be made to fail (FailNextWrites, SetFailing) and to hold writers
// (Pause/Resume) so tests can drive the flush thread into every state.
#pragma once

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "processor/pcache/writeback_sink.h"
#include "remora/types.h"

namespace remora {

class MemoryWritebackSink : public WritebackSink {
 public:
  Status WriteBack(std::span<const Rmap> owners, const void* data) override;

  // Copies the stored page into dst; false (dst untouched) if never written.
  bool Read(const PageKey& key, void* dst) const;
  bool Contains(const PageKey& key) const;
  // How many times the page of `key` was written.
  std::uint64_t WritesOf(const PageKey& key) const;
  // Successful WriteBack calls (one per call, whatever the number of owners).
  std::uint64_t writes() const;
  std::size_t pages() const;

  // The next n WriteBack calls fail with kIoError (and store nothing).
  void FailNextWrites(int n);
  // While failing, every WriteBack fails.
  void SetFailing(bool failing);
  // While paused, WriteBack blocks until Resume().
  void Pause();
  void Resume();
  // Writers currently blocked by Pause().
  int blocked_writers() const;

 private:
  struct Page {
    std::array<std::byte, kPageSize> data;
    std::uint64_t writes = 0;
  };

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<PageKey, Page, PageKeyHash> pages_;
  std::uint64_t writes_ = 0;
  int fail_next_ = 0;
  bool failing_ = false;
  bool paused_ = false;
  int blocked_ = 0;
};

}  // namespace remora
