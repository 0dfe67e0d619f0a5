#include "cloudcore/controllers/controller_loop.h"

#include <spdlog/spdlog.h>

#include "common/thread_annotations.h"

namespace ep::controllers {

ControllerLoop::ControllerLoop(std::string name, registry::Registry& registry,
                               std::vector<const api::KindInfo*> kinds, Filter interesting,
                               Pass pass, std::chrono::milliseconds resync,
                               std::chrono::milliseconds minGap)
    : name_(std::move(name)),
      registry_(registry),
      kinds_(std::move(kinds)),
      interesting_(std::move(interesting)),
      pass_(std::move(pass)),
      resync_(resync),
      minGap_(minGap) {}

ControllerLoop::~ControllerLoop() {
  stop();
}

Status ControllerLoop::openWatch(size_t i) {
  auto w = registry_.watch(*kinds_[i], "", {}, "");
  if (!w.isOk()) return w.status();
  watches_[i] = std::move(w.value());
  watches_[i]->setNotify([this] { trigger(); });
  return Status::ok();
}

void ControllerLoop::trigger() {
  {
    MutexLock l(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

void ControllerLoop::requestPass() {
  {
    MutexLock l(mu_);
    notified_ = true;
    passRequested_ = true;
  }
  cv_.notify_all();
}

Status ControllerLoop::start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  watches_.clear();
  watches_.resize(kinds_.size());
  for (size_t i = 0; i < kinds_.size(); ++i) {
    if (auto s = openWatch(i); !s.isOk()) {
      watches_.clear();
      return Status(s.code(), name_ + ": watching " + kinds_[i]->resource() + ": " + s.message());
    }
  }
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

void ControllerLoop::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& w : watches_) {
    if (w) w->stop();
  }
  watches_.clear();
}

bool ControllerLoop::drain() {
  bool wanted = false;
  for (size_t i = 0; i < watches_.size(); ++i) {
    if (!watches_[i]) {
      wanted |= openWatch(i).isOk();
      continue;
    }
    for (;;) {
      auto events = watches_[i]->poll(512);
      for (const auto& e : events) {
        if (e.type == "ERROR") continue;
        if (wanted) continue;
        try {
          wanted = interesting_(*kinds_[i], e);
        } catch (const std::exception&) {
          wanted = true;  // when in doubt, reconcile
        }
      }
      if (events.size() < 512) break;
    }
    if (watches_[i]->done()) {
      // Reopen from the current state: its synthetic ADDED events arrive on the next drain.
      watches_[i].reset();
      if (auto s = openWatch(i); !s.isOk()) {
        spdlog::warn("{}: reopening watch on {}: {}", name_, kinds_[i]->resource(), s.toString());
      }
      wanted = true;
    }
  }
  return wanted;
}

void ControllerLoop::run() {
  auto lastPass = std::chrono::steady_clock::time_point::min();
  for (;;) {
    bool resyncDue = false;
    bool requested = false;
    {
      MutexLock l(mu_);
      auto deadline = lastPass == std::chrono::steady_clock::time_point::min()
                          ? std::chrono::steady_clock::now()
                          : lastPass + resync_;
      l.waitUntil(cv_, deadline, [&]() EP_REQUIRES(mu_) { return stopping_ || notified_; });
      if (stopping_) return;
      notified_ = false;
      requested = passRequested_;
      passRequested_ = false;
      resyncDue = std::chrono::steady_clock::now() >= deadline;
    }
    bool wanted = drain();
    if (!wanted && !resyncDue && !requested) continue;
    try {
      pass_();
    } catch (const std::exception& e) {
      // A malformed object must not take cloudcore down; the next pass tries again.
      spdlog::error("{}: pass failed: {}", name_, e.what());
    }
    lastPass = std::chrono::steady_clock::now();
    // Coalesce bursts: wait minGap (interruptible by stop) before looking at events again.
    MutexLock l(mu_);
    if (l.waitFor(cv_, minGap_, [&]() EP_REQUIRES(mu_) { return stopping_; })) return;
  }
}

}  // namespace ep::controllers
