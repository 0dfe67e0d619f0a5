#include "edgecore/edged/runtime/cri_runtime.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "common/grpclite/channel.h"
#include "proto/cri/api.pb.h"

namespace ep::edged {

namespace cri = ::runtime::v1;

namespace {

// Runtime messages (exec output) are capped at 16 MiB each by the CRI contract; leave room
// for both streams.
constexpr int kMaxMessageBytes = 40 * 1024 * 1024;

Code codeFromRpc(grpclite::RpcCode code) {
  switch (code) {
    case grpclite::RpcCode::kOk:
      return Code::kOk;
    case grpclite::RpcCode::kNotFound:
      return Code::kNotFound;
    case grpclite::RpcCode::kUnavailable:
    case grpclite::RpcCode::kCancelled:
      return Code::kUnavailable;
    case grpclite::RpcCode::kDeadlineExceeded:
      return Code::kTimeout;
    case grpclite::RpcCode::kInvalidArgument:
    case grpclite::RpcCode::kOutOfRange:
      return Code::kInvalid;
    case grpclite::RpcCode::kAlreadyExists:
      return Code::kAlreadyExists;
    // The object is in a state that forbids the call (e.g. removing a running container).
    case grpclite::RpcCode::kFailedPrecondition:
    case grpclite::RpcCode::kAborted:
      return Code::kConflict;
    case grpclite::RpcCode::kPermissionDenied:
    case grpclite::RpcCode::kUnauthenticated:
      return Code::kForbidden;
    case grpclite::RpcCode::kResourceExhausted:
      return Code::kTooLarge;
    default:  // UNKNOWN, INTERNAL, UNIMPLEMENTED, DATA_LOSS
      return Code::kInternal;
  }
}

cri::Protocol protocolToCri(const std::string& protocol) {
  if (protocol == "UDP") return cri::UDP;
  if (protocol == "SCTP") return cri::SCTP;
  return cri::TCP;
}

cri::NamespaceMode networkMode(const PodSandboxConfig& config) {
  return config.hostNetwork ? cri::NODE : cri::POD;
}

void toCri(const PodSandboxConfig& in, cri::PodSandboxConfig* out) {
  auto* meta = out->mutable_metadata();
  meta->set_name(in.name);
  meta->set_uid(in.uid);
  meta->set_namespace_(in.ns);
  meta->set_attempt(in.attempt);
  // A host-network sandbox must not set a hostname: runc would change the host's.
  out->set_hostname(in.hostNetwork ? std::string() : in.hostname);
  out->set_log_directory(in.logDirectory);
  auto* dns = out->mutable_dns_config();
  for (const auto& s : in.dnsServers) dns->add_servers(s);
  for (const auto& s : in.dnsSearches) dns->add_searches(s);
  for (const auto& p : in.portMappings) {
    auto* pm = out->add_port_mappings();
    pm->set_protocol(protocolToCri(p.protocol));
    pm->set_container_port(p.containerPort);
    pm->set_host_port(p.hostPort);
    pm->set_host_ip(p.hostIp);
  }
  out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
  out->mutable_annotations()->insert(in.annotations.begin(), in.annotations.end());
  auto* linuxConfig = out->mutable_linux();
  linuxConfig->set_cgroup_parent(in.cgroupParent);
  auto* ns = linuxConfig->mutable_security_context()->mutable_namespace_options();
  ns->set_network(networkMode(in));
  // As kubelet does for v1 pods without shareProcessNamespace.
  ns->set_pid(cri::CONTAINER);
  ns->set_ipc(cri::POD);
}

SandboxState sandboxStateFromCri(cri::PodSandboxState state) {
  return state == cri::SANDBOX_READY ? SandboxState::kReady : SandboxState::kNotReady;
}

ContainerState containerStateFromCri(cri::ContainerState state) {
  switch (state) {
    case cri::CONTAINER_CREATED:
      return ContainerState::kCreated;
    case cri::CONTAINER_RUNNING:
      return ContainerState::kRunning;
    case cri::CONTAINER_EXITED:
      return ContainerState::kExited;
    default:
      return ContainerState::kUnknown;
  }
}

cri::ContainerState containerStateToCri(ContainerState state) {
  switch (state) {
    case ContainerState::kCreated:
      return cri::CONTAINER_CREATED;
    case ContainerState::kRunning:
      return cri::CONTAINER_RUNNING;
    case ContainerState::kExited:
      return cri::CONTAINER_EXITED;
    case ContainerState::kUnknown:
      break;
  }
  return cri::CONTAINER_UNKNOWN;
}

template <typename Map>
std::map<std::string, std::string> toStdMap(const Map& m) {
  return {m.begin(), m.end()};
}

ImageInfo imageFromCri(const cri::Image& in) {
  ImageInfo out;
  out.id = in.id();
  out.repoTags.assign(in.repo_tags().begin(), in.repo_tags().end());
  out.repoDigests.assign(in.repo_digests().begin(), in.repo_digests().end());
  out.size = in.size();
  return out;
}

// Creates `dir` (and parents) for a log file the runtime will open.
Status ensureDirectory(const std::filesystem::path& dir) {
  if (dir.empty()) return Status::ok();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return internalError("cannot create log directory " + dir.string() + ": " + ec.message());
  return Status::ok();
}

}  // namespace

namespace {

constexpr const char* kRuntime = "/runtime.v1.RuntimeService/";
constexpr const char* kImage = "/runtime.v1.ImageService/";

// One unary call with a deadline of `timeout`.
Status call(grpclite::Channel& channel, const char* service, const char* method,
            const google::protobuf::MessageLite& req, google::protobuf::MessageLite* resp,
            std::chrono::milliseconds timeout) {
  grpclite::RpcStatus s = channel.unary(std::string(service) + method, req, resp, timeout);
  if (s.ok()) return Status::ok();
  std::string message = std::string("CRI ") + method + ": " + s.message;
  if (s.code == grpclite::RpcCode::kDeadlineExceeded) {
    message += " (no answer within " + std::to_string(timeout.count()) + " ms)";
  }
  return {codeFromRpc(s.code), std::move(message)};
}

}  // namespace

CriRuntime::CriRuntime(CriRuntimeOptions options) : options_(std::move(options)) {
  grpclite::ChannelOptions o;
  o.maxReceiveMessageBytes = kMaxMessageBytes;
  o.connectTimeout = std::chrono::seconds(5);
  channel_ = grpclite::Channel::create(options_.endpoint, o);
}

CriRuntime::~CriRuntime() = default;

Result<std::string> CriRuntime::version() {
  cri::VersionRequest req;
  req.set_version("v1");
  cri::VersionResponse resp;
  Status s = call(*channel_, kRuntime, "Version", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  return resp.runtime_name() + " " + resp.runtime_version() + " (CRI " +
         resp.runtime_api_version() + ")";
}

Result<std::string> CriRuntime::runPodSandbox(const PodSandboxConfig& config) {
  if (Status s = ensureDirectory(config.logDirectory); !s.isOk()) return s;
  cri::RunPodSandboxRequest req;
  toCri(config, req.mutable_config());
  cri::RunPodSandboxResponse resp;
  Status s = call(*channel_, kRuntime, "RunPodSandbox", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  return resp.pod_sandbox_id();
}

Status CriRuntime::stopPodSandbox(const std::string& sandboxId) {
  cri::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(sandboxId);
  cri::StopPodSandboxResponse resp;
  return call(*channel_, kRuntime, "StopPodSandbox", req, &resp, options_.callTimeout);
}

Status CriRuntime::removePodSandbox(const std::string& sandboxId) {
  cri::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(sandboxId);
  cri::RemovePodSandboxResponse resp;
  return call(*channel_, kRuntime, "RemovePodSandbox", req, &resp, options_.callTimeout);
}

Result<SandboxStatus> CriRuntime::podSandboxStatus(const std::string& sandboxId) {
  cri::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(sandboxId);
  cri::PodSandboxStatusResponse resp;
  Status s = call(*channel_, kRuntime, "PodSandboxStatus", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  const auto& st = resp.status();
  SandboxStatus out;
  out.info.id = st.id();
  out.info.name = st.metadata().name();
  out.info.uid = st.metadata().uid();
  out.info.ns = st.metadata().namespace_();
  out.info.attempt = st.metadata().attempt();
  out.info.state = sandboxStateFromCri(st.state());
  out.info.createdAtNs = st.created_at();
  out.info.labels = toStdMap(st.labels());
  out.info.annotations = toStdMap(st.annotations());
  out.ip = st.network().ip();
  return out;
}

Result<std::vector<SandboxInfo>> CriRuntime::listPodSandboxes(
    const std::map<std::string, std::string>& labels) {
  cri::ListPodSandboxRequest req;
  req.mutable_filter()->mutable_label_selector()->insert(labels.begin(), labels.end());
  cri::ListPodSandboxResponse resp;
  Status s = call(*channel_, kRuntime, "ListPodSandbox", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  std::vector<SandboxInfo> out;
  out.reserve(resp.items_size());
  for (const auto& item : resp.items()) {
    SandboxInfo info;
    info.id = item.id();
    info.name = item.metadata().name();
    info.uid = item.metadata().uid();
    info.ns = item.metadata().namespace_();
    info.attempt = item.metadata().attempt();
    info.state = sandboxStateFromCri(item.state());
    info.createdAtNs = item.created_at();
    info.labels = toStdMap(item.labels());
    info.annotations = toStdMap(item.annotations());
    out.push_back(std::move(info));
  }
  return out;
}

Result<std::string> CriRuntime::createContainer(const std::string& sandboxId,
                                                const ContainerConfig& config,
                                                const PodSandboxConfig& sandboxConfig) {
  if (!sandboxConfig.logDirectory.empty() && !config.logPath.empty()) {
    auto file = std::filesystem::path(sandboxConfig.logDirectory) / config.logPath;
    if (Status s = ensureDirectory(file.parent_path()); !s.isOk()) return s;
  }
  cri::CreateContainerRequest req;
  req.set_pod_sandbox_id(sandboxId);
  toCri(sandboxConfig, req.mutable_sandbox_config());
  auto* c = req.mutable_config();
  c->mutable_metadata()->set_name(config.name);
  c->mutable_metadata()->set_attempt(config.attempt);
  c->mutable_image()->set_image(config.image);
  for (const auto& s : config.command) c->add_command(s);
  for (const auto& s : config.args) c->add_args(s);
  c->set_working_dir(config.workingDir);
  for (const auto& [k, v] : config.env) {
    auto* kv = c->add_envs();
    kv->set_key(k);
    kv->set_value(v);
  }
  for (const auto& m : config.mounts) {
    auto* mount = c->add_mounts();
    mount->set_container_path(m.containerPath);
    mount->set_host_path(m.hostPath);
    mount->set_readonly(m.readonly);
  }
  c->mutable_labels()->insert(config.labels.begin(), config.labels.end());
  c->mutable_annotations()->insert(config.annotations.begin(), config.annotations.end());
  c->set_log_path(config.logPath);
  c->set_stdin(config.stdin);
  c->set_tty(config.tty);
  auto* linuxConfig = c->mutable_linux();
  auto* res = linuxConfig->mutable_resources();
  res->set_cpu_period(config.resources.cpuPeriod);
  res->set_cpu_quota(config.resources.cpuQuota);
  res->set_cpu_shares(config.resources.cpuShares);
  res->set_memory_limit_in_bytes(config.resources.memoryLimitBytes);
  auto* ns = linuxConfig->mutable_security_context()->mutable_namespace_options();
  ns->set_network(networkMode(sandboxConfig));
  ns->set_pid(cri::CONTAINER);
  ns->set_ipc(cri::POD);

  cri::CreateContainerResponse resp;
  Status s = call(*channel_, kRuntime, "CreateContainer", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  return resp.container_id();
}

Status CriRuntime::startContainer(const std::string& containerId) {
  cri::StartContainerRequest req;
  req.set_container_id(containerId);
  cri::StartContainerResponse resp;
  return call(*channel_, kRuntime, "StartContainer", req, &resp, options_.callTimeout);
}

Status CriRuntime::stopContainer(const std::string& containerId, std::chrono::seconds gracePeriod) {
  cri::StopContainerRequest req;
  req.set_container_id(containerId);
  req.set_timeout(gracePeriod.count());
  cri::StopContainerResponse resp;
  return call(*channel_, kRuntime, "StopContainer", req, &resp, options_.callTimeout + gracePeriod);
}

Status CriRuntime::removeContainer(const std::string& containerId) {
  cri::RemoveContainerRequest req;
  req.set_container_id(containerId);
  cri::RemoveContainerResponse resp;
  return call(*channel_, kRuntime, "RemoveContainer", req, &resp, options_.callTimeout);
}

Result<std::vector<ContainerInfo>> CriRuntime::listContainers(const ContainerFilter& filter) {
  cri::ListContainersRequest req;
  auto* f = req.mutable_filter();
  f->set_pod_sandbox_id(filter.sandboxId);
  if (filter.state) f->mutable_state()->set_state(containerStateToCri(*filter.state));
  f->mutable_label_selector()->insert(filter.labels.begin(), filter.labels.end());
  cri::ListContainersResponse resp;
  Status s = call(*channel_, kRuntime, "ListContainers", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  std::vector<ContainerInfo> out;
  out.reserve(resp.containers_size());
  for (const auto& c : resp.containers()) {
    ContainerInfo info;
    info.id = c.id();
    info.sandboxId = c.pod_sandbox_id();
    info.name = c.metadata().name();
    info.attempt = c.metadata().attempt();
    info.image = c.image().image();
    info.imageRef = c.image_ref();
    info.state = containerStateFromCri(c.state());
    info.createdAtNs = c.created_at();
    info.labels = toStdMap(c.labels());
    info.annotations = toStdMap(c.annotations());
    out.push_back(std::move(info));
  }
  return out;
}

Result<ContainerStatus> CriRuntime::containerStatus(const std::string& containerId) {
  cri::ContainerStatusRequest req;
  req.set_container_id(containerId);
  cri::ContainerStatusResponse resp;
  Status s = call(*channel_, kRuntime, "ContainerStatus", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  const auto& st = resp.status();
  ContainerStatus out;
  out.info.id = st.id();
  out.info.name = st.metadata().name();
  out.info.attempt = st.metadata().attempt();
  out.info.image = st.image().image();
  out.info.imageRef = st.image_ref();
  out.info.state = containerStateFromCri(st.state());
  out.info.createdAtNs = st.created_at();
  out.info.labels = toStdMap(st.labels());
  out.info.annotations = toStdMap(st.annotations());
  out.startedAtNs = st.started_at();
  out.finishedAtNs = st.finished_at();
  out.exitCode = st.exit_code();
  out.reason = st.reason();
  out.message = st.message();
  out.logPath = st.log_path();
  return out;
}

Result<ExecResult> CriRuntime::execSync(const std::string& containerId,
                                        const std::vector<std::string>& cmd,
                                        std::chrono::seconds timeout) {
  cri::ExecSyncRequest req;
  req.set_container_id(containerId);
  for (const auto& a : cmd) req.add_cmd(a);
  req.set_timeout(timeout.count());
  cri::ExecSyncResponse resp;
  // The runtime enforces `timeout` itself and answers; our deadline only guards against a
  // runtime that never does.
  Status s = call(*channel_, kRuntime, "ExecSync", req, &resp, options_.callTimeout + timeout);
  if (!s.isOk()) return s;
  ExecResult out;
  out.stdoutData = resp.stdout();
  out.stderrData = resp.stderr();
  out.exitCode = resp.exit_code();
  return out;
}

namespace {

// CRI Exec and Attach take the same streams (tty merges stderr into stdout) and answer a URL.
template <typename Request>
void setStreams(Request& req, const StreamingRequest& request) {
  req.set_container_id(request.containerId);
  req.set_stdin(request.stdin);
  req.set_tty(request.tty);
  req.set_stdout(request.stdout);
  req.set_stderr(request.stderr && !request.tty);
}

}  // namespace

Result<std::string> CriRuntime::streamingUrl(const StreamingRequest& request) {
  std::string url;
  Status s;
  if (request.attach) {
    cri::AttachRequest req;
    setStreams(req, request);
    cri::AttachResponse resp;
    s = call(*channel_, kRuntime, "Attach", req, &resp, options_.callTimeout);
    url = resp.url();
  } else {
    cri::ExecRequest req;
    setStreams(req, request);
    for (const auto& a : request.command) req.add_cmd(a);
    cri::ExecResponse resp;
    s = call(*channel_, kRuntime, "Exec", req, &resp, options_.callTimeout);
    url = resp.url();
  }
  if (!s.isOk()) return s;
  if (url.empty()) return internalError("the container runtime answered no streaming URL");
  return url;
}

Result<std::string> CriRuntime::portForwardUrl(const std::string& sandboxId, uint16_t port) {
  cri::PortForwardRequest req;
  req.set_pod_sandbox_id(sandboxId);
  req.add_port(port);
  cri::PortForwardResponse resp;
  Status s = call(*channel_, kRuntime, "PortForward", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  if (resp.url().empty()) return internalError("the container runtime answered no streaming URL");
  return resp.url();
}

Status CriRuntime::reopenContainerLog(const std::string& containerId) {
  cri::ReopenContainerLogRequest req;
  req.set_container_id(containerId);
  cri::ReopenContainerLogResponse resp;
  return call(*channel_, kRuntime, "ReopenContainerLog", req, &resp, options_.callTimeout);
}

Result<std::vector<ContainerStats>> CriRuntime::listContainerStats(
    const std::map<std::string, std::string>& labels) {
  cri::ListContainerStatsRequest req;
  req.mutable_filter()->mutable_label_selector()->insert(labels.begin(), labels.end());
  cri::ListContainerStatsResponse resp;
  Status s = call(*channel_, kRuntime, "ListContainerStats", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  std::vector<ContainerStats> out;
  out.reserve(resp.stats_size());
  for (const auto& st : resp.stats()) {
    ContainerStats c;
    c.id = st.attributes().id();
    c.name = st.attributes().metadata().name();
    c.attempt = st.attributes().metadata().attempt();
    c.labels = toStdMap(st.attributes().labels());
    if (st.has_cpu() && st.cpu().has_usage_core_nano_seconds()) {
      c.hasCpu = true;
      c.cpuTimestampNs = st.cpu().timestamp();
      c.cpuUsageCoreNanoSeconds = st.cpu().usage_core_nano_seconds().value();
    }
    if (st.has_memory() && st.memory().has_working_set_bytes()) {
      c.hasMemory = true;
      c.memoryTimestampNs = st.memory().timestamp();
      c.memoryWorkingSetBytes = st.memory().working_set_bytes().value();
    }
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::optional<ImageInfo>> CriRuntime::imageStatus(const std::string& image) {
  cri::ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  cri::ImageStatusResponse resp;
  Status s = call(*channel_, kImage, "ImageStatus", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  if (!resp.has_image()) return std::optional<ImageInfo>();
  return std::optional<ImageInfo>(imageFromCri(resp.image()));
}

Result<std::string> CriRuntime::pullImage(const std::string& image, const AuthConfig* auth,
                                          const PodSandboxConfig* sandboxConfig) {
  cri::PullImageRequest req;
  req.mutable_image()->set_image(image);
  if (auth) {
    auto* a = req.mutable_auth();
    a->set_username(auth->username);
    a->set_password(auth->password);
    a->set_auth(auth->auth);
    a->set_server_address(auth->serverAddress);
    a->set_identity_token(auth->identityToken);
    a->set_registry_token(auth->registryToken);
  }
  if (sandboxConfig) toCri(*sandboxConfig, req.mutable_sandbox_config());
  cri::PullImageResponse resp;
  Status s = call(*channel_, kImage, "PullImage", req, &resp, options_.pullTimeout);
  if (!s.isOk()) return Status(s.code(), s.message() + " (image " + image + ")");
  return resp.image_ref();
}

Status CriRuntime::removeImage(const std::string& image) {
  cri::RemoveImageRequest req;
  req.mutable_image()->set_image(image);
  cri::RemoveImageResponse resp;
  return call(*channel_, kImage, "RemoveImage", req, &resp, options_.callTimeout);
}

Result<std::vector<ImageInfo>> CriRuntime::listImages() {
  cri::ListImagesRequest req;
  cri::ListImagesResponse resp;
  Status s = call(*channel_, kImage, "ListImages", req, &resp, options_.callTimeout);
  if (!s.isOk()) return s;
  std::vector<ImageInfo> out;
  out.reserve(resp.images_size());
  for (const auto& img : resp.images()) out.push_back(imageFromCri(img));
  return out;
}

}  // namespace ep::edged
