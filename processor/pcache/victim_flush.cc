// The victim cache's flush thread: writes dirty entries to the sink, oldest
// first, in batches: it waits up to flush_delay for a batch to fill unless
// an insert needs room or Flush() was called. A single writer keeps
// write-backs of one page in the order they were inserted. Consecutive entries of one address space
// with a single owner each (the common case: no fork sharing) go in one batch, one round trip to
// the memory node for up to kFlushBatch pages, sent straight from the entries.
#include <algorithm>
#include <cassert>
#include <cstring>

#include "processor/pcache/victim_cache.h"

namespace remora {

void VictimCache::FlushLoop() {
  MutexLock lk(mu_);
  for (;;) {
    if (dirty_queue_.empty()) {
      if (stop_) return;
      flush_cv_.wait(mu_);
      continue;
    }
    // After a failure, back off before the next attempt (unless stopping:
    // then each remaining page gets one last try).
    if (!stop_ && std::chrono::steady_clock::now() < retry_at_) {
      flush_cv_.wait_until(mu_, retry_at_);
      continue;
    }
    // Gather a batch unless someone needs the room (or a flush) now.
    if (!stop_ && flush_urgent_ == 0 && dirty_queue_.size() < batch_target_ &&
        std::chrono::steady_clock::now() < gather_until_) {
      flush_cv_.wait_until(mu_, gather_until_);
      continue;
    }
    std::uint32_t batch[kFlushBatch];
    std::uint64_t uvas[kFlushBatch];
    const void* pages[kFlushBatch];
    std::size_t n = 0;
    std::vector<Rmap> owners;
    while (!dirty_queue_.empty() && n < kFlushBatch) {
      const std::uint32_t index = dirty_queue_.begin()->second;
      Entry& e = entries_[index];
      const bool single = e.owners.size() == 1;
      if (n > 0 && (!single || owners.size() != 1 || e.owners[0].asid != owners[0].asid)) break;
      dirty_queue_.erase(dirty_queue_.begin());
      e.state = VictimState::kWriteback;
      e.redirty = false;
      ++in_writeback_;
      counters_.flush_submitted_dirty->Inc();
      if (n == 0) owners = e.owners;
      uvas[n] = e.owners[0].uva;
      pages[n] = Data(index);
      batch[n++] = index;
      if (!single) break;  // a shared page goes alone
    }

    lk.unlock();
    Status st;
    if (n == 1) {
      st = options_.sink->WriteBack(owners, Data(batch[0]));
    } else {
      // Entries are scattered in the buffer; the sink gathers them from
      // there (they are in writeback: nobody reuses them meanwhile).
      st = options_.sink->WriteBackMany(owners[0].asid, {uvas, n}, {pages, n});
    }
    lk.lock();
    for (std::size_t i = 0; i < n; ++i) FinishWriteback(batch[i], st);
  }
}

void VictimCache::FinishWriteback(std::uint32_t index, const Status& st) {
  Entry& e = entries_[index];
  assert(e.state == VictimState::kWriteback);
  --in_writeback_;
  if (st.ok()) {
    counters_.flush_finished_dirty->Inc();
    backoff_ = std::chrono::milliseconds{0};
    if (e.owners.empty()) {
      FreeLocked(index);
    } else if (e.redirty) {
      e.state = VictimState::kHasData;
      dirty_queue_.emplace(e.seq, index);
    } else {
      e.state = VictimState::kFlushed;
      flushed_queue_.emplace(e.seq, index);
    }
  } else if (e.owners.empty()) {
    // Every owner dropped the page while it was being written (the process
    // exited and its space was destroyed, so the node refused the write).
    // Nobody needs this data: not a failure that should stall inserts or
    // back off other write-backs.
    counters_.flush_orphaned->Inc();
    FreeLocked(index);
  } else {
    counters_.flush_failed->Inc();
    ++failures_;
    last_failure_ = st;
    backoff_ = backoff_.count() == 0 ? options_.retry_backoff
                                     : std::min(backoff_ * 2, options_.max_retry_backoff);
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    if (stop_) {
      ++abandoned_;
      FreeLocked(index);
    } else {
      e.state = VictimState::kHasData;
      dirty_queue_.emplace(e.seq, index);
    }
  }
  changed_.notify_all();
}

}  // namespace remora
