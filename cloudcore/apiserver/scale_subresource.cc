#include "cloudcore/apiserver/scale_subresource.h"

#include <nlohmann/json.hpp>

#include "common/api/json_limits.h"
#include "common/api/label_selector.h"
#include "common/api/object_util.h"
#include "common/api/patch.h"
#include "common/api/status_json.h"

namespace ep::apiserver {
namespace {

using registry::Json;

Json scaleOf(const Json& obj) {
  const Json& meta = obj["metadata"];
  Json scaleMeta = Json::object();
  for (const char* f : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (meta.contains(f)) scaleMeta[f] = meta[f];
  }
  std::string selector;
  if (const Json* sel = api::lookupPath(obj, "spec.selector")) {
    auto parsed = api::labelSelectorFromJson(*sel);
    if (parsed.isOk()) selector = parsed->toString();
  }
  return Json{
      {"kind", "Scale"},
      {"apiVersion", "autoscaling/v1"},
      {"metadata", scaleMeta},
      {"spec", {{"replicas", api::intAt(obj, "spec.replicas", 1)}}},
      {"status", {{"replicas", api::intAt(obj, "status.replicas", 0)}, {"selector", selector}}}};
}

http::ServerResponse serve(registry::Registry& registry, const std::string& plural,
                           http::ServerRequest& req, const std::string& ns,
                           const std::string& name) {
  const api::KindInfo* kind = api::findByResource("apps", "v1", plural);
  if (kind == nullptr) return api::errorResponse(notFoundError("no such resource"));
  auto current = registry.get(*kind, ns, name);
  if (!current.isOk()) return api::errorResponse(current.status(), kind, name);
  Json scale = scaleOf(*current);
  if (req.method == "GET") return api::jsonResponse(200, scale);
  Json wanted;
  if (req.method == "PUT") {
    wanted = api::parseJsonBounded(req.body, 64);
    if (wanted.is_discarded() || !wanted.is_object()) {
      return api::errorResponse(badRequestError("the request body must be a JSON object"));
    }
  } else if (req.method == "PATCH") {
    Json patch = api::parseJsonBounded(req.body, 64);
    if (patch.is_discarded()) return api::errorResponse(badRequestError("invalid patch body"));
    std::string type = req.header("content-type");
    auto patched = type.find("json-patch") != std::string::npos
                       ? api::applyJsonPatch(scale, patch)
                       : api::applyMergePatch(scale, patch);
    if (!patched.isOk()) return api::errorResponse(badRequestError(patched.status().message()));
    wanted = std::move(patched.value());
  } else {
    return api::errorResponse(Status(
        Code::kMethodNotAllowed, "the server does not allow this method on " + plural + "/scale"));
  }
  const Json* replicas = api::lookupPath(wanted, "spec.replicas");
  if (replicas == nullptr || !replicas->is_number_integer() || replicas->get<int64_t>() < 0) {
    return api::errorResponse(
        Status(Code::kInvalid, "Scale.autoscaling \"" + name +
                                   "\" is invalid: spec.replicas: Invalid value: must be greater "
                                   "than or equal to 0"));
  }
  Json next = *current;
  next["spec"]["replicas"] = *replicas;
  // Without a resourceVersion in the Scale, last write wins (the registry retries races).
  std::string rv = api::stringAt(wanted, "metadata.resourceVersion");
  // A patch that did not set a resourceVersion carries the one read above: it must not turn
  // into a precondition that a concurrent controller write breaks (409), as Kubernetes
  // patches do not.
  if (req.method == "PATCH" && rv == api::stringAt(scale, "metadata.resourceVersion")) rv.clear();
  if (rv.empty()) {
    next["metadata"].erase("resourceVersion");
  } else {
    next["metadata"]["resourceVersion"] = rv;
  }
  registry::WriteOptions options;
  options.fieldManager = fieldManagerOf(req);
  auto r = registry.update(*kind, ns, name, next, registry::Subresource::kNone, options);
  if (!r.isOk()) return api::errorResponse(r.status(), kind, name);
  return api::jsonResponse(200, scaleOf(*r));
}

}  // namespace

void installScaleSubresource(ApiHandler& handler, registry::Registry& registry) {
  for (const char* plural : {"deployments", "replicasets"}) {
    std::string p = plural;
    handler.addSubresource(
        p, "scale",
        [&registry, p](http::ServerRequest& req, const std::string& ns, const std::string& name) {
          return serve(registry, p, req, ns, name);
        });
  }
}

}  // namespace ep::apiserver
