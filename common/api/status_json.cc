#include "common/api/status_json.h"

#include <nlohmann/json.hpp>

namespace ep::api {

using Json = nlohmann::json;

int httpStatusFor(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalid:
      return 422;
    case Code::kBadRequest:
      return 400;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
    case Code::kConflict:
      return 409;
    case Code::kExpired:
      return 410;
    case Code::kTooLarge:
      return 413;
    case Code::kForbidden:
      return 403;
    case Code::kUnauthorized:
      return 401;
    case Code::kMethodNotAllowed:
      return 405;
    case Code::kUnsupportedMedia:
      return 415;
    case Code::kUnavailable:
      return 503;
    case Code::kTimeout:
      return 504;
    case Code::kInternal:
      return 500;
  }
  return 500;
}

const char* statusReasonFor(Code code) {
  // codeName() spells every code as its Kubernetes StatusReason.
  return codeName(code);
}

Json statusObject(const Status& s, const KindInfo* kind, std::string_view name) {
  Json status = {{"kind", "Status"},
                 {"apiVersion", "v1"},
                 {"metadata", Json::object()},
                 {"status", "Failure"},
                 {"message", s.message()},
                 {"reason", statusReasonFor(s.code())},
                 {"code", httpStatusFor(s.code())}};
  Json details = Json::object();
  if (!name.empty()) details["name"] = std::string(name);
  if (kind) {
    if (!kind->group.empty()) details["group"] = kind->group;
    // As the apiserver: Invalid names the kind ("Deployment"), the others the resource.
    details["kind"] = s.code() == Code::kInvalid ? kind->kind : kind->plural;
  }
  if (!s.causes().empty()) {
    Json causes = Json::array();
    for (const auto& c : s.causes()) {
      causes.push_back({{"reason", c.reason}, {"message", c.message}, {"field", c.field}});
    }
    details["causes"] = std::move(causes);
  }
  if (!details.empty()) status["details"] = std::move(details);
  return status;
}

http::ServerResponse jsonResponse(int status, const Json& body) {
  http::ServerResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

http::ServerResponse errorResponse(const Status& s, const KindInfo* kind, std::string_view name) {
  return jsonResponse(httpStatusFor(s.code()), statusObject(s, kind, name));
}

http::ServerResponse plainResponse(int status, std::string body) {
  http::ServerResponse r;
  r.status = status;
  r.contentType = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

}  // namespace ep::api
