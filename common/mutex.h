// Mutexes the compiler can check (clang -Wthread-safety, see
// common/thread_annotations.h). libstdc++'s std::mutex carries no
// annotations, so locks that guard annotated data are these thin wrappers.
// Every member is inline and forwards to the std type it wraps: the
// generated code is the same as with the std types.
//
// Member names follow the standard library (lock, unlock, wait,
// notify_all...), so a converted call site reads like the std one:
//
//   Mutex mu_;                        std::mutex mu_;
//   MutexLock lk(mu_);                std::lock_guard / std::unique_lock lk(mu_);
//   lk.unlock(); ... lk.lock();       (the same)
//   cv_.wait(mu_);                    cv_.wait(lk);
//
// Mutex and SharedMutex are also Lockable, so std::unique_lock<Mutex> and
// friends work where a lock must outlive a scope or move (Pcache's
// PauseEvictions) — but the analysis does not see those: prefer the scoped
// locks below.
//
// The global lock order of the processor manager is written down once, in
// docs/runtime.md ("Locking") and in processor/runtime/processor_manager.h.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "common/thread_annotations.h"

namespace remora {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // For code the analysis cannot follow into (a callback run under the
  // lock): states that the caller holds it. No run-time check.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

class CAPABILITY("shared mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a Mutex for its scope (std::lock_guard), or until unlock() if the
// scope gives it up early and maybe takes it again (std::unique_lock).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void lock() ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// Holds a SharedMutex exclusively for its scope.
class SCOPED_CAPABILITY WriterMutexLock {
 public:
  explicit WriterMutexLock(SharedMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterMutexLock() RELEASE() { mu_.unlock(); }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

 private:
  SharedMutex& mu_;
};

// Holds a SharedMutex shared for its scope.
class SCOPED_CAPABILITY ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex& mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderMutexLock() RELEASE() { mu_.unlock_shared(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex& mu_;
};

// A condition variable that waits on a Mutex the caller holds. The waits
// lend the held std::mutex to std::condition_variable for the duration of
// the call (adopt, then release without unlocking), so a wait costs what
// std::condition_variable::wait costs.
//
// A predicate is a lambda, which the analysis checks as a function of its
// own, without the caller's locks: one that reads guarded data says so,
//   cv_.wait(mu_, [&]() REQUIRES(mu_) { return done_; });
// and is then checked as running with mu_ held (the wait calls it so).
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

  void wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu.mu_, std::adopt_lock);
    cv_.wait(lk);
    lk.release();
  }
  template <typename Clock, typename Duration>
  std::cv_status wait_until(Mutex& mu, const std::chrono::time_point<Clock, Duration>& t)
      REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu.mu_, std::adopt_lock);
    const std::cv_status status = cv_.wait_until(lk, t);
    lk.release();
    return status;
  }
  template <typename Rep, typename Period>
  std::cv_status wait_for(Mutex& mu, const std::chrono::duration<Rep, Period>& d) REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu.mu_, std::adopt_lock);
    const std::cv_status status = cv_.wait_for(lk, d);
    lk.release();
    return status;
  }

  template <typename Predicate>
  void wait(Mutex& mu, Predicate done) REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu.mu_, std::adopt_lock);
    cv_.wait(lk, std::move(done));
    lk.release();
  }
  template <typename Clock, typename Duration, typename Predicate>
  bool wait_until(Mutex& mu, const std::chrono::time_point<Clock, Duration>& t, Predicate done)
      REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu.mu_, std::adopt_lock);
    const bool result = cv_.wait_until(lk, t, std::move(done));
    lk.release();
    return result;
  }
  template <typename Rep, typename Period, typename Predicate>
  bool wait_for(Mutex& mu, const std::chrono::duration<Rep, Period>& d, Predicate done)
      REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu.mu_, std::adopt_lock);
    const bool result = cv_.wait_for(lk, d, std::move(done));
    lk.release();
    return result;
  }

 private:
  std::condition_variable cv_;
};

}  // namespace remora
