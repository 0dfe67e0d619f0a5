#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "cloudcore/controllers/controller_loop.h"
#include "cloudcore/controllers/release_imports.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

struct NodeUpgradeControllerOptions {
  std::chrono::milliseconds resync{std::chrono::seconds(5)};
  std::chrono::milliseconds minGap{std::chrono::milliseconds(500)};
  // Makes the EdgecoreRelease of a job with spec.image from that image (not owned; null: such
  // jobs need a pushed release like the others).
  ReleaseImports* imports = nullptr;
};

// Runs NodeUpgradeJobs (operations.kubeedge.io/v1alpha1; docs/upgrades.md).
//
// A job's nodes are chosen once, on its first pass: spec.nodeNames, or the Nodes that
// spec.labelSelector matches then; each gets a status.nodeStatus[] entry in state Init. Then, on
// every pass:
//   - an Init node that already runs spec.version (its nodeInfo.kubeletVersion) is Completed
//     (Success) without an upgrade; one without a Node is a Failure;
//   - while fewer than spec.concurrency (default 1) nodes are InProgress, the next Init node
//     that is Ready and not InProgress in another job starts (InProgress, event Upgrade): the job
//     now goes to that node over the tunnel with its EdgecoreRelease, and the node downloads,
//     verifies and hands over to the new binary. When the release is missing or has no binary
//     for the node's architecture and the job names spec.image, the release is first made
//     from that image (ReleaseImports; the node waits in Init meanwhile); otherwise, or when
//     that fails, the node fails at once. Nodes that are not Ready wait (offline nodes upgrade
//     when they return);
//   - an InProgress node is Completed (Success) once it is Ready, reports spec.version and its
//     EdgecoreUpgrade condition says this job's binary took over (installed it); a
//     Failure (event Rollback, the node's reason) once its EdgecoreUpgrade condition says this
//     job rolled back; a Failure (event Check, the node's reason) once it says a
//     spec.checkItems pre-check failed there; a Failure (event TimeOut) once spec.timeoutSeconds
//     (default 300) passed since it started;
//   - once more nodes failed than spec.failureTolerate (a ratio, default 0.1) of the job's
//     nodes allows, no further node starts: the job ends in Failure when those InProgress are
//     done, the rest left Init;
//   - status.state: Init until a node starts, InProgress, then Completed when every node
//     succeeded, Failure when every node is done and one failed.
// Finished jobs are left alone. Status is written only when it changed.
//
// Threading: a ControllerLoop thread runs reconcileOnce() on NodeUpgradeJob and Node changes and
// every resync; reconcileOnce() is callable from tests (with the loop stopped). start()/stop()
// from one owner thread.
class NodeUpgradeController {
 public:
  NodeUpgradeController(registry::Registry& registry, Clock& clock,
                        NodeUpgradeControllerOptions options = {});
  ~NodeUpgradeController();
  NodeUpgradeController(const NodeUpgradeController&) = delete;
  NodeUpgradeController& operator=(const NodeUpgradeController&) = delete;

  Status start();
  void stop();

  // One pass over every job. Returns how many jobs' status it wrote.
  Result<int> reconcileOnce();

 private:
  registry::Registry& registry_;
  Clock& clock_;
  const NodeUpgradeControllerOptions options_;
  std::unique_ptr<ControllerLoop> loop_;
  // Whether the last pass saw an unfinished job: Node events wake the loop only then.
  std::atomic<bool> active_{true};
};

}  // namespace ep::controllers
