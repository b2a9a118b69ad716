// The victim cache: a small, fully associative cache of lines recently
// evicted from the pcache, with their data.
//
// It is exclusive with the pcache: a page is in one or the other. A fault that
// misses the pcache asks the victim cache first (Take); a hit copies the data
// out and removes that owner from the entry, so the page moves back into the
// pcache. A line shared after fork is stored once with all its owners; an
// entry stays while any owner is left.
//
// Entry states:
//
//   has-data   dirty, waiting for the flush thread
//   writeback  the flush thread is writing it to the sink (outside the lock)
//   flushed    clean copy; may be replaced, oldest first (FIFO)
//
// Dirty data is never dropped. When every entry is dirty or being written,
// Insert waits for the flush thread; it gives up only when a write-back fails
// while it waits, and then returns that error so the caller keeps the line.
//
// Owners added while an entry is being written (fork: ShareSpace) re-dirty it:
// the write in flight did not cover them.
//
// Locking: one mutex guards all metadata; page data is copied in while the
// entry is reserved (no lookup can see it) and written out while in
// writeback (no one may reuse it), both without the mutex. The victim cache
// never calls into the pcache, and the pcache never calls it with a set lock
// held, so the two locks are never nested. mu_ is never held across I/O or
// a copy; the flush thread drops it around every write-back.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "processor/pcache/pcache_stats.h"
#include "processor/pcache/rmap.h"
#include "processor/pcache/writeback_sink.h"
#include "remora/stats.h"
#include "remora/status.h"

namespace remora {

struct VictimCacheOptions {
  std::uint32_t entries = 16;
  WritebackSink* sink = nullptr;   // required; not owned
  StatsRegistry* stats = nullptr;  // optional; a private registry if null
  // After a failed write-back the flush thread waits this long before it
  // tries again, doubling up to max_retry_backoff.
  std::chrono::milliseconds retry_backoff{10};
  std::chrono::milliseconds max_retry_backoff{1000};
  // Dirty entries wait up to this long for a full batch before the flush
  // thread writes them: one wake-up and one round trip per batch instead of
  // per page. Nobody waits for them meanwhile — a fill takes a queued
  // entry's data from here — unless the cache runs out of room or Flush()
  // is called, which end the wait at once. 0: write each page at once.
  std::chrono::microseconds flush_delay{2000};
};

enum class VictimState : std::uint8_t { kFree, kReserved, kHasData, kWriteback, kFlushed };

// A copy of one entry's metadata, for tests and debugging.
struct VictimEntryInfo {
  VictimState state;
  bool dirty;
  std::vector<Rmap> owners;
};

class VictimCache {
 public:
  // Fills dst (kPageSize bytes) with the page being inserted.
  using CopyFn = std::function<Status(void* dst)>;

  static Status Create(const VictimCacheOptions& options, std::unique_ptr<VictimCache>* out);
  // Writes back what is still dirty (one more attempt each), then stops the
  // flush thread. Call Flush() first to see write-back errors.
  ~VictimCache();

  VictimCache(const VictimCache&) = delete;
  VictimCache& operator=(const VictimCache&) = delete;

  // Stores an evicted page for `owners` (non-empty). copy(dst) provides the
  // data; it runs without the cache's lock. Clean pages (dirty == false) are
  // kept as flushed copies. An owner already present in another entry is
  // moved to the new one (its data is newer). Blocks while the cache is full
  // of dirty data; fails only if copy fails or a write-back fails meanwhile.
  Status Insert(std::span<const Rmap> owners, bool dirty, const CopyFn& copy) EXCLUDES(mu_);
  Status Insert(std::span<const Rmap> owners, bool dirty, const void* data) EXCLUDES(mu_);

  // Exclusive lookup for a fill. On a hit copies the page into dst, removes
  // `key` from the entry's owners and sets *dirty if the memory node's copy
  // may be older (the caller must then mark its line dirty).
  bool Take(const PageKey& key, void* dst, bool* dirty) EXCLUDES(mu_);
  bool Contains(const PageKey& key) const EXCLUDES(mu_);

  // Fork: every entry owned by (parent, uva) also becomes owned by (child, uva).
  // redirty_flushed: a flushed entry that gains the child is written again
  // (for both). Needed when the memory node forked the space before this
  // call: a flush that landed after that fork reached the parent's page only.
  void ShareSpace(Asid parent, Asid child, bool redirty_flushed = false) EXCLUDES(mu_);
  // Exit or unmap: forgets owners without writing their data back. Drop
  // first waits for a write of the page in flight, so the caller may free
  // the page on the memory node right after.
  std::size_t DropSpace(Asid asid) EXCLUDES(mu_);
  bool Drop(const PageKey& key) EXCLUDES(mu_);
  // Drop for every page of `asid` in [start, end): a walk of the entries,
  // whatever the range's size.
  std::size_t DropRange(Asid asid, std::uint64_t start, std::uint64_t end) EXCLUDES(mu_);

  // Waits until no dirty data is left. Returns the error of a write-back that
  // failed while waiting (the data stays queued and is retried).
  Status Flush() EXCLUDES(mu_);

  std::uint32_t capacity() const { return options_.entries; }  // entries_.size(), fixed
  std::size_t used() const EXCLUDES(mu_);
  std::size_t dirty() const EXCLUDES(mu_);
  std::vector<VictimEntryInfo> Entries() const EXCLUDES(mu_);

 private:
  struct Entry {
    VictimState state = VictimState::kFree;
    bool redirty = false;   // owners added during writeback
    std::uint64_t seq = 0;  // insertion order, for FIFO replacement
    std::vector<Rmap> owners;
  };
  using SeqSet = std::set<std::pair<std::uint64_t, std::uint32_t>>;  // (seq, index)

  explicit VictimCache(const VictimCacheOptions& options);

  // All *Locked helpers require mu_ (and so does Unqueue).
  bool ReserveLocked(std::uint32_t* index) REQUIRES(mu_);
  void PublishLocked(std::uint32_t index, std::span<const Rmap> owners, bool dirty) REQUIRES(mu_);
  void RemoveOwnerLocked(std::uint32_t index, const Rmap& owner) REQUIRES(mu_);
  void ReleaseIfOrphanLocked(std::uint32_t index) REQUIRES(mu_);
  void FreeLocked(std::uint32_t index) REQUIRES(mu_);
  void Unqueue(Entry& e, std::uint32_t index) REQUIRES(mu_);

  std::byte* Data(std::uint32_t index) const { return buffer_.get() + index * kPageSize; }

  static constexpr std::size_t kFlushBatch = 16;

  void FlushLoop() EXCLUDES(mu_);  // the flush thread (victim_flush.cc)
  void FinishWriteback(std::uint32_t index, const Status& st) REQUIRES(mu_);

  const VictimCacheOptions options_;
  std::unique_ptr<StatsRegistry> own_stats_;
  VictimCounters counters_;
  // Page data: not guarded by mu_. An entry's page is written only while
  // the entry is kReserved (by its inserter) and read while it is published
  // (under mu_) or in kWriteback (by the flush thread); see the header.
  std::unique_ptr<std::byte[]> buffer_;

  mutable Mutex mu_;
  CondVar changed_;   // entries freed, flushed, or a write failed
  CondVar flush_cv_;  // wakes the flush thread
  std::vector<Entry> entries_ GUARDED_BY(mu_);
  const std::size_t batch_target_;  // dirty entries worth one write-back batch
  std::vector<std::uint32_t> free_ GUARDED_BY(mu_);
  std::unordered_map<PageKey, std::uint32_t, PageKeyHash> index_ GUARDED_BY(mu_);  // owner -> entry
  SeqSet dirty_queue_ GUARDED_BY(mu_);    // has-data entries, oldest first
  SeqSet flushed_queue_ GUARDED_BY(mu_);  // flushed entries, oldest first
  std::uint64_t next_seq_ GUARDED_BY(mu_) = 0;
  std::uint32_t in_writeback_ GUARDED_BY(mu_) = 0;
  std::uint64_t failures_ GUARDED_BY(mu_) = 0;  // write-backs failed so far
  Status last_failure_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point retry_at_ GUARDED_BY(mu_){};
  // Gathering a batch (flush_delay): when the oldest queued dirty entry
  // must go, and how many callers need room or a flush now.
  std::chrono::steady_clock::time_point gather_until_ GUARDED_BY(mu_){};
  std::uint32_t flush_urgent_ GUARDED_BY(mu_) = 0;
  std::chrono::milliseconds backoff_ GUARDED_BY(mu_){0};
  bool stop_ GUARDED_BY(mu_) = false;
  // Dirty pages that failed to write during shutdown.
  std::uint64_t abandoned_ GUARDED_BY(mu_) = 0;
  std::thread flusher_;
};

}  // namespace remora
