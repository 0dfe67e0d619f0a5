#pragma once

// Clang's thread-safety analysis (-Wthread-safety), and a mutex it understands. Shared state is
// declared `T x_ EP_GUARDED_BY(mu_);` next to an `ep::Mutex mu_;`, functions that expect the
// lock held are `EP_REQUIRES(mu_)`, and the analysis proves at compile time that every access
// holds the lock: scripts/check-thread-safety.sh runs it over the whole tree (CI). With GCC the
// annotations compile to nothing and ep::Mutex is a std::mutex.
//
// Thread-safety: Mutex is a mutex; MutexLock is used by one thread, as std::lock_guard.

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define EP_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define EP_THREAD_ANNOTATION(x)
#endif

#define EP_CAPABILITY(x) EP_THREAD_ANNOTATION(capability(x))
#define EP_SCOPED_CAPABILITY EP_THREAD_ANNOTATION(scoped_lockable)
#define EP_GUARDED_BY(x) EP_THREAD_ANNOTATION(guarded_by(x))
#define EP_PT_GUARDED_BY(x) EP_THREAD_ANNOTATION(pt_guarded_by(x))
#define EP_ACQUIRED_BEFORE(...) EP_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define EP_ACQUIRED_AFTER(...) EP_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define EP_REQUIRES(...) EP_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EP_ACQUIRE(...) EP_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define EP_RELEASE(...) EP_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define EP_TRY_ACQUIRE(...) EP_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EP_EXCLUDES(...) EP_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define EP_RETURN_CAPABILITY(x) EP_THREAD_ANNOTATION(lock_returned(x))
#define EP_NO_THREAD_SAFETY_ANALYSIS EP_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace ep {

// std::mutex, annotated as a capability.
class EP_CAPABILITY("mutex") Mutex {
 public:
  void lock() EP_ACQUIRE() { mu_.lock(); }
  void unlock() EP_RELEASE() { mu_.unlock(); }
  bool try_lock() EP_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex for its scope (std::lock_guard), and can wait on a condition variable
// (std::unique_lock underneath): the analysis treats the lock as held across a wait, which is
// what the code after the wait sees.
class EP_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) EP_ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() EP_RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Releases and re-takes the lock early (e.g. to run a callback without it); the analysis
  // sees the scope's lock as released in between.
  void unlock() EP_RELEASE() { lock_.unlock(); }
  void lock() EP_ACQUIRE() { lock_.lock(); }

  // Waits on `cv`, the lock released meanwhile and held again on return. A predicate is a
  // lambda annotated with the lock it reads under, so the analysis checks its body:
  //   lock.wait(cv_, [&]() EP_REQUIRES(mu_) { return ready_; });
  void wait(std::condition_variable& cv) { cv.wait(lock_); }
  template <typename Predicate>
  void wait(std::condition_variable& cv, Predicate pred) EP_NO_THREAD_SAFETY_ANALYSIS {
    cv.wait(lock_, pred);
  }
  template <typename Rep, typename Period>
  std::cv_status waitFor(std::condition_variable& cv,
                         const std::chrono::duration<Rep, Period>& timeout) {
    return cv.wait_for(lock_, timeout);
  }
  // True when `pred` holds (false: timed out).
  template <typename Rep, typename Period, typename Predicate>
  bool waitFor(std::condition_variable& cv, const std::chrono::duration<Rep, Period>& timeout,
               Predicate pred) EP_NO_THREAD_SAFETY_ANALYSIS {
    return cv.wait_for(lock_, timeout, pred);
  }
  template <typename Clock, typename Duration>
  std::cv_status waitUntil(std::condition_variable& cv,
                           const std::chrono::time_point<Clock, Duration>& deadline) {
    return cv.wait_until(lock_, deadline);
  }
  template <typename Clock, typename Duration, typename Predicate>
  bool waitUntil(std::condition_variable& cv,
                 const std::chrono::time_point<Clock, Duration>& deadline,
                 Predicate pred) EP_NO_THREAD_SAFETY_ANALYSIS {
    return cv.wait_until(lock_, deadline, pred);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace ep
