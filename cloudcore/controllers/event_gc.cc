#include "cloudcore/controllers/event_gc.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/api/kinds.h"
#include "common/api/object_util.h"

namespace ep::controllers {
namespace {

const api::KindInfo& eventKind() {
  return *api::findByApiVersionKind("v1", "Event");
}

// Milliseconds of the event's last occurrence, -1 when it carries no usable time.
int64_t lastSeenMillis(const registry::Json& event) {
  for (const char* path : {"lastTimestamp", "eventTime", "metadata.creationTimestamp"}) {
    std::string t = api::stringAt(event, path);
    if (t.empty()) continue;
    int64_t ms = parseRfc3339(t);
    if (ms >= 0) return ms;
  }
  return -1;
}

}  // namespace

EventGc::EventGc(registry::Registry& registry, Clock& clock, EventGcOptions options)
    : registry_(registry), clock_(clock), options_(options), task_(options.interval, [this] {
        auto r = reconcileOnce();
        if (!r.isOk()) {
          spdlog::warn("event gc: {}", r.status().toString());
        } else if (*r > 0) {
          spdlog::info("event gc: deleted {} expired events", *r);
        }
      }) {}

void EventGc::start() {
  if (options_.ttl.count() > 0) task_.start();
}

void EventGc::stop() {
  task_.stop();
}

Result<int> EventGc::reconcileOnce() {
  if (options_.ttl.count() <= 0) return 0;
  const int64_t cutoff =
      clock_.nowMillis() -
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.ttl).count();
  int deleted = 0;
  registry::ListQuery q;
  q.limit = 500;
  for (;;) {
    auto page = registry_.list(eventKind(), "", q);
    if (!page.isOk()) return page.status();
    for (const auto& e : page->items) {
      int64_t seen = lastSeenMillis(e);
      if (seen < 0 || seen >= cutoff) continue;
      registry::DeleteOptions opts;
      opts.preconditionResourceVersion = api::stringAt(e, "metadata.resourceVersion");
      auto r = registry_.remove(eventKind(), api::stringAt(e, "metadata.namespace"),
                                api::stringAt(e, "metadata.name"), opts);
      // Conflict: the event recurred meanwhile (its count grew); NotFound: already gone.
      if (r.isOk()) ++deleted;
    }
    if (page->continueToken.empty()) break;
    q.continueToken = page->continueToken;
  }
  return deleted;
}

}  // namespace ep::controllers
