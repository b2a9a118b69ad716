// TaskPool: a few threads that run submitted functions, so one caller can
// send a page to every replica of its region at once and wait for all.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace remora {

class TaskPool {
 public:
  explicit TaskPool(std::size_t threads);
  ~TaskPool();  // runs what is queued, then joins
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  // Runs fns[1..] on the pool and fns[0] on the calling thread; returns
  // when all have returned.
  void RunAll(const std::vector<std::function<void()>>& fns);

 private:
  void Worker();

  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace remora
