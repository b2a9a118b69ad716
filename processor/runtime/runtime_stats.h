// The runtime's metrics (fault path, zaps, sessions): one table (see
// remora/metric_table.h), looked up once. LegoOS names where one exists;
// docs/stats.md describes each.
#pragma once

#include <atomic>
#include <cstdint>

#include "processor/pcache/pcache_stats.h"
#include "remora/metric_table.h"

namespace remora {

// nr_pgfault is LegoOS's: every fault the manager served. The demo's paged
// region counts its misses under this entry too (they are its faults).
#define REMORA_RUNTIME_METRICS(X)                                                              \
  X(pgfault, Counter, "nr_pgfault", "faults", "page faults served (missing + write-protect)")  \
  X(pgfault_missing, Counter, "nr_pgfault_missing", "faults",                                  \
    "missing-page faults (pcache misses)")                                                     \
  X(pgfault_wp, Counter, "nr_pgfault_wp", "faults",                                            \
    "write-protect faults (first write of a clean line)")                                      \
  /* first write to a line still shared after fork */                                          \
  X(pgfault_wp_cow, Counter, "nr_pgfault_wp_cow", "faults",                                    \
    "first writes to a line still shared after fork: the writer got its own line (COW)")       \
  /* first write to a forked line by its last mapper */                                        \
  X(pgfault_wp_reuse, Counter, "nr_pgfault_wp_reuse", "faults",                                \
    "first writes to a line shared at fork by the only process still mapping it")              \
  /* read misses installed writable: writes predicted */                                       \
  X(write_predicted, Counter, "nr_pgfault_write_predicted", "faults",                          \
    "read misses installed writable and dirty: the program's reads were followed by writes")   \
  X(write_probe, Counter, "nr_pgfault_write_probe", "faults",                                  \
    "read misses installed write-protected while writes were predicted (probes)")              \
  X(write_probe_written, Counter, "nr_pgfault_write_probe_written", "faults",                  \
    "probes whose write-protect fault came: the prediction confirmed")                         \
  /* fault threads polling for the next fault */                                               \
  X(fault_spin_hit, Counter, "nr_fault_spin_hit", "spins",                                     \
    "fault threads' polls after a fault that found the next message (no sleep)")               \
  X(fault_spin_miss, Counter, "nr_fault_spin_miss", "spins",                                   \
    "fault threads' polls after a fault that found nothing (then slept)")                      \
  /* held back while the program forked */                                                     \
  X(pgfault_deferred, Counter, "nr_pgfault_deferred_by_fork", "faults",                        \
    "faults held back until the program's fork was set up")                                    \
  /* sessions switched to shared reading */                                                    \
  X(fault_reader_shared, Counter, "nr_fault_reader_shared", "programs",                        \
    "programs whose faults came from a second thread: fault threads switched to shared waits") \
  /* on memory released meanwhile: only woken */                                               \
  X(pgfault_range_gone, Counter, "nr_pgfault_range_gone", "faults",                            \
    "faults on memory the program was releasing (munmap, madvise): woken, not filled")         \
  /* forks whose child got a session */                                                        \
  X(fork, Counter, "nr_fork", "forks", "forks taken over: the child got its own session")      \
  /* forks the manager could not take over */                                                  \
  X(fork_failed, Counter, "nr_fork_failed", "forks",                                           \
    "forks the manager could not take over (the child was stopped)")                           \
  /* another fault filled the page first */                                                    \
  X(pgfault_already_filled, Counter, "nr_pgfault_already_filled", "faults",                    \
    "faults resolved by another fault on the same page")                                       \
  /* resident line whose page vanished */                                                      \
  X(pgfault_stale_line, Counter, "nr_pgfault_stale_line", "lines",                             \
    "resident lines found without their page (dropped, refilled)")                             \
  X(pgfault_failed, Counter, "nr_pgfault_failed", "faults", "faults that could not be served") \
  X(zap_pages, Counter, "nr_zap_pages", "pages", "pages sent to agents to be dropped")         \
  /* backpressure: an eviction waited for an agent */                                          \
  X(zap_throttle_wait, Counter, "nr_zap_throttle_wait", "evictions",                           \
    "evictions that waited for an agent with more than kMaxPending zaps pending")              \
  /* the agent did not answer in time */                                                       \
  X(zap_throttle_gave_up, Counter, "nr_zap_throttle_gave_up", "evictions",                     \
    "backpressure waits that timed out (the program was stopped): its bound was lifted")       \
  X(refault_activate, Counter, "nr_pcache_refault_activate", "lines",                          \
    "fills of pages evicted within a quarter cache's worth of evictions (start referenced)")   \
  X(refault_writable, Counter, "nr_pcache_refault_writable", "lines",                          \
    "refaults of pages dirty when evicted, installed writable (no write-protect fault)")       \
  X(readahead_pages, Counter, "nr_pcache_readahead", "pages",                                  \
    "pages filled ahead of a sequential or strided run of misses")                             \
  X(readahead_stride_pages, Counter, "nr_pcache_readahead_stride", "pages",                    \
    "of those, pages filled ahead of a thread's strided walk (a matrix column)")               \
  X(readahead_stride_touched, Counter, "nr_pcache_readahead_stride_touched", "lines",          \
    "resident lines ahead of a strided walk marked used: the walk's coming hits")              \
  X(readahead_stride_wasted, Counter, "nr_pcache_readahead_stride_wasted", "pages",            \
    "strided read-ahead pages that faulted soon after: evicted before the program used them")  \
  X(readahead_stride_backoff, Counter, "nr_pcache_readahead_stride_backoff", "windows",        \
    "strided read-ahead windows skipped because too many of the last pages were wasted")       \
  X(write_ahead_pages, Counter, "nr_pcache_write_ahead", "pages",                              \
    "resident clean pages un-protected (and dirtied) ahead of a sequential write run")         \
  X(evict_owner_gone, Counter, "nr_evict_owner_gone", "pages",                                 \
    "evicted pages whose process or range was already gone")                                   \
  X(fill_owner_gone, Counter, "nr_pcache_fill_owner_gone", "fills",                            \
    "fills abandoned because the process exited or unmapped the page meanwhile")               \
  X(reclaim_wakeups, Counter, "nr_reclaim_wakeups", "wakeups",                                 \
    "times the background reclaimer woke up to reclaim queued sets")                           \
  X(reclaim_sets_queued, Counter, "nr_reclaim_sets_queued", "sets",                            \
    "sets queued for background reclaim (a fill left them below the low watermark)")           \
  X(reclaim_lines, Counter, "nr_reclaim_background_lines", "lines",                            \
    "lines evicted by the background reclaimer")                                               \
  X(reclaim_batches, Counter, "nr_reclaim_batches", "batches",                                 \
    "background reclaim batches (their zaps sent together)")                                   \
  X(reclaim_busy, Counter, "nr_reclaim_busy", "sets",                                          \
    "queued sets left below the high watermark because every line was busy")                   \
  X(reclaim_reserve_misses, Counter, "nr_reclaim_reserve_misses", "pages",                     \
    "refaults the free lines caused: back before their set evicted `high` more lines")         \
  X(reclaim_pauses, Counter, "nr_reclaim_pauses", "pauses",                                    \
    "times background reclaim paused: its free lines caused more misses than it was worth")    \
  X(cpu_latency_qos_holds, Counter, "nr_cpu_latency_qos_holds", "spells",                      \
    "times a CPU latency QoS request was made: faults came densely (cpu_latency_qos.h)")       \
  X(sessions_started, Counter, "nr_processes_attached", "programs", "programs attached")       \
  X(sessions_ended, Counter, "nr_processes_exited", "programs", "programs torn down")          \
  X(ranges_mapped, Counter, "nr_ranges_mapped", "ranges", "ranges registered (mmap)")          \
  X(ranges_unmapped, Counter, "nr_ranges_unmapped", "ranges", "ranges released (munmap)")      \
  X(ranges_discarded, Counter, "nr_ranges_discarded", "ranges", "ranges discarded (madvise)")  \
  X(processes_attached, Gauge, "processes_attached", "programs", "programs attached now")      \
  X(zaps_pending, Gauge, "zaps_pending", "pages",                                              \
    "zaps queued or sent and not yet acknowledged (at the last snapshot)")                     \
  X(unmanaged_anon_bytes, Gauge, "unmanaged_anon_bytes", "bytes",                              \
    "resident anonymous memory outside managed ranges, all programs (at the last sample)")     \
  X(unmanaged_anon_peak_bytes, Gauge, "unmanaged_anon_peak_bytes", "bytes",                    \
    "the most resident anonymous memory outside managed ranges one program had (sampled)")     \
  X(memory_node_used_pages, Gauge, "memory_node_used_pages", "pages",                          \
    "pages stored on the memory node (at the last snapshot)")                                  \
  X(pcache_rmaps, Gauge, "pcache_rmaps", "rmaps",                                              \
    "reverse maps of the pcache's lines (at the last snapshot)")                               \
  X(reclaim_free_lines_reserved, Gauge, "reclaim_free_lines_reserved", "lines",                \
    "lines the low watermark keeps free (sets x low): steady-state capacity is the rest")      \
  X(pcache_metadata_bytes_per_line, Gauge, "pcache_metadata_bytes_per_line", "bytes",          \
    "manager metadata per pcache line (line, set share, shadow share)")                        \
  X(cpu_latency_qos_usable, Gauge, "cpu_latency_qos_usable", "bool",                           \
    "1: the manager can hold a CPU latency QoS request (/dev/cpu_dma_latency opens)")          \
  X(cpu_latency_qos_held, Gauge, "cpu_latency_qos_held", "bool",                               \
    "1: a CPU latency QoS request is held now (idle CPUs poll while faults are dense)")        \
  /* missing fault: read to installed */                                                       \
  X(pgfault_service_ns, Histogram, "pgfault_service_ns", "ns",                                 \
    "missing fault: message read to page installed")                                           \
  X(wp_fault_service_ns, Histogram, "wp_fault_service_ns", "ns",                               \
    "write-protect fault: message read to page writable")

struct RuntimeCounters {
  explicit RuntimeCounters(StatsRegistry* r)
      : pgfault_concurrent_eviction(GetMetric<Counter>(
            r, PcacheCounters::Spec(PcacheCounters::Id::fault_concurrent_eviction))) {
    Register(r);
  }

  // The pcache's entry (the same counter as its fault_concurrent_eviction):
  // a write-protect fault whose line was evicted meanwhile is served as a
  // missing fault and counted here.
  Counter* pgfault_concurrent_eviction;
  REMORA_METRIC_TABLE(REMORA_RUNTIME_METRICS)

  // A program's sample of its unmanaged anonymous bytes (local_memory.h):
  // raises unmanaged_anon_peak_bytes to it if it is the largest yet.
  void NoteUnmanagedAnon(std::int64_t bytes) {
    std::int64_t peak = unmanaged_anon_peak_.load(std::memory_order_relaxed);
    while (bytes > peak) {
      if (unmanaged_anon_peak_.compare_exchange_weak(peak, bytes, std::memory_order_relaxed)) {
        unmanaged_anon_peak_bytes->Add(bytes - peak);  // each raise is added once
        return;
      }
    }
  }

 private:
  std::atomic<std::int64_t> unmanaged_anon_peak_{0};
};

}  // namespace remora
