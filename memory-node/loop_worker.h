// LoopWorker: one thread beside an event loop for work whose cost grows with
// the data it touches (forking, destroying or discarding a big address
// space), so that the loop keeps serving every other peer meanwhile.
//
// Submit(work, done) runs `work` on the worker thread, jobs one at a time in
// the order submitted, and then `done` on the loop thread: the worker makes
// done_fd() readable and the loop calls RunCompletions(). So `done` may touch
// whatever the loop owns (connections, replies) without a lock, and a job's
// result passes to it through state the two closures share.
//
// Destruction waits for the job that is running (a page store operation is
// never abandoned half-way) and drops the jobs not started and every pending
// completion: at shutdown nobody is left to answer.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <utility>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace remora {

class LoopWorker {
 public:
  LoopWorker();
  ~LoopWorker();
  LoopWorker(const LoopWorker&) = delete;
  LoopWorker& operator=(const LoopWorker&) = delete;

  // Readable while completions wait for RunCompletions().
  int done_fd() const { return done_fd_; }
  void Submit(std::function<void()> work, std::function<void()> done);
  // Loop thread: runs the completions of the jobs finished so far.
  void RunCompletions();

 private:
  using Job = std::pair<std::function<void()>, std::function<void()>>;
  void Loop();

  int done_fd_ = -1;  // eventfd
  Mutex mu_;
  CondVar cv_;
  std::deque<Job> queue_ GUARDED_BY(mu_);
  std::deque<std::function<void()>> done_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // started last, joined first
};

}  // namespace remora
