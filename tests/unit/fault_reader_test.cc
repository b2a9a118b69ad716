// FaultReader against a real userfaultfd: faults of one thread are read by
// thread 0 alone with blocking reads; a second faulting thread switches the
// session to shared reading; stopping ends a blocking read and the sleeping
// threads.
#include "processor/runtime/fault_reader.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace remora {
namespace {

constexpr std::size_t kPage = 4096;

class FaultReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uffd_ = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (uffd_ < 0) GTEST_SKIP() << "userfaultfd not permitted: " << std::strerror(errno);
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_THREAD_ID;
    ASSERT_EQ(::ioctl(uffd_, UFFDIO_API, &api), 0) << std::strerror(errno);
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(stop_fd_, 0);
  }
  void TearDown() override {
    if (mem_ != nullptr) ::munmap(mem_, len_);
    if (uffd_ >= 0) ::close(uffd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }

  void Map(std::size_t pages) {
    len_ = pages * kPage;
    mem_ = static_cast<char*>(
        ::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(mem_, MAP_FAILED);
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<std::uint64_t>(mem_);
    reg.range.len = len_;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    ASSERT_EQ(::ioctl(uffd_, UFFDIO_REGISTER, &reg), 0) << std::strerror(errno);
  }

  // A fault thread: serves every missing fault with a page that holds its
  // own address, and counts what it served.
  void Serve(FaultReader& reader, int index) {
    FaultReader::Waiter waiter(reader, index);
    alignas(kPage) static thread_local char page[kPage];
    uffd_msg msgs[16];
    for (;;) {
      const int n = waiter.Wait(msgs, 16);
      if (n < 0) return;
      if (n == 0) continue;
      for (int i = 0; i < n; ++i) {
        if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
        reader.ObserveFaultingThread(static_cast<pid_t>(msgs[i].arg.pagefault.feat.ptid));
        const std::uint64_t addr = msgs[i].arg.pagefault.address & ~(kPage - 1);
        std::memcpy(page, &addr, sizeof(addr));
        ++served_[index];  // before the copy wakes the faulting thread
        uffdio_copy c{};
        c.dst = addr;
        c.src = reinterpret_cast<std::uint64_t>(page);
        c.len = kPage;
        if (::ioctl(uffd_, UFFDIO_COPY, &c) != 0 && errno != EEXIST) {
          ADD_FAILURE() << "UFFDIO_COPY: " << std::strerror(errno);
          return;
        }
      }
    }
  }

  // Two fault threads serving `reader`.
  std::vector<std::thread> StartServing(FaultReader& reader) {
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) threads.emplace_back([&, i] { Serve(reader, i); });
    return threads;
  }

  // Reads pages [first, first + count) and checks each holds its address.
  void Touch(std::size_t first, std::size_t count) {
    for (std::size_t i = first; i < first + count; ++i) {
      std::uint64_t v;
      std::memcpy(&v, mem_ + i * kPage, sizeof(v));
      EXPECT_EQ(v, reinterpret_cast<std::uint64_t>(mem_ + i * kPage)) << "page " << i;
    }
  }

  void Stop(FaultReader& reader, std::vector<std::thread>& threads) {
    std::uint64_t one = 1;
    ASSERT_EQ(::write(stop_fd_, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    const auto start = std::chrono::steady_clock::now();
    reader.Interrupt();
    for (auto& t : threads) t.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  }

  int uffd_ = -1;
  int stop_fd_ = -1;
  char* mem_ = nullptr;
  std::size_t len_ = 0;
  std::atomic<int> served_[2] = {0, 0};
};

TEST_F(FaultReaderTest, OneFaultingThreadIsServedByThreadZeroAlone) {
  Map(256);
  FaultReader reader(uffd_, stop_fd_);
  std::vector<std::thread> threads = StartServing(reader);
  Touch(0, 256);
  EXPECT_FALSE(reader.shared());
  EXPECT_EQ(served_[0].load(), 256);
  EXPECT_EQ(served_[1].load(), 0);
  // The single reader waits in a blocking read: O_NONBLOCK is off (once
  // its poll after the last fault, at most 50 us, has come up empty).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while ((::fcntl(uffd_, F_GETFL) & O_NONBLOCK) != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(::fcntl(uffd_, F_GETFL) & O_NONBLOCK, 0);
  // Stopping interrupts that read.
  Stop(reader, threads);
}

TEST_F(FaultReaderTest, ASecondFaultingThreadSwitchesToSharedReading) {
  Map(2048);
  FaultReader reader(uffd_, stop_fd_);
  std::vector<std::thread> threads = StartServing(reader);
  Touch(0, 16);
  EXPECT_FALSE(reader.shared());
  std::vector<std::thread> faulters;
  for (int t = 0; t < 4; ++t) faulters.emplace_back([&, t] { Touch(16 + t * 508, 508); });
  for (auto& f : faulters) f.join();
  EXPECT_TRUE(reader.shared());
  EXPECT_EQ(served_[0].load() + served_[1].load(), 2048);
  // Shared readers wait in epoll, which needs a non-blocking descriptor.
  EXPECT_NE(::fcntl(uffd_, F_GETFL) & O_NONBLOCK, 0);
  Stop(reader, threads);
}

TEST_F(FaultReaderTest, StopBeforeAnyFault) {
  Map(4);
  FaultReader reader(uffd_, stop_fd_);
  std::vector<std::thread> threads = StartServing(reader);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Stop(reader, threads);
  EXPECT_EQ(served_[0].load() + served_[1].load(), 0);
}

}  // namespace
}  // namespace remora
