#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/thread_annotations.h"

namespace ep::controllers {

// Runs `fn` on a thread of its own every `interval` (first run one interval after start()),
// until stop(). `fn` must not throw. start()/stop() from one owner thread; stop() wakes the
// thread, joins it and is idempotent; a run in progress finishes first.
class PeriodicTask {
 public:
  PeriodicTask(std::chrono::milliseconds interval, std::function<void()> fn);
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  void start();
  void stop();

 private:
  const std::chrono::milliseconds interval_;
  const std::function<void()> fn_;
  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ep::controllers
