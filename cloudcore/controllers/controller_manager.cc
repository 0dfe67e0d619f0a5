#include "cloudcore/controllers/controller_manager.h"

#include <spdlog/spdlog.h>

#include <functional>
#include <tuple>

#include "cloudcore/controllers/deployment_controller.h"
#include "cloudcore/controllers/endpoints_controller.h"
#include "cloudcore/controllers/event_gc.h"
#include "cloudcore/controllers/node_controller.h"
#include "cloudcore/controllers/node_upgrade_controller.h"
#include "cloudcore/controllers/periodic_task.h"
#include "cloudcore/controllers/pod_eviction_controller.h"
#include "cloudcore/controllers/replicaset_controller.h"
#include "cloudcore/controllers/scheduler.h"
#include "cloudcore/controllers/service_account_controller.h"
#include "common/lifecycle.h"

namespace ep::controllers {

// One leadership term's controllers; members are destroyed after lifecycle.stopAll().
struct ControllerManager::Running {
  Running(registry::Registry& registry, Clock& clock, const ControllerManagerOptions& o)
      : nodeController(registry, clock, {.gracePeriod = o.nodeGracePeriod}),
        scheduler(registry, clock),
        replicaSets(registry, clock),
        deployments(registry, clock),
        podEviction(registry, clock, {.timeout = o.podEvictionTimeout}),
        eventGc(registry, clock, {.ttl = o.eventTTL}),
        serviceAccounts(registry),
        endpoints(registry, clock),
        nodeUpgrades(registry, clock, {.imports = o.releaseImports}),
        // Reservations of cluster IPs and node ports that no Service holds (docs/services.md).
        allocationRepair(std::chrono::minutes(3), [&registry] {
          auto r = registry.serviceAllocator().repair();
          if (!r.isOk()) spdlog::warn("service allocation repair: {}", r.status().toString());
        }) {}
  ~Running() { lifecycle.stopAll(); }

  NodeController nodeController;
  Scheduler scheduler;
  ReplicaSetController replicaSets;
  DeploymentController deployments;
  PodEvictionController podEviction;
  EventGc eventGc;
  ServiceAccountController serviceAccounts;
  EndpointsController endpoints;
  NodeUpgradeController nodeUpgrades;
  PeriodicTask allocationRepair;
  Lifecycle lifecycle{"controllers"};  // last: stopped (by ~Running) before the rest go
};

ControllerManager::ControllerManager(registry::Registry& registry, Clock& clock,
                                     ControllerManagerOptions options)
    : registry_(registry), clock_(clock), options_(options) {}

ControllerManager::~ControllerManager() {
  stop();
}

Status ControllerManager::start() {
  if (running_) return Status::ok();
  auto r = std::make_unique<Running>(registry_, clock_, options_);
  Running& c = *r;
  for (auto& [name, startFn, stopFn] : std::initializer_list<
           std::tuple<const char*, std::function<Status()>, std::function<void()>>>{
           {"node controller", [&] { return c.nodeController.start(); },
            [&] { c.nodeController.stop(); }},
           {"scheduler", [&] { return c.scheduler.start(); }, [&] { c.scheduler.stop(); }},
           {"replicaset controller", [&] { return c.replicaSets.start(); },
            [&] { c.replicaSets.stop(); }},
           {"deployment controller", [&] { return c.deployments.start(); },
            [&] { c.deployments.stop(); }},
           {"pod eviction", [&] { return c.podEviction.start(); }, [&] { c.podEviction.stop(); }},
           {"serviceaccount controller", [&] { return c.serviceAccounts.start(); },
            [&] { c.serviceAccounts.stop(); }},
           {"endpoints controller", [&] { return c.endpoints.start(); },
            [&] { c.endpoints.stop(); }},
           {"nodeupgradejob controller", [&] { return c.nodeUpgrades.start(); },
            [&] { c.nodeUpgrades.stop(); }},
           {"service allocation repair",
            [&] {
              c.allocationRepair.start();
              return Status::ok();
            },
            [&] { c.allocationRepair.stop(); }},
           {"event gc",
            [&] {
              c.eventGc.start();
              return Status::ok();
            },
            [&] { c.eventGc.stop(); }}}) {
    if (auto s = c.lifecycle.start(name, startFn, stopFn); !s.isOk()) {
      return Status(s.code(), std::string(name) + ": " + s.message());  // ~Running stops the rest
    }
  }
  running_ = std::move(r);
  return Status::ok();
}

void ControllerManager::stop() {
  if (!running_) return;
  running_->lifecycle.stopAll();
  running_.reset();
}

}  // namespace ep::controllers
