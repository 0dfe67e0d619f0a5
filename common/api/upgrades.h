#pragma once

// Edgecore upgrades from the cloud (docs/upgrades.md), shared by cloudcore (the NodeUpgradeJob
// controller, node authorization of binary downloads, dispatch), edgectl (`upgrade push`) and
// edgecore (download, handover, rollback). Pure; thread-compatible.
//
// Two cluster-scoped kinds:
//   operations.kubeedge.io/v1alpha1 NodeUpgradeJob, KubeEdge's shape: spec.version, nodeNames or
//     labelSelector, concurrency (default 1), timeoutSeconds (default 300), image (the release
//     made from that image), failureTolerate (default 0.1); status.state and
//     status.nodeStatus[] {nodeName, state, event, action, reason, time}.
//   upgrade.edgeplane.io/v1alpha1 EdgecoreRelease, named by its version: spec.version and
//     spec.binaries[] {architecture, digest, size, pushedAt}, one per architecture, each a blob
//     in cloudcore's blob store (`edgectl upgrade push FILE --version V`).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ep::api {

inline constexpr const char* kNodeUpgradeJobResource = "nodeupgradejobs.operations.kubeedge.io";
inline constexpr const char* kEdgecoreReleaseResource = "edgecorereleases.upgrade.edgeplane.io";

// status.state and status.nodeStatus[].state.
inline constexpr const char* kUpgradeInit = "Init";              // waiting for its turn
inline constexpr const char* kUpgradeInProgress = "InProgress";  // the node is upgrading
inline constexpr const char* kUpgradeCompleted = "Completed";
inline constexpr const char* kUpgradeFailure = "Failure";
// status.nodeStatus[].action once a node is done.
inline constexpr const char* kUpgradeActionSuccess = "Success";
inline constexpr const char* kUpgradeActionFailure = "Failure";

// The Node condition through which an edgecore reports its last upgrade attempt: status "True"
// and reason "Upgraded" after the new version took over, "False" and reason "RolledBack" when it
// had to go back to the previous binary. Its message begins with
// upgradeConditionPrefix(job's name, uid, version) ("NodeUpgradeJob NAME (UID) to VERSION: "),
// so a job recreated under the same name never takes an older job's outcome.
inline constexpr const char* kEdgecoreUpgradeCondition = "EdgecoreUpgrade";
inline constexpr const char* kUpgradeReasonUpgraded = "Upgraded";
inline constexpr const char* kUpgradeReasonRolledBack = "RolledBack";
// "False" and reason "CheckFailed": a spec.checkItems pre-check failed on the node, which did not
// download or hand over.
inline constexpr const char* kUpgradeReasonCheckFailed = "CheckFailed";

// spec.checkItems a node checks before it upgrades (KubeEdge's): "cpu" (CPU busy over a
// second), "mem" (memory in use, from MemAvailable), "disk" (space in use on edgecore's data
// directory's file system). Each fails above kUpgradeCheckMaxUsage.
inline const std::vector<std::string> kUpgradeCheckItems = {"cpu", "mem", "disk"};
inline constexpr double kUpgradeCheckMaxUsage = 0.8;
std::string upgradeConditionPrefix(std::string_view jobName, std::string_view jobUid,
                                   std::string_view version);

// The annotation on a NodeUpgradeJob naming the Secret ("NAMESPACE/NAME", or NAME in
// kube-system) whose registry credentials cloudcore uses to pull spec.image.
inline constexpr const char* kImagePullSecretAnnotation = "upgrade.edgeplane.io/image-pull-secret";

// The annotation's value as (namespace, name): "NAMESPACE/NAME", or "NAME" in kube-system.
std::pair<std::string, std::string> imagePullSecretRef(std::string_view value);

// spec.failureTolerate: a decimal ratio from 0 to 1 ("0.1"); nullopt when it is not one.
inline constexpr double kDefaultFailureTolerate = 0.1;
std::optional<double> parseFailureTolerate(const std::string& text);

inline constexpr int64_t kDefaultUpgradeTimeoutSeconds = 300;
// spec.timeoutSeconds above this (a week) is refused.
inline constexpr int64_t kMaxUpgradeTimeoutSeconds = 7 * 24 * 3600;

// The edgecore version a Node runs, from status.nodeInfo.kubeletVersion
// ("v1.32.0-edgeplane-VERSION"); "" when it is not an edgecore's.
std::string edgecoreVersionOf(const nlohmann::json& node);
std::string kubeletVersionFor(std::string_view edgecoreVersion);

// GOARCH-style name (amd64, arm64, arm, 386, riscv64) of an ELF file's e_machine, from its first
// bytes; "" when it is not a Linux executable of one of those. Nodes report the architecture of
// their own edgecore binary this way (as kubelet reports GOARCH), and that is the binary an
// upgrade gives them.
std::string elfArchitecture(std::string_view header);
// Whether `name` is one of the names elfArchitecture() gives.
bool isKnownArchitecture(std::string_view name);

struct ReleaseBinary {
  std::string architecture;
  std::string digest;  // "sha256:HEX"
  uint64_t size = 0;
  std::string pushedAt;
};
// The spec.binaries[] entries of a release that are well-formed.
std::vector<ReleaseBinary> releaseBinaries(const nlohmann::json& release);
std::optional<ReleaseBinary> releaseBinaryFor(const nlohmann::json& release,
                                              std::string_view architecture);

// One status.nodeStatus[] entry.
struct NodeUpgradeStatus {
  std::string nodeName;
  std::string state;  // kUpgradeInit ... kUpgradeFailure
  std::string event;
  std::string action;
  std::string reason;
  std::string time;  // RFC 3339: when the state last changed
};
std::vector<NodeUpgradeStatus> nodeUpgradeStatuses(const nlohmann::json& job);
nlohmann::json toJson(const NodeUpgradeStatus& s);

// Nodes whose entry is InProgress: the nodes the job (and its release) is sent to.
std::vector<std::string> upgradingNodesOf(const nlohmann::json& job);

}  // namespace ep::api
