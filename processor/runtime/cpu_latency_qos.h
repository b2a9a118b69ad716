// Keeps the machine's idle CPUs quick to wake while programs fault densely:
// a CPU latency QoS request (/dev/cpu_dma_latency, the kernel's "CPU latency
// QoS" interface; what tuned's latency-performance profile holds for good)
// held only while faults come fast, dropped when they stop.
//
// Why: a fault is two wake-ups. The program sleeps in the kernel until
// UFFDIO_COPY wakes it, and a fault thread sleeps until the next fault wakes
// it. When the two run on different CPUs (the scheduler sends a woken program
// to an idle CPU rather than the busy one of its waker), each wake-up finds a
// CPU that went idle the moment its thread slept. An idle CPU in a deep state
// (a halted vCPU, a package C-state) takes tens of microseconds to come back:
// measured on a 2-vCPU VM, a random read-modify-write access cost ~100 us at
// p50 unpinned against ~24 us with everything on one CPU, and ~25 us unpinned
// with this request held. Spinning on the userfaultfd (spin_budget.h) keeps
// the fault thread's CPU awake but not the program's; only the CPU's idle
// governor can, and the QoS request is how a process asks it to.
//
// A request of 0 us makes idle CPUs poll instead of entering a sleep state,
// on every CPU of the machine: it costs power (on a VM, host CPU time) while
// it is held. So it is held only while faults are dense: at least
// `dense_faults` in a `period`, and dropped after `quiet_periods` periods in
// a row below that (CpuLatencyQosOptions). An idle program costs nothing:
// the thread sleeps on a condition variable until the first fault after a
// quiet spell. The thread alone opens and closes the request; each spell
// ends with it closed.
//
// Opening /dev/cpu_dma_latency needs root (or a udev rule granting a group
// write access). Where it cannot be opened, description() says why and the
// object does nothing; unpinned misses then cost what they cost.
//
// Locking: mu_ is a leaf. OnFaults() is called by fault threads with a line
// lock or the fault gate possibly held; it takes mu_ only on the first fault
// after a quiet spell.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "processor/runtime/runtime_stats.h"

namespace remora {

enum class CpuLatencyQosMode { kOff, kAuto };

struct CpuLatencyQosOptions {
  CpuLatencyQosMode mode = CpuLatencyQosMode::kAuto;
  std::string device = "/dev/cpu_dma_latency";
  std::int32_t latency_us = 0;  // the request: 0 keeps idle CPUs polling
  std::chrono::milliseconds period{10};
  std::uint32_t dense_faults = 20;  // per period: 2 000 faults a second
  std::uint32_t quiet_periods = 5;  // below dense this many periods in a row: drop
  // CPUs in the manager's affinity mask: with one, the program's faults are
  // served on the CPU it waits on, and the CPUs the request would keep
  // polling are ones nobody here uses (on an SMT host or a VM their polling
  // slows the CPU that works: matmul at 25% on one CPU took 76 s with the
  // request against 52 s without). So kAuto makes no request then.
  unsigned cpus_allowed = 2;
  RuntimeCounters* counters = nullptr;  // required; not owned
};

class CpuLatencyQos {
 public:
  // Mode kAuto with two CPUs or more: checks that the device can be opened
  // (a request opened and closed at once has no effect) and starts the
  // watching thread; otherwise stays off, description() saying why. Never
  // fails.
  static std::unique_ptr<CpuLatencyQos> Create(CpuLatencyQosOptions options);
  ~CpuLatencyQos();  // drops the request, ends the thread

  CpuLatencyQos(const CpuLatencyQos&) = delete;
  CpuLatencyQos& operator=(const CpuLatencyQos&) = delete;

  // Whether requests can be made (kAuto and the device opened).
  bool usable() const { return usable_; }
  // One phrase for the start-up line: held while faulting, or why not.
  const std::string& description() const { return description_; }
  // Whether the request is held now.
  bool held() const { return held_.load(std::memory_order_relaxed); }

  // A fault thread read `n` fault messages. Cheap: a relaxed add, and a
  // wake-up of the watching thread on the first fault after a quiet spell.
  void OnFaults(std::uint32_t n) {
    if (!usable_) return;
    faults_.fetch_add(n, std::memory_order_relaxed);
    if (!watching_.load(std::memory_order_relaxed)) Wake();
  }

 private:
  explicit CpuLatencyQos(CpuLatencyQosOptions options);
  void Wake() EXCLUDES(mu_);
  void Loop() EXCLUDES(mu_);
  // Watches one busy spell, period by period, holding the request while
  // faults are dense. Returns, the request dropped, when the spell is over
  // or at destruction.
  void WatchSpell() EXCLUDES(mu_);
  // Opens the request; on failure it stays dropped (tried again next period).
  void Hold();
  void Drop();

  const CpuLatencyQosOptions options_;
  RuntimeCounters& counters_;
  bool usable_ = false;
  std::string description_;
  int fd_ = -1;  // the open request (the watching thread's only)
  std::atomic<bool> held_{false};
  std::atomic<std::uint32_t> faults_{0};
  std::atomic<bool> watching_{false};  // the thread watches a spell (no wake needed)

  Mutex mu_;
  CondVar cv_;
  bool wake_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace remora
