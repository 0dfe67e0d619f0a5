#pragma once

#include <chrono>

#include "cloudcore/controllers/periodic_task.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

struct EventGcOptions {
  // Events whose last occurrence is older than this are deleted (Kubernetes' --event-ttl).
  // 0 keeps events forever.
  std::chrono::seconds ttl{3600};
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
};

// Deletes expired v1 Events so that the store does not grow without bound on a long-running
// cluster (edges report every restart, probe failure and pull; controllers every scaling step).
// "Last occurrence" is lastTimestamp, else eventTime, else metadata.creationTimestamp.
//
// Threading: one PeriodicTask thread runs reconcileOnce() every interval; reconcileOnce() is
// also callable from tests (with a FakeClock). start()/stop() from one owner thread.
class EventGc {
 public:
  EventGc(registry::Registry& registry, Clock& clock, EventGcOptions options);

  void start();
  void stop();
  // One pass over every namespace. Returns how many events were deleted.
  Result<int> reconcileOnce();

 private:
  registry::Registry& registry_;
  Clock& clock_;
  const EventGcOptions options_;
  PeriodicTask task_;
};

}  // namespace ep::controllers
