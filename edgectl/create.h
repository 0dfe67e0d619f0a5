#pragma once

// `edgectl create secret docker-registry` (kubectl's generator of a kubernetes.io/dockerconfigjson
// Secret, the credentials imagePullSecrets name) and `edgectl set image` (a strategic-merge patch
// of container images, kubectl's verb for rolling out a new app image). Run against the
// Context's ApiTransport; single-threaded.

#include <string>
#include <vector>

#include "edgectl/context.h"

namespace ep::edgectl {

struct CreateSecretOptions {
  std::vector<std::string> args;  // docker-registry NAME
  std::string dockerServer = "https://index.docker.io/v1/";
  std::string dockerUsername;  // required
  std::string dockerPassword;  // required
  std::string dockerEmail;
  std::string dryRun;  // "", "none", "client" (print, do not create) or "server"
  std::string output;  // "", "json", "yaml", "name"
};

struct SetImageOptions {
  // TYPE/NAME (or TYPE NAME) followed by CONTAINER=IMAGE pairs; CONTAINER "*" sets every
  // container. Deployments, ReplicaSets and Pods.
  std::vector<std::string> args;
};

// The .dockerconfigjson document kubectl writes: {"auths": {SERVER: {username, password, email,
// auth = base64(username:password)}}}.
nlohmann::json dockerConfigJson(const std::string& server, const std::string& username,
                                const std::string& password, const std::string& email);

// Return the process exit status; errors are printed as kubectl prints them.
int runCreateSecret(Context& ctx, const CreateSecretOptions& options);
int runSetImage(Context& ctx, const SetImageOptions& options);

}  // namespace ep::edgectl
