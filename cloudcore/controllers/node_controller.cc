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
    : registry_(registry), clock_(clock), options_(options), task_(options.interval, [this] {
        auto r = reconcileOnce();
        if (!r.isOk()) spdlog::warn("node controller: {}", r.status().toString());
      }) {}

NodeController::~NodeController() {
  stop();
}

Status NodeController::start() {
  task_.start();
  return Status::ok();
}

void NodeController::stop() {
  task_.stop();
}

bool NodeController::isStale(const Json& node, int64_t leaseRenewed) const {
  const Json* ready = readyCondition(node);
  if (ready != nullptr && str(*ready, "status") == "Unknown") return false;
  // Without a heartbeat, the node's age counts (it never reported since it was created).
  std::string since = ready ? str(*ready, "lastHeartbeatTime") : std::string();
  if (since.empty()) since = api::stringAt(node, "metadata.creationTimestamp");
  int64_t at = std::max(parseRfc3339(since), leaseRenewed);
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
    if (!isStale(*node, leaseRenewedNow(name))) return false;
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

void NodeController::collectLeases(const std::vector<Json>& leases,
                                   const std::unordered_map<std::string, std::string>& nodeUids) {
  for (const auto& lease : leases) {
    const std::string uid = owningNodeUid(lease);
    if (uid.empty()) continue;  // not a node's: somebody else's Lease
    const std::string name = api::stringAt(lease, "metadata.name");
    if (auto it = nodeUids.find(name); it != nodeUids.end() && it->second == uid) continue;
    // Not in the list taken before the leases: read again (the node may be newer than it).
    auto node = registry_.get(nodeKind(), "", name);
    if (node.isOk() && api::stringAt(*node, "metadata.uid") == uid) continue;
    if (!node.isOk() && node.status().code() != Code::kNotFound) continue;
    registry::DeleteOptions options;
    options.preconditionUid = api::stringAt(lease, "metadata.uid");
    options.preconditionResourceVersion = api::stringAt(lease, "metadata.resourceVersion");
    auto r = registry_.remove(leaseKind(), api::kNodeLeaseNamespace, name, options);
    if (r.isOk()) {
      spdlog::info("node controller: deleted the lease of node {}: the node is gone", name);
    } else if (r.status().code() != Code::kNotFound && r.status().code() != Code::kConflict) {
      spdlog::warn("node controller: lease of node {}: {}", name, r.status().toString());
    }
  }
}

Result<int> NodeController::reconcileOnce() {
  auto list = registry_.list(nodeKind(), "", {});
  if (!list.isOk()) return list.status();
  // Listed after the nodes: a renewal in between only makes a node look fresher.
  auto leases = registry_.list(leaseKind(), api::kNodeLeaseNamespace, {});
  if (!leases.isOk()) return leases.status();
  std::unordered_map<std::string, int64_t> renewed;
  for (const auto& lease : leases->items) {
    renewed[api::stringAt(lease, "metadata.name")] = renewedAt(lease);
  }
  int marked = 0;
  std::unordered_map<std::string, std::string> nodeUids;
  for (const auto& node : list->items) {
    std::string name = api::stringAt(node, "metadata.name");
    nodeUids[name] = api::stringAt(node, "metadata.uid");
    auto it = renewed.find(name);
    if (!isStale(node, it == renewed.end() ? -1 : it->second)) continue;
    auto r = markIfStale(name);
    if (!r.isOk()) {
      spdlog::warn("node controller: node {}: {}", name, r.status().toString());
      continue;
    }
    if (*r) ++marked;
  }
  collectLeases(leases->items, nodeUids);
  return marked;
}

}  // namespace ep::controllers
