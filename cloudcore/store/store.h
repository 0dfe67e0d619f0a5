#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/status.h"

namespace ep::store {

// One stored object. `value` is the serialized object (JSON text) exactly as the API layer
// wrote it; the store never parses it. The store owns revisions: metadata.resourceVersion is
// not part of `value` and is filled in by the API layer from modRevision on every read.
struct Object {
  std::string resource;    // "pods", "deployments.apps", ... (see api::KindInfo::resource())
  std::string namespace_;  // "" for cluster-scoped objects
  std::string name;
  std::string value;
  int64_t createRevision = 0;
  int64_t modRevision = 0;
};

enum class EventType { kAdded, kModified, kDeleted };

// One change. For kDeleted, `object.value` is the last value and `object.modRevision` is the
// revision of the delete. `prevValue` is the value before the change (empty for kAdded). A
// kDeleted event with an empty prevValue is an unsafe delete (Store::removeUnsafe): its value
// is the caller's tombstone, not the object's last value.
struct Event {
  EventType type = EventType::kAdded;
  Object object;
  std::string prevValue;
};

// Filter applied inside list() before limit is counted. Must be thread-safe and cheap.
using Predicate = std::function<bool(const Object&)>;

struct ListOptions {
  std::string resource;       // required
  std::string namespace_;     // "" = all namespaces
  int64_t limit = 0;          // 0 = no limit
  std::string continueToken;  // from a previous ListResult; "" for the first page
  Predicate predicate;        // optional
  // A row damaged on disk fails the list (the default: a caller that acts on what a list
  // leaves out, e.g. deleting what is not listed, must not take a damaged object for a missing
  // one) or, when set, is left out and named in ListResult::damaged.
  bool skipDamaged = false;
};

// A stored object's key.
struct Key {
  std::string resource;
  std::string namespace_;
  std::string name;
  bool operator<(const Key& o) const {
    return std::tie(resource, namespace_, name) < std::tie(o.resource, o.namespace_, o.name);
  }
  bool operator==(const Key& o) const = default;
};

struct ListResult {
  std::vector<Object> items;  // ordered by (namespace, name)
  // With ListOptions::skipDamaged: every row left out because it is damaged on disk.
  std::vector<Key> damaged;
  int64_t revision = 0;             // store revision the list reflects (of the first page)
  std::string continueToken;        // "" when this was the last page
  int64_t remainingItemCount = -1;  // -1 when unknown
};

struct WatchOptions {
  std::string resource;      // "" = every resource (used by controllers and cloudhub)
  std::string namespace_;    // "" = every namespace
  int64_t fromRevision = 0;  // deliver events with revision > fromRevision; 0 = from now
};

// A running watch. All methods are thread-safe. Events are delivered in revision order with no
// gaps for the watched keys. A watch that falls too far behind keeps working by reading the
// store's history; one whose next revision was compacted ends with Code::kExpired.
class Watch {
 public:
  virtual ~Watch() = default;
  // Returns up to `max` events that are available now, never blocking on other writers.
  // May read history from disk when the watch is catching up. After the watch ended, returns
  // an empty vector and done() is true.
  virtual std::vector<Event> poll(size_t max) = 0;
  // Registers a callback invoked (from a store thread, or from poll() itself when the watch
  // ends there) whenever poll() may return more or the watch ended. The callback must not
  // block and must not call back into the store.
  virtual void setNotify(std::function<void()> notify) = 0;
  // True once the watch ended (stopped, expired, store closed); error() tells why.
  virtual bool done() const = 0;
  virtual Status error() const = 0;
  virtual void stop() = 0;
  // A revision through which this watch is complete: every matching event at or below it has
  // been returned by poll() already, including when nothing matched for a long time (a quiet
  // watch's progress, for Kubernetes BOOKMARK events). 0 when not known. Thread-safe.
  virtual int64_t progressRevision() const = 0;
};

// The cloud's object store. Every method is thread-safe and returns errors as values:
// kNotFound, kAlreadyExists, kConflict (stale expectedRevision), kExpired, kUnavailable, and
// kInternal for data damaged on disk (a message containing "damaged on disk", docs/store.md
// "Damaged data"): a damaged row is never returned, a LIST fails or skips it
// (ListOptions::skipDamaged), a watch that would have to skip a damaged or missing history row
// ends with kExpired instead.
// A successful write is durable when the call returns (see docs/store.md).
class Store {
 public:
  virtual ~Store() = default;

  virtual Status start() = 0;
  virtual void stop() = 0;

  virtual Result<Object> get(const std::string& resource, const std::string& ns,
                             const std::string& name) = 0;
  virtual Result<ListResult> list(const ListOptions& options) = 0;
  // Fails with kAlreadyExists if the key exists.
  virtual Result<Object> create(const std::string& resource, const std::string& ns,
                                const std::string& name, std::string value) = 0;
  // Compare-and-swap: expectedRevision 0 means unconditional, otherwise it must equal the
  // current modRevision (kConflict if not).
  virtual Result<Object> update(const std::string& resource, const std::string& ns,
                                const std::string& name, std::string value,
                                int64_t expectedRevision) = 0;
  // Returns the deleted object with modRevision set to the revision of the delete.
  virtual Result<Object> remove(const std::string& resource, const std::string& ns,
                                const std::string& name, int64_t expectedRevision) = 0;
  // Unsafe delete, for an object that cannot be read: removes the key without reading its
  // value. expectedRevision 0: only a row damaged on disk is removed; nonzero: an intact row
  // whose modRevision is that (its value unreadable to the layers above, e.g. undecryptable).
  // Anything else is kConflict (a readable or since rewritten object takes remove()). The
  // DELETED event carries `tombstone` as its value and an empty prevValue. kNotFound when the
  // key does not exist; stores without unsafe deletes answer kUnavailable.
  virtual Result<Object> removeUnsafe(const std::string& resource, const std::string& ns,
                                      const std::string& name, std::string tombstone,
                                      int64_t expectedRevision) {
    (void)resource, (void)ns, (void)name, (void)tombstone, (void)expectedRevision;
    return unavailableError("this store does not support unsafe deletes");
  }
  virtual Result<std::unique_ptr<Watch>> watch(const WatchOptions& options) = 0;

  virtual int64_t currentRevision() = 0;
  // Oldest revision still answerable by watch(); a watch from below it fails with kExpired.
  virtual int64_t compactedRevision() = 0;
  // Drops history up to and including `revision`.
  virtual Status compact(int64_t revision) = 0;
  // Proves that a write can be made durable now (readiness: a full disk, a read-only or failing
  // device answer an error) without changing any object or the revision. Blocking.
  virtual Status probeWrite() { return Status::ok(); }
};

// Whether `s` reports data damaged on disk (see Store).
inline bool isDamaged(const Status& s) {
  return s.code() == Code::kInternal && s.message().find("damaged on disk") != std::string::npos;
}

}  // namespace ep::store
