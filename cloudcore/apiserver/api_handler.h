#pragma once

#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/http/server_types.h"

namespace ep::apiserver {

using http::BodyStream;
using http::ServerRequest;
using http::ServerResponse;

// The request's field manager (metadata.managedFields): its fieldManager parameter, else its
// User-Agent up to the first "/" (as the apiserver defaults it), at most 128 characters; ""
// when it has neither.
std::string fieldManagerOf(const ServerRequest& req);

struct ApiHandlerOptions {
  std::string version = "0.1.0";
  // Longest a watch stays open when the client sets no timeoutSeconds.
  std::chrono::seconds maxWatchTimeout{1800};
  // How often a watch with allowWatchBookmarks=true that has nothing to send gets a BOOKMARK
  // with the revision it is complete through (and one 2 s before its timeout), as
  // kube-apiserver does about once a minute.
  std::chrono::milliseconds watchBookmarkInterval{60000};
  // Admission of create/update/patch writes (cloudcore: RBAC escalation prevention), given the
  // request (its `context` holds the authenticated user), the kind and namespace, the stored
  // object (null on create) and the object about to be written. Runs on the worker pool; must
  // be thread-safe. Unset: every validated write is admitted.
  std::function<Status(const ServerRequest& request, const api::KindInfo& kind,
                       const std::string& ns, const nlohmann::json* current,
                       const nlohmann::json& next)>
      admission;
  // Asked by /readyz once the server is ready (thread-safe, may block briefly): an error makes
  // it answer 503 "not ready: <why>" (cloudcore: the store cannot write). Unset: ready.
  std::function<Status()> readinessCheck;
};

// Kubernetes REST semantics over the Registry: routing of /api and /apis paths, discovery,
// list/get/watch/create/update/patch/delete and the status subresource, server-side Table
// output, and Kubernetes Status errors. handle() is thread-safe and may block on the store, so
// the HTTP server calls it on its worker pool.
class ApiHandler {
 public:
  ApiHandler(registry::Registry& registry, Clock& clock, ApiHandlerOptions options = {});
  ServerResponse handle(ServerRequest& request);

  // Readiness: set once the process finished starting.
  void setReady(bool ready) { ready_ = ready; }

  // Serves `path` (exact match, any method) with `route`, ahead of the API paths; for plain
  // extra endpoints such as /metrics. Call before the server starts: routes are not guarded.
  // `route` runs on the HTTP worker pool and must be thread-safe.
  void addRoute(std::string path, std::function<ServerResponse(ServerRequest&)> route);

  // Serves the subresource `sub` of core/v1 `plural` (e.g. "pods", "log") with `route`, given
  // the namespace and name from the path; any method. Same rules as addRoute.
  using SubresourceRoute =
      std::function<ServerResponse(ServerRequest&, const std::string& ns, const std::string& name)>;
  void addSubresource(const std::string& plural, const std::string& sub, SubresourceRoute route);

  // An API group served by `route` rather than the registry (metrics.k8s.io: computed, never
  // stored). Discovery lists it (/apis, /apis/GROUP, /apis/GROUP/VERSION answers what
  // `resources` returns, the APIResourceList's "resources" array); requests below
  // /apis/GROUP/VERSION/ go to `route` with the path segments after the version. Same rules as
  // addRoute.
  struct ApiGroupRoute {
    std::string group;
    std::string version;
    std::function<nlohmann::json()> resources;
    std::function<ServerResponse(ServerRequest&, const std::vector<std::string>& rest)> route;
  };
  void addApiGroup(ApiGroupRoute group);

 private:
  registry::WriteOptions writeOptions(const ServerRequest& request, const api::KindInfo& kind,
                                      const std::string& ns) const;

  registry::Registry& registry_;
  Clock& clock_;
  const ApiHandlerOptions options_;
  std::atomic<bool> ready_{false};
  std::map<std::string, std::function<ServerResponse(ServerRequest&)>> routes_;
  std::map<std::string, SubresourceRoute> subresources_;  // key "plural/sub"
  std::vector<ApiGroupRoute> groups_;
};

}  // namespace ep::apiserver
