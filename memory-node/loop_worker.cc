#include "memory-node/loop_worker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

namespace remora {

LoopWorker::LoopWorker() {
  done_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (done_fd_ < 0) std::abort();  // out of descriptors at start-up
  thread_ = std::thread([this] { Loop(); });
}

LoopWorker::~LoopWorker() {
  {
    MutexLock l(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  thread_.join();
  close(done_fd_);
}

void LoopWorker::Submit(std::function<void()> work, std::function<void()> done) {
  {
    MutexLock l(mu_);
    queue_.emplace_back(std::move(work), std::move(done));
  }
  cv_.notify_one();
}

void LoopWorker::Loop() {
  MutexLock l(mu_);
  for (;;) {
    cv_.wait(mu_, [&]() REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    l.unlock();
    job.first();
    l.lock();
    done_.push_back(std::move(job.second));
    const std::uint64_t one = 1;
    ssize_t rc = write(done_fd_, &one, sizeof one);
    (void)rc;  // an eventfd at its maximum is readable anyway
  }
}

void LoopWorker::RunCompletions() {
  std::uint64_t ticks;
  ssize_t rc = read(done_fd_, &ticks, sizeof ticks);
  (void)rc;
  std::deque<std::function<void()>> done;
  {
    MutexLock l(mu_);
    done.swap(done_);
  }
  for (auto& d : done) d();
}

}  // namespace remora
