#include "common/api/bootstrap_token.h"

#include "common/api/base64.h"

namespace ep::api {

nlohmann::json bootstrapTokenSecret(const BootstrapTokenSpec& s) {
  nlohmann::json data = {
      {"token-id", base64Encode(s.id)},
      {"token-secret", base64Encode(s.secret)},
      {"usage-bootstrap-authentication", base64Encode("true")},
      {"usage-bootstrap-signing", base64Encode("true")},
      {"auth-extra-groups", base64Encode("system:bootstrappers:edgeplane:default-node-token")}};
  if (!s.expiration.empty()) data["expiration"] = base64Encode(s.expiration);
  if (!s.description.empty()) data["description"] = base64Encode(s.description);
  if (s.usages > 0) data["usages-remaining"] = base64Encode(std::to_string(s.usages));
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"type", "bootstrap.kubernetes.io/token"},
          {"metadata", {{"name", "bootstrap-token-" + s.id}, {"namespace", "kube-system"}}},
          {"data", std::move(data)}};
}

}  // namespace ep::api
