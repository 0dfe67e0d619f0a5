#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloudcore/registry/service_allocator.h"
#include "cloudcore/store/store.h"
#include "common/api/field_validation.h"
#include "common/api/kinds.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::registry {

using Json = nlohmann::json;

struct ListQuery {
  std::string labelSelector;
  std::string fieldSelector;
  int64_t limit = 0;
  std::string continueToken;
  // Objects damaged on disk fail the list (default) or are left out with a warning each
  // (store::ListOptions::skipDamaged): only for readers that act on nothing a list leaves out.
  bool skipDamaged = false;
};

struct ListResult {
  std::vector<Json> items;
  std::string resourceVersion;
  std::string continueToken;
  std::vector<std::string> warnings;  // with skipDamaged: one per object left out
  std::vector<store::Key> damaged;    // with skipDamaged: the objects left out
};

enum class PatchType { kMerge, kStrategicMerge, kJsonPatch };
enum class Subresource { kNone, kStatus };

// The apiserver's field validation for one API request (common/api/field_validation.h).
struct FieldCheck {
  api::FieldValidation mode = api::FieldValidation::kWarn;
  std::vector<std::string> duplicates;  // in: keys the request body repeats ("spec.replicas")
  std::vector<std::string> warnings;    // out (kWarn): one text per unknown or duplicate field
};

struct WriteOptions {
  bool dryRun = false;
  // API requests: the object written (a patch's result) loses the fields its kind does not
  // have, and those and `duplicates` are warnings (kWarn) or refuse the write with 400
  // (kStrict). Null (the platform's own writers): not checked. Owned by the caller.
  FieldCheck* fieldCheck = nullptr;
  // Admission: called with the stored object (null on create) and the object about to be
  // written, after validation and before the write (also on a dry run); a non-OK Status
  // refuses the write with that Status. Runs on the writing thread.
  std::function<Status(const Json* current, const Json& next)> admit;
  // Who writes (the request's fieldManager, or its User-Agent up to the first "/"): create,
  // update and patch record the fields they change as this manager's Update entry in
  // metadata.managedFields (api/managed_fields.h). Empty (the platform's own writers): the
  // managedFields stay as they are.
  std::string fieldManager;
};

struct DeleteOptions {
  std::string preconditionUid;
  std::string preconditionResourceVersion;
  bool dryRun = false;
  // "", "Background", "Orphan" or "Foreground" (the caller validated it). For Deployments and
  // ReplicaSets, the owners of the platform's workloads: Orphan removes the owner's references
  // from its dependents before the owner goes (the "orphan" finalizer held meanwhile);
  // Foreground leaves the owner terminating with the "foregroundDeletion" finalizer, which the
  // workload controllers remove once they deleted every dependent. Background (and any policy
  // on other kinds): removed at once; the controllers collect dependents whose owner is gone.
  std::string propagationPolicy;
  // Pods only: how long the node has to stop the pod. Unset: the pod's
  // terminationGracePeriodSeconds (default 30). 0 removes the object at once (force).
  std::optional<int64_t> gracePeriodSeconds;
  // Kubernetes' ignoreStoreReadErrorWithClusterBreakingPotential: when the object cannot be
  // read (damaged on disk, undecryptable, not decodable), remove its key anyway, skipping
  // preconditions, finalizers and dependents; watchers see DELETED with only the kind and the
  // name. Readable objects take the normal path. The caller authorized the
  // "unsafe-delete-ignore-read-errors" verb.
  bool ignoreStoreReadError = false;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, ERROR
  std::shared_ptr<Json> object;
};

// A filtered stream of typed object events for one kind. Thread-safe like store::Watch.
class ObjectWatch {
 public:
  virtual ~ObjectWatch() = default;
  // Events available now (at most max). An expired or failed watch yields one ERROR event
  // whose object is a Kubernetes Status, then done() is true.
  virtual std::vector<WatchEvent> poll(size_t max) = 0;
  virtual void setNotify(std::function<void()> notify) = 0;
  virtual bool done() const = 0;
  virtual void stop() = 0;
  // A revision through which everything the watch will ever deliver at or below it has been
  // returned by poll() (Kubernetes BOOKMARK events carry it); it moves on while nothing matches.
  // 0 while the initial events are still being handed out.
  virtual int64_t lastRevision() const = 0;
  // Why objects were left out of the initial list (ListQuery::skipDamaged), as for a LIST.
  virtual std::vector<std::string> warnings() const { return {}; }
};

// The typed object layer between the API (and controllers) and the Store: Kubernetes
// semantics of create/update/patch/delete (metadata ownership, generation, validation,
// finalizers, namespaces, status subresource) and filtered watches. Stateless apart from the
// injected store and clock, so every method is thread-safe. Errors are Status values whose
// message is the Kubernetes message ("pods \"x\" not found") and whose causes list the fields.
class Registry {
 public:
  // `network`: where Services take cluster IPs and node ports from (service_allocator.h).
  Registry(store::Store& store, Clock& clock, ServiceNetwork network = ServiceNetwork::defaults());

  // Creates default, kube-system, kube-public and kube-node-lease if missing.
  Status ensureSystemNamespaces();

  Result<Json> get(const api::KindInfo& kind, const std::string& ns, const std::string& name);
  Result<ListResult> list(const api::KindInfo& kind, const std::string& ns, const ListQuery& query);
  Result<Json> create(const api::KindInfo& kind, const std::string& ns, Json object,
                      const WriteOptions& options = {});
  Result<Json> update(const api::KindInfo& kind, const std::string& ns, const std::string& name,
                      Json object, Subresource sub = Subresource::kNone,
                      const WriteOptions& options = {});
  // update() of the object the caller holds as `current`, without reading the store: exactly
  // what a read or write of the registry returned, unmodified (its metadata.resourceVersion,
  // name and namespace included; kBadRequest without them). The write is a compare-and-swap on
  // that version, kConflict once the stored object has moved on; an update that changes
  // nothing is checked against the stored revision the same way. For a writer that keeps what
  // it last wrote (cloudhub's node Lease renewals).
  Result<Json> updateFrom(const api::KindInfo& kind, const std::string& ns, const std::string& name,
                          const Json& current, Json object, Subresource sub = Subresource::kNone,
                          const WriteOptions& options = {});
  Result<Json> patch(const api::KindInfo& kind, const std::string& ns, const std::string& name,
                     PatchType type, const std::string& patch, Subresource sub = Subresource::kNone,
                     const WriteOptions& options = {});
  // Server-side apply (PATCH application/apply-patch+yaml) of `config` by
  // options.fieldManager (required): creates the object when it does not exist (`*created`
  // set), otherwise merges the configuration as api::applyConfiguration does; a conflict with
  // another manager's fields is kConflict listing them, unless `force`.
  Result<Json> apply(const api::KindInfo& kind, const std::string& ns, const std::string& name,
                     const Json& config, bool force, const WriteOptions& options,
                     bool* created = nullptr);
  // Returns the object as deleted, or with deletionTimestamp set while finalizers remain.
  Result<Json> remove(const api::KindInfo& kind, const std::string& ns, const std::string& name,
                      const DeleteOptions& options = {});
  // resourceVersion "" or "0": synthetic ADDED events for the current state, then changes.
  Result<std::unique_ptr<ObjectWatch>> watch(const api::KindInfo& kind, const std::string& ns,
                                             const ListQuery& query,
                                             const std::string& resourceVersion);

  // Parses a stored object and fills metadata.resourceVersion.
  static Result<Json> decode(const store::Object& object);
  store::Store& store() { return store_; }
  ServiceAllocator& serviceAllocator() { return services_; }

 private:
  // create() with the managedFields of an apply-create (null: recorded from fieldManager).
  Result<Json> createObject(const api::KindInfo& kind, const std::string& ns, Json object,
                            const WriteOptions& options, const Json* appliedManagedFields);
  // `currentRead`: `current` was read from the store for this write (false: the caller's copy,
  // updateFrom(), so that an unchanged object is checked against the stored revision before
  // it counts as written).
  Result<Json> writeUpdate(const api::KindInfo& kind, const std::string& ns,
                           const std::string& name, const Json& current, int64_t currentRev,
                           Json desired, Subresource sub, bool explicitRv,
                           const WriteOptions& options, bool currentRead = true);
  Status checkNamespaceWritable(const api::KindInfo& kind, const std::string& ns);
  Result<Json> removeUnreadable(const api::KindInfo& kind, const std::string& ns,
                                const std::string& name, const DeleteOptions& options,
                                const Status& readError, int64_t revision);
  Result<Json> removeWithPolicy(const api::KindInfo& kind, const std::string& ns,
                                const std::string& name, const Json& current, int64_t revision,
                                const std::string& policy);
  void orphanDependents(const api::KindInfo& dependentKind, const std::string& ns,
                        const std::string& ownerUid);
  std::optional<int64_t> podGracePeriod(const Json& pod, const DeleteOptions& options);
  Result<Json> finalizeNamespace(const std::string& name);
  void maybeFinishNamespace(const std::string& ns);

  store::Store& store_;
  Clock& clock_;
  ServiceAllocator services_;
};

}  // namespace ep::registry
