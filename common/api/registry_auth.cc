#include "common/api/registry_auth.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/api/base64.h"
#include "common/api/json_limits.h"
#include "common/api/object_util.h"

namespace ep::api {
namespace {

using Json = nlohmann::json;

std::optional<std::string> decodedData(const Json& secret, const char* key) {
  const Json* data = lookupPath(secret, "data");
  if (!data || !data->is_object()) return std::nullopt;
  auto it = data->find(key);
  if (it == data->end() || !it->is_string()) return std::nullopt;
  return base64Decode(it->get<std::string>());
}

}  // namespace

std::string registryHostOfAuthKey(const std::string& key) {
  std::string host = key;
  for (const char* prefix : {"https://", "http://"}) {
    if (host.rfind(prefix, 0) == 0) host = host.substr(std::strlen(prefix));
  }
  host = host.substr(0, host.find('/'));
  if (host == "index.docker.io" || host == "registry-1.docker.io") return "docker.io";
  return host;
}

bool RegistryAuth::basic(std::string* user, std::string* pass) const {
  if (!username.empty() || !password.empty()) {
    *user = username;
    *pass = password;
    return true;
  }
  if (auth.empty()) return false;
  auto decoded = base64Decode(auth);
  if (!decoded) return false;
  auto colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  *user = decoded->substr(0, colon);
  *pass = decoded->substr(colon + 1);
  return true;
}

std::optional<RegistryAuth> registryAuthFor(const Json& secret, const std::string& host) {
  if (stringAt(secret, "type") == "kubernetes.io/basic-auth") {
    auto user = decodedData(secret, "username");
    auto pass = decodedData(secret, "password");
    if (!user && !pass) return std::nullopt;
    RegistryAuth a;
    a.username = user.value_or("");
    a.password = pass.value_or("");
    return a;
  }
  for (const char* key : {".dockerconfigjson", ".dockercfg"}) {
    auto decoded = decodedData(secret, key);
    if (!decoded) continue;
    Json cfg = parseJsonBounded(*decoded, 8);
    if (!cfg.is_object()) continue;
    const Json& auths = cfg.contains("auths") ? cfg["auths"] : cfg;
    if (!auths.is_object()) continue;
    for (auto a = auths.begin(); a != auths.end(); ++a) {
      if (registryHostOfAuthKey(a.key()) != host || !a->is_object()) continue;
      RegistryAuth out;
      out.username = stringAt(*a, "username");
      out.password = stringAt(*a, "password");
      out.auth = stringAt(*a, "auth");
      out.identityToken = stringAt(*a, "identitytoken");
      out.registryToken = stringAt(*a, "registrytoken");
      return out;
    }
  }
  return std::nullopt;
}

}  // namespace ep::api
