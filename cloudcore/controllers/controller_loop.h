#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::controllers {

// The event-driven driver shared by the workload controllers: one thread that watches some
// kinds (all namespaces) through the Registry and runs a reconcile pass
//   - when a watch event passes `interesting` (bursts are coalesced into one pass, passes are
//     at least minGap apart),
//   - every resync interval regardless,
//   - once at start (the watches begin with the current state).
// A watch that ends (expired history, store error) is reopened from the current state.
//
// Threading: `interesting` and `pass` run on the loop thread only, never concurrently.
// start()/stop() from one owner thread; stop() joins the thread and is idempotent.
class ControllerLoop {
 public:
  using Filter = std::function<bool(const api::KindInfo&, const registry::WatchEvent&)>;
  using Pass = std::function<void()>;

  ControllerLoop(std::string name, registry::Registry& registry,
                 std::vector<const api::KindInfo*> kinds, Filter interesting, Pass pass,
                 std::chrono::milliseconds resync, std::chrono::milliseconds minGap);
  ~ControllerLoop();
  ControllerLoop(const ControllerLoop&) = delete;
  ControllerLoop& operator=(const ControllerLoop&) = delete;

  // Opens the watches (an error there is returned) and starts the thread.
  Status start();
  void stop();
  // Wakes the loop to look at its watches (thread-safe).
  void trigger();
  // Asks for a pass soon even without a watch event (thread-safe): a change the watches do not
  // see, e.g. work a controller waits for elsewhere.
  void requestPass();

 private:
  void run();
  Status openWatch(size_t i);
  // Drains all watches; true when an event asked for a pass.
  bool drain();

  const std::string name_;
  registry::Registry& registry_;
  const std::vector<const api::KindInfo*> kinds_;
  const Filter interesting_;
  const Pass pass_;
  const std::chrono::milliseconds resync_;
  const std::chrono::milliseconds minGap_;

  std::vector<std::unique_ptr<registry::ObjectWatch>> watches_;  // loop thread after start()
  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  bool notified_ EP_GUARDED_BY(mu_) = false;
  bool passRequested_ EP_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ep::controllers
