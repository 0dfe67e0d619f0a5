#pragma once

// The edge cache as its readers see it: edged, the local API, the router, models and devices
// depend on these types and interfaces, never on SQLite. MetaManager (metamanager.h) implements
// them; unit tests may fake them.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/tunnel.pb.h"

namespace ep::edgecore::metamanager {

using ReportKind = edgeplane::tunnel::v1::ReportKind;

// True for the kinds whose outbox entries coalesce per object and are never dropped.
bool isStatusKind(ReportKind kind);

// A cache change as seen by local API watchers. `object` is the stored JSON (for DELETED: the
// last cached value with metadata.resourceVersion set to the delete's revision).
struct CacheEvent {
  std::string type;  // "ADDED" | "MODIFIED" | "DELETED"
  std::string resource;
  std::string ns;
  std::string name;
  int64_t revision = 0;
  nlohmann::json object;
};

// A local API watch on one resource (optionally one namespace). Created by
// MetaManager::subscribe. Thread-safe: poll/done/setNotify/stop may be called from any thread.
// The queue is bounded; when a consumer falls behind the subscription ends (done() with
// overflowed() true) so the client relists.
class Subscription {
 public:
  Subscription(std::string resource, std::string ns, size_t maxQueue)
      : resource_(std::move(resource)), ns_(std::move(ns)), maxQueue_(maxQueue) {}

  // Up to `max` queued events, oldest first; never blocks.
  std::vector<CacheEvent> poll(size_t max);
  // True once no more events will come (stopped, overflowed, or the cache closed).
  bool done() const;
  bool overflowed() const;
  // `notify` is called (from the committing thread, without locks held by the caller's code
  // paths that could re-enter) whenever events are queued or the subscription ends.
  void setNotify(std::function<void()> notify);
  // Ends the subscription; MetaManager drops it on its next publish.
  void stop();

  // Used by MetaManager (under its publish lock).
  bool matches(const CacheEvent& e) const;
  void push(const CacheEvent& e);
  void end();

 private:
  void wake();

  const std::string resource_;
  const std::string ns_;  // "" = all namespaces
  const size_t maxQueue_;
  mutable Mutex mu_;
  std::deque<CacheEvent> queue_ EP_GUARDED_BY(mu_);
  bool done_ EP_GUARDED_BY(mu_) = false;
  bool overflowed_ EP_GUARDED_BY(mu_) = false;
  std::function<void()> notify_ EP_GUARDED_BY(mu_);
};

// The read side the local API needs (a seam for tests).
struct ObjectRecord {
  int64_t revision = 0;
  nlohmann::json object;
};

// Outbox writers (nodestatus, later pod status, devices) depend only on this.
class Outbox {
 public:
  virtual ~Outbox() = default;
  // Durably appends a report (committed with synchronous=FULL before returning) and returns its
  // sequence. Status kinds replace the pending entry for the same (kind, ns, name).
  virtual Result<uint64_t> enqueue(ReportKind kind, const std::string& ns, const std::string& name,
                                   const std::string& payload) = 0;
};

// A write to the state an edge module keeps in the cache's database (value empty: delete).
struct LocalPut {
  std::string scope;  // the owning module, e.g. "devicetwin"
  std::string key;
  std::optional<std::string> value;
};

// A report committed together with local state.
struct LocalReport {
  ReportKind kind = edgeplane::tunnel::v1::REPORT_KIND_UNSPECIFIED;
  std::string ns;
  std::string name;
  std::string payload;
};

// What data at rest checks found (MetaManager::start and every read).
struct CacheIntegrity {
  uint64_t damagedObjects = 0;  // rows found damaged and removed since start
  std::string rebuiltFrom;      // the damaged database moved aside at start, "" if none
  uint64_t outboxSalvaged = 0;  // outbox rows carried over from it
};

// The cache's counters, for status pages.
struct CacheStats {
  int64_t lastAppliedRevision = 0;
  uint64_t objects = 0;
  CacheIntegrity integrity;
  uint64_t outboxEntries = 0;
  uint64_t outboxBytes = 0;
  uint64_t outboxDropped = 0;  // dropped and not yet reported
  uint64_t lastSequence = 0;
};

// Reading the objects the cloud sent (the cache side). Thread-safe: any method from any thread.
class CacheReader {
 public:
  virtual ~CacheReader() = default;
  // kNotFound when absent; a damaged row is never served (kNotFound, and the cloud resends it).
  virtual Result<ObjectRecord> get(const std::string& resource, const std::string& ns,
                                   const std::string& name) = 0;
  // ns "" lists every namespace. Ordered by (namespace, name).
  virtual Result<std::vector<nlohmann::json>> list(const std::string& resource,
                                                   const std::string& ns) = 0;
  // Subscribes to changes of `resource` (in `ns`, or all when ""). When `snapshot` is non-null
  // it receives the current objects (as list() would) atomically with the subscription, and
  // `snapshotRevision` (when non-null) the last applied revision.
  virtual std::shared_ptr<Subscription> subscribe(const std::string& resource,
                                                  const std::string& ns,
                                                  std::vector<nlohmann::json>* snapshot,
                                                  int64_t* snapshotRevision) = 0;
  std::shared_ptr<Subscription> subscribe(const std::string& resource, const std::string& ns,
                                          std::vector<nlohmann::json>* snapshot = nullptr) {
    return subscribe(resource, ns, snapshot, nullptr);
  }
  // The revision of the last Sync applied (the resourceVersion of a list).
  virtual int64_t lastAppliedRevision() = 0;
  virtual CacheStats stats() = 0;
};

}  // namespace ep::edgecore::metamanager
