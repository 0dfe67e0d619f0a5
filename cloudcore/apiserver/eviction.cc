#include "cloudcore/apiserver/eviction.h"

#include "common/api/json_limits.h"
#include "common/api/kinds.h"
#include "common/api/proto_json.h"
#include "common/api/proto_wire.h"
#include "common/api/status_json.h"

namespace ep::apiserver {
namespace {

using Json = nlohmann::json;

http::ServerResponse evict(registry::Registry& registry, http::ServerRequest& req,
                           const std::string& ns, const std::string& name) {
  const api::KindInfo& pods = *api::findByApiVersionKind("v1", "Pod");
  if (req.method != "POST") {
    return api::errorResponse(
        Status(Code::kMethodNotAllowed,
               "the server does not allow this method on the requested resource"),
        &pods, name);
  }
  Json body;
  if (api::isKubernetesProtobuf(req.header("content-type"))) {
    auto decoded = api::kubernetesProtobufToJson(req.body);
    if (!decoded.isOk()) return api::errorResponse(decoded.status(), &pods, name);
    body = std::move(decoded.value());
  } else {
    body = api::parseJsonBounded(req.body, 64);
  }
  if (!body.is_object()) {
    return api::errorResponse(badRequestError("the request body must be an Eviction object"), &pods,
                              name);
  }
  if (body.value("kind", "Eviction") != "Eviction") {
    return api::errorResponse(badRequestError("kind: must be Eviction"), &pods, name);
  }
  const Json meta = body.value("metadata", Json::object());
  if (meta.is_object() && !meta.value("name", std::string()).empty() &&
      meta.value("name", std::string()) != name) {
    return api::errorResponse(badRequestError("name in URL does not match name in Eviction object"),
                              &pods, name);
  }
  registry::DeleteOptions opts;
  opts.dryRun = req.param("dryRun") == "All";
  const Json del = body.value("deleteOptions", Json::object());
  if (del.is_object()) {
    if (auto g = del.find("gracePeriodSeconds"); g != del.end() && !g->is_null()) {
      if (!g->is_number_integer()) {
        return api::errorResponse(
            badRequestError("deleteOptions.gracePeriodSeconds: must be an integer"), &pods, name);
      }
      opts.gracePeriodSeconds = g->get<int64_t>();
    }
    if (auto p = del.find("preconditions"); p != del.end() && p->is_object()) {
      opts.preconditionUid = p->value("uid", std::string());
      opts.preconditionResourceVersion = p->value("resourceVersion", std::string());
    }
    if (auto d = del.find("dryRun"); d != del.end() && d->is_array()) {
      for (const auto& v : *d) opts.dryRun = opts.dryRun || v == "All";
    }
  }
  auto removed = registry.remove(pods, ns, name, opts);
  if (!removed.isOk()) return api::errorResponse(removed.status(), &pods, name);
  return api::jsonResponse(201, {{"kind", "Status"},
                                 {"apiVersion", "v1"},
                                 {"metadata", Json::object()},
                                 {"status", "Success"},
                                 {"code", 201}});
}

}  // namespace

void installEviction(ApiHandler& handler, registry::Registry& registry) {
  handler.addSubresource(
      "pods", "eviction",
      [&registry](http::ServerRequest& req, const std::string& ns, const std::string& name) {
        return evict(registry, req, ns, name);
      });
}

}  // namespace ep::apiserver
