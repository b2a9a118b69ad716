// The victim cache's flush thread: writes dirty entries to the sink, oldest
// first, one at a time. A single writer keeps write-backs of one page in the
// order they were inserted.
#include <algorithm>
#include <cassert>

#include "processor/victim_cache.h"

namespace remora {

void VictimCache::FlushLoop() {
  std::unique_lock lk(mu_);
  for (;;) {
    if (dirty_queue_.empty()) {
      if (stop_) return;
      flush_cv_.wait(lk);
      continue;
    }
    // After a failure, back off before the next attempt (unless stopping:
    // then each remaining page gets one last try).
    if (!stop_ && std::chrono::steady_clock::now() < retry_at_) {
      flush_cv_.wait_until(lk, retry_at_);
      continue;
    }
    const std::uint32_t index = dirty_queue_.begin()->second;
    dirty_queue_.erase(dirty_queue_.begin());
    Entry& e = entries_[index];
    e.state = VictimState::kWriteback;
    e.redirty = false;
    ++in_writeback_;
    const std::vector<Rmap> owners = e.owners;
    counters_.flush_submitted_dirty->Inc();

    lk.unlock();
    Status st = options_.sink->WriteBack(owners, Data(index));
    lk.lock();
    FinishWriteback(index, st);
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
