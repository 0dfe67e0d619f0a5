#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "edgecore/edged/runtime/container_runtime.h"

namespace ep::edged {

// An in-memory ContainerRuntime for unit tests only. Containers never run anything: tests
// drive state changes through the knobs below (exitContainer, failPull, ...). Thread-safe (one
// mutex). Log files are real files: createContainer creates the sandbox log directory and the
// container's (empty) log file so log readers have something to open; appendLog writes CRI
// log lines to it.
class FakeRuntime final : public ContainerRuntime {
 public:
  // Times it stamps (created, started, finished, log lines) come from `clock` when given (the
  // clock edged is tested with, so ages agree), else from the system clock.
  explicit FakeRuntime(const Clock* clock = nullptr) : clock_(clock) {}

  Result<std::string> version() override;
  Result<std::string> runPodSandbox(const PodSandboxConfig& config) override;
  Status stopPodSandbox(const std::string& sandboxId) override;
  Status removePodSandbox(const std::string& sandboxId) override;
  Result<SandboxStatus> podSandboxStatus(const std::string& sandboxId) override;
  Result<std::vector<SandboxInfo>> listPodSandboxes(
      const std::map<std::string, std::string>& labels) override;
  Result<std::string> createContainer(const std::string& sandboxId, const ContainerConfig& config,
                                      const PodSandboxConfig& sandboxConfig) override;
  Status startContainer(const std::string& containerId) override;
  Status stopContainer(const std::string& containerId, std::chrono::seconds gracePeriod) override;
  Status removeContainer(const std::string& containerId) override;
  Result<std::vector<ContainerInfo>> listContainers(const ContainerFilter& filter) override;
  Result<ContainerStatus> containerStatus(const std::string& containerId) override;
  Result<ExecResult> execSync(const std::string& containerId, const std::vector<std::string>& cmd,
                              std::chrono::seconds timeout) override;
  // Records the call; kUnavailable (the fake has no streaming server).
  Result<std::string> streamingUrl(const StreamingRequest& request) override;
  Result<std::string> portForwardUrl(const std::string& sandboxId, uint16_t port) override;
  Status reopenContainerLog(const std::string& containerId) override;
  // Every running container whose labels match, with the usage set by setUsage (none: no
  // figures), stamped with the clock's time.
  Result<std::vector<ContainerStats>> listContainerStats(
      const std::map<std::string, std::string>& labels) override;
  Result<std::optional<ImageInfo>> imageStatus(const std::string& image) override;
  Result<std::string> pullImage(const std::string& image, const AuthConfig* auth,
                                const PodSandboxConfig* sandboxConfig) override;
  Status removeImage(const std::string& image) override;

  // --- knobs for tests ---
  // Pulls of `image` fail with `message` until cleared (empty message clears).
  void failPull(const std::string& image, const std::string& message);
  // startContainer fails with `message` until cleared (empty message clears).
  void failStart(const std::string& message);
  // Marks a running container exited with `exitCode` (as if its process ended or was killed).
  void exitContainer(const std::string& containerId, int32_t exitCode,
                     const std::string& reason = "Error");
  // Marks every container exited and every sandbox not ready (a machine reboot).
  void reboot();
  // Next execSync on any container returns this (default: exit 0, empty output).
  void setExecResult(ExecResult result);
  // Appends one CRI-format log line ("TS stdout F line") to the container's log file.
  void appendLog(const std::string& containerId, const std::string& stream,
                 const std::string& line);
  void addImage(const std::string& image);
  // What listContainerStats reports for the container: cumulative CPU ns and working set.
  void setUsage(const std::string& containerId, uint64_t cpuCoreNanoSeconds,
                uint64_t workingSetBytes);
  // Every mutating call in order, e.g. "runPodSandbox default/web", "startContainer ID".
  std::vector<std::string> calls() const;
  // Last AuthConfig passed to pullImage (empty when none).
  AuthConfig lastPullAuth() const;
  std::vector<std::string> pulledImages() const;
  // Copies of the current objects.
  std::vector<ContainerStatus> containers() const;
  std::vector<SandboxStatus> sandboxes() const;
  ContainerConfig containerConfig(const std::string& containerId) const;
  PodSandboxConfig sandboxConfig(const std::string& sandboxId) const;

 private:
  struct Sandbox {
    SandboxStatus status;
    PodSandboxConfig config;
  };
  struct Container {
    ContainerStatus status;
    ContainerConfig config;
    std::optional<std::pair<uint64_t, uint64_t>> usage;  // cpu ns, working set bytes
  };

  const Clock* const clock_;
  int64_t nowNs() const;
  std::string nextId(const char* prefix) EP_REQUIRES(mu_);

  mutable Mutex mu_;
  std::map<std::string, Sandbox> sandboxes_ EP_GUARDED_BY(mu_);
  std::map<std::string, Container> containers_ EP_GUARDED_BY(mu_);
  std::set<std::string> images_ EP_GUARDED_BY(mu_);
  std::map<std::string, std::string> pullFailures_ EP_GUARDED_BY(mu_);
  std::vector<std::string> calls_ EP_GUARDED_BY(mu_);
  std::vector<std::string> pulled_ EP_GUARDED_BY(mu_);
  AuthConfig lastAuth_ EP_GUARDED_BY(mu_);
  ExecResult execResult_ EP_GUARDED_BY(mu_);
  std::string startFailure_ EP_GUARDED_BY(mu_);
  uint64_t counter_ EP_GUARDED_BY(mu_) = 0;
  int ipCounter_ EP_GUARDED_BY(mu_) = 2;
};

}  // namespace ep::edged
