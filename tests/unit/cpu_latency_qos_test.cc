// The CPU latency QoS request (processor/runtime/cpu_latency_qos.h) against a
// stand-in device file: it is made while faults come densely, with the
// configured value written as the kernel expects it (a binary s32), dropped
// after a quiet spell and at destruction, never made for sparse faults, and
// never made when off or when the device cannot be opened.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "processor/runtime/cpu_latency_qos.h"
#include "remora/stats.h"

namespace remora {
namespace {

using namespace std::chrono_literals;

class CpuLatencyQosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/remora-qos-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    device_ = tmpl;
    counters_ = std::make_unique<RuntimeCounters>(&stats_);
  }
  void TearDown() override { ::unlink(device_.c_str()); }

  CpuLatencyQosOptions Options(CpuLatencyQosMode mode = CpuLatencyQosMode::kAuto) {
    CpuLatencyQosOptions o;
    o.mode = mode;
    o.device = device_;
    o.latency_us = 7;
    o.period = 5ms;
    o.dense_faults = 10;
    o.quiet_periods = 3;
    o.counters = counters_.get();
    return o;
  }

  // Feeds `per_period` faults every period for `periods` periods.
  static void Fault(CpuLatencyQos& q, std::uint32_t per_period, int periods) {
    for (int i = 0; i < periods; ++i) {
      q.OnFaults(per_period);
      std::this_thread::sleep_for(5ms);
    }
  }

  // Waits up to 2 s for held() to become `want`.
  static bool WaitHeld(const CpuLatencyQos& q, bool want) {
    for (int i = 0; i < 400 && q.held() != want; ++i) std::this_thread::sleep_for(5ms);
    return q.held() == want;
  }

  // What the last request wrote to the device (the file keeps it).
  std::int32_t Written() const {
    std::int32_t v = -1;
    const int fd = ::open(device_.c_str(), O_RDONLY);
    if (fd < 0) return -2;
    const ssize_t n = ::pread(fd, &v, sizeof(v), 0);
    ::close(fd);
    return n == static_cast<ssize_t>(sizeof(v)) ? v : -3;
  }

  std::int64_t Value(const char* name) { return stats_.Snapshot().counters.at(name); }

  std::string device_;
  StatsRegistry stats_;
  std::unique_ptr<RuntimeCounters> counters_;
};

TEST_F(CpuLatencyQosTest, HeldWhileFaultsAreDenseAndDroppedAfter) {
  auto q = CpuLatencyQos::Create(Options());
  ASSERT_TRUE(q->usable()) << q->description();
  EXPECT_EQ(Value("cpu_latency_qos_usable"), 1);
  EXPECT_FALSE(q->held());

  std::thread feeder([&] { Fault(*q, 50, 40); });
  EXPECT_TRUE(WaitHeld(*q, true));
  EXPECT_EQ(Written(), 7);
  EXPECT_EQ(Value("cpu_latency_qos_held"), 1);
  feeder.join();
  // Faults stopped: dropped after the quiet periods.
  EXPECT_TRUE(WaitHeld(*q, false));
  EXPECT_EQ(Value("cpu_latency_qos_held"), 0);
  // One request, or more if the feeder was held up for quiet periods.
  const std::int64_t first = Value("nr_cpu_latency_qos_holds");
  EXPECT_GE(first, 1);

  // A second busy spell makes a new request.
  std::thread again([&] { Fault(*q, 50, 20); });
  EXPECT_TRUE(WaitHeld(*q, true));
  again.join();
  EXPECT_TRUE(WaitHeld(*q, false));
  EXPECT_GT(Value("nr_cpu_latency_qos_holds"), first);
}

TEST_F(CpuLatencyQosTest, SparseFaultsMakeNoRequest) {
  // One fault a period against 40: only a watcher held up for 200 ms could
  // count a dense period.
  CpuLatencyQosOptions o = Options();
  o.dense_faults = 40;
  auto q = CpuLatencyQos::Create(o);
  ASSERT_TRUE(q->usable());
  Fault(*q, 1, 30);
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(q->held());
  EXPECT_EQ(Value("nr_cpu_latency_qos_holds"), 0);
  EXPECT_EQ(Written(), -3);  // nothing was ever written
}

TEST_F(CpuLatencyQosTest, DestructionDropsAHeldRequest) {
  auto q = CpuLatencyQos::Create(Options());
  ASSERT_TRUE(q->usable());
  q->OnFaults(1000);
  EXPECT_TRUE(WaitHeld(*q, true));
  q.reset();
  EXPECT_EQ(Value("cpu_latency_qos_held"), 0);
  EXPECT_EQ(Value("cpu_latency_qos_usable"), 0);
}

TEST_F(CpuLatencyQosTest, OffMakesNoRequest) {
  auto q = CpuLatencyQos::Create(Options(CpuLatencyQosMode::kOff));
  EXPECT_FALSE(q->usable());
  EXPECT_NE(q->description().find("off"), std::string::npos) << q->description();
  Fault(*q, 1000, 10);
  EXPECT_FALSE(q->held());
  EXPECT_EQ(Value("cpu_latency_qos_usable"), 0);
  EXPECT_EQ(Value("nr_cpu_latency_qos_holds"), 0);
}

// With one CPU allowed the idle CPUs are nobody's here: no request.
TEST_F(CpuLatencyQosTest, OneCpuMakesNoRequest) {
  CpuLatencyQosOptions o = Options();
  o.cpus_allowed = 1;
  auto q = CpuLatencyQos::Create(o);
  EXPECT_FALSE(q->usable());
  EXPECT_NE(q->description().find("one CPU"), std::string::npos) << q->description();
  Fault(*q, 1000, 10);
  EXPECT_FALSE(q->held());
  EXPECT_EQ(Value("nr_cpu_latency_qos_holds"), 0);
  EXPECT_EQ(Written(), -3);
}

TEST_F(CpuLatencyQosTest, ADeviceThatCannotBeOpenedIsNamed) {
  CpuLatencyQosOptions o = Options();
  o.device = device_ + ".missing";
  auto q = CpuLatencyQos::Create(o);
  EXPECT_FALSE(q->usable());
  EXPECT_NE(q->description().find(o.device), std::string::npos) << q->description();
  Fault(*q, 1000, 10);
  EXPECT_FALSE(q->held());
  EXPECT_EQ(Value("nr_cpu_latency_qos_holds"), 0);
}

}  // namespace
}  // namespace remora
