#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "edgecore/edged/runtime/container_runtime.h"

// Pure translation of a v1 Pod (as cached on the edge) into what the container runtime takes.
// No I/O apart from the injected lookup; every function is thread-safe.
namespace ep::edged {

using Json = nlohmann::json;

// Reads a cached object ("configmaps" or "secrets"); nullopt when the edge does not hold it.
using ObjectLookup = std::function<std::optional<Json>(
    const std::string& resource, const std::string& ns, const std::string& name)>;

// "NAMESPACE/NAME"
std::string podKey(const std::string& ns, const std::string& name);
std::string podKeyOf(const Json& pod);

// spec.restartPolicy, "Always" when unset.
std::string restartPolicyOf(const Json& pod);
// Whether a container that exited with `exitCode` is started again under `policy`.
bool shouldRestart(const std::string& policy, int32_t exitCode);
// spec.terminationGracePeriodSeconds (default 30, never negative).
int64_t terminationGraceSeconds(const Json& pod);
// The effective imagePullPolicy: the container's, else Always for ":latest" or untagged
// references, else IfNotPresent (Kubernetes' defaulting).
std::string imagePullPolicyOf(const Json& container);
// Registry host of an image reference ("docker.io" when it has none), for imagePullSecrets.
std::string registryHostOf(const std::string& image);
// The registry host a docker config "auths" key names ("https://host[:port]/path" or
// "host[:port]"), Docker Hub's other names (index.docker.io, registry-1.docker.io) as
// "docker.io", so that it compares with registryHostOf.
std::string registryHostOfAuthKey(const std::string& key);
// Whether a failed pull's message says the registry refused the credentials (401, 403, "denied",
// "unauthorized"): such an image is not used from the node's store either, as kubelet does not
// start a pod whose pull was refused under pullPolicy Always.
bool isPullAuthorizationFailure(const std::string& message);
// A stable hex hash of a container spec; a different hash means the container must be replaced.
std::string containerSpecHash(const Json& container);

// requests/limits -> CRI linux resources. `field` names the container in errors
// ("spec.containers[0]").
Result<LinuxResources> linuxResourcesOf(const Json& container, const std::string& field);

struct EnvContext {
  const Json* pod = nullptr;
  std::string nodeName;
  std::string podIp;
  std::string hostIp;
  ObjectLookup lookup;
};

// env and envFrom, resolved. Errors name the field and the missing object or key the way the
// kubelet does ("configmap \"cfg\" not found"), so the container waits with
// CreateContainerConfigError and that message.
Result<std::vector<std::pair<std::string, std::string>>> resolveEnv(const Json& container,
                                                                    const EnvContext& ctx,
                                                                    const std::string& field);
// Kubernetes $(VAR) expansion: known variables are replaced, unknown ones left as written,
// "$$" escapes a "$".
std::string expandVars(const std::string& in, const std::map<std::string, std::string>& vars);

// The sandbox config for `pod` (labels/annotations edged relies on included).
PodSandboxConfig sandboxConfigOf(const Json& pod, uint32_t attempt,
                                 const std::string& logDirectory);

// The Node's nodeInfo.containerRuntimeVersion from ContainerRuntime::version()'s text, as the
// kubelet writes it: "containerd 1.6.20 (CRI v1)" -> "containerd://1.6.20".
std::string nodeRuntimeVersion(const std::string& runtimeVersionText);

// The Kubernetes-style container status JSON "containerID" value: "containerd://ID".
std::string runtimeContainerId(const std::string& id);

}  // namespace ep::edged
