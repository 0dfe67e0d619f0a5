#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
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
// revision of the delete. `prevValue` is the value before the change (empty for kAdded).
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
};

struct ListResult {
  std::vector<Object> items;        // ordered by (namespace, name)
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
  // Registers a callback invoked (from a store thread) whenever poll() may return more. The
  // callback must not block and must not call back into the store.
  virtual void setNotify(std::function<void()> notify) = 0;
  // True once the watch ended (stopped, expired, store closed); error() tells why.
  virtual bool done() const = 0;
  virtual Status error() const = 0;
  virtual void stop() = 0;
};

// The cloud's object store. Every method is thread-safe and returns errors as values:
// kNotFound, kAlreadyExists, kConflict (stale expectedRevision), kExpired, kUnavailable.
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

}  // namespace ep::store
