#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

// The seam between edged and a container runtime. Plain structs only (no protobuf or gRPC in
// this header) so that edged and its tests compile without the CRI messages. The real
// implementation is CriRuntime (CRI v1 over gRPC, cri_runtime.h); unit tests use FakeRuntime
// (tests/edgecore/edged/fake_runtime.h).
namespace ep::edged {

// Labels and annotations edged puts on every sandbox and container it creates (kubelet's
// names, so `crictl pods --label io.kubernetes.pod.name=x` works as operators expect).
inline constexpr const char* kLabelPodName = "io.kubernetes.pod.name";
inline constexpr const char* kLabelPodNamespace = "io.kubernetes.pod.namespace";
inline constexpr const char* kLabelPodUid = "io.kubernetes.pod.uid";
inline constexpr const char* kLabelContainerName = "io.kubernetes.container.name";
// Present on everything edged created; edged never touches sandboxes without it.
inline constexpr const char* kLabelManagedBy = "edgeplane.io/managed-by";
inline constexpr const char* kManagedByValue = "edged";
// The node whose edged created it: several edgecores may share one runtime (tests, or nodes
// simulated on one host) and each touches only its own.
inline constexpr const char* kLabelNodeName = "edgeplane.io/node";
// Container annotations: the restart count and a hash of the container's spec (a changed hash
// means the container is replaced).
inline constexpr const char* kAnnotationRestartCount = "io.kubernetes.container.restartCount";
inline constexpr const char* kAnnotationSpecHash = "io.kubernetes.container.hash";

struct PortMapping {
  std::string protocol = "TCP";  // TCP | UDP | SCTP
  int32_t containerPort = 0;
  int32_t hostPort = 0;  // 0: not published on the host
  std::string hostIp;
};

struct PodSandboxConfig {
  std::string name;  // pod name
  std::string uid;
  std::string ns;
  uint32_t attempt = 0;
  std::string hostname;      // empty for host-network sandboxes (see DESIGN.md)
  std::string logDirectory;  // absolute; container logPaths are relative to it
  bool hostNetwork = false;
  std::vector<std::string> dnsServers;
  std::vector<std::string> dnsSearches;
  std::vector<PortMapping> portMappings;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string cgroupParent;  // empty: the runtime's default
};

enum class SandboxState { kReady, kNotReady };

struct SandboxInfo {
  std::string id;
  std::string name;
  std::string uid;
  std::string ns;
  uint32_t attempt = 0;
  SandboxState state = SandboxState::kNotReady;
  int64_t createdAtNs = 0;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

struct SandboxStatus {
  SandboxInfo info;
  std::string ip;  // empty for host network or before networking is set up
};

struct Mount {
  std::string containerPath;
  std::string hostPath;
  bool readonly = false;
};

// Linux resources as CRI takes them; 0 means unset.
struct LinuxResources {
  int64_t cpuPeriod = 0;
  int64_t cpuQuota = 0;
  int64_t cpuShares = 0;
  int64_t memoryLimitBytes = 0;
};

struct ContainerConfig {
  std::string name;
  uint32_t attempt = 0;
  std::string image;  // image reference as resolved by pullImage (or the spec's)
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string workingDir;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<Mount> mounts;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string logPath;  // relative to the sandbox's logDirectory
  LinuxResources resources;
  bool stdin = false;
  bool tty = false;
};

enum class ContainerState { kCreated, kRunning, kExited, kUnknown };

struct ContainerInfo {
  std::string id;
  std::string sandboxId;
  std::string name;
  uint32_t attempt = 0;
  std::string image;     // as requested
  std::string imageRef;  // resolved (digest or image id)
  ContainerState state = ContainerState::kUnknown;
  int64_t createdAtNs = 0;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

struct ContainerStatus {
  ContainerInfo info;
  int64_t startedAtNs = 0;
  int64_t finishedAtNs = 0;
  int32_t exitCode = 0;
  std::string reason;  // e.g. "Completed", "Error", "OOMKilled"
  std::string message;
  std::string logPath;  // absolute
};

struct ImageInfo {
  std::string id;
  std::vector<std::string> repoTags;
  std::vector<std::string> repoDigests;
  uint64_t size = 0;
};

// Registry credentials for one pull (from imagePullSecrets' docker config JSON). serverAddress,
// when set, must be a URL (containerd parses it and uses the credentials only for its host).
struct AuthConfig {
  std::string username;
  std::string password;
  std::string auth;  // base64 "user:password"
  std::string serverAddress;
  std::string identityToken;
  std::string registryToken;
};

struct ExecResult {
  std::string stdoutData;
  std::string stderrData;
  int32_t exitCode = 0;
};

// An interactive exec (non-empty `command`) or an attach to the container's main process
// (`attach`), for ContainerRuntime::streamingUrl. With `tty` the output is one terminal stream
// and `stderr` must be false.
struct StreamingRequest {
  std::string containerId;
  std::vector<std::string> command;
  bool attach = false;
  bool tty = false;
  bool stdin = false;
  bool stdout = true;
  bool stderr = true;
};

// One container's resource use as the runtime measured it (CRI ContainerStats). The CPU figure
// is cumulative: a rate needs two samples (edgecore/stats does that).
struct ContainerStats {
  std::string id;
  std::string name;  // the container's name in its pod
  uint32_t attempt = 0;
  std::map<std::string, std::string> labels;
  bool hasCpu = false;
  int64_t cpuTimestampNs = 0;
  uint64_t cpuUsageCoreNanoSeconds = 0;  // since the container started, summed over cores
  bool hasMemory = false;
  int64_t memoryTimestampNs = 0;
  uint64_t memoryWorkingSetBytes = 0;
};

// Filters for listContainers; empty fields match everything.
struct ContainerFilter {
  std::string sandboxId;
  std::optional<ContainerState> state;
  std::map<std::string, std::string> labels;
};

// A container runtime (CRI RuntimeService + ImageService). Every call blocks until the runtime
// answers or `timeout` (set per implementation) expires; callers run it off any event loop.
// Errors: kNotFound when the runtime reports the object does not exist, kUnavailable when the
// runtime cannot be reached, kTimeout on a deadline, kInternal/kInvalid otherwise, always with
// the runtime's message. Implementations are thread-safe.
class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  // "containerd 1.6.20 (CRI v1)": name, version and API of the runtime.
  virtual Result<std::string> version() = 0;

  virtual Result<std::string> runPodSandbox(const PodSandboxConfig& config) = 0;
  virtual Status stopPodSandbox(const std::string& sandboxId) = 0;
  virtual Status removePodSandbox(const std::string& sandboxId) = 0;
  virtual Result<SandboxStatus> podSandboxStatus(const std::string& sandboxId) = 0;
  // `labels` filters (all must match); empty lists every sandbox.
  virtual Result<std::vector<SandboxInfo>> listPodSandboxes(
      const std::map<std::string, std::string>& labels = {}) = 0;

  virtual Result<std::string> createContainer(const std::string& sandboxId,
                                              const ContainerConfig& config,
                                              const PodSandboxConfig& sandboxConfig) = 0;
  virtual Status startContainer(const std::string& containerId) = 0;
  // Sends SIGTERM, then SIGKILL after `gracePeriod`.
  virtual Status stopContainer(const std::string& containerId,
                               std::chrono::seconds gracePeriod) = 0;
  virtual Status removeContainer(const std::string& containerId) = 0;
  virtual Result<std::vector<ContainerInfo>> listContainers(const ContainerFilter& filter = {}) = 0;
  virtual Result<ContainerStatus> containerStatus(const std::string& containerId) = 0;
  // Runs `cmd` in the container and returns its output once it exits (or kTimeout).
  virtual Result<ExecResult> execSync(const std::string& containerId,
                                      const std::vector<std::string>& cmd,
                                      std::chrono::seconds timeout) = 0;
  // Where to connect for an interactive exec or attach (CRI Exec/Attach): a URL on the
  // runtime's streaming server that speaks the channel.k8s.io WebSocket protocols, valid for one
  // connection (containerd: http://127.0.0.1:PORT/exec/TOKEN).
  virtual Result<std::string> streamingUrl(const StreamingRequest& request) = 0;
  // Where to connect to forward `port` of a pod (CRI PortForward): a URL on the streaming server
  // whose WebSocket (v4.channel.k8s.io) carries channel 0, the connection to the port on the
  // pod's loopback, and channel 1, errors; each channel's first two bytes name the port.
  virtual Result<std::string> portForwardUrl(const std::string& sandboxId, uint16_t port) = 0;
  // Asks the runtime to reopen the container's log file (after rotation).
  virtual Status reopenContainerLog(const std::string& containerId) = 0;
  // Stats of the running containers whose labels include all of `labels`.
  virtual Result<std::vector<ContainerStats>> listContainerStats(
      const std::map<std::string, std::string>& labels) = 0;

  // nullopt when the image is not present.
  virtual Result<std::optional<ImageInfo>> imageStatus(const std::string& image) = 0;
  // Pulls and returns the image reference the runtime resolved (its id or digest).
  virtual Result<std::string> pullImage(const std::string& image, const AuthConfig* auth,
                                        const PodSandboxConfig* sandboxConfig) = 0;
  virtual Status removeImage(const std::string& image) = 0;
};

}  // namespace ep::edged
