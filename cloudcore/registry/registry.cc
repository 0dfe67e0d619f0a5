#include "cloudcore/registry/registry.h"

#include <spdlog/spdlog.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "common/api/base64.h"
#include "common/api/field_selector.h"
#include "common/api/json_limits.h"
#include "common/api/label_selector.h"
#include "common/api/managed_fields.h"
#include "common/api/object_util.h"
#include "common/api/patch.h"
#include "common/api/validation.h"
#include "common/thread_annotations.h"

namespace ep::registry {

namespace {

constexpr int kMaxRetries = 8;

std::string quotedName(const api::KindInfo& kind, const std::string& name) {
  return kind.resource() + " \"" + name + "\"";
}

// The apiserver's answer to a write of a version that is no longer the stored one.
Status conflict(const api::KindInfo& kind, const std::string& name) {
  return Status(Code::kConflict, "Operation cannot be fulfilled on " + quotedName(kind, name) +
                                     ": the object has been modified; please apply your changes "
                                     "to the latest version and try again");
}

Status notFound(const api::KindInfo& kind, const std::string& name) {
  return notFoundError(quotedName(kind, name) + " not found");
}

std::string randomSuffix(size_t n) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
  return out;
}

std::string newUid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 1
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

// Serialized form kept in the store: no resourceVersion (the store owns revisions).
std::string encode(Json obj) {
  if (auto m = obj.find("metadata"); m != obj.end() && m->is_object()) {
    m->erase("resourceVersion");
    m->erase("selfLink");
  }
  return obj.dump();
}

api::ManagerInfo managerInfo(const api::KindInfo& kind, const WriteOptions& options, Clock& clock) {
  return {options.fieldManager, kind.apiVersion(), formatRfc3339(clock.nowMillis())};
}

Status invalid(const api::KindInfo& kind, const std::string& name,
               const std::vector<api::FieldError>& errors) {
  std::string msg = kind.kind + " \"" + name + "\" is invalid: ";
  std::vector<StatusCause> causes;
  if (errors.size() > 1) msg += "[";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i) msg += ", ";
    msg += errors[i].message;
    causes.push_back({errors[i].field, errors[i].reason, errors[i].body()});
  }
  if (errors.size() > 1) msg += "]";
  return Status(Code::kInvalid, msg).withCauses(std::move(causes));
}

std::string metaString(const Json& obj, const char* field) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return {};
  auto f = m->find(field);
  return f != m->end() && f->is_string() ? f->get<std::string>() : std::string();
}

bool hasFinalizers(const Json& obj) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return false;
  auto f = m->find("finalizers");
  return f != m->end() && f->is_array() && !f->empty();
}

// core/v1 Service: its cluster IP and node ports are allocated (service_allocator.h).
bool isService(const api::KindInfo& kind) {
  return kind.kind == "Service" && kind.group.empty();
}

// Whether objects of `kind` carry metadata.generation, as in Kubernetes 1.32: the workload
// kinds with a spec the platform serves and every custom kind; not pods, config, nodes...
bool tracksGeneration(const api::KindInfo& kind) {
  return !kind.builtin || kind.kind == "Deployment" || kind.kind == "ReplicaSet";
}

// Everything but metadata and status: a change here bumps metadata.generation.
Json specPart(const Json& obj) {
  Json copy = obj;
  copy.erase("metadata");
  copy.erase("status");
  return copy;
}

void applyDefaults(const api::KindInfo& kind, Json& obj) {
  auto defaultPodSpec = [](Json& spec) {
    if (!spec.is_object()) return;
    if (!spec.contains("restartPolicy")) spec["restartPolicy"] = "Always";
    if (!spec.contains("terminationGracePeriodSeconds")) spec["terminationGracePeriodSeconds"] = 30;
    if (!spec.contains("dnsPolicy")) spec["dnsPolicy"] = "ClusterFirst";
    if (!spec.contains("schedulerName")) spec["schedulerName"] = "default-scheduler";
    for (const char* list : {"containers", "initContainers"}) {
      auto it = spec.find(list);
      if (it == spec.end() || !it->is_array()) continue;
      for (auto& c : *it) {
        if (!c.is_object() || c.contains("imagePullPolicy") || !c.contains("image") ||
            !c["image"].is_string()) {
          continue;
        }
        std::string image = c["image"].get<std::string>();
        auto slash = image.rfind('/');
        std::string last = slash == std::string::npos ? image : image.substr(slash + 1);
        bool latest = last.find('@') == std::string::npos &&
                      (last.find(':') == std::string::npos || last.ends_with(":latest"));
        c["imagePullPolicy"] = latest ? "Always" : "IfNotPresent";
      }
      // Container ports default to TCP, as in Kubernetes.
      for (auto& c : *it) {
        auto ports = c.is_object() ? c.find("ports") : c.end();
        if (!c.is_object() || ports == c.end() || !ports->is_array()) continue;
        for (auto& port : *ports) {
          if (port.is_object() && !port.contains("protocol")) port["protocol"] = "TCP";
        }
      }
    }
  };
  if (kind.kind == "Secret" && kind.group.empty()) {
    // stringData is write-only: merged over data (base64) and dropped, as in Kubernetes.
    if (auto sd = obj.find("stringData"); sd != obj.end()) {
      bool allStrings = sd->is_object();
      for (auto it = sd->begin(); allStrings && it != sd->end(); ++it) {
        allStrings = it.value().is_string();
      }
      if (allStrings) {  // otherwise kept, and validation names the field
        if (!obj.contains("data") || !obj["data"].is_object()) obj["data"] = Json::object();
        for (auto it = sd->begin(); it != sd->end(); ++it) {
          obj["data"][it.key()] = api::base64Encode(it.value().get<std::string>());
        }
        obj.erase("stringData");
      } else if (sd->is_null()) {
        obj.erase("stringData");
      }
    }
    if (!obj.contains("type")) obj["type"] = "Opaque";
  }
  if (kind.kind == "Pod") {
    if (obj.contains("spec")) defaultPodSpec(obj["spec"]);
    if (!obj.contains("status") || !obj["status"].is_object() || !obj["status"].contains("phase")) {
      obj["status"]["phase"] = "Pending";
    }
  } else if (kind.kind == "Deployment" || kind.kind == "ReplicaSet") {
    Json& spec = obj["spec"];
    if (!spec.contains("replicas")) spec["replicas"] = 1;
    if (kind.kind == "Deployment") {
      if (!spec.contains("revisionHistoryLimit")) spec["revisionHistoryLimit"] = 10;
      if (!spec.contains("progressDeadlineSeconds")) spec["progressDeadlineSeconds"] = 600;
      if (!spec.contains("strategy")) spec["strategy"] = Json::object();
      Json& st = spec["strategy"];
      if (!st.contains("type")) st["type"] = "RollingUpdate";
      if (st["type"] == "RollingUpdate") {
        if (!st.contains("rollingUpdate")) st["rollingUpdate"] = Json::object();
        if (!st["rollingUpdate"].contains("maxUnavailable"))
          st["rollingUpdate"]["maxUnavailable"] = "25%";
        if (!st["rollingUpdate"].contains("maxSurge")) st["rollingUpdate"]["maxSurge"] = "25%";
      }
    }
    if (spec.contains("template") && spec["template"].is_object() &&
        spec["template"].contains("spec")) {
      defaultPodSpec(spec["template"]["spec"]);
    }
  } else if (kind.kind == "Secret") {
    if (!obj.contains("type")) obj["type"] = "Opaque";
  } else if (kind.kind == "Service" && kind.group.empty()) {
    defaultService(obj);
  } else if ((kind.kind == "Endpoints" && kind.group.empty()) || kind.kind == "EndpointSlice") {
    auto defaultPorts = [](Json& parent) {
      auto ports = parent.is_object() ? parent.find("ports") : parent.end();
      if (!parent.is_object() || ports == parent.end() || !ports->is_array()) return;
      for (auto& p : *ports) {
        if (p.is_object() && !p.contains("protocol")) p["protocol"] = "TCP";
      }
    };
    if (kind.kind == "EndpointSlice") {
      defaultPorts(obj);
    } else if (auto subsets = obj.find("subsets"); subsets != obj.end() && subsets->is_array()) {
      for (auto& s : *subsets) defaultPorts(s);
    }
  } else if (kind.kind == "Namespace") {
    if (!obj.contains("spec")) obj["spec"] = Json{{"finalizers", Json::array({"kubernetes"})}};
    // The immutable label Kubernetes puts on every namespace (selectable by name).
    if (auto name = metaString(obj, "name"); !name.empty() && obj["metadata"].is_object()) {
      Json& labels = obj["metadata"]["labels"];
      if (labels.is_null()) labels = Json::object();
      if (labels.is_object()) labels["kubernetes.io/metadata.name"] = name;
    }
    obj["status"] = Json{{"phase", "Active"}};
  }
}

// Parses the query's label and field selectors; empty selectors stay unset.
Status parseSelectors(const api::KindInfo& kind, const ListQuery& query,
                      std::optional<api::LabelSelector>& labels,
                      std::optional<api::FieldSelector>& fields) {
  if (!query.labelSelector.empty()) {
    auto s = api::parseLabelSelector(query.labelSelector);
    if (!s.isOk()) return badRequestError("labelSelector: " + s.status().message());
    labels = std::move(s.value());
  }
  if (!query.fieldSelector.empty()) {
    auto s = api::parseFieldSelector(query.fieldSelector, kind);
    if (!s.isOk()) return badRequestError(s.status().message());
    fields = std::move(s.value());
  }
  return Status::ok();
}

bool isSystemNamespace(const std::string& name) {
  return name == "default" || name == "kube-system" || name == "kube-public";
}

}  // namespace

Registry::Registry(store::Store& store, Clock& clock, ServiceNetwork network)
    : store_(store), clock_(clock), services_(store, clock, network) {}

Result<Json> Registry::decode(const store::Object& object) {
  Json obj = Json::parse(object.value, nullptr, false);
  if (obj.is_discarded() || !obj.is_object()) {
    return internalError("stored object " + object.resource + " " + object.namespace_ + "/" +
                         object.name + " is not valid JSON");
  }
  obj["metadata"]["resourceVersion"] = std::to_string(object.modRevision);
  return obj;
}

Status Registry::ensureSystemNamespaces() {
  const auto* ns = api::findByApiVersionKind("v1", "Namespace");
  for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    if (store_.get(ns->resource(), "", name).isOk()) continue;
    auto r = create(
        *ns, "", Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    if (!r.isOk() && r.status().code() != Code::kAlreadyExists) return r.status();
  }
  return Status::ok();
}

Result<Json> Registry::get(const api::KindInfo& kind, const std::string& ns,
                           const std::string& name) {
  auto obj = store_.get(kind.resource(), kind.namespaced ? ns : "", name);
  if (!obj.isOk()) {
    return obj.status().code() == Code::kNotFound ? notFound(kind, name) : obj.status();
  }
  return decode(*obj);
}

Result<ListResult> Registry::list(const api::KindInfo& kind, const std::string& ns,
                                  const ListQuery& query) {
  std::optional<api::LabelSelector> labels;
  std::optional<api::FieldSelector> fields;
  if (auto s = parseSelectors(kind, query, labels, fields); !s.isOk()) return s;
  store::ListOptions opts;
  opts.resource = kind.resource();
  opts.namespace_ = kind.namespaced ? ns : "";
  opts.limit = query.limit;
  opts.continueToken = query.continueToken;
  opts.skipDamaged = query.skipDamaged;
  std::vector<Json> parsed;
  Mutex mu;
  if (labels || fields) {
    // The predicate parses each candidate once; kept objects are reused below.
    opts.predicate = [&](const store::Object& o) {
      auto obj = decode(o);
      if (!obj.isOk()) return false;
      if (labels && !labels->matches(api::labelsOf(*obj))) return false;
      if (fields && !fields->matches(*obj)) return false;
      MutexLock lock(mu);
      parsed.push_back(std::move(obj.value()));
      return true;
    };
  }
  auto r = store_.list(opts);
  if (!r.isOk()) return r.status();
  ListResult out;
  out.resourceVersion = std::to_string(r->revision);
  out.continueToken = r->continueToken;
  for (const auto& key : r->damaged) {
    if (out.warnings.size() < 100) {
      out.warnings.push_back(
          "left out " + key.resource + " \"" +
          (key.namespace_.empty() ? key.name : key.namespace_ + "/" + key.name) +
          "\": cannot be read, damaged on disk or undecryptable (see cloudcore's docs/store.md, "
          "\"Damaged data\")");
    }
  }
  out.damaged = r->damaged;
  if (opts.predicate) {
    parsed.resize(r->items.size());  // the predicate may have accepted one past the limit
    out.items = std::move(parsed);
  } else {
    out.items.reserve(r->items.size());
    for (const auto& o : r->items) {
      auto obj = decode(o);
      if (!obj.isOk()) return obj.status();
      out.items.push_back(std::move(obj.value()));
    }
  }
  return out;
}

Status Registry::checkNamespaceWritable(const api::KindInfo& kind, const std::string& ns) {
  if (!kind.namespaced) return Status::ok();
  if (ns.empty()) return badRequestError("a namespace is required for " + kind.resource());
  const auto* nsKind = api::findByApiVersionKind("v1", "Namespace");
  auto nsObj = store_.get(nsKind->resource(), "", ns);
  if (!nsObj.isOk()) {
    if (nsObj.status().code() == Code::kNotFound) {
      return notFoundError("namespaces \"" + ns + "\" not found");
    }
    return nsObj.status();
  }
  auto parsed = decode(*nsObj);
  if (parsed.isOk() && !metaString(*parsed, "deletionTimestamp").empty()) {
    return Status(Code::kForbidden, "unable to create new content in namespace " + ns +
                                        " because it is being terminated");
  }
  return Status::ok();
}

namespace {

// Drops the fields `kind` does not have from `obj` and reports them (and the body's duplicate
// keys) as `check` asks: warnings, a 400 (Strict), or nothing (Ignore). On updates, a field the
// stored object `current` already has is dropped without a report: the client only echoed
// back what the platform's own writers (or an older version) stored.
Status checkFields(const api::KindInfo& kind, Json& obj, FieldCheck* check,
                   const Json* current = nullptr) {
  if (check == nullptr) return Status::ok();
  check->warnings.clear();
  std::vector<std::string> texts;
  for (const auto& f : api::pruneUnknownFields(kind, obj)) {
    if (current != nullptr && api::lookupPath(*current, f) != nullptr) continue;
    texts.push_back("unknown field \"" + f + "\"");
  }
  for (const auto& f : check->duplicates) texts.push_back("duplicate field \"" + f + "\"");
  if (texts.empty() || check->mode == api::FieldValidation::kIgnore) return Status::ok();
  if (check->mode == api::FieldValidation::kWarn) {
    check->warnings = std::move(texts);
    return Status::ok();
  }
  std::string message = kind.kind + " in version \"" + kind.version + "\" cannot be handled as a " +
                        kind.kind + ": strict decoding error: ";
  for (size_t i = 0; i < texts.size(); ++i) message += (i ? ", " : "") + texts[i];
  return badRequestError(message);
}

}  // namespace

Result<Json> Registry::create(const api::KindInfo& kind, const std::string& ns, Json obj,
                              const WriteOptions& options) {
  return createObject(kind, ns, std::move(obj), options, nullptr);
}

Result<Json> Registry::createObject(const api::KindInfo& kind, const std::string& ns, Json obj,
                                    const WriteOptions& options, const Json* appliedManagedFields) {
  if (!obj.is_object()) return badRequestError("the request body must be a JSON object");
  if (auto s = checkFields(kind, obj, options.fieldCheck); !s.isOk()) return s;
  if (obj.contains("apiVersion") && obj["apiVersion"] != kind.apiVersion()) {
    return badRequestError("the API version in the data (" + obj["apiVersion"].dump() +
                           ") does not match the expected API version (" + kind.apiVersion() + ")");
  }
  if (obj.contains("kind") && obj["kind"] != kind.kind) {
    return badRequestError("the kind in the data (" + obj["kind"].dump() +
                           ") does not match the expected kind (" + kind.kind + ")");
  }
  obj["apiVersion"] = kind.apiVersion();
  obj["kind"] = kind.kind;
  // A NodeUpgradeJob's status is its controller's (it chooses the nodes and their turns; what it
  // says decides where an edgecore binary goes): dropped on create, as Kubernetes does for a
  // custom resource with a status subresource.
  if (kind.group == "operations.kubeedge.io" && kind.kind == "NodeUpgradeJob") obj.erase("status");
  if (!obj.contains("metadata")) obj["metadata"] = Json::object();
  Json& meta = obj["metadata"];
  if (!meta.is_object())
    return invalid(
        kind, "",
        {{"metadata", "FieldValueTypeInvalid", "metadata: Invalid value: must be an object"}});
  if (kind.namespaced) {
    if (meta.contains("namespace") && meta["namespace"] != "" && meta["namespace"] != ns) {
      return badRequestError(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  if ((!meta.contains("name") || meta["name"] == "") && meta.contains("generateName") &&
      meta["generateName"].is_string()) {
    meta["name"] = meta["generateName"].get<std::string>() + randomSuffix(5);
  }
  std::string name = metaString(obj, "name");
  applyDefaults(kind, obj);
  if (auto errors = api::validateObject(kind, obj); !errors.empty()) {
    return invalid(kind, name, errors);
  }
  if (auto s = checkNamespaceWritable(kind, ns); !s.isOk()) return s;
  meta["uid"] = newUid();
  meta["creationTimestamp"] = formatRfc3339(clock_.nowMillis());
  if (tracksGeneration(kind)) {
    meta["generation"] = 1;
  } else {
    meta.erase("generation");
  }
  for (const char* f : {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "managedFields", "selfLink"}) {
    meta.erase(f);
  }
  if (appliedManagedFields != nullptr) {
    meta["managedFields"] = *appliedManagedFields;
  } else if (!options.fieldManager.empty()) {
    Json managed = api::recordUpdate(Json::array(), nullptr, obj,
                                     managerInfo(kind, options, clock_), kind.builtin);
    if (!managed.empty()) meta["managedFields"] = std::move(managed);
  }
  if (options.admit) {
    if (auto admitted = options.admit(nullptr, obj); !admitted.isOk()) return admitted;
  }
  ServiceAllocator::Allocation allocation;
  if (isService(kind)) {
    if (auto s = services_.allocate(nullptr, obj, options.dryRun, allocation); !s.isOk()) return s;
    if (!allocation.errors.empty()) return invalid(kind, name, allocation.errors);
  }
  if (options.dryRun) return obj;
  auto r = store_.create(kind.resource(), kind.namespaced ? ns : "", name, encode(obj));
  if (!r.isOk()) {
    services_.release(allocation.reserved);
    if (r.status().code() == Code::kAlreadyExists) {
      return Status(Code::kAlreadyExists, quotedName(kind, name) + " already exists");
    }
    return r.status();
  }
  return decode(*r);
}

Result<Json> Registry::writeUpdate(const api::KindInfo& kind, const std::string& ns,
                                   const std::string& name, const Json& current, int64_t currentRev,
                                   Json desired, Subresource sub, bool explicitRv,
                                   const WriteOptions& options, bool currentRead) {
  if (!desired.is_object()) return badRequestError("the request body must be a JSON object");
  if (auto s = checkFields(kind, desired, options.fieldCheck, &current); !s.isOk()) return s;
  Json next;
  if (sub == Subresource::kStatus) {
    next = current;
    if (desired.contains("status")) {
      next["status"] = desired["status"];
    } else {
      next.erase("status");
    }
  } else {
    next = std::move(desired);
    if (!next.contains("metadata") || !next["metadata"].is_object()) {
      next["metadata"] = Json::object();
    }
    if (kind.hasStatus) {
      if (current.contains("status")) {
        next["status"] = current["status"];
      } else {
        next.erase("status");
      }
    }
  }
  Json& meta = next["metadata"];
  const Json& curMeta = current["metadata"];
  std::string bodyName = meta.value("name", std::string());
  if (!bodyName.empty() && bodyName != name) {
    return badRequestError("the name of the object (" + bodyName +
                           ") does not match the name on the URL (" + name + ")");
  }
  if (kind.namespaced && meta.contains("namespace") && meta["namespace"] != "" &&
      meta["namespace"] != ns) {
    return badRequestError(
        "the namespace of the provided object does not match the namespace sent on the request");
  }
  if (meta.contains("uid") && meta["uid"] != "" && meta["uid"] != curMeta["uid"]) {
    return Status(Code::kConflict,
                  "Precondition failed: UID in precondition: " + meta["uid"].dump() +
                      ", UID in object meta: " + curMeta["uid"].dump());
  }
  next["apiVersion"] = kind.apiVersion();
  next["kind"] = kind.kind;
  meta["name"] = name;
  if (kind.namespaced) {
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation"}) {
    if (curMeta.contains(f)) {
      meta[f] = curMeta[f];
    } else {
      meta.erase(f);
    }
  }
  // The stored managedFields, unless the writer sends its own valid list ([] resets them), as
  // the apiserver does (kubectl's client-side to server-side apply upgrade relies on it).
  Json managed = curMeta.value("managedFields", Json::array());
  if (auto d = meta.find("managedFields");
      sub == Subresource::kNone && d != meta.end() && api::validManagedFields(*d)) {
    managed = *d;
  }
  meta.erase("managedFields");
  meta.erase("selfLink");
  if (sub == Subresource::kNone && isService(kind)) keepAllocatedValues(current, next);
  if (sub == Subresource::kNone) applyDefaults(kind, next);
  if (kind.kind == "Namespace") next["status"] = current.value("status", Json::object());

  if (sub == Subresource::kNone && !options.fieldManager.empty()) {
    managed = api::recordUpdate(managed, &current, next, managerInfo(kind, options, clock_),
                                kind.builtin);
  } else if (sub == Subresource::kNone && managed.is_array() && !managed.empty()) {
    managed = api::forgetRemovedFields(managed, next, kind.builtin);  // a platform writer
  }
  if (managed.is_array() && !managed.empty()) meta["managedFields"] = std::move(managed);

  std::string rv = meta.value("resourceVersion", std::string());
  int64_t expected = currentRev;
  if (explicitRv && !rv.empty()) {
    try {
      expected = std::stoll(rv);
    } catch (...) {
      return badRequestError("metadata.resourceVersion: invalid value \"" + rv + "\"");
    }
    if (expected != currentRev) {
      return conflict(kind, name);
    }
  }
  meta["resourceVersion"] = std::to_string(currentRev);

  auto errors = api::validateObject(kind, next);
  auto updErrors = api::validateUpdate(kind, current, next);
  errors.insert(errors.end(), updErrors.begin(), updErrors.end());
  if (!errors.empty()) return invalid(kind, name, errors);
  if (options.admit) {
    if (auto admitted = options.admit(&current, next); !admitted.isOk()) return admitted;
  }

  if (tracksGeneration(kind) && specPart(next) != specPart(current)) {
    meta["generation"] = curMeta.value("generation", int64_t{1}) + 1;
  }
  if (next == current) {  // no-op: nothing is written, revision unchanged
    if (!currentRead) {
      auto stored = store_.get(kind.resource(), kind.namespaced ? ns : "", name);
      if (!stored.isOk()) {
        return stored.status().code() == Code::kNotFound ? notFound(kind, name) : stored.status();
      }
      if (stored->modRevision != currentRev) return conflict(kind, name);
    }
    return next;
  }
  ServiceAllocator::Allocation allocation;
  if (isService(kind) && sub == Subresource::kNone) {
    if (auto s = services_.allocate(&current, next, options.dryRun, allocation); !s.isOk()) {
      return s;
    }
    if (!allocation.errors.empty()) return invalid(kind, name, allocation.errors);
  }
  if (options.dryRun) return next;
  // Releases what the Service no longer holds once the write succeeded, or what this write
  // reserved when it failed.
  auto settle = [&](bool written, const Json* after) {
    if (!isService(kind)) return;
    if (!written) {
      services_.release(allocation.reserved);
    } else {
      services_.releaseUnused(current, after);
      if (after == nullptr) services_.release(allocation.reserved);  // removed by this write
    }
  };

  // A pod in graceful deletion (deletionGracePeriodSeconds > 0) waits for its node to confirm
  // (a forced delete); other updates, its status ones included, must not remove it early.
  bool finalize = !metaString(next, "deletionTimestamp").empty() && !hasFinalizers(next) &&
                  api::intAt(next, "metadata.deletionGracePeriodSeconds", 0) == 0;
  if (finalize) {
    auto r = store_.remove(kind.resource(), kind.namespaced ? ns : "", name, expected);
    settle(r.isOk(), nullptr);
    if (!r.isOk()) return r.status();
    if (kind.namespaced) maybeFinishNamespace(ns);
    next["metadata"]["resourceVersion"] = std::to_string(r->modRevision);
    return next;
  }
  auto r = store_.update(kind.resource(), kind.namespaced ? ns : "", name, encode(next), expected);
  settle(r.isOk(), &next);
  if (!r.isOk()) {
    if (r.status().code() == Code::kNotFound) return notFound(kind, name);
    if (r.status().code() == Code::kConflict) {
      return conflict(kind, name);
    }
    return r.status();
  }
  return decode(*r);
}

Result<Json> Registry::update(const api::KindInfo& kind, const std::string& ns,
                              const std::string& name, Json object, Subresource sub,
                              const WriteOptions& options) {
  bool explicitRv = object.is_object() && object.contains("metadata") &&
                    object["metadata"].is_object() &&
                    !object["metadata"].value("resourceVersion", std::string()).empty();
  for (int attempt = 0;; ++attempt) {
    auto cur = store_.get(kind.resource(), kind.namespaced ? ns : "", name);
    if (!cur.isOk()) {
      return cur.status().code() == Code::kNotFound ? notFound(kind, name) : cur.status();
    }
    auto current = decode(*cur);
    if (!current.isOk()) return current.status();
    auto r =
        writeUpdate(kind, ns, name, *current, cur->modRevision, object, sub, explicitRv, options);
    if (r.isOk() || explicitRv || r.status().code() != Code::kConflict || attempt >= kMaxRetries) {
      return r;
    }
  }
}

Result<Json> Registry::updateFrom(const api::KindInfo& kind, const std::string& ns,
                                  const std::string& name, const Json& current, Json object,
                                  Subresource sub, const WriteOptions& options) {
  // A revision of 0 would make the store's write unconditional: only a real one is accepted.
  const std::string rv = metaString(current, "resourceVersion");
  int64_t currentRev = 0;
  size_t used = 0;
  try {
    currentRev = std::stoll(rv, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != rv.size() || currentRev <= 0) {
    return badRequestError("the current object has no valid metadata.resourceVersion");
  }
  if (metaString(current, "name") != name ||
      (kind.namespaced && metaString(current, "namespace") != ns)) {
    return badRequestError("the current object is not " + quotedName(kind, name));
  }
  return writeUpdate(kind, ns, name, current, currentRev, std::move(object), sub,
                     /*explicitRv=*/false, options, /*currentRead=*/false);
}

Result<Json> Registry::patch(const api::KindInfo& kind, const std::string& ns,
                             const std::string& name, PatchType type, const std::string& body,
                             Subresource sub, const WriteOptions& options) {
  // As deep as the patch functions take (common/api/patch.h), refused before it is parsed.
  bool tooDeep = false;
  Json patchDoc = api::parseJsonBounded(body, 512, &tooDeep);
  if (tooDeep) return badRequestError("the patch body is nested deeper than 512 levels");
  if (patchDoc.is_discarded()) return badRequestError("the patch body is not valid JSON");
  if (type == PatchType::kStrategicMerge && !kind.builtin) {
    return Status(Code::kUnsupportedMedia,
                  "the body of the request was in an unknown format - accepted media types "
                  "include: application/json-patch+json, application/merge-patch+json");
  }
  for (int attempt = 0;; ++attempt) {
    auto cur = store_.get(kind.resource(), kind.namespaced ? ns : "", name);
    if (!cur.isOk()) {
      return cur.status().code() == Code::kNotFound ? notFound(kind, name) : cur.status();
    }
    auto current = decode(*cur);
    if (!current.isOk()) return current.status();
    Result<Json> patched = Status(Code::kInternal, "unreachable");
    switch (type) {
      case PatchType::kMerge:
        patched = api::applyMergePatch(*current, patchDoc);
        break;
      case PatchType::kStrategicMerge:
        patched = api::applyStrategicMergePatch(*current, patchDoc);
        break;
      case PatchType::kJsonPatch:
        patched = api::applyJsonPatch(*current, patchDoc);
        break;
    }
    if (!patched.isOk()) {
      if (patched.status().code() == Code::kInvalid) {
        return Status(Code::kInvalid, patched.status().message());
      }
      return badRequestError(patched.status().message());
    }
    // A resourceVersion the patch itself sets is a precondition; otherwise last write wins
    // with retries on races.
    std::string patchedRv;
    if (patched->contains("metadata") && (*patched)["metadata"].is_object()) {
      patchedRv = (*patched)["metadata"].value("resourceVersion", std::string());
    }
    bool explicitRv = !patchedRv.empty() && patchedRv != std::to_string(cur->modRevision);
    auto r = writeUpdate(kind, ns, name, *current, cur->modRevision, std::move(patched.value()),
                         sub, explicitRv, options);
    if (r.isOk() || explicitRv || r.status().code() != Code::kConflict || attempt >= kMaxRetries) {
      return r;
    }
  }
}

Result<Json> Registry::apply(const api::KindInfo& kind, const std::string& ns,
                             const std::string& name, const Json& config, bool force,
                             const WriteOptions& options, bool* created) {
  if (created != nullptr) *created = false;
  if (options.fieldManager.empty()) {
    return Status(Code::kInvalid,
                  "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is "
                  "required for apply patch");
  }
  if (!config.is_object()) return badRequestError("the applied configuration must be an object");
  // As the apiserver: an applied configuration names its kind, its version and its object.
  for (const char* f : {"apiVersion", "kind"}) {
    auto it = config.find(f);
    if (it == config.end() || !it->is_string() || it->get<std::string>().empty()) {
      return badRequestError(std::string(f) + " must be set in the applied configuration");
    }
  }
  std::string bodyName = metaString(config, "name");
  if (!bodyName.empty() && bodyName != name) {
    return badRequestError("the name of the object (" + bodyName +
                           ") does not match the name on the URL (" + name + ")");
  }
  // Unknown fields leave the configuration before ownership is computed (Strict refuses them
  // here, Warn reports them once), so nobody owns a field that is never stored.
  Json checked = config;
  if (auto s = checkFields(kind, checked, options.fieldCheck); !s.isOk()) return s;
  WriteOptions writeOptions = options;
  writeOptions.fieldManager.clear();  // apply computes managedFields itself
  writeOptions.fieldCheck = nullptr;
  for (int attempt = 0;; ++attempt) {
    auto cur = store_.get(kind.resource(), kind.namespaced ? ns : "", name);
    if (!cur.isOk() && cur.status().code() != Code::kNotFound) return cur.status();
    if (!cur.isOk()) {
      Json object = checked;
      if (!object.contains("metadata") || !object["metadata"].is_object()) {
        object["metadata"] = Json::object();
      }
      object["metadata"]["name"] = name;
      Json managed =
          api::applyCreateManagedFields(checked, managerInfo(kind, options, clock_), kind.builtin);
      auto r = createObject(kind, ns, std::move(object), writeOptions, &managed);
      if (r.isOk() && created != nullptr) *created = true;
      if (!r.isOk() && r.status().code() == Code::kAlreadyExists && attempt < kMaxRetries) {
        continue;  // created meanwhile: apply to it
      }
      return r;
    }
    auto current = decode(*cur);
    if (!current.isOk()) return current.status();
    auto merged = api::applyConfiguration(*current, checked, managerInfo(kind, options, clock_),
                                          force, kind.builtin);
    if (!merged.isOk()) return merged.status();
    std::string mergedRv = metaString(*merged, "resourceVersion");
    bool explicitRv = !mergedRv.empty() && mergedRv != std::to_string(cur->modRevision);
    auto r = writeUpdate(kind, ns, name, *current, cur->modRevision, std::move(merged.value()),
                         Subresource::kNone, explicitRv, writeOptions);
    if (r.isOk() || explicitRv || r.status().code() != Code::kConflict || attempt >= kMaxRetries) {
      return r;
    }
  }
}

Result<Json> Registry::remove(const api::KindInfo& kind, const std::string& ns,
                              const std::string& name, const DeleteOptions& options) {
  const std::string storeNs = kind.namespaced ? ns : "";
  if (kind.kind == "Namespace" && isSystemNamespace(name)) {
    return Status(Code::kForbidden,
                  "namespaces \"" + name + "\" is forbidden: this namespace may not be deleted");
  }
  for (int attempt = 0;; ++attempt) {
    auto cur = store_.get(kind.resource(), storeNs, name);
    if (!cur.isOk()) {
      if (cur.status().code() == Code::kNotFound) return notFound(kind, name);
      // kInternal is what the store and its encryption answer for a value they cannot read.
      if (options.ignoreStoreReadError && cur.status().code() == Code::kInternal) {
        return removeUnreadable(kind, ns, name, options, cur.status(), 0);
      }
      return cur.status();
    }
    auto current = decode(*cur);
    if (!current.isOk()) {
      if (options.ignoreStoreReadError) {
        return removeUnreadable(kind, ns, name, options, current.status(), cur->modRevision);
      }
      return current.status();
    }
    if (!options.preconditionUid.empty() &&
        options.preconditionUid != metaString(*current, "uid")) {
      return Status(Code::kConflict,
                    "Precondition failed: UID in precondition: " + options.preconditionUid +
                        ", UID in object meta: " + metaString(*current, "uid"));
    }
    if (!options.preconditionResourceVersion.empty() &&
        options.preconditionResourceVersion != std::to_string(cur->modRevision)) {
      return Status(Code::kConflict,
                    "Precondition failed: ResourceVersion in precondition: " +
                        options.preconditionResourceVersion +
                        ", ResourceVersion in object meta: " + std::to_string(cur->modRevision));
    }
    if (options.dryRun) return current;
    const bool policyOwner = kind.kind == "Deployment" || kind.kind == "ReplicaSet";
    const bool terminating = !metaString(*current, "deletionTimestamp").empty();
    if (policyOwner &&
        (options.propagationPolicy == "Orphan" || options.propagationPolicy == "Foreground" ||
         (options.propagationPolicy == "Background" && terminating))) {
      auto r =
          removeWithPolicy(kind, ns, name, *current, cur->modRevision, options.propagationPolicy);
      if (r.isOk() || r.status().code() != Code::kConflict || attempt >= kMaxRetries) return r;
      continue;
    }
    Result<Json> r = Status(Code::kInternal, "unreachable");
    std::optional<int64_t> grace = kind.kind == "Pod" && !hasFinalizers(*current)
                                       ? podGracePeriod(*current, options)
                                       : std::nullopt;
    if (grace && *grace > 0) {
      // Graceful deletion: the node stops the pod's containers, reports them terminated and
      // the report applier then removes the pod (docs/edged.md, "Deleting a pod").
      if (!metaString(*current, "deletionTimestamp").empty()) return current;
      Json next = *current;
      next["metadata"]["deletionTimestamp"] = formatRfc3339(clock_.nowMillis() + *grace * 1000);
      next["metadata"]["deletionGracePeriodSeconds"] = *grace;
      auto u = store_.update(kind.resource(), storeNs, name, encode(next), cur->modRevision);
      r = u.isOk() ? decode(*u) : Result<Json>(u.status());
    } else if (hasFinalizers(*current) || kind.kind == "Namespace") {
      if (!metaString(*current, "deletionTimestamp").empty()) {
        r = current;  // already terminating
      } else {
        Json next = *current;
        next["metadata"]["deletionTimestamp"] = formatRfc3339(clock_.nowMillis());
        next["metadata"]["deletionGracePeriodSeconds"] = 0;
        if (kind.kind == "Namespace") next["status"]["phase"] = "Terminating";
        auto u = store_.update(kind.resource(), storeNs, name, encode(next), cur->modRevision);
        r = u.isOk() ? decode(*u) : Result<Json>(u.status());
      }
      if (r.isOk() && kind.kind == "Namespace") {
        auto finished = finalizeNamespace(name);
        // Gone already (its last object's removal finished it): report the terminating object.
        if (!finished.isOk() && finished.status().code() == Code::kNotFound) return r;
        return finished;
      }
    } else {
      auto d = store_.remove(kind.resource(), storeNs, name, cur->modRevision);
      if (d.isOk() && isService(kind)) services_.releaseUnused(*current, nullptr);
      if (d.isOk()) {
        Json gone = *current;
        gone["metadata"]["resourceVersion"] = std::to_string(d->modRevision);
        r = gone;
        if (kind.namespaced) maybeFinishNamespace(ns);
      } else {
        r = d.status();
      }
    }
    if (r.isOk() || r.status().code() != Code::kConflict || attempt >= kMaxRetries) return r;
  }
}

// Kubernetes' unsafe delete of an object the normal path could not read. `revision`: the
// stored row's (0 when the store could not read the row itself).
Result<Json> Registry::removeUnreadable(const api::KindInfo& kind, const std::string& ns,
                                        const std::string& name, const DeleteOptions& options,
                                        const Status& readError, int64_t revision) {
  Json tombstone = {
      {"apiVersion", kind.apiVersion()}, {"kind", kind.kind}, {"metadata", {{"name", name}}}};
  if (kind.namespaced) tombstone["metadata"]["namespace"] = ns;
  if (options.dryRun) return tombstone;
  spdlog::warn("registry: unsafe delete of unreadable {} {}/{} ({})", kind.resource(), ns, name,
               readError.message());
  auto r = store_.removeUnsafe(kind.resource(), kind.namespaced ? ns : "", name, tombstone.dump(),
                               revision);
  if (!r.isOk()) {
    return r.status().code() == Code::kNotFound ? notFound(kind, name) : r.status();
  }
  return decode(*r);
}

// Marks the owner terminating with the policy's finalizer (so no controller adopts for it or
// acts on it any more); Orphan then clears the owner's references from its dependents and drops
// the finalizer, which removes the owner unless other finalizers remain. A repeated Orphan
// delete of an owner left with the finalizer (a crash in between) finishes the work.
Result<Json> Registry::removeWithPolicy(const api::KindInfo& kind, const std::string& ns,
                                        const std::string& name, const Json& current,
                                        int64_t revision, const std::string& policy) {
  // The policy's finalizer replaces the other policy's (a later delete with another policy
  // changes course, as in Kubernetes); Background drops both.
  const std::string finalizer = policy == "Orphan"       ? "orphan"
                                : policy == "Foreground" ? "foregroundDeletion"
                                                         : "";
  const std::string other = policy == "Orphan" ? "foregroundDeletion" : "orphan";
  Json next = current;
  Json& meta = next["metadata"];
  if (!meta.contains("finalizers") || !meta["finalizers"].is_array()) {
    meta["finalizers"] = Json::array();
  }
  Json& finalizers = meta["finalizers"];
  finalizers.erase(std::remove(finalizers.begin(), finalizers.end(), Json(other)),
                   finalizers.end());
  if (policy == "Background") {
    finalizers.erase(std::remove(finalizers.begin(), finalizers.end(), Json("foregroundDeletion")),
                     finalizers.end());
  }
  if (!finalizer.empty() &&
      std::find(finalizers.begin(), finalizers.end(), finalizer) == finalizers.end()) {
    finalizers.push_back(finalizer);
  }
  if (finalizers.empty()) meta.erase("finalizers");
  if (metaString(next, "deletionTimestamp").empty()) {
    meta["deletionTimestamp"] = formatRfc3339(clock_.nowMillis());
    meta["deletionGracePeriodSeconds"] = 0;
  }
  if (policy == "Background") {  // terminating already: what is left decides
    if (next == current) return current;
    return update(kind, ns, name, next);  // removes it when no finalizer remains
  }
  Json marked = current;
  if (next != current) {
    auto u = store_.update(kind.resource(), ns, name, encode(next), revision);
    if (!u.isOk()) {
      if (u.status().code() == Code::kConflict) {
        return conflict(kind, name);
      }
      return u.status();
    }
    auto decoded = decode(*u);
    if (!decoded.isOk()) return decoded.status();
    marked = std::move(decoded.value());
  }
  if (policy != "Orphan") return marked;

  const api::KindInfo* dependent =
      api::findByApiVersionKind(kind.kind == "Deployment" ? "apps/v1" : "v1",
                                kind.kind == "Deployment" ? "ReplicaSet" : "Pod");
  if (dependent != nullptr) orphanDependents(*dependent, ns, metaString(current, "uid"));
  for (int attempt = 0;; ++attempt) {
    Json without = marked;
    Json& f = without["metadata"]["finalizers"];
    f.erase(std::remove(f.begin(), f.end(), Json(finalizer)), f.end());
    if (f.empty()) without["metadata"].erase("finalizers");
    auto r = update(kind, ns, name, without);
    if (r.isOk() || r.status().code() != Code::kConflict || attempt >= kMaxRetries) return r;
    auto again = get(kind, ns, name);
    if (!again.isOk()) {
      if (again.status().code() == Code::kNotFound) return marked;
      return again.status();
    }
    marked = std::move(again.value());
  }
}

// Removes every ownerReference to `ownerUid` from the objects of `dependentKind` in `ns`.
void Registry::orphanDependents(const api::KindInfo& dependentKind, const std::string& ns,
                                const std::string& ownerUid) {
  auto list = this->list(dependentKind, ns, {});
  if (!list.isOk()) {
    spdlog::warn("registry: orphaning the {} of {}: {}", dependentKind.resource(), ownerUid,
                 list.status().toString());
    return;
  }
  for (Json obj : list->items) {
    for (int attempt = 0; attempt <= kMaxRetries; ++attempt) {
      Json* refs = obj["metadata"].contains("ownerReferences") ? &obj["metadata"]["ownerReferences"]
                                                               : nullptr;
      if (refs == nullptr || !refs->is_array()) break;
      const size_t before = refs->size();
      refs->erase(std::remove_if(refs->begin(), refs->end(),
                                 [&](const Json& r) {
                                   return r.is_object() && r.value("uid", "") == ownerUid;
                                 }),
                  refs->end());
      if (refs->size() == before) break;
      if (refs->empty()) obj["metadata"].erase("ownerReferences");
      const std::string name = metaString(obj, "name");
      auto r = update(dependentKind, ns, name, obj);  // resourceVersion: a precondition
      if (r.isOk() || r.status().code() != Code::kConflict) break;
      auto fresh = get(dependentKind, ns, name);
      if (!fresh.isOk()) break;
      obj = std::move(fresh.value());
    }
  }
}

// The grace period a pod's deletion gets, or nullopt when it is removed at once: pods that are
// not bound, bound to a node that does not exist or runs no pods (no container runtime in its
// nodeInfo), or deleted with gracePeriodSeconds 0.
std::optional<int64_t> Registry::podGracePeriod(const Json& pod, const DeleteOptions& options) {
  if (options.gracePeriodSeconds && *options.gracePeriodSeconds <= 0) return std::nullopt;
  std::string node = api::stringAt(pod, "spec.nodeName");
  if (node.empty()) return std::nullopt;
  auto n = store_.get("nodes", "", node);
  if (!n.isOk()) return std::nullopt;
  auto decoded = decode(*n);
  if (!decoded.isOk() ||
      api::stringAt(*decoded, "status.nodeInfo.containerRuntimeVersion").empty()) {
    return std::nullopt;
  }
  int64_t grace = options.gracePeriodSeconds.value_or(
      api::intAt(pod, "spec.terminationGracePeriodSeconds", 30));
  return grace > 0 ? std::optional<int64_t>(grace) : std::nullopt;
}

// Deletes everything in a terminating namespace; removes the namespace itself once empty.
// Objects held by finalizers keep it Terminating until their last finalizer is removed.
Result<Json> Registry::finalizeNamespace(const std::string& name) {
  bool empty = true;
  for (const auto& kind : api::allKinds()) {
    if (!kind.namespaced) continue;
    store::ListOptions opts;
    opts.resource = kind.resource();
    opts.namespace_ = name;
    auto items = store_.list(opts);
    if (!items.isOk()) return items.status();
    for (const auto& o : items->items) {
      auto r = remove(kind, name, o.name);
      if (r.isOk() && !metaString(*r, "deletionTimestamp").empty() &&
          (hasFinalizers(*r) || api::intAt(*r, "metadata.deletionGracePeriodSeconds", 0) > 0)) {
        empty = false;
      } else if (!r.isOk() && r.status().code() != Code::kNotFound) {
        empty = false;
      }
    }
  }
  const auto* nsKind = api::findByApiVersionKind("v1", "Namespace");
  auto cur = store_.get(nsKind->resource(), "", name);
  if (!cur.isOk()) return cur.status();
  auto current = decode(*cur);
  if (!current.isOk() || !empty) return current;
  auto d = store_.remove(nsKind->resource(), "", name, 0);
  if (!d.isOk()) return d.status().code() == Code::kNotFound ? current : Result<Json>(d.status());
  (*current)["metadata"]["resourceVersion"] = std::to_string(d->modRevision);
  return current;
}

void Registry::maybeFinishNamespace(const std::string& ns) {
  const auto* nsKind = api::findByApiVersionKind("v1", "Namespace");
  auto cur = store_.get(nsKind->resource(), "", ns);
  if (!cur.isOk()) return;
  auto current = decode(*cur);
  if (!current.isOk() || metaString(*current, "deletionTimestamp").empty()) return;
  for (const auto& kind : api::allKinds()) {
    if (!kind.namespaced) continue;
    store::ListOptions opts;
    opts.resource = kind.resource();
    opts.namespace_ = ns;
    opts.limit = 1;
    auto items = store_.list(opts);
    if (!items.isOk() || !items->items.empty()) return;
  }
  if (auto d = store_.remove(nsKind->resource(), "", ns, 0); !d.isOk()) {
    spdlog::warn("registry: finishing namespace {}: {}", ns, d.status().toString());
  }
}

namespace {

Json expiredStatus(const std::string& message) {
  return Json{{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", Json::object()},
              {"status", "Failure"}, {"message", message}, {"reason", "Expired"},
              {"code", 410}};
}

class FilteredWatch final : public ObjectWatch {
 public:
  FilteredWatch(std::unique_ptr<store::Watch> w, std::optional<api::LabelSelector> labels,
                std::optional<api::FieldSelector> fields, std::vector<Json> initial,
                std::vector<std::string> warnings, int64_t startRev)
      : watch_(std::move(w)),
        labels_(std::move(labels)),
        fields_(std::move(fields)),
        warnings_(std::move(warnings)),
        initial_(std::move(initial)),
        lastRev_(startRev) {}

  ~FilteredWatch() override { watch_->stop(); }

  std::vector<WatchEvent> poll(size_t max) override {
    std::vector<WatchEvent> out;
    MutexLock lock(mu_);
    while (out.size() < max && next_ < initial_.size()) {
      out.push_back({"ADDED", std::make_shared<Json>(std::move(initial_[next_++]))});
    }
    if (next_ == initial_.size() && !initial_.empty()) initial_.clear(), next_ = 0;
    if (out.size() >= max || failed_) return out;
    // The store notifies when its buffer turns non-empty, so a batch that matched nothing is
    // followed by polling on: returning empty with events still buffered would wait for a
    // notification that never comes.
    std::vector<store::Event> events;
    do {
      events = watch_->poll(max - out.size());
      for (auto& e : events) {
        lastRev_ = e.object.modRevision;
        auto obj = Registry::decode(e.object);
        if (!obj.isOk()) continue;
        const bool deleted = e.type == store::EventType::kDeleted;
        bool before = false;
        if (deleted) {
          // A deletion carries the last version. An unsafe delete (empty prevValue) carries only a
          // tombstone, which no selector matches: every watch of the kind gets it (clients ignore
          // unknown deletes).
          before = e.prevValue.empty() || matches(*obj);
        } else if (e.type == store::EventType::kModified && !labels_ && !fields_) {
          before = true;  // without a selector every version matches: the old one is not decoded
        } else if (e.type == store::EventType::kModified) {
          store::Object prev = e.object;
          prev.value = e.prevValue;
          auto prevObj = Registry::decode(prev);
          before = prevObj.isOk() && matches(*prevObj);
        }
        std::string_view type = api::filteredWatchEventType(deleted, before, matches(*obj));
        if (!type.empty()) {
          out.push_back({std::string(type), std::make_shared<Json>(std::move(obj.value()))});
        }
      }
    } while (!events.empty() && out.empty());
    if (events.empty() && watch_->done() && !failed_) {
      failed_ = true;
      Status err = watch_->error();
      if (!err.isOk()) {
        auto status = err.code() == Code::kExpired ? expiredStatus(err.message())
                                                   : Json{{"kind", "Status"},
                                                          {"apiVersion", "v1"},
                                                          {"metadata", Json::object()},
                                                          {"status", "Failure"},
                                                          {"message", err.message()},
                                                          {"reason", codeName(err.code())},
                                                          {"code", 500}};
        out.push_back({"ERROR", std::make_shared<Json>(std::move(status))});
      }
    }
    return out;
  }

  void setNotify(std::function<void()> notify) override {
    bool pending;
    {
      MutexLock lock(mu_);
      pending = next_ < initial_.size();
    }
    watch_->setNotify(notify);
    if (pending && notify) notify();
  }
  bool done() const override {
    MutexLock lock(mu_);
    // An ended store watch is only done for the consumer once its ERROR event (if any) was
    // handed out by poll().
    return failed_ || (next_ >= initial_.size() && watch_->done() && watch_->error().isOk());
  }
  void stop() override { watch_->stop(); }
  int64_t lastRevision() const override {
    // Under mu_, so no poll() is between the store watch and its filtering.
    MutexLock lock(mu_);
    if (next_ < initial_.size()) return 0;
    return std::max(lastRev_, watch_->progressRevision());
  }
  std::vector<std::string> warnings() const override { return warnings_; }

 private:
  bool matches(const Json& obj) const {
    if (labels_ && !labels_->matches(api::labelsOf(obj))) return false;
    if (fields_ && !fields_->matches(obj)) return false;
    return true;
  }

  std::unique_ptr<store::Watch> watch_;
  const std::optional<api::LabelSelector> labels_;
  const std::optional<api::FieldSelector> fields_;
  const std::vector<std::string> warnings_;  // immutable: read without the lock
  mutable Mutex mu_;
  std::vector<Json> initial_ EP_GUARDED_BY(mu_);
  size_t next_ EP_GUARDED_BY(mu_) = 0;
  int64_t lastRev_ EP_GUARDED_BY(mu_);
  bool failed_ EP_GUARDED_BY(mu_) = false;
};

}  // namespace

Result<std::unique_ptr<ObjectWatch>> Registry::watch(const api::KindInfo& kind,
                                                     const std::string& ns, const ListQuery& query,
                                                     const std::string& resourceVersion) {
  std::optional<api::LabelSelector> labels;
  std::optional<api::FieldSelector> fields;
  if (auto s = parseSelectors(kind, query, labels, fields); !s.isOk()) return s;
  std::vector<Json> initial;
  std::vector<std::string> warnings;
  int64_t from = 0;
  if (resourceVersion.empty() || resourceVersion == "0") {
    ListQuery all = query;
    all.limit = 0;
    all.continueToken.clear();
    auto l = list(kind, ns, all);
    if (!l.isOk()) return l.status();
    initial = std::move(l->items);
    warnings = std::move(l->warnings);
    from = std::stoll(l->resourceVersion);
  } else {
    try {
      size_t used = 0;
      from = std::stoll(resourceVersion, &used);
      if (used != resourceVersion.size() || from < 0) throw std::invalid_argument("rv");
    } catch (...) {
      return badRequestError("resourceVersion: invalid value \"" + resourceVersion + "\"");
    }
  }
  store::WatchOptions wo;
  wo.resource = kind.resource();
  wo.namespace_ = kind.namespaced ? ns : "";
  wo.fromRevision = from;
  auto w = store_.watch(wo);
  if (!w.isOk()) return w.status();
  return std::unique_ptr<ObjectWatch>(
      std::make_unique<FilteredWatch>(std::move(w.value()), std::move(labels), std::move(fields),
                                      std::move(initial), std::move(warnings), from));
}

}  // namespace ep::registry
