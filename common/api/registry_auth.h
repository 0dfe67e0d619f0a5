#pragma once

// Registry credentials from Kubernetes Secrets, shared by edged (imagePullSecrets) and the
// model puller (a Model's spec.credentialName). Pure; thread-safe.

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

namespace ep::api {

// The registry host a docker config "auths" key names ("https://host[:port]/path" or
// "host[:port]"), Docker Hub's other names (index.docker.io, registry-1.docker.io) as
// "docker.io".
std::string registryHostOfAuthKey(const std::string& key);

// One docker config "auths" entry.
struct RegistryAuth {
  std::string username;
  std::string password;
  std::string auth;  // base64 "user:password", when username/password are not given
  std::string identityToken;
  std::string registryToken;

  // username and password, from `auth` when they are not given separately. False when neither
  // form is present or `auth` does not decode to "user:password".
  bool basic(std::string* user, std::string* pass) const;
};

// The credentials `secret` holds for registry `host` ("host[:port]", compared with
// registryHostOfAuthKey of each key): a kubernetes.io/dockerconfigjson (.dockerconfigjson) or
// kubernetes.io/dockercfg (.dockercfg) Secret's matching entry, or a kubernetes.io/basic-auth
// Secret's username and password (any host). nullopt when it holds none for `host`; malformed
// data counts as none.
std::optional<RegistryAuth> registryAuthFor(const nlohmann::json& secret, const std::string& host);

}  // namespace ep::api
