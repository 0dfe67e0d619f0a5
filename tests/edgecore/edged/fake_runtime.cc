#include "tests/edgecore/edged/fake_runtime.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/clock.h"
#include "common/thread_annotations.h"

namespace ep::edged {
namespace {

bool labelsMatch(const std::map<std::string, std::string>& have,
                 const std::map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

Status notFound(const std::string& what, const std::string& id) {
  return notFoundError(what + " \"" + id + "\" not found");
}

}  // namespace

int64_t FakeRuntime::nowNs() const {
  if (clock_ != nullptr) return clock_->nowMillis() * 1'000'000;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FakeRuntime::nextId(const char* prefix) {
  return std::string(prefix) + std::to_string(++counter_);
}

Result<std::string> FakeRuntime::version() {
  return std::string("fake 0.0.1 (CRI v1)");
}

Result<std::string> FakeRuntime::runPodSandbox(const PodSandboxConfig& config) {
  MutexLock lock(mu_);
  std::string id = nextId("sb");
  calls_.push_back("runPodSandbox " + config.ns + "/" + config.name);
  Sandbox s;
  s.config = config;
  s.status.info.id = id;
  s.status.info.name = config.name;
  s.status.info.uid = config.uid;
  s.status.info.ns = config.ns;
  s.status.info.attempt = config.attempt;
  s.status.info.state = SandboxState::kReady;
  s.status.info.createdAtNs = nowNs();
  s.status.info.labels = config.labels;
  s.status.info.annotations = config.annotations;
  s.status.ip = config.hostNetwork ? "" : "10.88.0." + std::to_string(ipCounter_++);
  sandboxes_[id] = std::move(s);
  return id;
}

Status FakeRuntime::stopPodSandbox(const std::string& sandboxId) {
  MutexLock lock(mu_);
  calls_.push_back("stopPodSandbox " + sandboxId);
  auto it = sandboxes_.find(sandboxId);
  if (it == sandboxes_.end()) return {};  // CRI: stopping a missing sandbox is not an error
  it->second.status.info.state = SandboxState::kNotReady;
  for (auto& [id, c] : containers_) {
    if (c.status.info.sandboxId == sandboxId && c.status.info.state == ContainerState::kRunning) {
      c.status.info.state = ContainerState::kExited;
      c.status.exitCode = 137;
      c.status.reason = "Error";
      c.status.finishedAtNs = nowNs();
    }
  }
  return {};
}

Status FakeRuntime::removePodSandbox(const std::string& sandboxId) {
  MutexLock lock(mu_);
  calls_.push_back("removePodSandbox " + sandboxId);
  sandboxes_.erase(sandboxId);
  for (auto it = containers_.begin(); it != containers_.end();) {
    if (it->second.status.info.sandboxId == sandboxId) {
      it = containers_.erase(it);
    } else {
      ++it;
    }
  }
  return {};
}

Result<SandboxStatus> FakeRuntime::podSandboxStatus(const std::string& sandboxId) {
  MutexLock lock(mu_);
  auto it = sandboxes_.find(sandboxId);
  if (it == sandboxes_.end()) return notFound("sandbox", sandboxId);
  return it->second.status;
}

Result<std::vector<SandboxInfo>> FakeRuntime::listPodSandboxes(
    const std::map<std::string, std::string>& labels) {
  MutexLock lock(mu_);
  std::vector<SandboxInfo> out;
  for (const auto& [id, s] : sandboxes_) {
    if (labelsMatch(s.status.info.labels, labels)) out.push_back(s.status.info);
  }
  return out;
}

Result<std::string> FakeRuntime::createContainer(const std::string& sandboxId,
                                                 const ContainerConfig& config,
                                                 const PodSandboxConfig& sandboxConfig) {
  MutexLock lock(mu_);
  auto sb = sandboxes_.find(sandboxId);
  if (sb == sandboxes_.end()) return notFound("sandbox", sandboxId);
  if (!images_.count(config.image)) {
    return Status(Code::kNotFound, "image \"" + config.image + "\" not present");
  }
  std::string id = nextId("ctr");
  calls_.push_back("createContainer " + sandboxConfig.ns + "/" + sandboxConfig.name + "/" +
                   config.name);
  Container c;
  c.config = config;
  c.status.info.id = id;
  c.status.info.sandboxId = sandboxId;
  c.status.info.name = config.name;
  c.status.info.attempt = config.attempt;
  c.status.info.image = config.image;
  c.status.info.imageRef = "sha256:fake-" + config.image;
  c.status.info.state = ContainerState::kCreated;
  c.status.info.createdAtNs = nowNs();
  c.status.info.labels = config.labels;
  c.status.info.annotations = config.annotations;
  if (!sandboxConfig.logDirectory.empty() && !config.logPath.empty()) {
    std::filesystem::path p = std::filesystem::path(sandboxConfig.logDirectory) / config.logPath;
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    std::ofstream(p, std::ios::app).flush();
    c.status.logPath = p.string();
  }
  containers_[id] = std::move(c);
  return id;
}

Status FakeRuntime::startContainer(const std::string& containerId) {
  MutexLock lock(mu_);
  calls_.push_back("startContainer " + containerId);
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return notFound("container", containerId);
  if (it->second.status.info.state != ContainerState::kCreated) {
    return Status(Code::kInvalid, "container " + containerId + " is not in created state");
  }
  if (!startFailure_.empty()) return internalError(startFailure_);
  it->second.status.info.state = ContainerState::kRunning;
  it->second.status.startedAtNs = nowNs();
  return {};
}

Status FakeRuntime::stopContainer(const std::string& containerId, std::chrono::seconds) {
  MutexLock lock(mu_);
  calls_.push_back("stopContainer " + containerId);
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return notFound("container", containerId);
  auto& s = it->second.status;
  if (s.info.state == ContainerState::kRunning) {
    s.info.state = ContainerState::kExited;
    s.exitCode = 137;
    s.reason = "Error";
    s.finishedAtNs = nowNs();
  }
  return {};
}

Status FakeRuntime::removeContainer(const std::string& containerId) {
  MutexLock lock(mu_);
  calls_.push_back("removeContainer " + containerId);
  containers_.erase(containerId);
  return {};
}

Result<std::vector<ContainerInfo>> FakeRuntime::listContainers(const ContainerFilter& filter) {
  MutexLock lock(mu_);
  std::vector<ContainerInfo> out;
  for (const auto& [id, c] : containers_) {
    if (!filter.sandboxId.empty() && c.status.info.sandboxId != filter.sandboxId) continue;
    if (filter.state && c.status.info.state != *filter.state) continue;
    if (!labelsMatch(c.status.info.labels, filter.labels)) continue;
    out.push_back(c.status.info);
  }
  return out;
}

Result<ContainerStatus> FakeRuntime::containerStatus(const std::string& containerId) {
  MutexLock lock(mu_);
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return notFound("container", containerId);
  return it->second.status;
}

Result<std::string> FakeRuntime::portForwardUrl(const std::string& sandboxId, uint16_t port) {
  MutexLock lock(mu_);
  calls_.push_back("portforward " + sandboxId + " " + std::to_string(port));
  return unavailableError("the fake runtime has no streaming server");
}

Result<std::string> FakeRuntime::streamingUrl(const StreamingRequest& request) {
  MutexLock lock(mu_);
  calls_.push_back((request.attach ? "attach " : "exec ") + request.containerId);
  return unavailableError("the fake runtime has no streaming server");
}

Result<ExecResult> FakeRuntime::execSync(const std::string& containerId,
                                         const std::vector<std::string>& cmd,
                                         std::chrono::seconds) {
  MutexLock lock(mu_);
  std::string joined;
  for (const auto& a : cmd) joined += (joined.empty() ? "" : " ") + a;
  calls_.push_back("execSync " + containerId + " " + joined);
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return notFound("container", containerId);
  if (it->second.status.info.state != ContainerState::kRunning) {
    return Status(Code::kInvalid, "container " + containerId + " is not running");
  }
  return execResult_;
}

Status FakeRuntime::reopenContainerLog(const std::string& containerId) {
  MutexLock lock(mu_);
  calls_.push_back("reopenContainerLog " + containerId);
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return notFound("container", containerId);
  // As containerd does: a new file at the log path (the old one was renamed away).
  if (!it->second.status.logPath.empty()) {
    std::ofstream(it->second.status.logPath, std::ios::app).flush();
  }
  return {};
}

Result<std::vector<ContainerStats>> FakeRuntime::listContainerStats(
    const std::map<std::string, std::string>& labels) {
  MutexLock lock(mu_);
  std::vector<ContainerStats> out;
  for (const auto& [id, c] : containers_) {
    if (c.status.info.state != ContainerState::kRunning) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = c.status.info.labels.find(k);
      match = match && it != c.status.info.labels.end() && it->second == v;
    }
    if (!match) continue;
    ContainerStats st;
    st.id = id;
    st.name = c.status.info.name;
    st.attempt = c.status.info.attempt;
    st.labels = c.status.info.labels;
    if (c.usage) {
      st.hasCpu = st.hasMemory = true;
      st.cpuTimestampNs = st.memoryTimestampNs = nowNs();
      st.cpuUsageCoreNanoSeconds = c.usage->first;
      st.memoryWorkingSetBytes = c.usage->second;
    }
    out.push_back(std::move(st));
  }
  return out;
}

void FakeRuntime::setUsage(const std::string& containerId, uint64_t cpuCoreNanoSeconds,
                           uint64_t workingSetBytes) {
  MutexLock lock(mu_);
  if (auto it = containers_.find(containerId); it != containers_.end()) {
    it->second.usage = std::make_pair(cpuCoreNanoSeconds, workingSetBytes);
  }
}

Result<std::optional<ImageInfo>> FakeRuntime::imageStatus(const std::string& image) {
  MutexLock lock(mu_);
  if (!images_.count(image)) return std::optional<ImageInfo>();
  ImageInfo info;
  info.id = "sha256:fake-" + image;
  info.repoTags = {image};
  return std::optional<ImageInfo>(info);
}

Result<std::string> FakeRuntime::pullImage(const std::string& image, const AuthConfig* auth,
                                           const PodSandboxConfig*) {
  MutexLock lock(mu_);
  calls_.push_back("pullImage " + image);
  lastAuth_ = auth ? *auth : AuthConfig{};
  auto f = pullFailures_.find(image);
  if (f != pullFailures_.end()) return Status(Code::kNotFound, f->second);
  images_.insert(image);
  pulled_.push_back(image);
  return "sha256:fake-" + image;
}

Status FakeRuntime::removeImage(const std::string& image) {
  MutexLock lock(mu_);
  images_.erase(image);
  return {};
}

void FakeRuntime::failPull(const std::string& image, const std::string& message) {
  MutexLock lock(mu_);
  if (message.empty()) {
    pullFailures_.erase(image);
  } else {
    pullFailures_[image] = message;
  }
}

void FakeRuntime::failStart(const std::string& message) {
  MutexLock lock(mu_);
  startFailure_ = message;
}

void FakeRuntime::exitContainer(const std::string& containerId, int32_t exitCode,
                                const std::string& reason) {
  MutexLock lock(mu_);
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return;
  auto& s = it->second.status;
  s.info.state = ContainerState::kExited;
  s.exitCode = exitCode;
  s.reason = reason;
  s.finishedAtNs = nowNs();
}

void FakeRuntime::reboot() {
  MutexLock lock(mu_);
  for (auto& [id, s] : sandboxes_) s.status.info.state = SandboxState::kNotReady;
  for (auto& [id, c] : containers_) {
    if (c.status.info.state == ContainerState::kRunning) {
      c.status.info.state = ContainerState::kExited;
      c.status.exitCode = 255;
      c.status.reason = "Unknown";
      c.status.finishedAtNs = nowNs();
    }
  }
}

void FakeRuntime::setExecResult(ExecResult result) {
  MutexLock lock(mu_);
  execResult_ = std::move(result);
}

void FakeRuntime::appendLog(const std::string& containerId, const std::string& stream,
                            const std::string& line) {
  std::string path;
  {
    MutexLock lock(mu_);
    auto it = containers_.find(containerId);
    if (it == containers_.end()) return;
    path = it->second.status.logPath;
  }
  if (path.empty()) return;
  std::ofstream out(path, std::ios::app);
  out << formatRfc3339Nano(nowNs()) << " " << stream << " F " << line << "\n";
}

void FakeRuntime::addImage(const std::string& image) {
  MutexLock lock(mu_);
  images_.insert(image);
}

std::vector<std::string> FakeRuntime::calls() const {
  MutexLock lock(mu_);
  return calls_;
}

AuthConfig FakeRuntime::lastPullAuth() const {
  MutexLock lock(mu_);
  return lastAuth_;
}

std::vector<std::string> FakeRuntime::pulledImages() const {
  MutexLock lock(mu_);
  return pulled_;
}

std::vector<ContainerStatus> FakeRuntime::containers() const {
  MutexLock lock(mu_);
  std::vector<ContainerStatus> out;
  for (const auto& [id, c] : containers_) out.push_back(c.status);
  return out;
}

std::vector<SandboxStatus> FakeRuntime::sandboxes() const {
  MutexLock lock(mu_);
  std::vector<SandboxStatus> out;
  for (const auto& [id, s] : sandboxes_) out.push_back(s.status);
  return out;
}

ContainerConfig FakeRuntime::containerConfig(const std::string& containerId) const {
  MutexLock lock(mu_);
  auto it = containers_.find(containerId);
  return it == containers_.end() ? ContainerConfig{} : it->second.config;
}

PodSandboxConfig FakeRuntime::sandboxConfig(const std::string& sandboxId) const {
  MutexLock lock(mu_);
  auto it = sandboxes_.find(sandboxId);
  return it == sandboxes_.end() ? PodSandboxConfig{} : it->second.config;
}

}  // namespace ep::edged
