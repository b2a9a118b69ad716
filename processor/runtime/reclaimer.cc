// The background reclaimer: the watermark check on each fill, the queue of
// sets below their low watermark, and the thread that evicts them back up to
// the high watermark in batches.
#include "processor/runtime/reclaimer.h"

#include <errno.h>
#include <sched.h>

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

#include "common/thread_name.h"

namespace remora {

Watermarks DefaultWatermarks(const PcacheGeometry& geometry, unsigned cpus) {
  if (cpus < 2 || geometry.ways() < kMinReclaimWays || geometry.nr_lines() < kMinReclaimLines)
    return {};
  const std::uint32_t low = geometry.ways() / 16;
  return {low, 2 * low, /*adaptive=*/true};
}

unsigned CpusAllowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  // EINVAL: more CPUs than a cpu_set_t holds, which is certainly not one.
  if (sched_getaffinity(0, sizeof set, &set) != 0) return errno == EINVAL ? CPU_SETSIZE : 1;
  return std::max(1, CPU_COUNT(&set));
}

Status ResolveWatermarks(const PcacheGeometry& geometry, unsigned cpus, int low, int high,
                         Watermarks* out) {
  if (low < 0) {
    *out = DefaultWatermarks(geometry, cpus);
    if (high < 0) return Status::Ok();
    // Only high given: keep the default low unless that would exceed it.
    out->low = std::min(out->low, static_cast<std::uint32_t>(high));
    out->high = static_cast<std::uint32_t>(high);
  } else {
    out->low = static_cast<std::uint32_t>(low);
    out->high = high < 0 ? 2 * out->low : static_cast<std::uint32_t>(high);
    out->adaptive = false;
  }
  if (out->low == 0) {
    *out = {};  // disabled: a high watermark alone would never be reached
    return Status::Ok();
  }
  if (out->low > out->high || out->high >= geometry.ways()) {
    return {Code::kInvalidArgument,
            "reclaim watermarks need 0 < low <= high < ways (" + std::to_string(geometry.ways()) +
                "); got low " + std::to_string(out->low) + ", high " + std::to_string(out->high)};
  }
  return Status::Ok();
}

Reclaimer::Reclaimer(Pcache* pcache, ReclaimerOptions options)
    : pcache_(pcache),
      options_(std::move(options)),
      counters_(*options_.counters),
      queued_(pcache->geometry().nr_sets(), false) {
  assert(options_.batch > 0);
  if (options_.background && options_.watermarks.enabled())
    thread_ = std::thread([this] {
      NameThisThread("remora-reclaim");
      Loop();
    });
}

Reclaimer::~Reclaimer() { Stop(); }

void Reclaimer::Stop() {
  {
    MutexLock lk(mu_);
    stop_ = true;
    queue_.clear();
    std::fill(queued_.begin(), queued_.end(), false);
    wake_cv_.notify_all();
    idle_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

namespace {
std::int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool Reclaimer::Holding() const { return options_.watermarks.enabled() && !Paused(); }

bool Reclaimer::Paused() const {
  return SteadyNowNs() < paused_until_ns_.load(std::memory_order_relaxed);
}

void Reclaimer::OnRefault(std::uint32_t set_distance) {
  if (!options_.watermarks.adaptive) return;
  if (set_distance >= options_.watermarks.high) return;  // it would have gone anyway
  counters_.reclaim_reserve_misses->Inc();
  if (!Paused()) epoch_misses_.fetch_add(1, std::memory_order_relaxed);
}

void Reclaimer::EndOfBatch(std::uint32_t evicted) {
  MutexLock lk(mu_);
  epoch_evicted_ += evicted;
  if (epoch_evicted_ < kEpochLines) return;
  const std::uint32_t misses = epoch_misses_.exchange(0, std::memory_order_relaxed);
  const bool bad = std::uint64_t{misses} * 4 > epoch_evicted_;
  epoch_evicted_ = 0;
  if (!bad) {
    pause_ = std::chrono::nanoseconds{0};
    return;
  }
  pause_ = pause_.count() == 0 ? std::chrono::nanoseconds(kFirstPause)
                               : std::min<std::chrono::nanoseconds>(2 * pause_, kMaxPause);
  paused_until_ns_.store(SteadyNowNs() + pause_.count(), std::memory_order_relaxed);
  counters_.reclaim_pauses->Inc();
  // What is queued waits for the pause's end: the next fill below the low
  // watermark queues its set again.
  for (std::uint32_t set : queue_) queued_[set] = false;
  queue_.clear();
}

void Reclaimer::OnAllocate(std::uint32_t set, std::uint32_t free_left) {
  if (free_left >= options_.watermarks.low) return;  // also when disabled
  if (Paused()) return;
  MutexLock lk(mu_);
  if (stop_ || queued_[set]) return;
  queued_[set] = true;
  queue_.push_back(set);
  counters_.reclaim_sets_queued->Inc();
  wake_cv_.notify_one();
}

std::uint32_t Reclaimer::ReclaimSet(std::uint32_t set, std::uint32_t budget, bool* done) {
  std::uint32_t evicted = 0;
  *done = true;
  while (pcache_->FreeLines(set) < options_.watermarks.high) {
    if (evicted == budget) {
      *done = false;
      break;
    }
    const EvictOutcome outcome = pcache_->EvictOne(set, nullptr, EvictFor::kReclaim);
    if (outcome != EvictOutcome::kSucceed) {
      // kBusy: every line is being filled, pinned or evicted; kFailed: the
      // pcache counted it and the line stays. Either way the set's next
      // fill below the low watermark queues it again. kEmpty: nothing left.
      // kOnPath: the rest are a strided walk's coming hits (a column
      // filling its sets), left for a fill that needs the line.
      if (outcome == EvictOutcome::kBusy) counters_.reclaim_busy->Inc();
      break;
    }
    ++evicted;
  }
  return evicted;
}

std::uint32_t Reclaimer::RunBatch() {
  std::uint32_t evicted = 0;
  {
    MutexLock lk(mu_);
    ++running_;
    while (!stop_ && !queue_.empty() && evicted < options_.batch) {
      const std::uint32_t set = queue_.front();
      queue_.pop_front();
      // Unmarked before the work: a fill that takes the set below its low
      // watermark meanwhile queues it again rather than being missed.
      queued_[set] = false;
      lk.unlock();
      bool done;
      evicted += ReclaimSet(set, options_.batch - evicted, &done);
      lk.lock();
      if (!done && !stop_ && !queued_[set]) {  // the budget ran out: later, after the others
        queued_[set] = true;
        queue_.push_back(set);
      }
    }
  }
  if (evicted > 0) {
    counters_.reclaim_lines->Add(evicted);
    counters_.reclaim_batches->Inc();
    if (options_.end_batch) options_.end_batch();
    EndOfBatch(evicted);
  }
  MutexLock lk(mu_);
  if (--running_ == 0 && queue_.empty()) idle_cv_.notify_all();
  return evicted;
}

void Reclaimer::Loop() {
  for (;;) {
    {
      MutexLock lk(mu_);
      wake_cv_.wait(mu_, [&]() REQUIRES(mu_) { return stop_ || !queue_.empty(); });
      if (stop_) return;
    }
    counters_.reclaim_wakeups->Inc();
    // Batches until the queue is empty; each ends with its zaps sent.
    while (RunBatch() > 0) {
    }
  }
}

std::vector<std::uint32_t> Reclaimer::QueuedSets() const {
  MutexLock lk(mu_);
  return {queue_.begin(), queue_.end()};
}

bool Reclaimer::WaitIdle(std::chrono::milliseconds timeout) {
  MutexLock lk(mu_);
  return idle_cv_.wait_for(
      mu_, timeout, [&]() REQUIRES(mu_) { return stop_ || (queue_.empty() && running_ == 0); });
}

}  // namespace remora
