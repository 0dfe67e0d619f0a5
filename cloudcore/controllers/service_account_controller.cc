#include "cloudcore/controllers/service_account_controller.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/api/kinds.h"
#include "common/api/object_util.h"

namespace ep::controllers {
namespace {

using Json = nlohmann::json;

constexpr const char* kDefault = "default";

const api::KindInfo& namespaceKind() {
  return *api::findByApiVersionKind("v1", "Namespace");
}
const api::KindInfo& serviceAccountKind() {
  return *api::findByApiVersionKind("v1", "ServiceAccount");
}

bool terminating(const Json& ns) {
  return !api::stringAt(ns, "metadata.deletionTimestamp").empty() ||
         api::stringAt(ns, "status.phase") == "Terminating";
}

}  // namespace

ServiceAccountController::ServiceAccountController(registry::Registry& registry,
                                                   ServiceAccountControllerOptions options)
    : registry_(registry), options_(options) {}

ServiceAccountController::~ServiceAccountController() {
  stop();
}

Status ServiceAccountController::start() {
  loop_ = std::make_unique<ControllerLoop>(
      "serviceaccount controller", registry_,
      std::vector<const api::KindInfo*>{&namespaceKind(), &serviceAccountKind()},
      [](const api::KindInfo& kind, const registry::WatchEvent& e) {
        if (kind.kind == "Namespace") return e.type != "DELETED";
        return e.type == "DELETED" && e.object &&
               api::stringAt(*e.object, "metadata.name") == kDefault;
      },
      [this] {
        auto r = reconcileOnce();
        if (!r.isOk()) spdlog::warn("serviceaccount controller: {}", r.status().toString());
      },
      options_.resync, options_.minGap);
  return loop_->start();
}

void ServiceAccountController::stop() {
  if (loop_) loop_->stop();
  loop_.reset();
}

Result<int> ServiceAccountController::reconcileOnce() {
  auto namespaces = registry_.list(namespaceKind(), "", {});
  if (!namespaces) return namespaces.status();
  registry::ListQuery q;
  q.fieldSelector = std::string("metadata.name=") + kDefault;
  auto accounts = registry_.list(serviceAccountKind(), "", q);
  if (!accounts) return accounts.status();
  std::set<std::string> have;
  for (const auto& sa : accounts->items) have.insert(api::stringAt(sa, "metadata.namespace"));

  int created = 0;
  for (const auto& ns : namespaces->items) {
    const std::string name = api::stringAt(ns, "metadata.name");
    if (name.empty() || have.count(name) || terminating(ns)) continue;
    Json sa = {{"apiVersion", "v1"},
               {"kind", "ServiceAccount"},
               {"metadata", {{"name", kDefault}, {"namespace", name}}}};
    auto r = registry_.create(serviceAccountKind(), name, std::move(sa));
    if (r.isOk()) {
      ++created;
      spdlog::info("serviceaccount controller: created {}/default", name);
    } else if (r.status().code() != Code::kAlreadyExists &&
               r.status().code() != Code::kForbidden &&  // the namespace began terminating
               r.status().code() != Code::kNotFound) {   // or is gone
      spdlog::warn("serviceaccount controller: creating {}/default: {}", name,
                   r.status().toString());
    }
  }
  return created;
}

}  // namespace ep::controllers
