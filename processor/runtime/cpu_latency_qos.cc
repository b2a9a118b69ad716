#include "processor/runtime/cpu_latency_qos.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "common/thread_name.h"

namespace remora {

std::unique_ptr<CpuLatencyQos> CpuLatencyQos::Create(CpuLatencyQosOptions options) {
  std::unique_ptr<CpuLatencyQos> q(new CpuLatencyQos(std::move(options)));
  if (q->options_.mode == CpuLatencyQosMode::kOff) {
    q->description_ = "no CPU latency QoS (--cpu-latency-qos off)";
    return q;
  }
  if (q->options_.cpus_allowed < 2) {
    q->description_ = "no CPU latency QoS (the manager may run on one CPU only)";
    return q;
  }
  // Opening alone adds a request at the default value: no constraint.
  const int fd = ::open(q->options_.device.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    q->description_ =
        fmt::format("no CPU latency QoS ({}: {})", q->options_.device, std::strerror(errno));
    return q;
  }
  ::close(fd);
  q->usable_ = true;
  q->description_ = "CPU latency QoS while faults are dense";
  q->counters_.cpu_latency_qos_usable->Add(1);
  q->thread_ = std::thread([p = q.get()] { p->Loop(); });
  return q;
}

CpuLatencyQos::CpuLatencyQos(CpuLatencyQosOptions options)
    : options_(std::move(options)), counters_(*options_.counters) {}

CpuLatencyQos::~CpuLatencyQos() {
  {
    MutexLock lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (usable_) counters_.cpu_latency_qos_usable->Sub(1);
}

void CpuLatencyQos::Wake() {
  {
    MutexLock lk(mu_);
    if (wake_) return;
    wake_ = true;
  }
  cv_.notify_one();
}

void CpuLatencyQos::Loop() {
  NameThisThread("remora-cpuqos");
  for (;;) {
    {
      MutexLock lk(mu_);
      cv_.wait(mu_, [this]() REQUIRES(mu_) { return wake_ || stop_; });
      if (stop_) break;
      wake_ = false;
    }
    // Faults that come while a spell is watched need no wake-up; one that
    // comes between the spell's end and this store wakes the next spell.
    watching_.store(true, std::memory_order_relaxed);
    WatchSpell();
    watching_.store(false, std::memory_order_relaxed);
  }
}

void CpuLatencyQos::WatchSpell() {
  std::uint32_t quiet = 0;
  for (;;) {
    {
      MutexLock lk(mu_);
      if (cv_.wait_for(mu_, options_.period, [this]() REQUIRES(mu_) { return stop_; })) break;
    }
    const std::uint32_t n = faults_.exchange(0, std::memory_order_relaxed);
    if (n >= options_.dense_faults) {
      quiet = 0;
      if (!held()) Hold();
    } else if (++quiet >= options_.quiet_periods) {
      break;
    }
  }
  Drop();
}

void CpuLatencyQos::Hold() {
  const int fd = ::open(options_.device.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;  // tried again next period
  const std::int32_t value = options_.latency_us;
  if (::write(fd, &value, sizeof(value)) != static_cast<ssize_t>(sizeof(value))) {
    ::close(fd);
    return;
  }
  fd_ = fd;
  held_.store(true, std::memory_order_relaxed);
  counters_.cpu_latency_qos_held->Add(1);
  counters_.cpu_latency_qos_holds->Inc();
}

void CpuLatencyQos::Drop() {
  if (fd_ < 0) return;
  ::close(fd_);  // closing the file removes the request
  fd_ = -1;
  held_.store(false, std::memory_order_relaxed);
  counters_.cpu_latency_qos_held->Sub(1);
}

}  // namespace remora
