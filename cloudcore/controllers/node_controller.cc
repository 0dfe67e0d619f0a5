#include "cloudcore/controllers/node_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "cloudcore/controllers/workload_util.h"
#include "common/api/kinds.h"
#include "common/api/node_lease.h"
#include "common/api/object_util.h"

namespace ep::controllers {
namespace {

using Json = nlohmann::json;

constexpr int kMaxAttempts = 5;

// obj[key] when it is a string, else "".
std::string str(const Json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The Ready condition of `node`, or nullptr.
const Json* readyCondition(const Json& node) {
  const Json* conditions = api::lookupPath(node, "status.conditions");
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const auto& c : *conditions) {
    if (str(c, "type") == "Ready") return &c;
  }
  return nullptr;
}

// A node Lease's renewTime (Unix ms), -1 when it has none.
int64_t renewedAt(const Json& lease) {
  std::string t = api::stringAt(lease, "spec.renewTime");
  return t.empty() ? -1 : parseRfc3339(t);
}

// The uid of the Node that owns a node Lease, "" when no Node owns it.
std::string owningNodeUid(const Json& lease) {
  const Json* refs = api::lookupPath(lease, "metadata.ownerReferences");
  if (refs == nullptr || !refs->is_array()) return {};
  for (const auto& r : *refs) {
    if (str(r, "kind") == "Node" && str(r, "apiVersion") == "v1" &&
        str(r, "name") == api::stringAt(lease, "metadata.name")) {
      return str(r, "uid");
    }
  }
  return {};
}

}  // namespace

NodeController::NodeController(registry::Registry& registry, Clock& clock,
                               NodeControllerOptions options)
    : registry_(registry), clock_(clock), options_(options) {}

NodeController::~NodeController() {
  stop();
}

Status NodeController::start() {
  // The watches are opened (their initial lists taken) by the thread's first drain, so that a
  // store error there is retried instead of failing this replica's controllers.
  {
    MutexLock l(wakeMu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

void NodeController::stop() {
  {
    MutexLock l(wakeMu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  MutexLock l(mu_);
  for (auto* w : {&nodeWatch_, &leaseWatch_}) {
    if (*w) (*w)->stop();
    w->reset();
  }
}

void NodeController::wake() {
  {
    MutexLock l(wakeMu_);
    notified_ = true;
  }
  cv_.notify_all();
}

std::unique_ptr<registry::ObjectWatch>& NodeController::watchOf(bool leases) {
  return leases ? leaseWatch_ : nodeWatch_;
}

Status NodeController::openWatch(bool leases) {
  auto& watch = watchOf(leases);
  if (watch) watch->stop();
  watch.reset();
  // The initial list arrives as ADDED events: the cache of the kind starts again from it.
  if (leases) {
    leases_.clear();
  } else {
    nodes_.clear();
  }
  auto w = leases ? registry_.watch(leaseKind(), api::kNodeLeaseNamespace, {}, "")
                  : registry_.watch(nodeKind(), "", {}, "");
  if (!w.isOk()) {
    return Status(w.status().code(), std::string("node controller: watching ") +
                                         (leases ? "leases: " : "nodes: ") + w.status().message());
  }
  watch = std::move(w.value());
  watch->setNotify([this] { wake(); });
  return Status::ok();
}

void NodeController::observe(bool leases, const registry::WatchEvent& e) {
  if (e.type == "ERROR" || !e.object) return;  // the watch ended: drain() reopens it
  const Json& obj = *e.object;
  std::string name = api::stringAt(obj, "metadata.name");
  if (e.type == "DELETED") {
    if (leases) {
      leases_.erase(name);
    } else {
      nodes_.erase(name);
    }
    return;
  }
  if (leases) {
    LeaseSeen& l = leases_[name];
    l.uid = api::stringAt(obj, "metadata.uid");
    l.ownerUid = owningNodeUid(obj);
    l.resourceVersion = api::stringAt(obj, "metadata.resourceVersion");
    l.renewed = renewedAt(obj);
    return;
  }
  nodes_[name] = seeNode(obj);
}

NodeController::NodeSeen NodeController::seeNode(const Json& node) {
  NodeSeen n;
  n.uid = api::stringAt(node, "metadata.uid");
  const Json* ready = readyCondition(node);
  n.unknown = ready != nullptr && str(*ready, "status") == "Unknown";
  // Without a heartbeat, the node's age counts (it never reported since it was created).
  std::string since = ready ? str(*ready, "lastHeartbeatTime") : std::string();
  if (since.empty()) since = api::stringAt(node, "metadata.creationTimestamp");
  n.heartbeat = parseRfc3339(since);
  return n;
}

Status NodeController::drain() {
  Status result;
  for (bool leases : {false, true}) {
    auto& watch = watchOf(leases);
    // A watch that ended is opened again once per drain, and its initial list taken at once.
    for (int opened = 0; opened < 2; ++opened) {
      if (!watch) {
        // A failed open (a LIST of every Node or Lease) is retried once per interval, not on
        // every wake-up.
        auto& retryAt = leases ? leaseRetryAt_ : nodeRetryAt_;
        if (std::chrono::steady_clock::now() < retryAt) {
          result = Status(Code::kUnavailable, "node controller: waiting to watch again");
          break;
        }
        if (auto s = openWatch(leases); !s.isOk()) {
          retryAt = std::chrono::steady_clock::now() + options_.interval;
          result = s;
          break;  // the other kind is still taken in
        }
      }
      for (;;) {
        auto events = watch->poll(1024);
        for (const auto& e : events) observe(leases, e);
        if (events.size() < 1024) break;
      }
      if (!watch->done()) break;
      spdlog::info("node controller: the {} watch ended; listing again", leases ? "lease" : "node");
      watch.reset();
    }
  }
  return result;
}

void NodeController::resetWatches() {
  for (bool leases : {false, true}) {
    auto& watch = watchOf(leases);
    if (watch) watch->stop();
    watch.reset();
  }
}

bool NodeController::isStale(const NodeSeen& node, int64_t leaseRenewed) const {
  if (node.unknown) return false;
  int64_t at = std::max(node.heartbeat, leaseRenewed);
  if (at < 0) return false;  // unparsable: leave it alone rather than guess
  auto grace = std::chrono::duration_cast<std::chrono::milliseconds>(options_.gracePeriod).count();
  return clock_.nowMillis() - at > grace;
}

Result<bool> NodeController::markIfStale(const std::string& name) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto node = registry_.get(nodeKind(), "", name);
    if (!node.isOk()) {
      if (node.status().code() == Code::kNotFound) return false;
      return node.status();
    }
    if (!isStale(seeNode(*node), leaseRenewedNow(name))) return false;
    Json next = *node;  // carries metadata.resourceVersion: the update is a CAS
    if (!next["status"].is_object()) next["status"] = Json::object();
    Json& conditions = next["status"]["conditions"];
    if (!conditions.is_array()) conditions = Json::array();
    std::string now = formatRfc3339(clock_.nowMillis());
    bool haveReady = false;
    for (const auto& c : conditions) haveReady = haveReady || str(c, "type") == "Ready";
    if (!haveReady) conditions.push_back(Json{{"type", "Ready"}});
    // Ready and the pressure conditions the node posted are Unknown now, as Kubernetes' node
    // lifecycle controller does (other condition types, e.g. a problem detector's, stay).
    for (auto& c : conditions) {
      if (!c.is_object()) continue;
      const std::string type = str(c, "type");
      if (type != "Ready" && type != "MemoryPressure" && type != "DiskPressure" &&
          type != "PIDPressure") {
        continue;
      }
      if (str(c, "status") != "Unknown") c["lastTransitionTime"] = now;
      c["status"] = "Unknown";
      c["reason"] = "NodeStatusUnknown";
      c["message"] = "edgecore stopped posting node status";
    }
    auto r = registry_.update(nodeKind(), "", name, next, registry::Subresource::kStatus);
    if (r.isOk()) {
      spdlog::info("node controller: node {} stopped posting status; Ready=Unknown", name);
      return true;
    }
    if (r.status().code() != Code::kConflict) return r.status();
    // Somebody wrote the node meanwhile (maybe a heartbeat): re-read and re-decide.
  }
  return Status(Code::kConflict, "node " + name + ": too many conflicts marking it Unknown");
}

int64_t NodeController::leaseRenewedNow(const std::string& name) {
  auto lease = registry_.get(leaseKind(), api::kNodeLeaseNamespace, name);
  return lease.isOk() ? renewedAt(*lease) : -1;
}

void NodeController::collectLease(const std::string& name, const LeaseSeen& lease) {
  // The cache may be behind: the Node read now decides.
  auto node = registry_.get(nodeKind(), "", name);
  if (node.isOk() && api::stringAt(*node, "metadata.uid") == lease.ownerUid) return;
  if (!node.isOk() && node.status().code() != Code::kNotFound) return;
  registry::DeleteOptions options;
  options.preconditionUid = lease.uid;
  options.preconditionResourceVersion = lease.resourceVersion;
  auto r = registry_.remove(leaseKind(), api::kNodeLeaseNamespace, name, options);
  if (r.isOk()) {
    spdlog::info("node controller: deleted the lease of node {}: the node is gone", name);
  } else if (r.status().code() != Code::kNotFound && r.status().code() != Code::kConflict) {
    spdlog::warn("node controller: lease of node {}: {}", name, r.status().toString());
  }
}

int NodeController::pass() {
  int marked = 0;
  std::vector<std::string> stale;
  for (const auto& [name, node] : nodes_) {
    auto lease = leases_.find(name);
    if (isStale(node, lease == leases_.end() ? -1 : lease->second.renewed)) stale.push_back(name);
  }
  for (const auto& name : stale) {
    auto r = markIfStale(name);
    if (!r.isOk()) {
      spdlog::warn("node controller: node {}: {}", name, r.status().toString());
      continue;
    }
    if (*r) ++marked;
  }
  std::vector<std::pair<std::string, LeaseSeen>> orphans;
  for (const auto& [name, lease] : leases_) {
    if (lease.ownerUid.empty()) continue;  // not a node's: somebody else's Lease
    auto node = nodes_.find(name);
    if (node != nodes_.end() && node->second.uid == lease.ownerUid) continue;
    orphans.emplace_back(name, lease);
  }
  for (const auto& [name, lease] : orphans) collectLease(name, lease);
  return marked;
}

Result<int> NodeController::reconcileOnce() {
  MutexLock l(mu_);
  try {
    // Both caches complete, or no pass: an empty cache would leave every node unjudged.
    if (auto s = drain(); !s.isOk()) return s;
    return pass();
  } catch (...) {
    resetWatches();  // events taken but not applied: the next drain lists again
    throw;
  }
}

void NodeController::run() {
  // The first pass one interval after start, as before (the watches are opened at once).
  auto nextPass = std::chrono::steady_clock::now() + options_.interval;
  bool first = true;
  for (;;) {
    {
      MutexLock l(wakeMu_);
      if (!first) {
        l.waitUntil(cv_, nextPass, [&]() EP_REQUIRES(wakeMu_) { return stopping_ || notified_; });
      }
      if (stopping_) return;
      notified_ = false;
    }
    first = false;
    const bool due = std::chrono::steady_clock::now() >= nextPass;
    {
      MutexLock l(mu_);
      try {
        if (auto s = drain(); !s.isOk()) {
          if (due) spdlog::warn("{}", s.toString());  // retried once per interval
        } else if (due) {
          pass();
        }
      } catch (const std::exception& e) {
        // A malformed object must not take cloudcore down. Events may have been taken and not
        // applied: both watches start again from a list.
        resetWatches();
        spdlog::error("node controller: pass failed: {}", e.what());
      }
    }
    if (due) nextPass = std::chrono::steady_clock::now() + options_.interval;
    // Events arriving in the next drainGap are taken together.
    MutexLock l(wakeMu_);
    if (l.waitFor(cv_, options_.drainGap, [&]() EP_REQUIRES(wakeMu_) { return stopping_; })) {
      return;
    }
  }
}

}  // namespace ep::controllers
