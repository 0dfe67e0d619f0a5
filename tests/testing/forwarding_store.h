#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "cloudcore/store/store.h"

namespace ep::testing {

// A Store that hands every call to another one (tests): derive from it and override the calls a
// test changes (errors injected, watches ended, hooks). `inner` must outlive it. As thread-safe
// as `inner` plus whatever the derived class adds.
class ForwardingStore : public store::Store {
 public:
  explicit ForwardingStore(store::Store& inner) : inner_(inner) {}

  Status start() override { return inner_.start(); }
  void stop() override { inner_.stop(); }
  Result<store::Object> get(const std::string& r, const std::string& ns,
                            const std::string& n) override {
    return inner_.get(r, ns, n);
  }
  Result<store::ListResult> list(const store::ListOptions& o) override { return inner_.list(o); }
  Result<store::Object> create(const std::string& r, const std::string& ns, const std::string& n,
                               std::string v) override {
    return inner_.create(r, ns, n, std::move(v));
  }
  Result<store::Object> update(const std::string& r, const std::string& ns, const std::string& n,
                               std::string v, int64_t rev) override {
    return inner_.update(r, ns, n, std::move(v), rev);
  }
  Result<store::Object> remove(const std::string& r, const std::string& ns, const std::string& n,
                               int64_t rev) override {
    return inner_.remove(r, ns, n, rev);
  }
  Result<store::Object> removeUnsafe(const std::string& r, const std::string& ns,
                                     const std::string& n, std::string tombstone,
                                     int64_t rev) override {
    return inner_.removeUnsafe(r, ns, n, std::move(tombstone), rev);
  }
  Result<std::unique_ptr<store::Watch>> watch(const store::WatchOptions& o) override {
    return inner_.watch(o);
  }
  int64_t currentRevision() override { return inner_.currentRevision(); }
  int64_t compactedRevision() override { return inner_.compactedRevision(); }
  Status compact(int64_t revision) override { return inner_.compact(revision); }
  Status probeWrite() override { return inner_.probeWrite(); }

 protected:
  store::Store& inner_;
};

// Counts LISTs (every resource) and forwards everything (tests).
class ListCountingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<store::ListResult> list(const store::ListOptions& o) override {
    lists.fetch_add(1);
    return inner_.list(o);
  }
  std::atomic<int> lists{0};
};

}  // namespace ep::testing
