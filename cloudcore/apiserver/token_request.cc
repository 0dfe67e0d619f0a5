#include "cloudcore/apiserver/token_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/api/json_limits.h"
#include "common/api/kinds.h"
#include "common/api/object_util.h"
#include "common/api/proto_wire.h"
#include "common/api/status_json.h"

namespace ep::apiserver {
namespace {

using Json = nlohmann::json;

constexpr const char* kApiVersion = "authentication.k8s.io/v1";
constexpr int64_t kDefaultExpirationSeconds = 3600;
constexpr int64_t kMinExpirationSeconds = 600;
constexpr int64_t kMaxValidExpirationSeconds = int64_t{1} << 32;

struct BoundRef {
  std::string kind, apiVersion, name, uid;
};

// What the request asks for, from either encoding.
struct Spec {
  std::vector<std::string> audiences;
  std::optional<int64_t> expirationSeconds;
  std::optional<BoundRef> bound;
};

const api::KindInfo& kindOf(const char* kind) {
  return *api::findByApiVersionKind("v1", kind);
}

// authentication/v1 generated.proto: TokenRequest {metadata 1, spec 2, status 3};
// TokenRequestSpec {audiences 1 (repeated), boundObjectRef 3, expirationSeconds 4 (int64)};
// BoundObjectReference {kind 1, apiVersion 2, name 3, uid 4}.
Result<Spec> specFromProtobuf(std::string_view body) {
  auto object = api::unwrapKubernetesProtobuf(body);
  if (!object) return badRequestError("malformed protobuf body");
  if (!object->kind.empty() && object->kind != "TokenRequest") {
    return badRequestError("expected a TokenRequest, got " + object->kind);
  }
  auto request = api::ProtoMessage::parse(object->raw);
  if (!request) return badRequestError("malformed protobuf TokenRequest");
  auto spec = api::ProtoMessage::parse(request->bytes(2));
  if (!spec) return badRequestError("malformed protobuf TokenRequest spec");
  Spec out;
  for (auto a : spec->repeatedBytes(1)) out.audiences.emplace_back(a);
  if (auto e = spec->varint(4)) out.expirationSeconds = static_cast<int64_t>(*e);
  if (spec->has(3)) {
    auto ref = api::ProtoMessage::parse(spec->bytes(3));
    if (!ref) return badRequestError("malformed protobuf boundObjectRef");
    out.bound = BoundRef{std::string(ref->bytes(1)), std::string(ref->bytes(2)),
                         std::string(ref->bytes(3)), std::string(ref->bytes(4))};
  }
  return out;
}

Result<Spec> specFromJson(const std::string& body) {
  Json j = api::parseJsonBounded(body, 64);
  if (j.is_discarded() || !j.is_object()) {
    return badRequestError("the request body must be a JSON object");
  }
  std::string kind = api::stringAt(j, "kind");
  if (!kind.empty() && kind != "TokenRequest") {
    return badRequestError("expected a TokenRequest, got " + kind);
  }
  std::string apiVersion = api::stringAt(j, "apiVersion");
  if (!apiVersion.empty() && apiVersion != kApiVersion) {
    return badRequestError("the API version in the data (" + apiVersion +
                           ") does not match the expected API version (" + kApiVersion + ")");
  }
  Spec out;
  const Json* spec = api::lookupPath(j, "spec");
  if (spec == nullptr || spec->is_null()) return out;
  if (!spec->is_object()) return badRequestError("spec: must be an object");
  if (auto a = spec->find("audiences"); a != spec->end() && !a->is_null()) {
    if (!a->is_array()) return badRequestError("spec.audiences: must be a list of strings");
    for (const auto& x : *a) {
      if (!x.is_string()) return badRequestError("spec.audiences: must be a list of strings");
      out.audiences.push_back(x.get<std::string>());
    }
  }
  if (auto e = spec->find("expirationSeconds"); e != spec->end() && !e->is_null()) {
    if (!e->is_number_integer()) {
      return badRequestError("spec.expirationSeconds: must be an integer");
    }
    out.expirationSeconds = e->get<int64_t>();
  }
  if (auto b = spec->find("boundObjectRef"); b != spec->end() && !b->is_null()) {
    if (!b->is_object()) return badRequestError("spec.boundObjectRef: must be an object");
    out.bound = BoundRef{api::stringAt(*b, "kind"), api::stringAt(*b, "apiVersion"),
                         api::stringAt(*b, "name"), api::stringAt(*b, "uid")};
  }
  return out;
}

// 422 naming the field, as Kubernetes' validation does.
http::ServerResponse invalid(const std::string& name, const std::string& field,
                             const std::string& detail) {
  Status s = Status(Code::kInvalid, "TokenRequest.authentication.k8s.io \"" + name +
                                        "\" is invalid: " + field + ": " + detail)
                 .withCauses({{field, "FieldValueInvalid", detail}});
  Json body = api::statusObject(s);
  body["details"]["name"] = name;
  body["details"]["group"] = "authentication.k8s.io";
  body["details"]["kind"] = "TokenRequest";
  return api::jsonResponse(422, body);
}

http::ServerResponse serve(registry::Registry& registry, auth::ServiceAccountTokens& tokens,
                           http::ServerRequest& req, const std::string& ns,
                           const std::string& name) {
  const api::KindInfo& saKind = kindOf("ServiceAccount");
  if (req.method != "POST") {
    return api::errorResponse(Status(Code::kMethodNotAllowed,
                                     "the server does not allow this method on the requested "
                                     "resource (serviceaccounts/token)"));
  }
  if (ns.empty()) {
    return api::errorResponse(notFoundError("the server could not find the requested resource"));
  }
  auto spec = api::isKubernetesProtobuf(req.header("content-type")) ? specFromProtobuf(req.body)
                                                                    : specFromJson(req.body);
  if (!spec) return api::errorResponse(spec.status());

  const int64_t requested = spec->expirationSeconds.value_or(kDefaultExpirationSeconds);
  if (requested < kMinExpirationSeconds) {
    return invalid(name, "spec.expirationSeconds",
                   "Invalid value: " + std::to_string(requested) +
                       ": may not specify a duration less than 10 minutes");
  }
  if (requested > kMaxValidExpirationSeconds) {
    return invalid(name, "spec.expirationSeconds",
                   "Invalid value: " + std::to_string(requested) +
                       ": may not specify a duration larger than 2^32 seconds");
  }
  const int64_t expiration = std::min(requested, kMaxTokenExpirationSeconds);

  auto sa = registry.get(saKind, ns, name);
  if (!sa) return api::errorResponse(sa.status(), &saKind, name);
  const std::string saUid = api::stringAt(*sa, "metadata.uid");

  std::optional<auth::BoundObject> bound;
  if (spec->bound) {
    const BoundRef& ref = *spec->bound;
    if ((ref.kind != "Pod" && ref.kind != "Secret") ||
        (!ref.apiVersion.empty() && ref.apiVersion != "v1")) {
      return api::errorResponse(badRequestError(
          "cannot bind token to object of type " +
          (ref.apiVersion.empty() ? "" : ref.apiVersion + ", ") + "Kind=" + ref.kind));
    }
    if (ref.name.empty()) {
      return invalid(name, "spec.boundObjectRef.name", "Required value");
    }
    const api::KindInfo& kind = kindOf(ref.kind.c_str());
    auto obj = registry.get(kind, ns, ref.name);
    if (!obj) return api::errorResponse(obj.status(), &kind, ref.name);
    const std::string uid = api::stringAt(*obj, "metadata.uid");
    if (!ref.uid.empty() && ref.uid != uid) {
      return api::errorResponse(
          Status(Code::kConflict, "Operation cannot be fulfilled on " + kind.plural + " \"" +
                                      ref.name + "\": the UID in the bound object reference (" +
                                      ref.uid +
                                      ") does not match the UID in record. The object "
                                      "might have been deleted and then recreated"),
          &kind, ref.name);
    }
    if (ref.kind == "Pod") {
      std::string podSa = api::stringAt(*obj, "spec.serviceAccountName");
      if ((podSa.empty() ? "default" : podSa) != name) {
        return api::errorResponse(
            badRequestError("cannot bind token for serviceaccount \"" + name +
                            "\" to pod running with different serviceaccount name."));
      }
    }
    bound = auth::BoundObject{ref.kind, ref.name, uid};
  }

  auto issued = tokens.issue(ns, name, saUid, spec->audiences, expiration, bound);
  if (!issued) return api::errorResponse(issued.status());

  Json specOut = {
      {"audiences", spec->audiences.empty() ? std::vector<std::string>{auth::kServiceAccountIssuer}
                                            : spec->audiences},
      {"expirationSeconds", expiration},
      {"boundObjectRef", nullptr}};
  if (bound) {
    specOut["boundObjectRef"] = {
        {"kind", bound->kind}, {"apiVersion", "v1"}, {"name", bound->name}, {"uid", bound->uid}};
  }
  Json out = {{"kind", "TokenRequest"},
              {"apiVersion", kApiVersion},
              {"metadata", {{"name", name}, {"namespace", ns}, {"creationTimestamp", nullptr}}},
              {"spec", std::move(specOut)},
              {"status",
               {{"token", issued->token},
                {"expirationTimestamp", formatRfc3339(issued->expiresAt * 1000)}}}};
  http::ServerResponse r = api::jsonResponse(201, out);
  if (expiration < requested) {
    r.headers.emplace_back("Warning", "299 - \"requested expiration of " +
                                          std::to_string(requested) + " seconds shortened to " +
                                          std::to_string(expiration) + " seconds\"");
  }
  return r;
}

}  // namespace

void installTokenRequest(ApiHandler& handler, registry::Registry& registry,
                         auth::ServiceAccountTokens& tokens) {
  handler.addSubresource("serviceaccounts", "token",
                         [&registry, &tokens](http::ServerRequest& req, const std::string& ns,
                                              const std::string& name) {
                           return serve(registry, tokens, req, ns, name);
                         });
}

}  // namespace ep::apiserver
