#include "cloudcore/controllers/node_upgrade_controller.h"

#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/api/kinds.h"
#include "common/api/label_selector.h"
#include "common/api/object_util.h"
#include "common/api/upgrades.h"

namespace ep::controllers {
namespace {

using Json = nlohmann::json;

const api::KindInfo& jobKind() {
  return *api::findByApiVersionKind("operations.kubeedge.io/v1alpha1", "NodeUpgradeJob");
}
const api::KindInfo& releaseKind() {
  return *api::findByApiVersionKind("upgrade.edgeplane.io/v1alpha1", "EdgecoreRelease");
}
const api::KindInfo& nodeKind() {
  return *api::findByApiVersionKind("v1", "Node");
}

struct NodeView {
  std::map<std::string, std::string> labels;
  bool ready = false;
  std::string version;  // edgecore's
  std::string architecture;
  // The EdgecoreUpgrade condition.
  std::string upgradeStatus;
  std::string upgradeReason;
  std::string upgradeMessage;
};

NodeView viewOf(const Json& node) {
  NodeView v;
  v.labels = api::labelsOf(node);
  v.version = api::edgecoreVersionOf(node);
  v.architecture = api::stringAt(node, "status.nodeInfo.architecture");
  const Json* conditions = api::lookupPath(node, "status.conditions");
  if (conditions != nullptr && conditions->is_array()) {
    for (const auto& c : *conditions) {
      if (!c.is_object()) continue;
      const std::string type = c.value("type", "");
      if (type == "Ready") v.ready = c.value("status", "") == "True";
      if (type == api::kEdgecoreUpgradeCondition) {
        v.upgradeStatus = c.value("status", "");
        v.upgradeReason = c.value("reason", "");
        v.upgradeMessage = c.value("message", "");
      }
    }
  }
  return v;
}

int64_t specInt(const Json& job, const char* key, int64_t fallback) {
  const Json* v = api::lookupPath(job, std::string("spec.") + key);
  if (v == nullptr || !v->is_number_integer() || v->get<int64_t>() <= 0) return fallback;
  return v->get<int64_t>();
}

// spec.failureTolerate (validated on write); the default when absent.
double failureTolerate(const Json& job) {
  return api::parseFailureTolerate(api::stringAt(job, "spec.failureTolerate"))
      .value_or(api::kDefaultFailureTolerate);
}

std::string pullSecretOf(const Json& job) {
  auto a = api::annotationsOf(job);
  auto it = a.find(api::kImagePullSecretAnnotation);
  return it == a.end() ? "" : it->second;
}

bool terminal(const std::string& state) {
  return state == api::kUpgradeCompleted || state == api::kUpgradeFailure;
}

}  // namespace

NodeUpgradeController::NodeUpgradeController(registry::Registry& registry, Clock& clock,
                                             NodeUpgradeControllerOptions options)
    : registry_(registry), clock_(clock), options_(options) {}

NodeUpgradeController::~NodeUpgradeController() {
  stop();
}

Status NodeUpgradeController::start() {
  loop_ = std::make_unique<ControllerLoop>(
      "nodeupgradejob controller", registry_,
      std::vector<const api::KindInfo*>{&jobKind(), &nodeKind()},
      // Nodes matter only while a job runs (their heartbeats would wake an idle controller).
      [this](const api::KindInfo& kind, const registry::WatchEvent&) {
        return kind.kind != "Node" || active_.load();
      },
      [this] {
        auto r = reconcileOnce();
        if (!r.isOk()) spdlog::warn("nodeupgradejob controller: {}", r.status().toString());
      },
      options_.resync, options_.minGap);
  if (auto st = loop_->start(); !st.isOk()) return st;
  if (options_.imports != nullptr) {
    // An import ending changes no watched object (a failed one writes nothing): ask for a pass.
    ControllerLoop* loop = loop_.get();
    options_.imports->setListener([loop] { loop->requestPass(); });
  }
  return Status::ok();
}

void NodeUpgradeController::stop() {
  if (options_.imports != nullptr) options_.imports->setListener({});
  if (loop_) loop_->stop();
  loop_.reset();
}

Result<int> NodeUpgradeController::reconcileOnce() {
  auto jobs = registry_.list(jobKind(), "", {});
  if (!jobs) return jobs.status();
  bool anyActive = false;
  // A node upgrades for one job at a time: one InProgress in any job is busy for the others.
  std::set<std::string> busy;
  for (const auto& j : jobs->items) {
    anyActive = anyActive || !terminal(api::stringAt(j, "status.state"));
    for (auto& n : api::upgradingNodesOf(j)) busy.insert(std::move(n));
  }
  active_ = anyActive;
  if (options_.imports != nullptr) {
    // Imports of finished or deleted jobs are forgotten.
    std::set<std::string> wanted;
    for (const auto& j : jobs->items) {
      if (!terminal(api::stringAt(j, "status.state")) && !api::stringAt(j, "spec.image").empty()) {
        wanted.insert(api::stringAt(j, "metadata.uid"));
      }
    }
    options_.imports->retain(wanted);
  }
  if (!anyActive) return 0;
  auto nodeList = registry_.list(nodeKind(), "", {});
  if (!nodeList) return nodeList.status();
  std::map<std::string, NodeView> nodes;
  for (const auto& n : nodeList->items) nodes[api::stringAt(n, "metadata.name")] = viewOf(n);

  const int64_t now = clock_.nowMillis();
  const std::string nowText = formatRfc3339(now);
  int written = 0;
  for (const auto& job : jobs->items) {
    if (terminal(api::stringAt(job, "status.state"))) continue;
    const std::string name = api::stringAt(job, "metadata.name");
    const std::string uid = api::stringAt(job, "metadata.uid");
    const std::string version = api::stringAt(job, "spec.version");
    const int64_t concurrency = specInt(job, "concurrency", 1);
    const int64_t timeoutMillis =
        specInt(job, "timeoutSeconds", api::kDefaultUpgradeTimeoutSeconds) * 1000;

    std::vector<api::NodeUpgradeStatus> entries = api::nodeUpgradeStatuses(job);
    if (entries.empty()) {
      // The nodes are chosen once, when the job is first seen.
      std::vector<std::string> chosen;
      if (const Json* names = api::lookupPath(job, "spec.nodeNames");
          names != nullptr && names->is_array() && !names->empty()) {
        for (const auto& n : *names) {
          if (n.is_string()) chosen.push_back(n.get<std::string>());
        }
      } else if (const Json* sel = api::lookupPath(job, "spec.labelSelector");
                 sel != nullptr && sel->is_object()) {
        auto selector = api::labelSelectorFromJson(*sel, "spec.labelSelector");
        if (selector.isOk()) {
          for (const auto& [n, view] : nodes) {
            if (selector->matches(view.labels)) chosen.push_back(n);
          }
        }
      }
      for (auto& n : chosen) entries.push_back({n, api::kUpgradeInit, "Init", "", "", nowText});
    }

    auto finish = [&](api::NodeUpgradeStatus& e, bool success, const std::string& event,
                      const std::string& reason) {
      e.state = success ? api::kUpgradeCompleted : api::kUpgradeFailure;
      e.action = success ? api::kUpgradeActionSuccess : api::kUpgradeActionFailure;
      e.event = event;
      e.reason = reason;
      e.time = nowText;
    };
    const std::string prefix = api::upgradeConditionPrefix(name, uid, version);
    int64_t inProgress = 0;
    for (auto& e : entries) {
      auto it = nodes.find(e.nodeName);
      if (e.state == api::kUpgradeInit) {
        if (it == nodes.end()) {
          finish(e, false, "Check", "node " + e.nodeName + " not found");
        } else if (it->second.version == version) {
          finish(e, true, "Check", "the node runs edgecore " + version + " already");
        }
      } else if (e.state == api::kUpgradeInProgress) {
        const int64_t started = parseRfc3339(e.time);
        if (it != nodes.end() && it->second.ready && it->second.version == version &&
            it->second.upgradeReason == api::kUpgradeReasonUpgraded &&
            it->second.upgradeMessage.rfind(prefix, 0) == 0) {
          finish(e, true, "Upgrade", it->second.upgradeMessage.substr(prefix.size()));
        } else if (it != nodes.end() && it->second.upgradeStatus == "False" &&
                   (it->second.upgradeReason == api::kUpgradeReasonRolledBack ||
                    it->second.upgradeReason == api::kUpgradeReasonCheckFailed) &&
                   it->second.upgradeMessage.rfind(prefix, 0) == 0) {
          finish(e, false,
                 it->second.upgradeReason == api::kUpgradeReasonCheckFailed ? "Check" : "Rollback",
                 it->second.upgradeMessage.substr(prefix.size()));
        } else if (started >= 0 && now - started >= timeoutMillis) {
          finish(e, false, "TimeOut",
                 "the node did not report edgecore " + version + " within " +
                     std::to_string(timeoutMillis / 1000) + "s");
        } else {
          ++inProgress;
        }
      }
    }
    // Too many failures stop the job: no further node starts (counted as nodes fail below).
    size_t failedSoFar = 0;
    for (const auto& e : entries) failedSoFar += e.state == api::kUpgradeFailure ? 1 : 0;
    const double tolerate = failureTolerate(job);
    auto stopped = [&] {
      return !entries.empty() &&
             static_cast<double>(failedSoFar) > tolerate * static_cast<double>(entries.size());
    };
    auto fail = [&](api::NodeUpgradeStatus& e, const std::string& event,
                    const std::string& reason) {
      finish(e, false, event, reason);
      ++failedSoFar;
    };
    // Start the next ones, in order, while there is room.
    std::optional<Json> release;
    bool releaseLooked = false;
    std::optional<ReleaseImports::State> imported;
    const std::string image = api::stringAt(job, "spec.image");
    for (auto& e : entries) {
      if (stopped() || inProgress >= concurrency) break;
      if (e.state != api::kUpgradeInit) continue;
      const NodeView& view = nodes[e.nodeName];
      if (!view.ready) continue;             // offline: when it returns
      if (busy.count(e.nodeName)) continue;  // another job's upgrade first
      if (!releaseLooked) {
        releaseLooked = true;
        auto r = registry_.get(releaseKind(), "", version);
        if (r.isOk()) {
          release = std::move(*r);
        } else if (r.status().code() != Code::kNotFound) {
          return r.status();
        }
      }
      if ((!release || !api::releaseBinaryFor(*release, view.architecture)) && !image.empty() &&
          options_.imports != nullptr) {
        if (!imported) {
          imported = options_.imports->request({uid, image, version, pullSecretOf(job)});
          if (imported->done) {
            auto r = registry_.get(releaseKind(), "", version);
            if (r.isOk()) {
              release = std::move(*r);
            } else if (r.status().code() != Code::kNotFound) {
              return r.status();
            }
          }
        }
        if (!imported->error.empty()) {
          fail(e, "Check", "image " + image + ": " + imported->error);
          continue;
        }
        if (!imported->done) {
          e.reason = "waiting for edgecore " + version + " from image " + image;
          continue;
        }
      }
      if (!release) {
        fail(e, "Check", "no EdgecoreRelease " + version + " (push one with edgectl upgrade push)");
        continue;
      }
      if (!api::releaseBinaryFor(*release, view.architecture)) {
        fail(e, "Check",
             "EdgecoreRelease " + version + " has no binary for " +
                 (view.architecture.empty() ? "the node's architecture" : view.architecture));
        continue;
      }
      e.state = api::kUpgradeInProgress;
      e.event = "Upgrade";
      e.reason = "upgrading edgecore " + (view.version.empty() ? "" : view.version + " ") + "to " +
                 version;
      e.time = nowText;
      busy.insert(e.nodeName);
      ++inProgress;
    }

    size_t done = 0, failed = 0, started = 0;
    for (const auto& e : entries) {
      if (terminal(e.state)) ++done;
      if (e.state == api::kUpgradeFailure) ++failed;
      if (e.state != api::kUpgradeInit) ++started;
    }
    Json status = job.value("status", Json::object());
    if (!status.is_object()) status = Json::object();
    std::string state = api::kUpgradeInit;
    size_t running = 0;
    for (const auto& e : entries) running += e.state == api::kUpgradeInProgress ? 1 : 0;
    const bool over = done == entries.size() || (stopped() && running == 0);
    if (over) {
      state = failed > 0 ? api::kUpgradeFailure : api::kUpgradeCompleted;
    } else if (started > 0) {
      state = api::kUpgradeInProgress;
    }
    Json next = status;
    next["nodeStatus"] = Json::array();
    for (const auto& e : entries) next["nodeStatus"].push_back(api::toJson(e));
    if (next.value("state", "") != state) {
      next["state"] = state;
      next["time"] = nowText;
    }
    if (over) {
      next["action"] = failed > 0 ? api::kUpgradeActionFailure : api::kUpgradeActionSuccess;
      next["reason"] = entries.empty() ? "no node matched"
                                       : std::to_string(done - failed) + " of " +
                                             std::to_string(entries.size()) + " node(s) upgraded";
      if (done < entries.size()) {
        next["reason"] = next["reason"].get<std::string>() +
                         "; stopped: " + std::to_string(failed) +
                         " failed, more than spec.failureTolerate " +
                         api::stringAt(job, "spec.failureTolerate") + " allows";
      }
    }
    if (next == status) continue;
    Json obj = job;
    obj["status"] = std::move(next);
    auto r = registry_.update(jobKind(), "", name, std::move(obj), registry::Subresource::kStatus);
    if (!r.isOk()) {
      if (r.status().code() != Code::kConflict && r.status().code() != Code::kNotFound) {
        return r.status();
      }
      continue;  // changed meanwhile: the watch brings another pass
    }
    ++written;
  }
  return written;
}

}  // namespace ep::controllers
