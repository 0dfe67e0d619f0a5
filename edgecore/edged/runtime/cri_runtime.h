#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "edgecore/edged/runtime/container_runtime.h"

// CriRuntime: ContainerRuntime over the Kubernetes CRI (runtime.v1, gRPC) to a local runtime
// such as containerd, through grpclite (common/grpclite). The generated messages stay out of
// this header (see cri_runtime.cc).
namespace ep::grpclite {
class Channel;
}

namespace ep::edged {

struct CriRuntimeOptions {
  // "unix:///path/to.sock" or an absolute socket path (unix:// is implied).
  std::string endpoint = "unix:///run/containerd/containerd.sock";
  // Deadline of every call except pullImage; stopContainer and execSync add their own
  // grace period / command timeout to it.
  std::chrono::milliseconds callTimeout = std::chrono::seconds(30);
  std::chrono::milliseconds pullTimeout = std::chrono::minutes(5);
};

// One gRPC channel to the runtime, created in the constructor (connection is lazy: a missing
// socket shows up as kUnavailable on the first call, and the next call dials again, so a
// restarted containerd is used as soon as its socket answers). Every method blocks until the
// runtime answers or the deadline passes and is safe to call from any number of threads at once.
//
// Besides forwarding, it owns two kubelet duties: it creates the sandbox's log directory and the
// parent directory of each container's log file (the runtime only opens the file), and it
// forces an empty hostname for host-network sandboxes.
class CriRuntime final : public ContainerRuntime {
 public:
  explicit CriRuntime(CriRuntimeOptions options = {});
  ~CriRuntime() override;
  CriRuntime(const CriRuntime&) = delete;
  CriRuntime& operator=(const CriRuntime&) = delete;

  const CriRuntimeOptions& options() const { return options_; }

  Result<std::string> version() override;

  Result<std::string> runPodSandbox(const PodSandboxConfig& config) override;
  Status stopPodSandbox(const std::string& sandboxId) override;
  Status removePodSandbox(const std::string& sandboxId) override;
  Result<SandboxStatus> podSandboxStatus(const std::string& sandboxId) override;
  Result<std::vector<SandboxInfo>> listPodSandboxes(
      const std::map<std::string, std::string>& labels = {}) override;

  Result<std::string> createContainer(const std::string& sandboxId, const ContainerConfig& config,
                                      const PodSandboxConfig& sandboxConfig) override;
  Status startContainer(const std::string& containerId) override;
  Status stopContainer(const std::string& containerId, std::chrono::seconds gracePeriod) override;
  Status removeContainer(const std::string& containerId) override;
  Result<std::vector<ContainerInfo>> listContainers(const ContainerFilter& filter = {}) override;
  Result<ContainerStatus> containerStatus(const std::string& containerId) override;
  Result<std::string> streamingUrl(const StreamingRequest& request) override;
  Result<std::string> portForwardUrl(const std::string& sandboxId, uint16_t port) override;
  Result<ExecResult> execSync(const std::string& containerId, const std::vector<std::string>& cmd,
                              std::chrono::seconds timeout) override;
  Status reopenContainerLog(const std::string& containerId) override;
  Result<std::vector<ContainerStats>> listContainerStats(
      const std::map<std::string, std::string>& labels) override;

  Result<std::optional<ImageInfo>> imageStatus(const std::string& image) override;
  Result<std::string> pullImage(const std::string& image, const AuthConfig* auth,
                                const PodSandboxConfig* sandboxConfig) override;
  Status removeImage(const std::string& image) override;
  // Every image the runtime holds (not part of ContainerRuntime; for image GC and tools).
  Result<std::vector<ImageInfo>> listImages();

 private:
  const CriRuntimeOptions options_;
  std::shared_ptr<grpclite::Channel> channel_;
};

}  // namespace ep::edged
