#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "cloudcore/controllers/controller_loop.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
inline constexpr const char* kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
inline constexpr const char* kEndpointSliceControllerName = "endpointslice-controller.k8s.io";
inline constexpr const char* kHeadlessLabel = "service.kubernetes.io/headless";
inline constexpr const char* kLastChangeAnnotation =
    "endpoints.kubernetes.io/last-change-trigger-time";
// Endpoints per EndpointSlice, Kubernetes' default (--max-endpoints-per-slice).
inline constexpr size_t kMaxEndpointsPerSlice = 100;

struct EndpointsControllerOptions {
  std::chrono::milliseconds resync{std::chrono::seconds(10)};
  std::chrono::milliseconds minGap{std::chrono::milliseconds(100)};
};

// One EndpointSlice's content as the controller wants it.
struct DesiredSlice {
  nlohmann::json ports;      // array of {name, port, protocol[, appProtocol]}
  nlohmann::json endpoints;  // array, ordered by pod name
};

// The endpoints of `service` from `pods` (the pods of its namespace), as Kubernetes' EndpointSlice
// controller computes them: pods matching the selector that have an IP and are not Succeeded or
// Failed; conditions ready (Ready=True and not terminating, or publishNotReadyAddresses),
// serving (Ready=True, or publishNotReadyAddresses) and terminating; each service port's
// targetPort resolved against the pod's container ports (a named port the pod lacks leaves that
// port out for that pod); pods grouped by their resolved ports, at most kMaxEndpointsPerSlice
// per slice. No matching pod: one slice without endpoints or ports (Kubernetes' placeholder).
// Pure; for the controller and its tests.
std::vector<DesiredSlice> desiredSlices(const nlohmann::json& service,
                                        const std::vector<const nlohmann::json*>& pods);

// The v1 Endpoints `subsets` of the same pods (Kubernetes' endpoints controller): ready pods in
// `addresses`, not-ready ones that are not terminating in `notReadyAddresses`, one subset per
// port set. Empty array when there is no endpoint.
nlohmann::json desiredSubsets(const nlohmann::json& service,
                              const std::vector<const nlohmann::json*>& pods);

// Maintains, for every Service with a selector (not ExternalName), its EndpointSlices (labelled
// kubernetes.io/service-name and managed-by endpointslice-controller.k8s.io, owned by the
// Service) and its v1 Endpoints (same name, annotated with the last change time), from the pods
// that match; deletes the slices and Endpoints it made once their Service is gone (slices also
// when the Service was recreated with another uid). A Service that loses its selector or
// becomes an ExternalName keeps what it had, as in Kubernetes; Slices and Endpoints of Services
// without a selector are the user's.
// Writes only what changed, so a steady cluster costs reads only.
//
// Threading: a ControllerLoop thread runs reconcileOnce() on Service, Pod, EndpointSlice and
// Endpoints events (coalesced) and every resync; reconcileOnce() is callable from tests (with
// the loop stopped). start()/stop() from one owner thread; stop() is idempotent.
class EndpointsController {
 public:
  EndpointsController(registry::Registry& registry, Clock& clock,
                      EndpointsControllerOptions options = {});
  ~EndpointsController();
  EndpointsController(const EndpointsController&) = delete;
  EndpointsController& operator=(const EndpointsController&) = delete;

  Status start();
  void stop();

  // One pass over every Service. Returns how many objects were written (created, updated or
  // deleted); an error when a list fails (a failed write is logged and retried next pass).
  Result<int> reconcileOnce();

 private:
  registry::Registry& registry_;
  Clock& clock_;
  const EndpointsControllerOptions options_;
  std::unique_ptr<ControllerLoop> loop_;
};

// The `kubernetes` Service of the `default` namespace (the range's first IP, port 443 named
// https to the API's port) and, when `advertiseIp` is set, its Endpoints and EndpointSlice
// pointing at advertiseIp:apiPort, as kube-apiserver keeps them. Creates what is missing and
// corrects what differs; called once at start.
Status ensureKubernetesService(registry::Registry& registry, const std::string& advertiseIp,
                               int apiPort);

}  // namespace ep::controllers
