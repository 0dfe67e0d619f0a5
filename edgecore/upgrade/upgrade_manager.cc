#include "edgecore/upgrade/upgrade_manager.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/api/models.h"
#include "common/api/object_util.h"
#include "common/api/upgrades.h"
#include "common/digest/sha256.h"

namespace ep::edgecore::upgrade {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxAttempted = 64;
constexpr size_t kMaxStateFile = 64 * 1024;

// Reads a small JSON state file; nullopt when absent, damaged (logged) or too large.
std::optional<Json> readState(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > kMaxStateFile) {
    spdlog::warn("upgrade: {} is {} bytes, not a state file; ignored", path, text.size());
    return std::nullopt;
  }
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) {
    spdlog::warn("upgrade: {} is damaged (not a JSON object); ignored", path);
    return std::nullopt;
  }
  return j;
}

// Writes `data` to `path` durably: a temporary file beside it, fsync, rename, fsync of the
// directory.
Status writeDurably(const std::string& path, std::string_view data, mode_t mode) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return internalError(tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      return internalError(tmp + ": " + why);
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return internalError(tmp + ": " + why);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return internalError(path + ": " + std::strerror(errno));
  }
  const std::string dir = fs::path(path).parent_path().string();
  if (int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
  return Status::ok();
}

// The file's bytes and their sha256, or an error.
Result<std::pair<std::string, std::string>> readHashed(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFoundError(path + ": cannot read it");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  digest::Sha256 h;
  h.update(data);
  return std::make_pair(std::move(data), h.finish());
}

std::string realPath(const std::string& p) {
  std::error_code ec;
  auto r = fs::canonical(p, ec);
  return ec ? p : r.string();
}

}  // namespace

UpgradeManager::UpgradeManager(UpgradeOptions options, metamanager::CacheReader& cache,
                               const models::ContentStore& content, Clock& clock,
                               std::function<bool()> healthy, std::function<void()> requestHandover)
    : options_(std::move(options)),
      cache_(cache),
      content_(content),
      clock_(clock),
      healthy_(std::move(healthy)),
      requestHandover_(std::move(requestHandover)),
      dir_(options_.dataDir + "/upgrade") {}

UpgradeManager::~UpgradeManager() {
  stop();
}

std::optional<Json> UpgradeManager::checkedOutcome(const Json& j) const {
  const std::string status = api::stringAt(j, "status");
  const std::string reason = api::stringAt(j, "reason");
  if (api::stringAt(j, "type") != api::kEdgecoreUpgradeCondition ||
      (status != "True" && status != "False") ||
      (reason != api::kUpgradeReasonUpgraded && reason != api::kUpgradeReasonRolledBack &&
       reason != api::kUpgradeReasonCheckFailed) ||
      api::stringAt(j, "message").empty()) {
    spdlog::warn("upgrade: {}/outcome.json is not an EdgecoreUpgrade outcome; dropped", dir_);
    return std::nullopt;
  }
  return Json{{"type", api::kEdgecoreUpgradeCondition},
              {"status", status},
              {"reason", reason},
              {"message", api::stringAt(j, "message")},
              {"lastTransitionTime", api::stringAt(j, "lastTransitionTime")}};
}

std::optional<UpgradeManager::Trial> UpgradeManager::checkedTrial(const Json& j) const {
  Trial t;
  t.job = api::stringAt(j, "job");
  t.uid = api::stringAt(j, "uid");
  t.version = api::stringAt(j, "version");
  t.fromVersion = api::stringAt(j, "fromVersion");
  t.digest = api::stringAt(j, "digest");
  t.previous = api::stringAt(j, "previous");
  t.staged = api::stringAt(j, "staged");
  const auto timeout = j.find("timeoutMillis");
  t.timeoutMillis =
      timeout != j.end() && timeout->is_number_integer() ? timeout->get<int64_t>() : int64_t{-1};
  // Only a binary this manager staged is ever run, and only over the file it was started from.
  const bool ok = !t.version.empty() && t.version.find('/') == std::string::npos &&
                  t.staged == dir_ + "/edgecore-" + t.version && !t.previous.empty() &&
                  t.previous.front() == '/' && api::isSha256Digest(t.digest) &&
                  t.timeoutMillis >= 1000 &&
                  t.timeoutMillis <= api::kMaxUpgradeTimeoutSeconds * 1000;
  if (!ok) {
    spdlog::warn("upgrade: {}/trial.json is not an upgrade this node staged; dropped", dir_);
    return std::nullopt;
  }
  return t;
}

Status UpgradeManager::recoverAtStart() {
  try {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) return internalError(dir_ + ": " + ec.message());
    std::vector<std::string> attempted;
    if (auto a = readState(dir_ + "/attempted.json");
        a && a->contains("uids") && (*a)["uids"].is_array()) {
      for (const auto& u : (*a)["uids"]) {
        if (u.is_string()) attempted.push_back(u.get<std::string>());
      }
    }
    std::optional<Json> outcome;
    if (auto o = readState(dir_ + "/outcome.json")) outcome = checkedOutcome(*o);
    {
      MutexLock l(mu_);
      attempted_ = std::move(attempted);
      outcome_ = std::move(outcome);
    }
    auto t = readState(dir_ + "/trial.json");
    if (!t) {
      if (fs::exists(dir_ + "/trial.json")) ::unlink((dir_ + "/trial.json").c_str());
      return Status::ok();
    }
    auto trial = checkedTrial(*t);
    if (!trial) {
      ::unlink((dir_ + "/trial.json").c_str());
      return Status::ok();
    }
    if (realPath(options_.executable) == realPath(trial->staged)) {
      trial->deadline =
          clock_.steadyNow() +
          std::chrono::milliseconds(
              std::min(trial->timeoutMillis, static_cast<int64_t>(options_.healthTimeout.count())));
      spdlog::info(
          "upgrade: edgecore {} on trial (NodeUpgradeJob {}): it must connect to the cloud "
          "within {}s or the node goes back to {}",
          options_.version, trial->job,
          std::min<int64_t>(trial->timeoutMillis, options_.healthTimeout.count()) / 1000,
          trial->previous);
      MutexLock l(mu_);
      trial_ = std::move(trial);
      return Status::ok();
    }
    if (options_.version == trial->version) {
      // The new binary, installed: the last trial stopped between installing it and recording.
      record(trial->job, trial->uid, trial->version, api::kUpgradeReasonUpgraded,
             "edgecore " + trial->version + " runs (was " + trial->fromVersion + ")");
      ::unlink((dir_ + "/trial.json").c_str());
      ::unlink(trial->staged.c_str());
      return Status::ok();
    }
    // Another binary runs while an upgrade was under way: the new one did not stay up (the
    // service manager started this one again).
    spdlog::warn("upgrade: edgecore {} did not stay up; edgecore {} runs again", trial->version,
                 options_.version);
    record(trial->job, trial->uid, trial->version, api::kUpgradeReasonRolledBack,
           "edgecore " + trial->version + " exited before it connected to the cloud; edgecore " +
               options_.version + " runs again");
    ::unlink((dir_ + "/trial.json").c_str());
    return Status::ok();
  } catch (const std::exception& e) {  // never past this module
    return internalError(std::string("upgrade state: ") + e.what());
  }
}

Status UpgradeManager::start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  worker_ = std::thread([this] { run(); });
  return Status::ok();
}

void UpgradeManager::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void UpgradeManager::run() {
  for (;;) {
    {
      MutexLock l(mu_);
      if (stopping_ || handover_) return;
    }
    try {
      pollOnce();
    } catch (const std::exception& e) {  // nothing may escape a thread
      spdlog::error("upgrade: {}", e.what());
    }
    MutexLock l(mu_);
    if (stopping_ || handover_) return;
    l.waitFor(cv_, options_.pollInterval);
  }
}

void UpgradeManager::pollOnce() {
  std::optional<Trial> trial;
  {
    MutexLock l(mu_);
    if (handover_) return;
    trial = trial_;
  }
  if (trial) {
    if (healthy_ && healthy_()) {
      commit(*trial);
    } else if (clock_.steadyNow() >= trial->deadline) {
      const int64_t limit =
          std::min<int64_t>(trial->timeoutMillis, options_.healthTimeout.count()) / 1000;
      rollBack(*trial, "edgecore " + trial->version + " did not connect to the cloud within " +
                           std::to_string(limit) + "s");
    }
    return;
  }
  auto jobs = cache_.list(api::kNodeUpgradeJobResource, "");
  if (!jobs.isOk()) return;
  for (const auto& job : *jobs) {
    const auto nodes = api::upgradingNodesOf(job);
    if (std::find(nodes.begin(), nodes.end(), options_.nodeName) == nodes.end()) continue;
    const std::string version = api::stringAt(job, "spec.version");
    const std::string uid = api::stringAt(job, "metadata.uid");
    if (version.empty() || version == options_.version) continue;  // the cloud sees it soon
    {
      MutexLock l(mu_);
      if (std::find(attempted_.begin(), attempted_.end(), uid) != attempted_.end()) continue;
    }
    if (std::find(checked_.begin(), checked_.end(), uid) == checked_.end()) {
      const std::string failed = failedChecks(job);
      if (!failed.empty()) {
        spdlog::warn("upgrade: NodeUpgradeJob {}: pre-checks failed: {}",
                     api::stringAt(job, "metadata.name"), failed);
        std::vector<std::string> attempted;
        {
          MutexLock l(mu_);
          attempted = markAttempted(uid);
        }
        if (auto s = writeAttempted(attempted); !s.isOk())
          spdlog::error("upgrade: {}", s.message());
        record(api::stringAt(job, "metadata.name"), uid, version, api::kUpgradeReasonCheckFailed,
               "pre-check failed: " + failed + "; edgecore " + options_.version + " runs on");
        return;
      }
      checked_.push_back(uid);
      if (checked_.size() > kMaxAttempted) checked_.erase(checked_.begin());
    }
    auto release = cache_.get(api::kEdgecoreReleaseResource, "", version);
    if (!release.isOk()) continue;  // arrives with the job
    auto bin = api::releaseBinaryFor(release->object, options_.architecture);
    if (!bin) continue;  // the cloud does not start a node its release has no binary for
    auto blob = content_.complete(bin->digest);
    if (!blob) continue;  // still downloading
    if (auto s = stage(job, bin->digest, *blob); !s.isOk()) {
      spdlog::error("upgrade: staging edgecore {}: {}", version, s.message());
      MutexLock l(mu_);
      lastProblem_ = s.message();
    }
    return;
  }
}

std::string UpgradeManager::failedChecks(const Json& job) {
  const Json* items = api::lookupPath(job, "spec.checkItems");
  if (items == nullptr || !items->is_array()) return "";
  std::string failed;
  auto add = [&](const std::string& what) { failed += (failed.empty() ? "" : "; ") + what; };
  for (const auto& i : *items) {
    if (!i.is_string()) continue;
    const std::string item = i.get<std::string>();
    auto used = options_.usage ? options_.usage(item) : systemUsage(item, options_.dataDir);
    if (!used.isOk()) {
      add(item + ": " + used.status().message());
    } else if (*used > api::kUpgradeCheckMaxUsage) {
      add(item + " " + std::to_string(static_cast<int>(*used * 100 + 0.5)) + "% in use (at most " +
          std::to_string(static_cast<int>(api::kUpgradeCheckMaxUsage * 100)) + "%)");
    }
  }
  return failed;
}

namespace {

// user+nice+system+irq+softirq+steal ticks, and those plus idle+iowait.
std::optional<std::pair<uint64_t, uint64_t>> cpuTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {};
  if (!(in >> cpu) || cpu != "cpu") return std::nullopt;
  for (auto& x : v) {
    if (!(in >> x)) return std::nullopt;
  }
  const uint64_t idle = v[3] + v[4];
  const uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return std::make_pair(busy, busy + idle);
}

}  // namespace

Result<double> systemUsage(const std::string& item, const std::string& dataDir,
                           std::chrono::milliseconds cpuWindow) {
  if (item == "cpu") {
    auto a = cpuTicks();
    std::this_thread::sleep_for(cpuWindow);
    auto b = cpuTicks();
    if (!a || !b) return internalError("/proc/stat is unreadable");
    if (b->second <= a->second) return 0.0;
    return static_cast<double>(b->first - a->first) / static_cast<double>(b->second - a->second);
  }
  if (item == "mem") {
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t value = 0, total = 0, available = 0;
    std::string unit;
    while (in >> key >> value) {
      std::getline(in, unit);
      if (key == "MemTotal:") total = value;
      if (key == "MemAvailable:") available = value;
    }
    if (total == 0) return internalError("/proc/meminfo has no MemTotal");
    return 1.0 - static_cast<double>(std::min(available, total)) / static_cast<double>(total);
  }
  if (item == "disk") {
    struct statvfs st {};
    if (::statvfs(dataDir.c_str(), &st) != 0 || st.f_blocks == 0) {
      return internalError("statvfs " + dataDir + ": " + std::strerror(errno));
    }
    return 1.0 - static_cast<double>(st.f_bavail) / static_cast<double>(st.f_blocks);
  }
  return invalidError("unknown check item \"" + item + "\" (cpu, mem or disk)");
}

Status UpgradeManager::stage(const Json& job, const std::string& digest, const std::string& blob) {
  const std::string version = api::stringAt(job, "spec.version");
  const std::string name = api::stringAt(job, "metadata.name");
  const std::string uid = api::stringAt(job, "metadata.uid");
  auto data = readHashed(blob);
  if (!data.isOk()) return data.status();
  if (data->second != digest) {
    return internalError(blob + " does not match " + digest + " (it is " + data->second + ")");
  }
  if (version.find('/') != std::string::npos) return invalidError("spec.version: contains '/'");
  const std::string staged = dir_ + "/edgecore-" + version;
  if (auto s = writeDurably(staged, data->first, 0755); !s.isOk()) return s;
  int64_t timeout = options_.healthTimeout.count();
  if (const Json* t = api::lookupPath(job, "spec.timeoutSeconds");
      t != nullptr && t->is_number_integer() && t->get<int64_t>() > 0) {
    timeout = std::min(timeout, t->get<int64_t>() * 1000);
  }
  std::string previous;
  {
    MutexLock l(mu_);
    previous = installed_.empty() ? realPath(options_.executable) : installed_;
  }
  // The file edgecore runs from is replaced once the new one proves healthy: it must be
  // writable, or the upgrade would end with the old version at the next restart.
  if (::access(fs::path(previous).parent_path().c_str(), W_OK) != 0) {
    return Status(Code::kForbidden, fs::path(previous).parent_path().string() +
                                        ": not writable, so " + previous + " cannot be replaced");
  }
  Json trial = {{"job", name},        {"uid", uid},
                {"version", version}, {"fromVersion", options_.version},
                {"digest", digest},   {"previous", previous},
                {"staged", staged},   {"timeoutMillis", timeout}};
  std::vector<std::string> attempted;
  {
    MutexLock l(mu_);
    if (stopping_) return Status::ok();  // edgecore is stopping: at the next start
    attempted = markAttempted(uid);
  }
  if (auto s = writeAttempted(attempted); !s.isOk()) return s;
  if (auto s = writeDurably(dir_ + "/trial.json", trial.dump(), 0600); !s.isOk()) return s;
  spdlog::info("upgrade: NodeUpgradeJob {}: edgecore {} staged at {} ({}); handing over", name,
               version, staged, digest);
  handOver(staged);
  return Status::ok();
}

void UpgradeManager::handOver(const std::string& target) {
  {
    MutexLock l(mu_);
    handover_ = target;  // also when stopping: main then abandons it (abandonHandover)
  }
  cv_.notify_all();
  if (requestHandover_) requestHandover_();
}

void UpgradeManager::commit(const Trial& t) {
  // The new binary becomes the one the service manager starts; PATH.previous keeps the old.
  // Crash-safe order: the old copy, the new file (one rename), then the outcome, then the
  // trial's end. A restart in between runs the new binary, which finishes (recoverAtStart).
  auto fresh = readHashed(t.staged);
  if (!fresh.isOk() || fresh->second != t.digest) {
    rollBack(t, "edgecore " + t.version + " changed on disk (" + t.staged + " no longer matches " +
                    t.digest + ")");
    return;
  }
  if (auto old = readHashed(t.previous); old.isOk()) {
    if (auto s = writeDurably(t.previous + ".previous", old->first, 0755); !s.isOk()) {
      spdlog::warn("upgrade: keeping the previous binary: {}", s.message());
    }
  }
  if (auto s = writeDurably(t.previous, fresh->first, 0755); !s.isOk()) {
    rollBack(
        t, "edgecore " + t.version + " cannot be installed at " + t.previous + ": " + s.message());
    return;
  }
  record(t.job, t.uid, t.version, api::kUpgradeReasonUpgraded,
         "edgecore " + t.version + " runs (was " + t.fromVersion + ")");
  ::unlink((dir_ + "/trial.json").c_str());
  ::unlink(t.staged.c_str());
  spdlog::info("upgrade: NodeUpgradeJob {}: edgecore {} is healthy and installed at {}", t.job,
               t.version, t.previous);
  MutexLock l(mu_);
  trial_.reset();
  installed_ = t.previous;
}

void UpgradeManager::rollBack(const Trial& t, const std::string& why) {
  spdlog::error("upgrade: NodeUpgradeJob {}: {}; going back to {}", t.job, why, t.previous);
  record(t.job, t.uid, t.version, api::kUpgradeReasonRolledBack,
         why + "; edgecore " + t.fromVersion + " runs again");
  ::unlink((dir_ + "/trial.json").c_str());
  {
    MutexLock l(mu_);
    trial_.reset();
  }
  handOver(t.previous);
}

void UpgradeManager::record(const std::string& job, const std::string& uid,
                            const std::string& version, const std::string& reason,
                            const std::string& message) {
  Json outcome = {{"type", api::kEdgecoreUpgradeCondition},
                  {"status", reason == api::kUpgradeReasonUpgraded ? "True" : "False"},
                  {"reason", reason},
                  {"message", api::upgradeConditionPrefix(job, uid, version) + message},
                  {"lastTransitionTime", formatRfc3339(clock_.nowMillis())}};
  if (auto s = writeDurably(dir_ + "/outcome.json", outcome.dump(), 0600); !s.isOk()) {
    spdlog::error("upgrade: {}", s.message());
  }
  MutexLock l(mu_);
  outcome_ = std::move(outcome);
}

std::vector<std::string> UpgradeManager::markAttempted(const std::string& uid) {
  attempted_.push_back(uid);
  while (attempted_.size() > kMaxAttempted) attempted_.erase(attempted_.begin());
  return attempted_;
}

Status UpgradeManager::writeAttempted(const std::vector<std::string>& uids) {
  Json list = Json::array();
  for (const auto& u : uids) list.push_back(u);
  return writeDurably(dir_ + "/attempted.json", Json{{"uids", list}}.dump(), 0600);
}

void UpgradeManager::abandonHandover() {
  std::optional<std::string> target;
  {
    MutexLock l(mu_);
    target = handover_;
  }
  if (!target) return;
  auto t = readState(dir_ + "/trial.json");
  std::optional<Trial> trial = t ? checkedTrial(*t) : std::nullopt;
  if (!trial || trial->staged != *target) return;  // a rollback: already recorded
  ::unlink((dir_ + "/trial.json").c_str());
  ::unlink(trial->staged.c_str());
  std::vector<std::string> attempted;
  {
    MutexLock l(mu_);
    attempted_.erase(std::remove(attempted_.begin(), attempted_.end(), trial->uid),
                     attempted_.end());
    attempted = attempted_;
    handover_.reset();
  }
  (void)writeAttempted(attempted);
  spdlog::info(
      "upgrade: edgecore is stopping: the handover to edgecore {} is abandoned and "
      "tried again at the next start",
      trial->version);
}

std::optional<Json> UpgradeManager::condition() const {
  MutexLock l(mu_);
  if (!outcome_) return std::nullopt;
  Json c = *outcome_;
  c["lastHeartbeatTime"] = formatRfc3339(clock_.nowMillis());
  return c;
}

std::optional<std::string> UpgradeManager::handoverTarget() const {
  MutexLock l(mu_);
  return handover_;
}

Json UpgradeManager::statusJson() const {
  MutexLock l(mu_);
  Json j = {{"version", options_.version}};
  if (trial_) {
    const auto left =
        std::chrono::duration_cast<std::chrono::seconds>(trial_->deadline - clock_.steadyNow());
    j["trial"] = {{"job", trial_->job},
                  {"from", trial_->fromVersion},
                  {"secondsLeft", std::max<int64_t>(0, left.count())}};
  }
  if (outcome_) j["lastOutcome"] = *outcome_;
  if (handover_) j["handoverTo"] = *handover_;
  if (!lastProblem_.empty()) j["problem"] = lastProblem_;
  return j;
}

}  // namespace ep::edgecore::upgrade
