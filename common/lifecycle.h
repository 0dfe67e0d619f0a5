#pragma once

// Services started in order and stopped in reverse, in one place: both mains start their
// modules through a Lifecycle and stop them all with stopAll(), instead of repeating the stop
// sequence by hand after every failure.
//
// Thread-compatible: used by the main thread only. Lifecycle: declare it before the services it
// starts, and call stopAll() (or fail()) before any of them goes out of scope; destroying a
// Lifecycle that still has running services aborts, since stopping them then would touch
// destroyed objects (a broken invariant).

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ep {

class Lifecycle {
 public:
  // `component` prefixes the log lines ("cloudcore", "edgecore").
  explicit Lifecycle(std::string component);
  ~Lifecycle();
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  // Runs `start` now. When it succeeds, `stop` runs at stopAll(), before the stops of every
  // service started earlier; when it fails, the error is logged (critical, "NAME: ...") and
  // returned, and nothing is remembered. `stop` may be empty.
  [[nodiscard]] Status start(std::string name, const std::function<Status()>& start,
                             std::function<void()> stop);
  // A service already running, or whose start cannot fail.
  void started(std::string name, std::function<void()> stop);
  // Stops every running service, newest first, logging each. Idempotent.
  void stopAll();
  // stopAll(), then `exitCode`: `return services.fail(1);` on a path that gives up.
  int fail(int exitCode);

  size_t running() const { return services_.size(); }

 private:
  struct Service {
    std::string name;
    std::function<void()> stop;
  };
  const std::string component_;
  std::vector<Service> services_;  // in start order
};

}  // namespace ep
