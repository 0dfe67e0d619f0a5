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

// The shared tail of kubectl's generator verbs (create, expose).
// Checks --dry-run ("", none, client, server) and -o ("", json, yaml, name); prints kubectl's
// error and returns false when one is not supported.
bool checkGeneratorFlags(Context& ctx, const std::string& dryRun, const std::string& output);
// POSTs `object` to `collectionPath` (with dryRun=All for "server"; not at all for "client") and
// prints the result as -o asks, or "RESOURCE/NAME VERB" with " (dry run)" / " (server dry run)".
// Returns the exit status; a failed call is printed as kubectl prints it.
int postAndPrint(Context& ctx, const std::string& collectionPath, const nlohmann::json& object,
                 const std::string& resource, const std::string& verb, const std::string& dryRun,
                 const std::string& output);

// Return the process exit status; errors are printed as kubectl prints them.
int runCreateSecret(Context& ctx, const CreateSecretOptions& options);
int runSetImage(Context& ctx, const SetImageOptions& options);

}  // namespace ep::edgectl
