#include "cloudcore/controllers/periodic_task.h"

namespace ep::controllers {

PeriodicTask::PeriodicTask(std::chrono::milliseconds interval, std::function<void()> fn)
    : interval_(interval), fn_(std::move(fn)) {}

PeriodicTask::~PeriodicTask() {
  stop();
}

void PeriodicTask::start() {
  {
    std::lock_guard l(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock l(mu_);
        if (cv_.wait_for(l, interval_, [&] { return stopping_; })) return;
      }
      fn_();
    }
  });
}

void PeriodicTask::stop() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ep::controllers
