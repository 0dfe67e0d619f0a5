#include "cloudcore/controllers/periodic_task.h"

#include "common/thread_annotations.h"

namespace ep::controllers {

PeriodicTask::PeriodicTask(std::chrono::milliseconds interval, std::function<void()> fn)
    : interval_(interval), fn_(std::move(fn)) {}

PeriodicTask::~PeriodicTask() {
  stop();
}

void PeriodicTask::start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    for (;;) {
      {
        MutexLock l(mu_);
        if (l.waitFor(cv_, interval_, [&]() EP_REQUIRES(mu_) { return stopping_; })) return;
      }
      fn_();
    }
  });
}

void PeriodicTask::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ep::controllers
