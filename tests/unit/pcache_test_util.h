// A pcache wired the way the runtime wires it, for unit tests: a victim cache
// writing into an in-memory sink, a frame array (one 4 KiB frame per line
// id) holding the data, and hooks that record every wrprotect.
#pragma once

#include <array>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "processor/pcache/pcache.h"
#include "processor/pcache/victim_cache.h"
#include "remora/stats.h"
#include "tests/unit/testing/memory_writeback_sink.h"

namespace remora::testing {

struct RigConfig {
  std::uint64_t capacity = 4 * kPageSize;  // 1 set of 4 ways
  std::uint32_t ways = 4;
  std::uint32_t victim_entries = 16;  // 0: no victim cache
  bool victim_clean = false;
  int busy_evict_attempts = 3;
  // PcacheOptions::on_allocate (a background reclaimer's watermark check).
  std::function<void(std::uint32_t set, std::uint32_t free_left)> on_allocate;
  Replacement replacement = Replacement::kAdaptive;
};

class PcacheRig {
 public:
  explicit PcacheRig(const RigConfig& c = {}) {
    if (c.victim_entries > 0) {
      VictimCacheOptions vo;
      vo.entries = c.victim_entries;
      vo.sink = &sink;
      vo.stats = &stats;
      vo.retry_backoff = std::chrono::milliseconds(1);
      Status st = VictimCache::Create(vo, &victim);
      if (!st.ok()) throw std::runtime_error(st.ToString());
    }
    PcacheOptions po;
    po.hooks.wrprotect = [this](EvictionContext& ctx, std::size_t i) {
      const Rmap& r = ctx.rmaps()[i];
      std::function<Status(LineId, const Rmap&)> hook;
      {
        std::lock_guard lk(mu);
        wrprotected.emplace_back(ctx.line(), r);
        hook = wrprotect_hook;
      }
      return hook ? hook(ctx.line(), r) : Status::Ok();
    };
    po.hooks.copy_out = [this](const EvictionContext& ctx, void* dst) {
      std::memcpy(dst, frames[ctx.line()].data(), kPageSize);
      return Status::Ok();
    };
    po.victim = victim.get();
    po.sink = &sink;
    po.victim_clean = c.victim_clean;
    po.stats = &stats;
    po.busy_evict_attempts = c.busy_evict_attempts;
    po.replacement = c.replacement;
    po.busy_retry_wait = std::chrono::microseconds(100);
    po.on_allocate = c.on_allocate;
    Status st = Pcache::Create({c.capacity, c.ways}, std::move(po), &pcache);
    if (!st.ok()) throw std::runtime_error(st.ToString());
    frames.resize(pcache->geometry().nr_lines());
  }

  // A full miss as the runtime does it: fill, take the data from the victim
  // cache or the sink or zeros, then (optionally) write `byte` all over it.
  // With FillIntent::kReadahead it is a read-ahead of the page instead.
  LineId Load(const PageKey& key, int byte = -1, FillIntent intent = FillIntent::kFault) {
    FillResult r;
    Status st = pcache->Fill(key, &r, intent);
    if (!st.ok()) throw std::runtime_error(st.ToString());
    if (r.allocated) {
      bool dirty = false;
      FillSource src = FillSource::kZeroFill;
      if (victim && victim->Take(key, frames[r.line].data(), &dirty))
        src = FillSource::kVictimCache;
      else if (sink.Read(key, frames[r.line].data()))
        src = FillSource::kMemoryNode;
      else
        frames[r.line].fill(std::byte{0});
      pcache->CompleteFill(r.line, src, dirty);
    }
    if (byte >= 0) {
      frames[r.line].fill(static_cast<std::byte>(byte));
      pcache->SetDirty(key);
    }
    return r.line;
  }

  std::int64_t Count(const std::string& name) const { return stats.Snapshot().Counter(name); }

  std::vector<std::pair<LineId, Rmap>> Wrprotected() {
    std::lock_guard lk(mu);
    return wrprotected;
  }

  // Declaration order is destruction order reversed: the pcache goes first,
  // then the victim cache (its flush thread writes into the sink).
  MemoryWritebackSink sink;
  StatsRegistry stats;
  std::unique_ptr<VictimCache> victim;
  std::unique_ptr<Pcache> pcache;
  std::vector<std::array<std::byte, kPageSize>> frames;

  std::mutex mu;
  std::vector<std::pair<LineId, Rmap>> wrprotected;
  // Set before the pcache is used concurrently; called without `mu`.
  std::function<Status(LineId, const Rmap&)> wrprotect_hook;
};

inline PageKey Page(std::uint64_t vpn, Asid asid = 1) { return {asid, vpn << kPageShift}; }

// An eviction in set `set` held inside its write-protect step until
// Release() (or destruction): its line is under reclaim meanwhile, so a
// fault, a read-ahead or a fork can meet it half-way. Installs the rig's
// wrprotect_hook; the held eviction must succeed.
class HeldEviction {
 public:
  explicit HeldEviction(PcacheRig& rig, std::uint32_t set = 0)
      : release_f_(release_.get_future().share()) {
    rig.wrprotect_hook = [this](LineId, const Rmap&) {
      in_wrprotect_.set_value();
      release_f_.wait();
      return Status::Ok();
    };
    evictor_ =
        std::thread([&rig, set] { EXPECT_EQ(rig.pcache->EvictOne(set), EvictOutcome::kSucceed); });
    in_wrprotect_.get_future().wait();
  }
  ~HeldEviction() { Release(); }
  HeldEviction(const HeldEviction&) = delete;
  HeldEviction& operator=(const HeldEviction&) = delete;

  // Lets the eviction finish and waits for it.
  void Release() {
    if (!released_) {
      released_ = true;
      release_.set_value();
    }
    if (evictor_.joinable()) evictor_.join();
  }

 private:
  std::promise<void> in_wrprotect_, release_;
  std::shared_future<void> release_f_;
  std::thread evictor_;
  bool released_ = false;
};

inline bool AllBytes(const void* p, std::byte b) {
  const auto* c = static_cast<const std::byte*>(p);
  for (std::size_t i = 0; i < kPageSize; ++i)
    if (c[i] != b) return false;
  return true;
}

}  // namespace remora::testing
