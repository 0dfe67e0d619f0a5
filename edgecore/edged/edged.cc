#include "edgecore/edged/edged.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "common/api/base64.h"
#include "common/api/models.h"
#include "common/api/object_util.h"
#include "common/api/registry_auth.h"
#include "common/thread_annotations.h"
#include "edgecore/edged/prober.h"

namespace ep::edged {
namespace {

using ReportKind = edgeplane::tunnel::v1::ReportKind;

constexpr auto kResetBackoffAfter = std::chrono::minutes(10);
// Backoff::lastFailedId marker for a container that could not be created or started.
constexpr const char* kStartFailure = "<start-failure>";

const Json& arrayOrEmpty(const Json& pod, const char* list) {
  static const Json kEmpty = Json::array();
  const Json* a = api::lookupPath(pod, std::string("spec.") + list);
  return a && a->is_array() ? *a : kEmpty;
}

// A pod in graceful deletion: it is stopped, never (re)started.
bool isDeleting(const std::optional<Json>& pod) {
  return pod && !api::stringAt(*pod, "metadata.deletionTimestamp").empty();
}

std::string labelOr(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

uint32_t restartCountOf(const ContainerInfo& c) {
  auto it = c.annotations.find(kAnnotationRestartCount);
  if (it != c.annotations.end()) {
    try {
      return static_cast<uint32_t>(std::stoul(it->second));
    } catch (...) {
    }
  }
  return c.attempt;
}

std::string nanosToRfc3339(int64_t ns) {
  return ns > 0 ? formatRfc3339(ns / 1000000) : std::string();
}

// Newest first: by attempt, then creation time.
bool newer(const ContainerInfo& a, const ContainerInfo& b) {
  if (a.attempt != b.attempt) return a.attempt > b.attempt;
  return a.createdAtNs > b.createdAtNs;
}

std::string qosClassOf(const Json& pod) {
  bool any = false;
  bool guaranteed = true;
  for (const auto& c : arrayOrEmpty(pod, "containers")) {
    const Json* req = api::lookupPath(c, "resources.requests");
    const Json* lim = api::lookupPath(c, "resources.limits");
    if ((req && req->is_object() && !req->empty()) || (lim && lim->is_object() && !lim->empty())) {
      any = true;
    }
    for (const char* r : {"cpu", "memory"}) {
      if (!lim || !lim->is_object() || !lim->contains(r)) {
        guaranteed = false;
        continue;
      }
      if (req && req->is_object() && req->contains(r) && (*req)[r] != (*lim)[r]) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

}  // namespace

Edged::Edged(EdgedOptions options, ContainerRuntime& runtime,
             edgecore::metamanager::CacheReader& cache, edgecore::metamanager::Outbox& outbox,
             Clock& clock)
    : options_(std::move(options)),
      runtime_(runtime),
      cache_(cache),
      outbox_(outbox),
      clock_(clock),
      volumes_((std::filesystem::path(options_.dataDir) / "pods").string(), options_.modelBlobs,
               options_.nodeName) {}

void Edged::refreshVolumes() {
  {
    MutexLock lock(mu_);
    ++configGeneration_;
    wake_ = true;
  }
  dispatchCv_.notify_one();
}

Edged::~Edged() {
  stop();
}

int64_t Edged::nowMillis() const {
  return clock_.nowMillis();
}

std::string Edged::logDirOf(const Json& pod) const {
  std::string dir = api::stringAt(pod, "metadata.namespace") + "_" +
                    api::stringAt(pod, "metadata.name") + "_" + api::stringAt(pod, "metadata.uid");
  return (std::filesystem::path(options_.dataDir) / "logs" / dir).string();
}

std::optional<Json> Edged::lookup(const std::string& resource, const std::string& ns,
                                  const std::string& name) {
  auto r = cache_.get(resource, ns, name);
  if (!r.isOk()) return std::nullopt;
  return std::move(r->object);
}

Status Edged::start() {
  std::vector<Json> pods;
  podSub_ = cache_.subscribe("pods", "", &pods);
  configMapSub_ = cache_.subscribe("configmaps", "");
  secretSub_ = cache_.subscribe("secrets", "");
  modelSub_ = cache_.subscribe(api::kModelResource, "");
  auto wake = [this] {
    MutexLock lock(mu_);
    wake_ = true;
    dispatchCv_.notify_one();
  };
  podSub_->setNotify(wake);
  configMapSub_->setNotify(wake);
  secretSub_->setNotify(wake);
  modelSub_->setNotify(wake);
  {
    MutexLock lock(mu_);
    stopping_ = false;
    for (auto& p : pods) {
      if (api::stringAt(p, "spec.nodeName") != options_.nodeName) continue;
      std::string uid = api::stringAt(p, "metadata.uid");
      if (!uid.empty()) desired_[uid] = std::move(p);
    }
  }
  auto v = runtime_.version();
  if (v.isOk()) {
    spdlog::info("edged: runtime {}", *v);
  } else {
    spdlog::warn("edged: runtime not reachable yet: {}", v.status().toString());
  }
  for (size_t i = 0; i < std::max<size_t>(1, options_.workers); ++i) {
    workers_.emplace_back([this] { workerLoop(); });
  }
  dispatcher_ = std::thread([this] { dispatchLoop(); });
  return {};
}

void Edged::stop() {
  {
    MutexLock lock(mu_);
    if (stopping_ && !dispatcher_.joinable()) return;
    stopping_ = true;
    dispatchCv_.notify_all();
    workCv_.notify_all();
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
  std::vector<Terminator> terminators;
  {
    MutexLock lock(mu_);
    terminators.swap(terminators_);
  }
  for (auto& t : terminators) t.thread.join();  // a pod being stopped finishes stopping
  for (auto* sub : {&podSub_, &configMapSub_, &secretSub_, &modelSub_}) {
    if (*sub) (*sub)->stop();
    sub->reset();
  }
}

EdgedStats Edged::stats() const {
  EdgedStats s;
  s.syncs = counters_.syncs;
  s.containersStarted = counters_.containersStarted;
  s.sandboxesCreated = counters_.sandboxesCreated;
  s.podsKilled = counters_.podsKilled;
  s.statusReports = counters_.statusReports;
  s.eventsReported = counters_.eventsReported;
  s.runtimeErrors = counters_.runtimeErrors;
  return s;
}

Json Edged::statusJson() const {
  Json j = Json::object();
  {
    MutexLock lock(mu_);
    j["pods"] = desired_.size();
  }
  EdgedStats s = stats();
  j["syncs"] = s.syncs;
  j["containersStarted"] = s.containersStarted;
  j["sandboxesCreated"] = s.sandboxesCreated;
  j["podsKilled"] = s.podsKilled;
  j["statusReports"] = s.statusReports;
  j["eventsReported"] = s.eventsReported;
  j["runtimeErrors"] = s.runtimeErrors;
  return j;
}

void Edged::drainCacheLocked() {
  if (podSub_) {
    for (;;) {
      auto events = podSub_->poll(256);
      if (events.empty()) break;
      for (auto& e : events) {
        std::string uid = api::stringAt(e.object, "metadata.uid");
        if (uid.empty()) continue;
        if (e.type == "DELETED" || api::stringAt(e.object, "spec.nodeName") != options_.nodeName) {
          desired_.erase(uid);
        } else {
          // A pod recreated under the same name has a new uid: drop the old uid's entry.
          for (auto it = desired_.begin(); it != desired_.end(); ++it) {
            if (it->first != uid && api::stringAt(it->second, "metadata.name") == e.name &&
                api::stringAt(it->second, "metadata.namespace") == e.ns) {
              desired_.erase(it);
              break;
            }
          }
          desired_[uid] = std::move(e.object);
        }
      }
    }
  }
  for (auto* sub : {&configMapSub_, &secretSub_, &modelSub_}) {
    if (!*sub) continue;
    while (!(*sub)->poll(256).empty()) ++configGeneration_;
  }
}

Result<std::map<std::string, Edged::PodRuntime>> Edged::relist() {
  std::map<std::string, std::string> managed{{kLabelManagedBy, kManagedByValue},
                                             {kLabelNodeName, options_.nodeName}};
  auto sandboxes = runtime_.listPodSandboxes(managed);
  if (!sandboxes.isOk()) return sandboxes.status();
  ContainerFilter filter;
  filter.labels = managed;
  auto containers = runtime_.listContainers(filter);
  if (!containers.isOk()) return containers.status();
  std::map<std::string, PodRuntime> byUid;
  for (auto& s : *sandboxes) {
    std::string uid = labelOr(s.labels, kLabelPodUid);
    if (!uid.empty()) byUid[uid].sandboxes.push_back(std::move(s));
  }
  for (auto& c : *containers) {
    std::string uid = labelOr(c.labels, kLabelPodUid);
    if (!uid.empty()) byUid[uid].containers.push_back(std::move(c));
  }
  return byUid;
}

std::vector<Edged::Task> Edged::planLocked(std::map<std::string, PodRuntime>& byUid) {
  std::set<std::string> uids;
  for (const auto& [uid, p] : desired_) uids.insert(uid);
  for (const auto& [uid, r] : byUid) uids.insert(uid);
  for (const auto& [uid, st] : podStates_) uids.insert(uid);
  std::vector<Task> tasks;
  for (const auto& uid : uids) {
    if (inflight_.count(uid)) continue;
    Task t;
    t.uid = uid;
    auto d = desired_.find(uid);
    if (d != desired_.end()) t.pod = d->second;
    auto r = byUid.find(uid);
    if (r != byUid.end()) t.runtime = std::move(r->second);
    tasks.push_back(std::move(t));
  }
  return tasks;
}

void Edged::dispatchLoop() {
  bool runtimeUp = true;
  MutexLock lock(mu_);
  while (!stopping_) {
    reapTerminatorsLocked();
    drainCacheLocked();
    lock.unlock();
    auto listed = relist();
    lock.lock();
    if (stopping_) break;
    if (!listed.isOk()) {
      ++counters_.runtimeErrors;
      // Logged on the transition only: an absent runtime would otherwise log every period.
      if (runtimeUp) {
        spdlog::warn(
            "edged: container runtime unavailable (pods are not synced until it "
            "returns): {}",
            listed.status().toString());
      }
      runtimeUp = false;
    } else {
      if (!runtimeUp) spdlog::info("edged: container runtime reachable; syncing pods");
      runtimeUp = true;
      auto tasks = planLocked(*listed);
      for (auto& t : tasks) {
        inflight_.insert(t.uid);
        queue_.push_back(std::move(t));
      }
      workCv_.notify_all();
    }
    lock.waitFor(dispatchCv_, options_.syncPeriod,
                 [this]() EP_REQUIRES(mu_) { return stopping_ || wake_; });
    wake_ = false;
  }
}

void Edged::workerLoop() {
  MutexLock lock(mu_);
  for (;;) {
    lock.wait(workCv_, [this]() EP_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Task t = std::move(queue_.front());
    queue_.pop_front();
    // Terminations wait out grace periods: they get a thread of their own (bounded) so that a
    // burst of deletions never holds back pods that are starting.
    bool terminating = (!t.pod || isDeleting(t.pod)) &&
                       (!t.runtime.sandboxes.empty() || !t.runtime.containers.empty());
    if (terminating && terminators_.size() < kMaxTerminators) {
      auto done = std::make_shared<std::atomic<bool>>(false);
      terminators_.push_back({std::thread([this, task = std::move(t), done]() mutable {
                                runTask(task);
                                MutexLock guard(mu_);
                                inflight_.erase(task.uid);
                                done->store(true);
                              }),
                              done});
      continue;
    }
    lock.unlock();
    runTask(t);
    lock.lock();
    inflight_.erase(t.uid);
  }
}

void Edged::reapTerminatorsLocked() {
  for (auto it = terminators_.begin(); it != terminators_.end();) {
    if (it->done->load()) {
      it->thread.join();  // finished: returns at once
      it = terminators_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Edged::syncOnce() {
  std::vector<Task> tasks;
  {
    MutexLock lock(mu_);
    if (!podSub_) {
      // Not started: read the cache directly.
      auto pods = cache_.list("pods", "");
      if (!pods.isOk()) return pods.status();
      desired_.clear();
      for (auto& p : *pods) {
        if (api::stringAt(p, "spec.nodeName") != options_.nodeName) continue;
        std::string uid = api::stringAt(p, "metadata.uid");
        if (!uid.empty()) desired_[uid] = std::move(p);
      }
      ++configGeneration_;
    } else {
      drainCacheLocked();
    }
  }
  auto listed = relist();
  if (!listed.isOk()) return listed.status();
  {
    MutexLock lock(mu_);
    tasks = planLocked(*listed);
  }
  for (auto& t : tasks) runTask(t);
  return {};
}

void Edged::runTask(Task& task) {
  ++counters_.syncs;
  PodState* st = nullptr;
  {
    MutexLock lock(mu_);
    auto& slot = podStates_[task.uid];
    if (!slot) {
      slot = std::make_unique<PodState>();
      slot->uid = task.uid;
    }
    st = slot.get();
  }
  bool deleting = isDeleting(task.pod);
  if (!task.pod || deleting) {
    if (deleting && !st->terminationReported) {
      for (const auto& c : task.runtime.containers) {
        if (c.state != ContainerState::kRunning) continue;
        std::string name = labelOr(c.labels, kLabelContainerName);
        recordEvent(*st, *task.pod, "spec.containers{" + name + "}", "Normal", "Killing",
                    "Stopping container " + name);
      }
    }
    auto exits = killPod(task.uid, task.runtime, task.pod ? &*task.pod : nullptr);
    if (!task.pod) {
      MutexLock lock(mu_);
      podStates_.erase(task.uid);
    } else if (!st->terminationReported) {
      reportTerminated(*st, *task.pod, exits);
    }
    return;
  }
  syncPod(*st, *task.pod, task.runtime);
}

std::map<std::string, ContainerStatus> Edged::killPod(const std::string& uid, const PodRuntime& rt,
                                                      const Json* pod) {
  std::map<std::string, ContainerStatus> exits;
  if (rt.sandboxes.empty() && rt.containers.empty()) {
    if (!pod) {
      std::error_code ec;
      if (std::filesystem::exists(volumes_.podDir(uid), ec)) (void)volumes_.tearDown(uid);
      removeLogDirs(uid);
    }
    return exits;
  }
  ++counters_.podsKilled;
  std::string name =
      pod ? podKeyOf(*pod)
          : (rt.sandboxes.empty() ? uid : rt.sandboxes[0].ns + "/" + rt.sandboxes[0].name);
  spdlog::info("edged: stopping pod {} (uid {})", name, uid);
  int64_t grace = pod ? terminationGraceSeconds(*pod) : 30;
  if (!pod) {
    for (const auto& s : rt.sandboxes) {
      auto it = s.annotations.find("io.kubernetes.pod.terminationGracePeriod");
      if (it != s.annotations.end()) {
        try {
          grace = std::stoll(it->second);
        } catch (...) {
        }
      }
    }
  }
  // Containers are stopped in parallel so the pod's grace period is not multiplied.
  std::vector<std::thread> stoppers;
  for (const auto& c : rt.containers) {
    if (c.state != ContainerState::kRunning) continue;
    stoppers.emplace_back([this, id = c.id, grace] {
      if (auto s = runtime_.stopContainer(id, std::chrono::seconds(grace)); !s.isOk()) {
        spdlog::warn("edged: stopping container {}: {}", id, s.toString());
      }
    });
  }
  for (auto& t : stoppers) t.join();
  // How each container ended (the newest attempt per name), for the final status.
  for (const auto& c : rt.containers) {
    std::string name = labelOr(c.labels, kLabelContainerName);
    auto have = exits.find(name);
    if (have != exits.end() && !newer(c, have->second.info)) continue;
    auto s = runtime_.containerStatus(c.id);
    if (s.isOk()) exits[name] = *s;
  }
  for (const auto& s : rt.sandboxes) {
    if (auto st = runtime_.stopPodSandbox(s.id); !st.isOk()) {
      spdlog::warn("edged: stopping sandbox {}: {}", s.id, st.toString());
    }
    if (auto st = runtime_.removePodSandbox(s.id); !st.isOk()) {
      spdlog::warn("edged: removing sandbox {}: {}", s.id, st.toString());
    }
  }
  for (const auto& c : rt.containers) {
    (void)runtime_.removeContainer(c.id);  // already gone with its sandbox, normally
  }
  if (!pod) {
    (void)volumes_.tearDown(uid);
    removeLogDirs(uid);
  }
  return exits;
}

void Edged::rotateLog(PodState& st, const ContainerInfo& running) {
  auto status = statusOf(st, running);
  if (!status.isOk() || status->logPath.empty()) return;
  namespace fs = std::filesystem;
  const fs::path path = status->logPath;
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec || size <= options_.containerLogMaxSize) return;
  // NAME.log -> NAME.log.YYYYMMDD-hhmmss.mmm, then the runtime writes a new NAME.log.
  int64_t now = nowMillis();
  std::time_t secs = static_cast<std::time_t>(now / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[40];
  size_t n = std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03d", static_cast<int>(now % 1000));
  fs::path rotated = path.string() + "." + stamp;
  fs::rename(path, rotated, ec);
  if (ec) {
    spdlog::warn("edged: rotating {}: {}", path.string(), ec.message());
    return;
  }
  if (auto s = runtime_.reopenContainerLog(running.id); !s.isOk()) {
    // The runtime keeps writing to the renamed file: put it back and try again later.
    fs::rename(rotated, path, ec);
    spdlog::warn("edged: reopening the log of container {}: {}", running.id, s.toString());
    return;
  }
  // Keep the newest containerLogMaxFiles - 1 rotated files besides the live one.
  std::vector<fs::path> rotatedFiles;
  const std::string prefix = path.filename().string() + ".";
  for (auto it = fs::directory_iterator(path.parent_path(), ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) == 0) rotatedFiles.push_back(it->path());
  }
  std::sort(rotatedFiles.begin(), rotatedFiles.end());  // the stamp sorts by time
  size_t keep = static_cast<size_t>(std::max(1, options_.containerLogMaxFiles) - 1);
  for (size_t i = 0; i + keep < rotatedFiles.size(); ++i) fs::remove(rotatedFiles[i], ec);
}

void Edged::removeLogDirs(const std::string& uid) {
  std::error_code ec;
  const std::string suffix = "_" + uid;
  for (auto it = std::filesystem::directory_iterator(
           std::filesystem::path(options_.dataDir) / "logs", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      std::error_code rmEc;
      std::filesystem::remove_all(it->path(), rmEc);
    }
  }
}

void Edged::reportTerminated(PodState& st, const Json& pod,
                             const std::map<std::string, ContainerStatus>& exits) {
  // The pod is being deleted and every container has stopped: report it terminated, which lets
  // the cloud finish the deletion (phase Succeeded when every container exited 0).
  Json status = st.lastStatus.is_object() ? st.lastStatus : Json::object();
  bool allZero = true;
  Json statuses = Json::array();
  for (const auto& spec : arrayOrEmpty(pod, "containers")) {
    const std::string name = api::stringAt(spec, "name");
    Json cs = {{"name", name},      {"image", api::stringAt(spec, "image")},
               {"ready", false},    {"started", false},
               {"restartCount", 0}, {"lastState", Json::object()}};
    if (status.contains("containerStatuses") && status["containerStatuses"].is_array()) {
      for (const auto& prev : status["containerStatuses"]) {
        if (prev.is_object() && api::stringAt(prev, "name") == name) {
          cs["restartCount"] = prev.value("restartCount", 0);
          if (prev.contains("imageID")) cs["imageID"] = prev["imageID"];
        }
      }
    }
    Json t = Json::object();
    auto it = exits.find(name);
    if (it != exits.end()) {
      t["exitCode"] = it->second.exitCode;
      t["reason"] = it->second.exitCode == 0 ? "Completed" : "Error";
      if (it->second.startedAtNs > 0) t["startedAt"] = nanosToRfc3339(it->second.startedAtNs);
      if (it->second.finishedAtNs > 0) t["finishedAt"] = nanosToRfc3339(it->second.finishedAtNs);
      t["containerID"] = runtimeContainerId(it->second.info.id);
      if (it->second.exitCode != 0) allZero = false;
    } else {
      t["exitCode"] = 0;
      t["reason"] = "ContainerStatusUnknown";  // never started, or gone already
    }
    cs["state"] = {{"terminated", t}};
    statuses.push_back(std::move(cs));
  }
  status["containerStatuses"] = statuses;
  status["phase"] = allZero ? "Succeeded" : "Failed";
  const std::string now = formatRfc3339(nowMillis());
  Json conds = Json::array();
  if (status.contains("conditions") && status["conditions"].is_array())
    conds = status["conditions"];
  for (auto& c : conds) {
    if (!c.is_object()) continue;
    std::string type = api::stringAt(c, "type");
    if ((type == "Ready" || type == "ContainersReady") && api::stringAt(c, "status") != "False") {
      c["status"] = "False";
      c["reason"] = "PodCompleted";
      c["lastTransitionTime"] = now;
    }
  }
  status["conditions"] = conds;
  st.lastStatusDump.clear();
  reportStatus(st, pod, std::move(status));
  st.terminationReported = true;
}

bool Edged::ensureImage(PodState& st, const Json& pod, const Json& container,
                        const std::string& field, std::string& imageRef) {
  const std::string name = api::stringAt(container, "name");
  const std::string image = api::stringAt(container, "image");
  const std::string policy = imagePullPolicyOf(container);
  const std::string fieldPath = field;
  auto present = runtime_.imageStatus(image);
  if (!present.isOk()) {
    ++counters_.runtimeErrors;
    st.waiting[name] = {"ErrImagePull", present.status().message()};
    return false;
  }
  bool have = present->has_value();
  if (policy == "Never") {
    if (have) {
      imageRef = image;
      return true;
    }
    std::string msg = "Container image \"" + image + "\" is not present with pull policy of Never";
    st.waiting[name] = {"ErrImageNeverPull", msg};
    recordEvent(st, pod, fieldPath, "Warning", "ErrImageNeverPull", msg);
    return false;
  }
  if (have && policy == "IfNotPresent") {
    imageRef = image;
    return true;
  }
  // Pull (Always, or IfNotPresent with the image missing), respecting the pull back-off.
  auto& bo = st.pullBackoff[name];
  int64_t now = nowMillis();
  if (bo.nextAllowedMillis > now && bo.lastFailedId == image) {
    // Offline (registry unreachable): keep running what is there rather than failing the pod;
    // refused credentials do not get the image from the node's store either.
    if (have && !bo.refused) {
      imageRef = image;
      return true;
    }
    st.waiting[name] = {"ImagePullBackOff", "Back-off pulling image \"" + image + "\""};
    return false;
  }
  // Credentials from imagePullSecrets (kubernetes.io/dockerconfigjson) for the image's registry.
  AuthConfig auth;
  bool haveAuth = false;
  const std::string host = registryHostOf(image);
  for (const auto& ref : arrayOrEmpty(pod, "imagePullSecrets")) {
    if (haveAuth || !ref.is_object()) continue;
    auto secret =
        lookup("secrets", api::stringAt(pod, "metadata.namespace"), api::stringAt(ref, "name"));
    if (!secret) continue;
    if (auto a = api::registryAuthFor(*secret, host)) {
      // No server address, as kubelet sends none: the entry was matched to the image's host
      // here, and containerd refuses an address that is not a URL ("host:port", the usual
      // key for a private registry) with "parse server address".
      auth.username = a->username;
      auth.password = a->password;
      auth.auth = a->auth;
      auth.identityToken = a->identityToken;
      auth.registryToken = a->registryToken;
      haveAuth = true;
    }
  }
  recordEvent(st, pod, fieldPath, "Normal", "Pulling", "Pulling image \"" + image + "\"");
  auto started = std::chrono::steady_clock::now();
  auto pulled = runtime_.pullImage(image, haveAuth ? &auth : nullptr, nullptr);
  if (!pulled.isOk()) {
    std::string msg = "Failed to pull image \"" + image + "\": " + pulled.status().message();
    recordEvent(st, pod, fieldPath, "Warning", "Failed", msg);
    bo.delay = bo.delay.count() == 0 ? options_.initialBackoff
                                     : std::min(options_.maxBackoff, bo.delay * 2);
    bo.nextAllowedMillis = now + bo.delay.count();
    bo.lastFailedId = image;
    bo.refused = isPullAuthorizationFailure(msg);
    if (have && !bo.refused) {
      spdlog::warn("edged: {} (using the image already on this node)", msg);
      imageRef = image;
      return true;
    }
    st.waiting[name] = {"ErrImagePull", msg};
    recordEvent(st, pod, fieldPath, "Warning", "Failed", "Error: ErrImagePull");
    return false;
  }
  st.pullBackoff.erase(name);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char took[32];
  std::snprintf(took, sizeof took, "%.3fs", secs);
  recordEvent(st, pod, fieldPath, "Normal", "Pulled",
              "Successfully pulled image \"" + image + "\" in " + took);
  imageRef = image;
  return true;
}

bool Edged::startContainer(PodState& st, const Json& pod, const Json& container,
                           const std::string& field, uint32_t attempt,
                           const PodSandboxConfig& sandbox) {
  const std::string name = api::stringAt(container, "name");
  const std::string fieldPath = field;
  // A container the runtime failed to create or start is retried with the crash back-off, so a
  // broken mount or command does not make a create/remove loop every sync.
  auto& startBackoff = st.crashBackoff[name];
  if (startBackoff.lastFailedId == kStartFailure && startBackoff.nextAllowedMillis > nowMillis()) {
    return false;
  }
  std::string imageRef;
  st.dirty = true;
  if (!ensureImage(st, pod, container, field, imageRef)) return false;
  auto fail = [&](const char* reason, const std::string& msg) {
    st.waiting[name] = {reason, msg};
    recordEvent(st, pod, fieldPath, "Warning", "Failed", "Error: " + msg);
    if (std::string(reason) != "CreateContainerConfigError") {
      startBackoff.delay = startBackoff.delay.count() == 0
                               ? options_.initialBackoff
                               : std::min(options_.maxBackoff, startBackoff.delay * 2);
      startBackoff.nextAllowedMillis = nowMillis() + startBackoff.delay.count();
      startBackoff.lastFailedId = kStartFailure;
    }
    return false;
  };
  EnvContext ctx{&pod, options_.nodeName, st.podIp, options_.hostIp,
                 [this](const std::string& r, const std::string& ns, const std::string& n) {
                   return lookup(r, ns, n);
                 }};
  auto env = resolveEnv(container, ctx, field);
  if (!env.isOk()) return fail("CreateContainerConfigError", env.status().message());
  auto mounts = containerMounts(container, st.volumes, field, readOnlyVolumes(pod));
  if (!mounts.isOk()) return fail("CreateContainerConfigError", mounts.status().message());
  auto resources = linuxResourcesOf(container, field);
  if (!resources.isOk()) return fail("CreateContainerConfigError", resources.status().message());
  std::map<std::string, std::string> vars(env->begin(), env->end());
  ContainerConfig cfg;
  cfg.name = name;
  cfg.attempt = attempt;
  cfg.image = imageRef;
  for (const char* list : {"command", "args"}) {
    auto it = container.find(list);
    if (it == container.end() || !it->is_array()) continue;
    for (const auto& a : *it) {
      if (!a.is_string()) continue;
      (std::string(list) == "command" ? cfg.command : cfg.args)
          .push_back(expandVars(a.get<std::string>(), vars));
    }
  }
  cfg.workingDir = api::stringAt(container, "workingDir");
  cfg.env = std::move(*env);
  cfg.mounts = std::move(*mounts);
  cfg.resources = *resources;
  cfg.stdin = container.value("stdin", false);
  cfg.tty = container.value("tty", false);
  cfg.labels = {{kLabelPodName, sandbox.name},      {kLabelPodNamespace, sandbox.ns},
                {kLabelPodUid, sandbox.uid},        {kLabelContainerName, name},
                {kLabelManagedBy, kManagedByValue}, {kLabelNodeName, options_.nodeName}};
  cfg.annotations = {
      {kAnnotationRestartCount, std::to_string(attempt)},
      {kAnnotationSpecHash, containerSpecHash(container)},
      {"io.kubernetes.pod.terminationGracePeriod", std::to_string(terminationGraceSeconds(pod))}};
  cfg.logPath = name + "/" + std::to_string(attempt) + ".log";
  auto id = runtime_.createContainer(st.sandboxId, cfg, sandbox);
  if (!id.isOk()) {
    ++counters_.runtimeErrors;
    return fail("CreateContainerError", id.status().message());
  }
  recordEvent(st, pod, fieldPath, "Normal", "Created", "Created container " + name);
  if (auto s = runtime_.startContainer(*id); !s.isOk()) {
    ++counters_.runtimeErrors;
    (void)runtime_.removeContainer(*id);
    return fail("RunContainerError", s.message());
  }
  recordEvent(st, pod, fieldPath, "Normal", "Started", "Started container " + name);
  if (startBackoff.lastFailedId == kStartFailure) startBackoff.lastFailedId.clear();
  ++counters_.containersStarted;
  st.waiting.erase(name);
  st.readiness.erase(name);
  st.liveness.erase(name);
  return true;
}

Result<ContainerStatus> Edged::statusOf(PodState& st, const ContainerInfo& info) {
  auto it = st.statusCache.find(info.id);
  if (it != st.statusCache.end() && it->second.info.state == info.state) return it->second;
  auto s = runtime_.containerStatus(info.id);
  if (!s.isOk()) return s.status();
  st.statusCache[info.id] = *s;
  return *s;
}

void Edged::probe(PodState& st, const Json& pod, const Json& container,
                  const ContainerInfo& running, bool& ready, bool& livenessFailed) {
  const std::string name = api::stringAt(container, "name");
  auto now = clock_.steadyNow();  // probe periods and delays follow the injected clock
  ProbeTarget target{running.id, st.podIp, options_.hostIp, &container};
  auto runOne = [&](const char* key, std::map<std::string, ProbeState>& states) -> ProbeState* {
    auto it = container.find(key);
    if (it == container.end() || !it->is_object()) {
      states.erase(name);
      return nullptr;
    }
    ProbeTiming timing = probeTimingOf(*it);
    auto& ps = states[name];
    if (ps.containerId != running.id) {
      ps = ProbeState{};
      ps.containerId = running.id;
      int64_t startedNs = 0;
      auto s = statusOf(st, running);
      if (s.isOk()) startedNs = s->startedAtNs;
      auto startedAt = now;
      if (startedNs > 0) {
        int64_t agoMs = nowMillis() - startedNs / 1000000;
        startedAt = now - std::chrono::milliseconds(std::max<int64_t>(0, agoMs));
      }
      ps.next = startedAt + timing.initialDelay;
    }
    if (now < ps.next) return &ps;
    ps.next = now + timing.period;
    ProbeOutcome out = runProbe(*it, target, runtime_);
    if (out.success) {
      ps.failures = 0;
      if (++ps.successes >= timing.successThreshold) ps.ok = true;
    } else {
      ps.successes = 0;
      ++ps.failures;
      std::string kind = std::string(key) == "livenessProbe" ? "Liveness" : "Readiness";
      recordEvent(st, pod, "spec.containers{" + name + "}", "Warning", "Unhealthy",
                  kind + " probe failed: " + out.message);
      if (ps.failures >= timing.failureThreshold) ps.ok = false;
    }
    return &ps;
  };
  ProbeState* r = runOne("readinessProbe", st.readiness);
  ready = r ? r->ok : true;
  ProbeState* l = runOne("livenessProbe", st.liveness);
  livenessFailed = false;
  if (l) {
    auto timing = probeTimingOf(container["livenessProbe"]);
    livenessFailed = l->failures >= timing.failureThreshold;
  }
}

void Edged::syncPod(PodState& st, const Json& pod, const PodRuntime& rt) {
  const std::string uid = api::stringAt(pod, "metadata.uid");
  const std::string policy = restartPolicyOf(pod);
  if (st.startTime.empty()) {
    st.startTime = api::stringAt(pod, "status.startTime");
    if (st.startTime.empty()) st.startTime = formatRfc3339(nowMillis());
  }
  if (st.lastStatus.is_null()) {
    const Json* s = api::lookupPath(pod, "status");
    if (s && s->is_object()) st.lastStatus = *s;
  }
  std::string phase = api::stringAt(st.lastStatus, "phase");
  bool terminal = (phase == "Succeeded" || phase == "Failed") && policy != "Always";

  // Drop cached runtime statuses of containers that are gone.
  for (auto it = st.statusCache.begin(); it != st.statusCache.end();) {
    bool listed = std::any_of(rt.containers.begin(), rt.containers.end(),
                              [&](const ContainerInfo& c) { return c.id == it->first; });
    it = listed ? std::next(it) : st.statusCache.erase(it);
  }

  // 1. The sandbox: the newest ready one; every other is removed.
  const SandboxInfo* current = nullptr;
  uint32_t maxSandboxAttempt = 0;
  bool anySandbox = !rt.sandboxes.empty();
  for (const auto& s : rt.sandboxes) {
    maxSandboxAttempt = std::max(maxSandboxAttempt, s.attempt);
    if (s.state != SandboxState::kReady) continue;
    if (!current || s.attempt > current->attempt ||
        (s.attempt == current->attempt && s.createdAtNs > current->createdAtNs)) {
      current = &s;
    }
  }
  const std::string logDir = logDirOf(pod);
  PodSandboxConfig sandboxCfg = sandboxConfigOf(pod, current ? current->attempt : 0, logDir);
  sandboxCfg.labels[kLabelNodeName] = options_.nodeName;
  bool sandboxReady = current != nullptr;

  // Volumes first: a sandbox is useless without them.
  uint64_t generation;
  {
    MutexLock lock(mu_);
    generation = configGeneration_;
  }
  if (!st.volumesReady || st.volumesGeneration != generation) {
    auto vols = volumes_.setUp(pod, [this](const std::string& r, const std::string& ns,
                                           const std::string& n) { return lookup(r, ns, n); });
    if (!vols.isOk()) {
      if (st.volumesReady) {
        spdlog::warn("edged: pod {}: volumes not refreshed: {}", podKeyOf(pod),
                     vols.status().message());
      } else {
        recordEvent(st, pod, "", "Warning", "FailedMount",
                    "MountVolume.SetUp failed: " + vols.status().message());
        for (const auto& c : arrayOrEmpty(pod, "containers")) {
          st.waiting[api::stringAt(c, "name")] = {"ContainerCreating", ""};
        }
        reportStatus(st, pod, buildStatus(st, pod, rt, false));
        return;
      }
    } else {
      st.volumes = std::move(*vols);
      st.volumesReady = true;
      st.volumesGeneration = generation;
    }
  }

  if (!current && !terminal) {
    // Containers of the old sandboxes go with them, but their attempts carry over.
    for (const auto& s : rt.sandboxes) {
      (void)runtime_.stopPodSandbox(s.id);
      (void)runtime_.removePodSandbox(s.id);
    }
    if (anySandbox) {
      recordEvent(st, pod, "", "Normal", "SandboxChanged",
                  "Pod sandbox changed, it will be killed and re-created.");
    }
    std::error_code ec;
    std::filesystem::create_directories(logDir, ec);
    sandboxCfg = sandboxConfigOf(pod, anySandbox ? maxSandboxAttempt + 1 : 0, logDir);
    sandboxCfg.labels[kLabelNodeName] = options_.nodeName;
    auto id = runtime_.runPodSandbox(sandboxCfg);
    if (!id.isOk()) {
      ++counters_.runtimeErrors;
      recordEvent(st, pod, "", "Warning", "FailedCreatePodSandBox",
                  "Failed to create pod sandbox: " + id.status().message());
      for (const auto& c : arrayOrEmpty(pod, "containers")) {
        st.waiting[api::stringAt(c, "name")] = {"ContainerCreating", ""};
      }
      reportStatus(st, pod, buildStatus(st, pod, rt, false));
      return;
    }
    ++counters_.sandboxesCreated;
    st.dirty = true;
    st.sandboxId = *id;
    auto status = runtime_.podSandboxStatus(*id);
    st.podIp = status.isOk() ? status->ip : "";
    sandboxReady = true;
  } else if (current) {
    if (st.sandboxId != current->id || (st.podIp.empty() && !sandboxCfg.hostNetwork)) {
      st.sandboxId = current->id;
      auto status = runtime_.podSandboxStatus(current->id);
      st.podIp = status.isOk() ? status->ip : "";
    }
    for (const auto& s : rt.sandboxes) {
      if (s.id == current->id) continue;
      (void)runtime_.stopPodSandbox(s.id);
      (void)runtime_.removePodSandbox(s.id);
    }
  }

  // Containers by name: the newest in the current sandbox, and the highest attempt anywhere.
  auto latestIn = [&](const std::string& name) -> const ContainerInfo* {
    const ContainerInfo* best = nullptr;
    for (const auto& c : rt.containers) {
      if (c.sandboxId != st.sandboxId || labelOr(c.labels, kLabelContainerName) != name) continue;
      if (!best || newer(c, *best)) best = &c;
    }
    return best;
  };
  auto maxAttempt = [&](const std::string& name) -> std::optional<uint32_t> {
    std::optional<uint32_t> m;
    for (const auto& c : rt.containers) {
      if (labelOr(c.labels, kLabelContainerName) != name) continue;
      m = std::max(m.value_or(0), restartCountOf(c));
    }
    return m;
  };
  // Restarts an exited container, honouring the crash back-off. Returns true if restarted.
  auto restart = [&](const Json& spec, const std::string& field, const ContainerInfo& dead) {
    const std::string name = api::stringAt(spec, "name");
    auto& bo = st.crashBackoff[name];
    int64_t now = nowMillis();
    auto ds = statusOf(st, dead);
    if (ds.isOk() && ds->finishedAtNs > 0 && ds->startedAtNs > 0 &&
        std::chrono::nanoseconds(ds->finishedAtNs - ds->startedAtNs) >= kResetBackoffAfter) {
      bo = Backoff{};
    }
    if (bo.nextAllowedMillis > now) {
      std::string msg = "back-off " + std::to_string(bo.delay.count() / 1000) +
                        "s restarting failed container=" + name +
                        " pod=" + api::stringAt(pod, "metadata.name") + "_" +
                        api::stringAt(pod, "metadata.namespace") + "(" + uid + ")";
      st.waiting[name] = {"CrashLoopBackOff", msg};
      if (bo.lastFailedId != dead.id) {
        bo.lastFailedId = dead.id;
        recordEvent(st, pod, field, "Warning", "BackOff", "Back-off restarting failed container");
      }
      return false;
    }
    bool ok = startContainer(st, pod, spec, field, restartCountOf(dead) + 1, sandboxCfg);
    if (ok) {
      bo.delay = bo.delay.count() == 0 ? options_.initialBackoff
                                       : std::min(options_.maxBackoff, bo.delay * 2);
      bo.nextAllowedMillis = now + bo.delay.count();
      // Keep only the newest dead container per name (for `logs --previous`).
      for (const auto& c : rt.containers) {
        if (c.id != dead.id && labelOr(c.labels, kLabelContainerName) == name &&
            c.state == ContainerState::kExited) {
          (void)runtime_.removeContainer(c.id);
        }
      }
    }
    return ok;
  };

  bool checkLogs = nowMillis() >= st.nextLogCheckMillis;
  if (checkLogs) st.nextLogCheckMillis = nowMillis() + options_.logRotationInterval.count();
  if (sandboxReady && !terminal) {
    // 2. Init containers, in order; each must succeed before the next starts.
    bool initDone = true;
    const Json& inits = arrayOrEmpty(pod, "initContainers");
    for (size_t i = 0; i < inits.size() && initDone; ++i) {
      const Json& spec = inits[i];
      const std::string name = api::stringAt(spec, "name");
      const std::string field = "spec.initContainers{" + name + "}";
      const ContainerInfo* latest = latestIn(name);
      if (!latest) {
        auto prev = maxAttempt(name);
        startContainer(st, pod, spec, field, prev ? *prev + 1 : 0, sandboxCfg);
        initDone = false;
      } else if (latest->state == ContainerState::kRunning) {
        initDone = false;
      } else if (latest->state == ContainerState::kCreated) {
        st.dirty = true;
        (void)runtime_.startContainer(latest->id);
        initDone = false;
      } else {
        auto s = statusOf(st, *latest);
        int32_t code = s.isOk() ? s->exitCode : 1;
        if (code != 0) {
          initDone = false;
          if (policy != "Never") restart(spec, field, *latest);
        }
      }
    }
    // 3. App containers, once every init container has succeeded.
    if (initDone) {
      const Json& containers = arrayOrEmpty(pod, "containers");
      for (size_t i = 0; i < containers.size(); ++i) {
        const Json& spec = containers[i];
        const std::string name = api::stringAt(spec, "name");
        const std::string field = "spec.containers{" + name + "}";
        const ContainerInfo* latest = latestIn(name);
        if (!latest) {
          auto prev = maxAttempt(name);
          startContainer(st, pod, spec, field, prev ? *prev + 1 : 0, sandboxCfg);
          continue;
        }
        if (latest->state == ContainerState::kCreated) {
          st.dirty = true;
          if (runtime_.startContainer(latest->id).isOk()) ++counters_.containersStarted;
          continue;
        }
        if (latest->state == ContainerState::kRunning) {
          std::string hash = labelOr(latest->annotations, kAnnotationSpecHash);
          if (!hash.empty() && hash != containerSpecHash(spec)) {
            recordEvent(st, pod, field, "Normal", "Killing",
                        "Container " + name + " definition changed, will be restarted");
            (void)runtime_.stopContainer(latest->id,
                                         std::chrono::seconds(terminationGraceSeconds(pod)));
            startContainer(st, pod, spec, field, restartCountOf(*latest) + 1, sandboxCfg);
            continue;
          }
          bool ready = true, livenessFailed = false;
          probe(st, pod, spec, *latest, ready, livenessFailed);
          if (checkLogs) rotateLog(st, *latest);
          if (livenessFailed) {
            recordEvent(st, pod, field, "Normal", "Killing",
                        "Container " + name + " failed liveness probe, will be restarted");
            st.dirty = true;
            (void)runtime_.stopContainer(latest->id,
                                         std::chrono::seconds(terminationGraceSeconds(pod)));
            st.liveness.erase(name);
            st.statusCache.erase(latest->id);
            ContainerInfo dead = *latest;
            dead.state = ContainerState::kExited;
            if (shouldRestart(policy, 1)) restart(spec, field, dead);
          }
          continue;
        }
        // Exited (or unknown): restart per policy.
        auto s = statusOf(st, *latest);
        int32_t code = s.isOk() ? s->exitCode : 1;
        if (shouldRestart(policy, code)) restart(spec, field, *latest);
      }
    }
  }
  reportStatus(st, pod, buildStatus(st, pod, rt, sandboxReady));
}

Json Edged::buildStatus(PodState& st, const Json& pod, const PodRuntime& rtBefore,
                        bool sandboxReady) {
  // Status reflects the runtime after this sync's actions: relist this pod's containers.
  PodRuntime rt = rtBefore;
  if (st.dirty) {
    st.dirty = false;
    ContainerFilter f;
    f.labels = {{kLabelPodUid, st.uid}};
    auto cs = runtime_.listContainers(f);
    if (cs.isOk()) rt.containers = std::move(*cs);
  }
  const std::string policy = restartPolicyOf(pod);
  Json status = Json::object();
  auto containerStatusesFor = [&](const char* list, bool& allReady, bool& allDone, bool& anyFailed,
                                  bool& anyRunning, bool& anyWaiting) {
    Json out = Json::array();
    allReady = true;
    allDone = true;
    anyFailed = false;
    anyRunning = false;
    anyWaiting = false;
    for (const auto& spec : arrayOrEmpty(pod, list)) {
      const std::string name = api::stringAt(spec, "name");
      std::vector<const ContainerInfo*> mine;
      for (const auto& c : rt.containers) {
        if (labelOr(c.labels, kLabelContainerName) == name) mine.push_back(&c);
      }
      std::sort(mine.begin(), mine.end(),
                [](const ContainerInfo* a, const ContainerInfo* b) { return newer(*a, *b); });
      Json cs = Json::object();
      cs["name"] = name;
      cs["image"] = api::stringAt(spec, "image");
      cs["imageID"] = "";
      cs["ready"] = false;
      cs["started"] = false;
      cs["restartCount"] = mine.empty() ? 0 : restartCountOf(*mine[0]);
      auto terminatedJson = [&](const ContainerStatus& s) {
        Json t = Json::object();
        t["exitCode"] = s.exitCode;
        t["reason"] = s.reason.empty() ? (s.exitCode == 0 ? "Completed" : "Error") : s.reason;
        if (!s.message.empty()) t["message"] = s.message;
        if (s.startedAtNs > 0) t["startedAt"] = nanosToRfc3339(s.startedAtNs);
        if (s.finishedAtNs > 0) t["finishedAt"] = nanosToRfc3339(s.finishedAtNs);
        t["containerID"] = runtimeContainerId(s.info.id);
        return t;
      };
      auto waitingIt = st.waiting.find(name);
      bool ready = false;
      bool done = false;
      if (!mine.empty()) {
        auto s = statusOf(st, *mine[0]);
        if (s.isOk()) {
          cs["containerID"] = runtimeContainerId(s->info.id);
          cs["imageID"] = s->info.imageRef;
          if (s->info.state == ContainerState::kRunning) {
            cs["state"] = {{"running", {{"startedAt", nanosToRfc3339(s->startedAtNs)}}}};
            cs["started"] = true;
            auto r = st.readiness.find(name);
            ready = spec.contains("readinessProbe") ? (r != st.readiness.end() && r->second.ok &&
                                                       r->second.containerId == s->info.id)
                                                    : true;
            anyRunning = true;
          } else if (s->info.state == ContainerState::kExited) {
            bool willRestart = shouldRestart(policy, s->exitCode);
            if (std::string(list) == "initContainers" && s->exitCode == 0) willRestart = false;
            if (willRestart && waitingIt != st.waiting.end()) {
              cs["state"] = {
                  {"waiting",
                   {{"reason", waitingIt->second.reason}, {"message", waitingIt->second.message}}}};
              cs["lastState"] = {{"terminated", terminatedJson(*s)}};
              anyWaiting = true;
            } else {
              cs["state"] = {{"terminated", terminatedJson(*s)}};
              done = !willRestart;
              if (s->exitCode != 0) anyFailed = true;
              if (willRestart) anyWaiting = true;
            }
          } else {
            cs["state"] = {{"waiting", {{"reason", "ContainerCreating"}}}};
            anyWaiting = true;
          }
          if (mine.size() > 1 && !cs.contains("lastState")) {
            auto p = statusOf(st, *mine[1]);
            if (p.isOk() && p->info.state == ContainerState::kExited) {
              cs["lastState"] = {{"terminated", terminatedJson(*p)}};
            }
          }
        }
      } else {
        Json w = Json::object();
        if (waitingIt != st.waiting.end()) {
          w["reason"] = waitingIt->second.reason;
          if (!waitingIt->second.message.empty()) w["message"] = waitingIt->second.message;
        } else {
          w["reason"] =
              std::string(list) == "initContainers" ? "PodInitializing" : "ContainerCreating";
        }
        if (std::string(list) == "containers" && !arrayOrEmpty(pod, "initContainers").empty() &&
            waitingIt == st.waiting.end()) {
          w["reason"] = "PodInitializing";
        }
        cs["state"] = {{"waiting", w}};
        anyWaiting = true;
      }
      if (!cs.contains("lastState")) cs["lastState"] = Json::object();
      cs["ready"] = ready;
      if (!ready) allReady = false;
      if (!done) allDone = false;
      out.push_back(std::move(cs));
    }
    return out;
  };

  bool initReady, initDone, initFailed, initRunning, initWaiting;
  Json initStatuses = containerStatusesFor("initContainers", initReady, initDone, initFailed,
                                           initRunning, initWaiting);
  bool ready, done, failed, running, waiting;
  Json statuses = containerStatusesFor("containers", ready, done, failed, running, waiting);
  bool hasInit = !arrayOrEmpty(pod, "initContainers").empty();
  bool initialized = !hasInit || initDone;

  // Running while any container runs or is being restarted; terminal once every container has
  // terminated for good.
  bool restarting = false;
  for (const auto& cs : statuses) {
    if (cs.value("restartCount", 0) > 0 || !cs["lastState"].empty()) restarting = true;
  }
  std::string phase = "Pending";
  if (hasInit && initFailed && policy == "Never") {
    phase = "Failed";
  } else if (initialized && !statuses.empty() && done) {
    phase = failed ? "Failed" : "Succeeded";
  } else if (initialized && sandboxReady && (running || restarting)) {
    phase = "Running";
  }
  bool podReady = phase == "Running" && ready && sandboxReady;

  const Json& prevConds = st.lastStatus.is_object() && st.lastStatus.contains("conditions") &&
                                  st.lastStatus["conditions"].is_array()
                              ? st.lastStatus["conditions"]
                              : Json::array();
  const std::string now = formatRfc3339(nowMillis());
  auto condition = [&](const char* type, bool value, const std::string& reason) {
    Json c = Json::object();
    c["type"] = type;
    c["status"] = value ? "True" : "False";
    c["lastProbeTime"] = nullptr;
    c["lastTransitionTime"] = now;
    for (const auto& p : prevConds) {
      if (p.is_object() && api::stringAt(p, "type") == type &&
          api::stringAt(p, "status") == c["status"]) {
        if (p.contains("lastTransitionTime")) c["lastTransitionTime"] = p["lastTransitionTime"];
      }
    }
    if (!value && !reason.empty()) c["reason"] = reason;
    return c;
  };
  Json conds = Json::array();
  conds.push_back(condition("Initialized", initialized, "ContainersNotInitialized"));
  conds.push_back(condition("Ready", podReady, done ? "PodCompleted" : "ContainersNotReady"));
  conds.push_back(condition("ContainersReady", ready && phase == "Running",
                            done ? "PodCompleted" : "ContainersNotReady"));
  conds.push_back(condition("PodScheduled", true, ""));
  status["phase"] = phase;
  status["conditions"] = conds;
  if (!options_.hostIp.empty()) {
    status["hostIP"] = options_.hostIp;
    status["hostIPs"] = Json::array({{{"ip", options_.hostIp}}});
  }
  std::string podIp =
      st.podIp.empty() && sandboxConfigOf(pod, 0, "").hostNetwork ? options_.hostIp : st.podIp;
  if (!podIp.empty()) {
    status["podIP"] = podIp;
    status["podIPs"] = Json::array({{{"ip", podIp}}});
  }
  status["startTime"] = st.startTime;
  status["qosClass"] = qosClassOf(pod);
  if (hasInit) status["initContainerStatuses"] = initStatuses;
  status["containerStatuses"] = statuses;
  return status;
}

void Edged::reportStatus(PodState& st, const Json& pod, Json status) {
  std::string dump = status.dump();
  if (dump == st.lastStatusDump) return;
  auto r = outbox_.enqueue(edgeplane::tunnel::v1::REPORT_KIND_POD_STATUS,
                           api::stringAt(pod, "metadata.namespace"),
                           api::stringAt(pod, "metadata.name"), dump);
  if (!r.isOk()) {
    spdlog::warn("edged: pod {}: status not queued: {}", podKeyOf(pod), r.status().toString());
    return;
  }
  ++counters_.statusReports;
  std::string oldPhase = api::stringAt(st.lastStatus, "phase");
  if (oldPhase != status.value("phase", "")) {
    spdlog::info("edged: pod {} phase {} -> {}", podKeyOf(pod), oldPhase.empty() ? "-" : oldPhase,
                 status.value("phase", ""));
  }
  st.lastStatus = std::move(status);
  st.lastStatusDump = std::move(dump);
}

void Edged::recordEvent(PodState& st, const Json& pod, const std::string& fieldPath,
                        const std::string& type, const std::string& reason,
                        const std::string& message) {
  const std::string ns = api::stringAt(pod, "metadata.namespace");
  const std::string podName = api::stringAt(pod, "metadata.name");
  const std::string key = reason + "\x1f" + fieldPath + "\x1f" + message;
  const std::string now = formatRfc3339(nowMillis());
  auto& rec = st.events[key];
  if (rec.name.empty()) {
    if (st.events.size() > 256) {  // bound the aggregation memory per pod
      st.events.clear();
      return recordEvent(st, pod, fieldPath, type, reason, message);
    }
    char hex[20];
    std::snprintf(
        hex, sizeof hex, "%016llx",
        static_cast<unsigned long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count()));
    rec.name = podName + "." + hex;
    rec.firstTimestamp = now;
  }
  ++rec.count;
  Json involved = {{"apiVersion", "v1"},
                   {"kind", "Pod"},
                   {"name", podName},
                   {"namespace", ns},
                   {"uid", api::stringAt(pod, "metadata.uid")}};
  if (!fieldPath.empty()) involved["fieldPath"] = fieldPath;
  Json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", rec.name}, {"namespace", ns}}},
                {"involvedObject", involved},
                {"reason", reason},
                {"message", message},
                {"type", type},
                {"source", {{"component", "edged"}, {"host", options_.nodeName}}},
                {"firstTimestamp", rec.firstTimestamp},
                {"lastTimestamp", now},
                {"count", rec.count},
                {"reportingComponent", "edged"},
                {"reportingInstance", options_.nodeName}};
  auto r = outbox_.enqueue(edgeplane::tunnel::v1::REPORT_KIND_EVENT, ns, rec.name, event.dump());
  if (r.isOk()) ++counters_.eventsReported;
  spdlog::log(type == "Warning" ? spdlog::level::warn : spdlog::level::info, "edged: {} {}: {}",
              podKeyOf(pod), reason, message);
}

}  // namespace ep::edged
