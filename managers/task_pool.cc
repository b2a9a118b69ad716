#include "managers/task_pool.h"

namespace remora {

TaskPool::TaskPool(std::size_t threads) {
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Worker(); });
}

TaskPool::~TaskPool() {
  {
    MutexLock lk(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  for (auto& t : threads_) t.join();
}

void TaskPool::Worker() {
  for (;;) {
    std::function<void()> fn;
    {
      MutexLock lk(mu_);
      cv_.wait(mu_, [&]() REQUIRES(mu_) { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

void TaskPool::RunAll(const std::vector<std::function<void()>>& fns) {
  if (fns.empty()) return;
  // One replica (the common case): no other thread is woken at all.
  if (fns.size() == 1) return fns[0]();
  Mutex done_mu;
  CondVar done_cv;
  std::size_t left = fns.size() - 1;
  {
    MutexLock lk(mu_);
    for (std::size_t i = 1; i < fns.size(); ++i) {
      queue_.push_back([&, i] {
        fns[i]();
        MutexLock d(done_mu);
        if (--left == 0) done_cv.notify_all();
      });
      cv_.notify_one();  // a worker per task: the idle others sleep on
    }
  }
  fns[0]();
  MutexLock d(done_mu);
  done_cv.wait(done_mu, [&]() REQUIRES(done_mu) { return left == 0; });
}

}  // namespace remora
