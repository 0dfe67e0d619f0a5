#include "cloudcore/apiserver/delete_options.h"

#include "common/api/json_limits.h"
#include "common/api/proto_json.h"
#include "common/api/proto_wire.h"

namespace ep::apiserver {

namespace {
constexpr size_t kMaxDepth = 512;  // as every other request body (api_handler.cc)
}  // namespace

Result<nlohmann::json> parseDeleteOptionsBody(const http::ServerRequest& req) {
  if (req.body.empty()) return nlohmann::json::object();
  nlohmann::json body;
  if (api::isKubernetesProtobuf(req.header("content-type"))) {  // kubectl drain, delete
    auto decoded = api::kubernetesProtobufToJson(req.body);
    if (!decoded.isOk()) return decoded.status();
    body = std::move(decoded.value());
  } else {
    body = api::parseJsonBounded(req.body, kMaxDepth);
  }
  if (body.is_discarded() || !body.is_object()) {
    return badRequestError("the DeleteOptions body is not a JSON object");
  }
  return body;
}

bool asksUnsafeDelete(const http::ServerRequest& req) {
  if (req.method != "DELETE") return false;
  if (req.flag(kUnsafeDeleteOption)) return true;
  auto body = parseDeleteOptionsBody(req);
  if (!body.isOk()) return false;
  auto it = body->find(kUnsafeDeleteOption);
  return it != body->end() && it->is_boolean() && it->get<bool>();
}

}  // namespace ep::apiserver
