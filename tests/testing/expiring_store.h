#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "tests/testing/forwarding_store.h"

namespace ep::testing {

// A watch that can be ended with kExpired on demand; otherwise forwards to the real one.
class ExpiringWatch final : public store::Watch {
 public:
  ExpiringWatch(std::unique_ptr<store::Watch> inner, std::atomic<bool>& expired)
      : inner_(std::move(inner)), expired_(expired) {}
  std::vector<store::Event> poll(size_t max) override {
    return expired_ ? std::vector<store::Event>{} : inner_->poll(max);
  }
  void setNotify(std::function<void()> notify) override { inner_->setNotify(std::move(notify)); }
  bool done() const override { return expired_ || inner_->done(); }
  Status error() const override {
    return expired_ ? Status(Code::kExpired, "too old resource version") : inner_->error();
  }
  void stop() override { inner_->stop(); }
  int64_t progressRevision() const override { return expired_ ? 0 : inner_->progressRevision(); }

 private:
  std::unique_ptr<store::Watch> inner_;
  std::atomic<bool>& expired_;
};

// Forwards to another store (tests); expireWatches() ends every watch handed out so far, as
// compacted history would. Thread-safe.
class ExpiringStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<std::unique_ptr<store::Watch>> watch(const store::WatchOptions& o) override {
    auto w = inner_.watch(o);
    if (!w.isOk()) return w.status();
    auto flag = std::make_unique<std::atomic<bool>>(false);
    std::unique_ptr<store::Watch> out = std::make_unique<ExpiringWatch>(std::move(*w), *flag);
    std::lock_guard l(mu_);
    flags_.push_back(std::move(flag));
    return out;
  }

  void expireWatches() {
    std::lock_guard l(mu_);
    for (auto& f : flags_) *f = true;
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<std::atomic<bool>>> flags_;
};

}  // namespace ep::testing
