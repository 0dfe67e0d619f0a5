#pragma once

// `edgectl rollout status|history|undo` and `edgectl scale` for Deployments (and ReplicaSets for
// scale), with kubectl's messages. Run against the Context's ApiTransport; single-threaded.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "edgectl/context.h"

namespace ep::edgectl {

struct RolloutOptions {
  std::string action;             // status | history | undo
  std::vector<std::string> args;  // deployment/NAME | deployment NAME (also deploy)
  // status: give up after this long (0: wait forever); poll every pollInterval.
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds pollInterval{std::chrono::seconds(1)};
  bool watch = true;       // status: false prints the current state once
  int64_t toRevision = 0;  // undo: 0 = the previous revision
  // Sleeps between polls; tests replace it (default: std::this_thread::sleep_for).
  std::function<void(std::chrono::milliseconds)> sleep;
};

struct ScaleOptions {
  std::vector<std::string> args;  // deployment/NAME | replicaset/NAME | KIND NAME
  int64_t replicas = -1;          // required
};

// Return the process exit status.
int runRollout(Context& ctx, const RolloutOptions& options);
int runScale(Context& ctx, const ScaleOptions& options);

// kubectl's rollout status text for a Deployment: {message, done}. An error (progress deadline
// exceeded) is reported as done with a message starting "error: ".
struct RolloutState {
  std::string message;
  bool done = false;
  bool failed = false;
};
RolloutState deploymentRolloutState(const nlohmann::json& deployment);

}  // namespace ep::edgectl
