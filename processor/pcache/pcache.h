// The pcache: a set-associative cache of 4 KiB lines standing for the pages
// of every program on this processor node that are resident locally.
//
// The pcache manages metadata only — which page each line holds, its state,
// its reverse maps, recency — and never owns page data: in the runtime the
// data is in the program's own page, in tests and the simulator it is in a
// caller-owned frame array indexed by line id. Eviction reaches the data
// through the hooks in PcacheOptions.
//
// Driving it (the fault handler of the runtime):
//
//   miss on (asid, uva):
//     FillResult r;  Fill({asid, uva}, &r)           // may evict a line first
//     if r.allocated:                                 // we own the line lock
//       FillPlan (fill_plan.h) says where the data is: taken from the
//       victim cache (source kVictimCache, maybe dirty), else the memory
//       node, the file of a private mapping, or zeros; the caller reads it
//       map the page; CompleteFill(r.line, source, dirty)  // or AbortFill
//     else: someone else filled it meanwhile; just map/wake
//   access seen by sampling page tables:   MarkReferenced(line or key)
//   access seen directly:                  Touch(line)
//   write seen (wp fault, pagemap scan):   SetDirty(key)
//   fork:   with evictions paused (PauseEvictions), fork the memory node's
//           space, VictimCache::ShareSpace(parent, child), then
//           ShareSpace(parent, child): every resident line of the parent
//           gains the child's rmap and is marked kLineForked
//   first write (wp fault) with the line locked: OnWrite(line, key) says
//           kDirtied / kReused (no other mapper left) / kShared; for kShared
//           break COW: RemoveRmap(writer key); Fill(writer key);
//           CompleteFill(new line, kCowBreak, true)
//   unmap/exit: RemoveRmap(key) / RemoveSpace(asid), then victim->Drop*(...)
//
// Replacement works with what a runtime actually sees: misses, first
// writes (write-protect faults: OnWrite), refaults (the caller's refault
// shadow; MarkReferenced), never hits (a resident page does not fault).
// Each set keeps one list, front (kept longest) to back (next victim). Set
// dueling (replacement.h) picks per set between recency insertion (a fill
// goes to the front; a referenced line gets a second chance at eviction:
// CLOCK over fill order) and bimodal insertion (a fill goes to the back,
// one in 32 to the front; second chances alike), so that a loop larger than
// the cache keeps a resident subset and a scan does not flush a hot set,
// while recency-friendly programs keep recency. Touch() records an access
// exactly (moves the line to the front), for callers that see them.
//
// Eviction (EvictOne, or Fill when a set has no free line): pick the victim
// under the set lock and mark it kReclaim; then, without the lock, call
// hooks.wrprotect once per rmap (the rmap walk that freezes the page in every
// process), and if the line is dirty, hand its data (hooks.copy_out) to the
// victim cache — or write it to the sink when there is none; hooks.zap drops
// the pages; finally free the line. One EvictionContext carries the
// eviction through the hooks. Clean lines are dropped unless victim_clean is set. Outcomes are
// counted: nr_pcache_eviction_{triggered,succeed,eagain,failure}.
//
// Locking. Each set has its own mutex, so different sets never contend. Order
// within the pcache: evict gate (shared per eviction) -> set lock -> line
// fields (guarded by that set lock). Nothing else is ever acquired under a
// set lock except stats counters and WalkPaths' leaf mutex (the eviction
// scan copies the walks' paths): no I/O, no hooks, no victim cache call, no
// second set lock. The victim cache lock is likewise never held while
// calling the pcache, so the two are never nested. The line lock (kLocked) is
// a flag, not a mutex: it is held across I/O and waited for on the set's
// condition variable with the set lock released; it comes before the evict
// gate (a holder may Fill, and Fill may evict). The set lock's fields are
// GUARDED_BY it and the *Locked helpers REQUIRE it (see the private section);
// the processor manager's global order is in processor_manager.h.
//
// Hooks run with no pcache lock held but with the line under reclaim, so they
// must not call back into this pcache for a page of the line being evicted.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "common/mutex.h"
#include "processor/pcache/geometry.h"
#include "processor/pcache/line.h"
#include "processor/pcache/pcache_stats.h"
#include "processor/pcache/replacement.h"
#include "processor/pcache/rmap.h"
#include "processor/pcache/set.h"
#include "processor/pcache/walk_paths.h"
#include "processor/pcache/writeback_sink.h"
#include "remora/stats.h"
#include "remora/status.h"

namespace remora {

class VictimCache;

// One eviction of one line: made by the pcache for each victim it picks and
// handed to every hook of that eviction, so the steps share what they learn
// without any state of their own. It lives on the evicting thread's stack and
// keeps up to kInline rmaps in place, so an eviction allocates nothing unless
// the line is shared by more mappings than that.
class EvictionContext {
 public:
  static constexpr std::size_t kInline = 2;  // as RmapList: one owner, or a fork's two

  EvictionContext() = default;
  EvictionContext(const EvictionContext&) = delete;
  EvictionContext& operator=(const EvictionContext&) = delete;

  LineId line() const { return line_; }
  // Every mapping of the line when it was picked. Fixed for the eviction:
  // under reclaim nobody adds or removes one.
  std::span<const Rmap> rmaps() const { return {rmaps_.data(), rmaps_.size()}; }
  // The line holds data the memory node does not have (kLineDirty).
  bool dirty() const { return dirty_; }
  // The set's eviction number of this eviction (Pcache::SetEvictions after
  // the victim was picked).
  std::uint32_t set_eviction() const { return set_eviction_; }

  // The hooks' slot for rmaps()[i], opaque to the pcache: what wrprotect
  // found out about that mapping, for copy_out and zap to use (the runtime
  // keeps the process whose page it froze here; empty if it froze nothing).
  // Released with the context, whatever the outcome of the eviction.
  std::shared_ptr<void>& held(std::size_t i) { return held_[i]; }
  const std::shared_ptr<void>& held(std::size_t i) const { return held_[i]; }

 private:
  friend class Pcache;

  LineId line_ = 0;
  bool dirty_ = false;
  std::uint32_t set_eviction_ = 0;
  boost::container::small_vector<Rmap, kInline> rmaps_;
  boost::container::small_vector<std::shared_ptr<void>, kInline> held_;  // parallel to rmaps_
};

// How eviction reaches the data and the mappings of a line. The steps, in
// order, on the evicting thread (LegoOS: pcache_wrprotect, flush,
// try_to_unmap; Linux: folio_mkclean, then the unmap):
//   wrprotect  once per rmap: stop writes to that mapping's page, so that
//              what copy_out reads is final. Called for clean lines too (a
//              clean page is write-protected already in the runtime, which
//              then only notes the owner).
//   copy_out   the data goes somewhere (dirty, or victim_clean).
//   zap        the data is safe (handed off, or clean): drop the pages.
// An error from wrprotect or copy_out aborts the eviction; the line stays
// resident with its data and dirty bit, and zap is not called.
struct EvictHooks {
  // Write-protects the page of ctx.rmaps()[i]; may fill ctx.held(i). Must
  // leave the data readable by copy_out.
  std::function<Status(EvictionContext& ctx, std::size_t i)> wrprotect;
  // Copies the line's kPageSize bytes into dst. Called after every
  // wrprotect succeeded, only when the data goes somewhere. Required.
  std::function<Status(const EvictionContext& ctx, void* dst)> copy_out;
  // Called once the data is safe, before the line is freed: drop the pages
  // now. The runtime queues zaps for the programs' agent threads here; what
  // is queued before the line is freed is visible to the next fill of the
  // page, which waits for it.
  std::function<void(const EvictionContext& ctx)> zap;
};

struct PcacheOptions {
  EvictHooks hooks;
  VictimCache* victim = nullptr;   // where evicted dirty lines go; not owned
  WritebackSink* sink = nullptr;   // used instead when victim is null; not owned
  bool victim_clean = false;       // also keep clean evicted lines in the victim cache
  StatsRegistry* stats = nullptr;  // a private registry if null
  // When every line of a set is busy (locked, pinned, being evicted),
  // Fill tries eviction this many times, waiting up to busy_retry_wait for a
  // line of the set to change in between, and then fails with kBusy.
  int busy_evict_attempts = 64;
  std::chrono::microseconds busy_retry_wait{1000};
  // Called by Fill after it allocated a line of `set`, with the set's free
  // lines left, under no pcache lock (the caller of Fill still holds the new
  // line's lock). The runtime's background reclaimer compares it with the
  // set's low watermark (runtime/reclaimer.h). Must not call Fill or block.
  std::function<void(std::uint32_t set, std::uint32_t free_left)> on_allocate;
  // The replacement policy (replacement.h): kAdaptive (set dueling between
  // recency and bimodal insertion) by default; kRecency is CLOCK over fill
  // order everywhere, kBimodal forces bimodal insertion everywhere (tests).
  Replacement replacement = Replacement::kAdaptive;
};

// Where a fill's data came from (FillPlan decides it for a miss).
//   kMemoryNode   the memory node's copy (the page was written back)
//   kVictimCache  the victim cache (evicted recently; taken from there)
//   kZeroFill     nowhere: a page never written back reads as zeros
//   kCowBreak     a write to a line shared after fork gets a line of its own;
//                 no data moves: the kernel copies the page when the write is
//                 retried
//   kFile         the file a private file mapping was made from (never
//                 written back)
enum class FillSource { kMemoryNode, kVictimCache, kZeroFill, kCowBreak, kFile };

// Why a line is filled.
//   kFault          a fault on the page (the default): the fill votes in set
//                   dueling
//   kReadahead      speculative: the page did not fault, read-ahead expects
//                   it to (a sequential run); inserted as the set's policy
//                   inserts. A wait for the page's eviction is not counted
//                   in nr_pgfault_due_to_concurrent_eviction, which counts
//                   faults. A strided walk's guesses go in this way too.
enum class FillIntent { kFault, kReadahead };

struct FillResult {
  LineId line = 0;
  // True: the line was allocated for the caller, holds the line lock and is
  // empty; finish with CompleteFill or AbortFill. False: the page was already
  // resident (another fault filled it).
  bool allocated = false;
};

// kSucceed: a line was freed. kBusy: every line was locked, pinned or
// already being evicted (LegoOS's eagain). kFailed: wrprotect,
// copy_out or the victim cache failed; the line stays. kEmpty: the set holds
// no page (not counted as an eviction attempt).
// kOnPath: background reclaim found only lines on a strided walk's path
// (walk_paths.h), which it leaves for a fill that needs the line.
enum class EvictOutcome { kSucceed, kBusy, kFailed, kEmpty, kOnPath };
// Why a line is evicted: a fill needs it now, or background reclaim makes
// room ahead of need (and then takes no line a walk will come back to).
enum class EvictFor { kFill, kReclaim };

enum class RemoveResult { kNotMapped, kRemoved, kFreed };

// What a first write to a resident line means (OnWrite).
//   kDirtied  an ordinary first write: the line is now dirty
//   kReused   the line was shared at a fork and the writer is the only
//             mapper left: it is the writer's again, now dirty (LegoOS's
//             wp reuse)
//   kShared   other processes map the line too: nothing changed; the writer
//             needs its own copy (COW)
enum class WriteOutcome { kDirtied, kReused, kShared };

// A copy of one line's metadata, for tests and debugging.
struct LineInfo {
  LineId id = 0;
  std::uint16_t flags = 0;
  std::uint32_t refcount = 0;
  std::uint32_t mapcount = 0;
  std::vector<Rmap> rmaps;
};

class Pcache {
 public:
  static Status Create(const PcacheConfig& config, PcacheOptions options,
                       std::unique_ptr<Pcache>* out);
  ~Pcache();

  Pcache(const Pcache&) = delete;
  Pcache& operator=(const Pcache&) = delete;

  const PcacheGeometry& geometry() const { return geometry_; }
  // The replacement policy's state (which policy each set uses now).
  const SetDueling& dueling() const { return dueling_; }

  // ---- fill (fill.cc) ----
  // Finds the line of `key` or allocates one for it, evicting the set's
  // victim (the replacement policy's pick) if no line is free. Waits while the page is being filled
  // or evicted by another thread. kBusy after busy_evict_attempts eviction attempts found every
  // line busy; an eviction failure's error otherwise. `intent` only decides what is counted (see
  // FillIntent).
  Status Fill(const PageKey& key, FillResult* out, FillIntent intent = FillIntent::kFault);
  // Ends a fill: counts the source, drops the line lock. `dirty` marks data
  // the memory node does not have yet (a victim hit that was not flushed);
  // it must be set here, before the line can be evicted.
  void CompleteFill(LineId line, FillSource source, bool dirty = false);
  // Gives up a fill whose I/O failed: the line is freed.
  void AbortFill(LineId line);

  // ---- lookup and access information (pcache.cc) ----
  // The line mapped by key, if any and not under reclaim; it may still be
  // locked by a fill in progress. A pure lookup: not an access.
  std::optional<LineId> Lookup(const PageKey& key);
  // Referenced hint: the line survives its next eviction scan.
  void MarkReferenced(LineId line);
  bool MarkReferenced(const PageKey& key);
  // Exact access: move to the MRU end.
  void Touch(LineId line);
  // The same for the page of `key`, if resident (not under reclaim): an
  // access the caller knows is coming. False if not resident.
  bool Touch(const PageKey& key);
  // A miss of a confirmed strided walk at the exact byte `address` (the
  // runtime's stride detector): the eviction scan spares the walk's path
  // (walk_paths.h). `walker` tells one space's walks apart (the thread).
  void NoteWalk(Asid asid, std::uint32_t walker, std::uint64_t address, std::int64_t stride) {
    walk_paths_.Note(asid, walker, address, stride,
                     eviction_clock_.load(std::memory_order_relaxed));
  }
  // The page was written. False if not resident (waits out an eviction).
  bool SetDirty(const PageKey& key);
  // A write by `key` to `line`, which the caller holds locked (Pin + Lock):
  // see WriteOutcome. Marks the line dirty (and most recently used, in a
  // set inserting by recency) unless it is shared; with allow_reuse false a kLineForked line is
  // left alone and reported kShared (for callers that only take plain lines).
  WriteOutcome OnWrite(LineId line, const PageKey& key, bool allow_reuse = true);

  // ---- rmaps (line_rmap.cc) ----
  // Unmaps `key`; the line is freed when its last mapping goes and nobody
  // holds it. No write-back: the caller is dropping the page.
  RemoveResult RemoveRmap(const PageKey& key);
  // RemoveRmap for every page of `asid`; returns how many rmaps went.
  std::size_t RemoveSpace(Asid asid);
  // RemoveRmap for every page of `asid` in [start, end), by a walk of the
  // lines: for ranges with more pages than the cache has lines (a munmap of
  // a huge reservation costs the cache's size, not the range's).
  std::size_t RemoveRange(Asid asid, std::uint64_t start, std::uint64_t end);
  // Fork: every line mapped by `parent` is also mapped by `child` at the
  // same address and marked kLineForked. Waits out evictions in flight (call
  // it with evictions paused to make it atomic with respect to them).
  // Returns how many lines are now shared. `child` must be a new space
  // that maps nothing yet (a page is never mapped by two lines).
  std::size_t ShareSpace(Asid parent, Asid child);
  // Reverse maps in the whole cache (the sum of mapcounts).
  std::uint64_t CountRmaps();
  // Calls fn(const Rmap&) for each rmap of `line` under the set lock; fn must
  // not call into the pcache.
  void WalkRmaps(LineId line, const std::function<void(const Rmap&)>& fn);

  // ---- holding a line across I/O (hold.cc) ----
  // Pin: the line cannot be evicted or freed until Unpin. False if `key` is
  // not resident.
  bool Pin(const PageKey& key, LineId* line);
  void Unpin(LineId line);
  // Line lock (LegoOS lock_pcache), for holders of a pin. Waits while locked.
  void Lock(LineId line);
  void Unlock(LineId line);

  // ---- eviction (evict.cc) ----
  // Evicts one line of `set` (background reclaim ahead of need): the line
  // the replacement policy picks, as a fill would. *error gets the reason
  // of a kFailed outcome.
  EvictOutcome EvictOne(std::uint32_t set, Status* error = nullptr, EvictFor why = EvictFor::kFill)
      EXCLUDES(sets_[set].mu);
  // Holds off every eviction until the returned lock is released; waits for
  // the evictions in flight to finish. Fork uses it so that no line moves
  // to the victim cache or the memory node while the child's share of them
  // is being set up. The holder must not Fill (that may evict).
  // (A std::unique_lock: the caller keeps it for a scope of its own, which
  // the analysis does not follow.)
  std::unique_lock<SharedMutex> PauseEvictions() EXCLUDES(evict_gate_);

  // ---- accounting and checks (check.cc for CheckInvariants) ----
  std::uint64_t lines_used() const;
  // Free lines of `set` right now (the reclaimer's watermark check).
  std::uint32_t FreeLines(std::uint32_t set) EXCLUDES(sets_[set].mu);
  // How many victims `set` has given so far (wrapping at 2^32). A page
  // evicted at number e that faults back at number n was n - e evictions of
  // its set from staying: with that many more lines in the set it would
  // likely still be there.
  std::uint32_t SetEvictions(std::uint32_t set) const {
    return sets_[set].evictions.load(std::memory_order_relaxed);
  }
  LineInfo Inspect(LineId line);
  // Checks every set's lists and every line's fields against each other.
  Status CheckInvariants();

 private:
  Pcache(const PcacheGeometry& geometry, PcacheOptions options);

  PcacheSet& SetOf(LineId line) { return sets_[geometry_.SetOfLine(line)]; }
  PcacheLine& Line(LineId line) { return lines_[line]; }

  // *Locked helpers require the set's lock, named the way their callers
  // name the set: sets_[set].mu for a set index, s.mu for a PcacheSet&. (The
  // analysis compares lock expressions and does not see through references,
  // so a caller locks the set under the same name it passes on.) A line's
  // fields are guarded by its set's lock too, which an attribute on
  // PcacheLine cannot name: they are only touched inside *Locked helpers or
  // with the set's MutexLock in scope.
  PcacheLine* FindLocked(std::uint32_t set, const PageKey& key) REQUIRES(sets_[set].mu);
  // Like FindLocked, but waits (releasing the lock) while the page's line is
  // under reclaim, so the caller sees the outcome of that eviction.
  PcacheLine* FindSettledLocked(std::uint32_t set, const PageKey& key) REQUIRES(sets_[set].mu);
  // Takes a free line for `key` and puts it where the set's policy inserts.
  PcacheLine* AllocateLocked(PcacheSet& s, const PageKey& key, FillIntent intent) REQUIRES(s.mu);
  void FreeLocked(PcacheSet& s, PcacheLine& line) REQUIRES(s.mu);
  void MoveToFrontLocked(PcacheSet& s, PcacheLine& line) REQUIRES(s.mu);
  // Frees the line if it has no mapping left and nobody holds it.
  bool FreeIfUnusedLocked(PcacheSet& s, PcacheLine& line) REQUIRES(s.mu);
  Status CheckSetLocked(std::uint32_t set) REQUIRES(sets_[set].mu);

  template <typename Fn>
  void ForEachLineOfSpace(Asid asid, Fn&& fn);  // line_rmap.cc

  // The set's victim: the idle line nearest the back of its list (see
  // replacement.h for how referenced hints count).
  // With take_path_line false, a set whose only candidates are on a walk's
  // path gives none, and *only_path says so.
  PcacheLine* PickVictimLocked(PcacheSet& s, bool take_path_line, bool* only_path) REQUIRES(s.mu);
  // Whether a mapping of the line is on one of the n paths.
  static bool OnWalkPath(const RmapList& rmaps, const WalkPaths::Lattice* paths, int n);
  std::uint32_t SetIndexOf(const PcacheSet& s) const {
    return static_cast<std::uint32_t>(&s - sets_.get());
  }
  // Runs with no set lock held (not expressible as EXCLUDES: any set).
  Status HandOffData(const EvictionContext& ctx);

  const PcacheGeometry geometry_;
  const PcacheOptions options_;
  std::unique_ptr<StatsRegistry> own_stats_;
  PcacheCounters counters_;
  std::unique_ptr<PcacheLine[]> lines_;
  std::unique_ptr<PcacheSet[]> sets_;
  std::atomic<std::uint64_t> used_{0};  // valid lines, for lines_used()
  SetDueling dueling_;
  // Lines picked for eviction so far: the clock that ages walks' paths.
  std::atomic<std::uint64_t> eviction_clock_{0};
  WalkPaths walk_paths_;
  // Taken shared by every eviction, exclusively by PauseEvictions. Never
  // acquired under a set lock; held across the eviction's hooks and I/O.
  // It guards no field: it is a gate, ordered before every set lock.
  SharedMutex evict_gate_;
};

}  // namespace remora
