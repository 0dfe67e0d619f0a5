#include "cloudcore/apiserver/auth_filter.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "cloudcore/apiserver/delete_options.h"
#include "cloudcore/audit/audit_log.h"
#include "common/api/json_limits.h"
#include "common/api/proto_wire.h"
#include "common/api/status_json.h"

namespace ep::apiserver {

using Json = nlohmann::json;

namespace {

// Reviews are small: their bodies may nest this deep at most (a deeper one is malformed).
constexpr size_t kMaxBodyDepth = 32;

bool isPublicPath(const std::string& path) {
  for (const char* p : {"/healthz", "/livez", "/readyz", "/version"}) {
    std::string prefix = p;
    if (path == prefix || path.compare(0, prefix.size() + 1, prefix + "/") == 0) return true;
  }
  return false;
}

Json userJson(const auth::UserInfo& u) {
  Json j = {{"username", u.name}, {"groups", u.groups}};
  if (!u.uid.empty()) j["uid"] = u.uid;
  return j;
}

std::string auditId() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx-%08llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(counter++ & 0xffffffffULL));
  return buf;
}

// The spec (field 2) of a review object (SelfSubjectAccessReview, SelfSubjectRulesReview) sent
// as application/vnd.kubernetes.protobuf.
std::optional<api::ProtoMessage> reviewSpecFromProtobuf(std::string_view body) {
  auto object = api::unwrapKubernetesProtobuf(body);
  if (!object) return std::nullopt;
  auto review = api::ProtoMessage::parse(object->raw);
  if (!review) return std::nullopt;
  return api::ProtoMessage::parse(review->bytes(2));
}

// The spec of a SelfSubjectAccessReview sent as application/vnd.kubernetes.protobuf (kubectl's
// default for this API): the object's spec (2) has resourceAttributes (1: namespace 1, verb 2,
// group 3, version 4, resource 5, subresource 6, name 7) or nonResourceAttributes (2: path 1,
// verb 2).
std::optional<Json> accessReviewSpecFromProtobuf(std::string_view body) {
  auto spec = reviewSpecFromProtobuf(body);
  if (!spec) return std::nullopt;
  Json out = Json::object();
  if (spec->has(1)) {
    auto f = api::ProtoMessage::parse(spec->bytes(1));
    if (!f) return std::nullopt;
    const char* names[] = {"",        "namespace", "verb",        "group",
                           "version", "resource",  "subresource", "name"};
    Json ra = Json::object();
    for (uint32_t n = 1; n <= 7; ++n) {
      if (f->has(n)) ra[names[n]] = std::string(f->bytes(n));
    }
    out["resourceAttributes"] = std::move(ra);
  } else if (spec->has(2)) {
    auto f = api::ProtoMessage::parse(spec->bytes(2));
    if (!f) return std::nullopt;
    out["nonResourceAttributes"] = {{"path", std::string(f->bytes(1))},
                                    {"verb", std::string(f->bytes(2))}};
  }
  return out;
}

// The namespace of a SelfSubjectRulesReview sent as protobuf: spec (2) has namespace (1).
std::optional<std::string> rulesReviewNamespaceFromProtobuf(std::string_view body) {
  auto spec = reviewSpecFromProtobuf(body);
  if (!spec) return std::nullopt;
  return std::string(spec->bytes(1));
}

Json ruleJson(const auth::PolicyRule& r, bool resource) {
  Json j = {{"verbs", r.verbs}};
  if (resource) {
    j["apiGroups"] = r.apiGroups;
    j["resources"] = r.resources;
    if (!r.resourceNames.empty()) j["resourceNames"] = r.resourceNames;
  } else {
    j["nonResourceURLs"] = r.nonResourceURLs;
  }
  return j;
}

http::ServerResponse unauthorized() {
  return api::errorResponse(Status(Code::kUnauthorized, "Unauthorized"));
}

}  // namespace

auth::RulesResult PrivilegedGroupAuthorizer::rulesFor(const auth::UserInfo& user,
                                                      const std::string&) const {
  if (!user.inGroup(auth::kGroupMasters)) return {};
  return {{{{"*"}, {"*"}, {"*"}, {}, {}}}, {{{"*"}, {}, {}, {}, {"*"}}}, false, ""};
}

auth::Decision PrivilegedGroupAuthorizer::authorize(const auth::UserInfo& user,
                                                    const auth::RequestAttributes&) const {
  if (user.inGroup(auth::kGroupMasters)) {
    return {true, std::string("member of ") + auth::kGroupMasters};
  }
  return {false, ""};
}

AuthFilter::AuthFilter(const auth::Authenticator& authenticator,
                       std::vector<const auth::Authorizer*> authorizers, audit::AuditLog* audit,
                       Clock& clock, Next next, Attributes attributes)
    : authenticator_(authenticator),
      authorizers_(std::move(authorizers)),
      audit_(audit),
      clock_(clock),
      next_(std::move(next)),
      attributes_(std::move(attributes)) {}

auth::Decision AuthFilter::authorize(const auth::UserInfo& user,
                                     const auth::RequestAttributes& a) const {
  std::string reasons;
  for (const auto* z : authorizers_) {
    auth::Decision d = z->authorize(user, a);
    if (d.allowed) return d;
    if (!d.reason.empty()) reasons += (reasons.empty() ? "" : "; ") + d.reason;
  }
  return {false, reasons};
}

http::ServerResponse AuthFilter::handle(http::ServerRequest& req) {
  const int64_t received = clock_.nowMillis() * 1000;
  auth::RequestAttributes attrs = attributes_ ? attributes_(req) : auth::requestAttributes(req);
  auto user = authenticator_.authenticate(req);
  if (!user) {
    spdlog::info("apiserver: 401 {} {} from {}: {}", req.method, req.target, req.remote,
                 user.status().message());
    auto r = unauthorized();
    audit(req, nullptr, attrs, r, received, "", "");
    return r;
  }
  if (user->isAnonymous() && !isPublicPath(req.path)) {
    auto r = unauthorized();
    audit(req, &*user, attrs, r, received, "", "");
    return r;
  }
  auth::Decision decision;
  if (user->isAnonymous()) {
    decision = {true, "public path"};
  } else {
    decision = authorize(*user, attrs);
  }
  if (!decision.allowed) {
    Status s(Code::kForbidden, auth::forbiddenMessage(*user, attrs));
    Json body = api::statusObject(s);
    Json details = Json::object();
    if (!attrs.name.empty()) details["name"] = attrs.name;
    if (!attrs.apiGroup.empty()) details["group"] = attrs.apiGroup;
    if (!attrs.resource.empty()) details["kind"] = attrs.resource;
    if (!details.empty()) body["details"] = details;
    auto r = api::jsonResponse(403, body);
    spdlog::info("apiserver: 403 {} {} for {}: {}", req.method, req.target, user->name,
                 decision.reason);
    audit(req, &*user, attrs, r, received, "forbid", decision.reason);
    return r;
  }
  if (asksUnsafeDelete(req)) {
    // As Kubernetes: an unsafe delete also needs the unsafe-delete-ignore-read-errors verb.
    auth::RequestAttributes unsafe = attrs;
    unsafe.verb = "unsafe-delete-ignore-read-errors";
    if (auto d = authorize(*user, unsafe); !d.allowed) {
      Status s(Code::kForbidden, auth::forbiddenMessage(*user, unsafe));
      auto r = api::jsonResponse(403, api::statusObject(s));
      spdlog::info("apiserver: 403 {} {} for {}: {}", req.method, req.target, user->name, d.reason);
      audit(req, &*user, unsafe, r, received, "forbid", d.reason);
      return r;
    }
  }
  http::ServerResponse r;
  if (req.method == "POST" && attrs.resourceRequest && attrs.apiGroup == "authentication.k8s.io" &&
      attrs.resource == "selfsubjectreviews") {
    r = selfSubjectReview(*user);
  } else if (req.method == "POST" && attrs.resourceRequest &&
             attrs.apiGroup == "authorization.k8s.io" &&
             attrs.resource == "selfsubjectaccessreviews") {
    r = selfSubjectAccessReview(*user, req);
  } else if (req.method == "POST" && attrs.resourceRequest &&
             attrs.apiGroup == "authorization.k8s.io" &&
             attrs.resource == "selfsubjectrulesreviews") {
    r = selfSubjectRulesReview(*user, req);
  } else {
    req.context = *user;  // for admission (RBAC escalation checks)
    r = next_(req);
  }
  audit(req, &*user, attrs, r, received, "allow", decision.reason);
  return r;
}

http::ServerResponse AuthFilter::selfSubjectReview(const auth::UserInfo& user) {
  return api::jsonResponse(201, {{"apiVersion", "authentication.k8s.io/v1"},
                                 {"kind", "SelfSubjectReview"},
                                 {"metadata", {{"creationTimestamp", nullptr}}},
                                 {"status", {{"userInfo", userJson(user)}}}});
}

http::ServerResponse AuthFilter::selfSubjectAccessReview(const auth::UserInfo& user,
                                                         const http::ServerRequest& req) {
  Json body;
  if (api::isKubernetesProtobuf(req.header("content-type"))) {
    auto spec = accessReviewSpecFromProtobuf(req.body);
    if (!spec) return api::errorResponse(badRequestError("malformed protobuf body"));
    body = {{"spec", std::move(*spec)}};
  } else {
    body = api::parseJsonBounded(req.body, kMaxBodyDepth);
  }
  if (!body.is_object() || !body.contains("spec") || !body["spec"].is_object()) {
    return api::errorResponse(badRequestError("spec: a SelfSubjectAccessReview needs a spec"));
  }
  const Json& spec = body["spec"];
  auth::RequestAttributes a;
  auto str = [](const Json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (auto ra = spec.find("resourceAttributes"); ra != spec.end() && ra->is_object()) {
    a.resourceRequest = true;
    a.verb = str(*ra, "verb");
    a.apiGroup = str(*ra, "group");
    a.apiVersion = str(*ra, "version");
    a.resource = str(*ra, "resource");
    a.subresource = str(*ra, "subresource");
    a.ns = str(*ra, "namespace");
    a.name = str(*ra, "name");
  } else if (auto nra = spec.find("nonResourceAttributes"); nra != spec.end() && nra->is_object()) {
    a.verb = str(*nra, "verb");
    a.path = str(*nra, "path");
  } else {
    return api::errorResponse(
        invalidError("spec: exactly one of resourceAttributes and nonResourceAttributes is "
                     "required"));
  }
  auth::Decision d = authorize(user, a);
  Json status = {{"allowed", d.allowed}};
  if (d.allowed && !d.reason.empty()) status["reason"] = d.reason;
  body["status"] = status;
  body["metadata"] = {{"creationTimestamp", nullptr}};
  body["apiVersion"] = "authorization.k8s.io/v1";
  body["kind"] = "SelfSubjectAccessReview";
  return api::jsonResponse(201, body);
}

http::ServerResponse AuthFilter::selfSubjectRulesReview(const auth::UserInfo& user,
                                                        const http::ServerRequest& req) {
  std::string ns;
  if (api::isKubernetesProtobuf(req.header("content-type"))) {
    auto got = rulesReviewNamespaceFromProtobuf(req.body);
    if (!got) return api::errorResponse(badRequestError("malformed protobuf body"));
    ns = std::move(*got);
  } else {
    Json body = api::parseJsonBounded(req.body, kMaxBodyDepth);
    if (!body.is_object() || !body.contains("spec") || !body["spec"].is_object()) {
      return api::errorResponse(badRequestError("spec: a SelfSubjectRulesReview needs a spec"));
    }
    if (auto it = body["spec"].find("namespace"); it != body["spec"].end()) {
      if (!it->is_string()) {
        return api::errorResponse(invalidError("spec.namespace: must be a string"));
      }
      ns = it->get<std::string>();
    }
  }
  Json resourceRules = Json::array();
  Json nonResourceRules = Json::array();
  bool incomplete = false;
  std::string errors;
  for (const auto* z : authorizers_) {
    auth::RulesResult got = z->rulesFor(user, ns);
    for (const auto& r : got.resourceRules) resourceRules.push_back(ruleJson(r, true));
    for (const auto& r : got.nonResourceRules) nonResourceRules.push_back(ruleJson(r, false));
    incomplete = incomplete || got.incomplete;
    if (!got.evaluationError.empty()) errors += (errors.empty() ? "" : "; ") + got.evaluationError;
  }
  Json status = {{"resourceRules", std::move(resourceRules)},
                 {"nonResourceRules", std::move(nonResourceRules)},
                 {"incomplete", incomplete}};
  if (!errors.empty()) status["evaluationError"] = errors;
  return api::jsonResponse(201, {{"apiVersion", "authorization.k8s.io/v1"},
                                 {"kind", "SelfSubjectRulesReview"},
                                 {"metadata", {{"creationTimestamp", nullptr}}},
                                 {"spec", {{"namespace", ns}}},
                                 {"status", std::move(status)}});
}

void AuthFilter::audit(const http::ServerRequest& req, const auth::UserInfo* user,
                       const auth::RequestAttributes& a, const http::ServerResponse& r,
                       int64_t receivedMicros, const std::string& decision,
                       const std::string& reason) {
  if (audit_ == nullptr) return;
  const bool streaming = r.stream != nullptr || r.websocket != nullptr;
  std::string ip = req.remote.substr(0, req.remote.rfind(':'));
  Json ev = {{"kind", "Event"},
             {"apiVersion", "audit.k8s.io/v1"},
             {"level", "Metadata"},
             {"auditID", auditId()},
             {"stage", streaming ? "ResponseStarted" : "ResponseComplete"},
             {"requestURI", req.target},
             {"verb", a.verb},
             {"user", user ? userJson(*user) : Json::object()},
             {"sourceIPs", Json::array({ip})},
             {"responseStatus", {{"metadata", Json::object()}, {"code", r.status}}},
             {"requestReceivedTimestamp", formatRfc3339Nano(receivedMicros * 1000)},
             {"stageTimestamp", formatRfc3339Nano(clock_.nowMillis() * 1000000)}};
  if (std::string ua = req.header("user-agent"); !ua.empty()) ev["userAgent"] = ua;
  if (a.resourceRequest) {
    Json ref = {{"resource", a.resource}, {"apiVersion", a.apiVersion}};
    if (!a.apiGroup.empty()) ref["apiGroup"] = a.apiGroup;
    if (!a.ns.empty()) ref["namespace"] = a.ns;
    if (!a.name.empty()) ref["name"] = a.name;
    if (!a.subresource.empty()) ref["subresource"] = a.subresource;
    ev["objectRef"] = std::move(ref);
  }
  if (!decision.empty()) {
    ev["annotations"] = {{"authorization.k8s.io/decision", decision},
                         {"authorization.k8s.io/reason", reason}};
  }
  audit_->record(ev.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace ep::apiserver
