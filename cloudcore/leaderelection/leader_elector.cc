#include "cloudcore/leaderelection/leader_elector.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "cloudcore/controllers/workload_util.h"
#include "common/api/kinds.h"
#include "common/api/object_util.h"
#include "common/pki/pki.h"

namespace ep::leaderelection {
namespace {

using Json = nlohmann::json;

}  // namespace

LeaderElector::LeaderElector(registry::Registry& registry, Clock& clock,
                             LeaderElectionOptions options, StartedFn onStartedLeading,
                             StoppedFn onStoppedLeading)
    : registry_(registry),
      clock_(clock),
      options_(std::move(options)),
      idSuffix_(options_.identity.find('_') == std::string::npos
                    ? std::string()
                    : options_.identity.substr(options_.identity.rfind('_'))),
      onStartedLeading_(std::move(onStartedLeading)),
      onStoppedLeading_(std::move(onStoppedLeading)) {}

LeaderElector::~LeaderElector() {
  stop();
}

Status LeaderElector::start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  if (auto s = tick(); !s.isOk()) {
    bool startFailed = false;
    {
      MutexLock l(tickMu_);
      startFailed = startFailed_;
    }
    if (startFailed) return s;
    spdlog::warn("leader election: {}/{}: {} (trying again every {} ms)", options_.leaseNamespace,
                 options_.leaseName, s.toString(), options_.retryPeriod.count());
  }
  thread_ = std::thread([this] { loop(); });
  watchdog_ = std::thread([this] { watchdog(); });
  return Status::ok();
}

void LeaderElector::loop() {
  std::string lastError;
  for (;;) {
    {
      MutexLock l(mu_);
      if (l.waitFor(cv_, options_.retryPeriod, [&]() EP_REQUIRES(mu_) { return stopping_; })) {
        return;
      }
    }
    Status s = tick();
    // A store that stays down is logged once, not every retryPeriod.
    if (!s.isOk() && s.toString() != lastError) {
      spdlog::warn("leader election: {}/{}: {}", options_.leaseNamespace, options_.leaseName,
                   s.toString());
    }
    lastError = s.isOk() ? std::string() : s.toString();
  }
}

void LeaderElector::watchdog() {
  for (;;) {
    {
      MutexLock l(mu_);
      if (l.waitFor(cv_, std::chrono::milliseconds(100),
                    [&]() EP_REQUIRES(mu_) { return stopping_; })) {
        return;
      }
    }
    enforceRenewDeadline();
  }
}

void LeaderElector::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (watchdog_.joinable()) watchdog_.join();
  bool wasLeading = false;
  {
    MutexLock term(termMu_);
    wasLeading = leading();
    if (wasLeading) stepDown();
  }
  if (!wasLeading) return;
  if (auto s = release(); !s.isOk()) {
    spdlog::warn("leader election: releasing {}/{}: {}", options_.leaseNamespace,
                 options_.leaseName, s.toString());
  } else {
    spdlog::info("leader election: released {}/{}", options_.leaseNamespace, options_.leaseName);
  }
}

bool LeaderElector::leading() const {
  MutexLock l(mu_);
  return leading_;
}

std::string LeaderElector::holder() const {
  MutexLock l(mu_);
  return holder_;
}

bool LeaderElector::isMine(const std::string& holder) const {
  if (holder == options_.identity) return true;
  return !idSuffix_.empty() && holder.size() > idSuffix_.size() &&
         holder.compare(holder.size() - idSuffix_.size(), idSuffix_.size(), idSuffix_) == 0;
}

bool LeaderElector::claimLasts(const Record& record,
                               std::chrono::steady_clock::time_point at) const {
  if (record.holder.empty() || isMine(record.holder)) return false;
  const auto duration = record.leaseDurationSeconds > 0
                            ? std::chrono::milliseconds(record.leaseDurationSeconds * 1000)
                            : options_.leaseDuration;
  return at < observedAt_ + duration;
}

void LeaderElector::stepDown() {
  if (onStoppedLeading_) onStoppedLeading_();
  MutexLock l(mu_);
  leading_ = false;
  if (isMine(holder_)) holder_.clear();
}

void LeaderElector::enforceRenewDeadline() {
  MutexLock term(termMu_);
  std::chrono::milliseconds since{0};
  {
    MutexLock l(mu_);
    if (!leading_) return;
    since =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steadyNow() - lastRenewal_);
    if (since <= options_.renewDeadline) return;
  }
  spdlog::error(
      "leader election: {}/{} not renewed for {} ms (deadline {} ms); stopping the controllers",
      options_.leaseNamespace, options_.leaseName, since.count(), options_.renewDeadline.count());
  stepDown();
}

Status LeaderElector::tick() {
  MutexLock tickLock(tickMu_);
  startFailed_ = false;
  const auto began = clock_.steadyNow();
  const bool backingOff = !leading() && began < nextAttempt_;
  if (backingOff) return Status::ok();  // after controllers failed to start: not yet
  auto attempt = tryAcquireOrRenew();
  MutexLock term(termMu_);
  const bool wasLeading = leading();
  if (attempt.isOk() && *attempt == Attempt::kHeld) {
    if (wasLeading) {
      MutexLock l(mu_);
      lastRenewal_ = began;  // the claim counts from before the write
      return Status::ok();
    }
    spdlog::info("leader election: {} holds {}/{}; starting the controllers", options_.identity,
                 options_.leaseNamespace, options_.leaseName);
    Status started = onStartedLeading_ ? onStartedLeading_() : Status::ok();
    const auto took = clock_.steadyNow() - began;
    if (started.isOk() && took > options_.renewDeadline) {
      // Nothing renewed the Lease meanwhile: another replica may hold it by now.
      if (onStoppedLeading_) onStoppedLeading_();
      started = Status(
          Code::kUnavailable,
          "starting the controllers took " +
              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
              " ms, beyond the renew deadline");
    }
    if (!started.isOk()) {
      startFailed_ = true;
      ++startFailures_;
      const auto wait = options_.retryPeriod * std::min(60, 1 << std::min(startFailures_, 6));
      nextAttempt_ = clock_.steadyNow() + wait;
      spdlog::error(
          "leader election: the controllers did not start ({}); releasing {}/{}, next attempt in "
          "{} ms",
          started.toString(), options_.leaseNamespace, options_.leaseName,
          std::chrono::duration_cast<std::chrono::milliseconds>(wait).count());
      if (auto s = release(); !s.isOk()) {
        spdlog::warn("leader election: releasing the lease: {}", s.toString());
      }
      return started;
    }
    startFailures_ = 0;
    {
      MutexLock l(mu_);
      leading_ = true;
      lastRenewal_ = began;
      holder_ = options_.identity;
    }
    auto lease =
        registry_.get(controllers::leaseKind(), options_.leaseNamespace, options_.leaseName);
    if (lease.isOk()) {
      controllers::recordEvent(registry_, clock_, controllers::leaseKind(), *lease, "Normal",
                               "LeaderElection", options_.identity + " became leader", "cloudcore");
    }
    return Status::ok();
  }
  if (attempt.isOk()) {  // another replica holds it
    {
      MutexLock l(mu_);
      holder_ = observed_.holder;
    }
    if (wasLeading) {
      spdlog::error("leader election: {} now holds {}/{}; stopping the controllers",
                    observed_.holder, options_.leaseNamespace, options_.leaseName);
      stepDown();
    }
    return Status::ok();
  }
  return attempt.status();  // a leader that keeps failing is stopped by the renew deadline
}

Result<LeaderElector::Attempt> LeaderElector::tryAcquireOrRenew() {
  const std::string now = formatRfc3339Micro(clock_.nowMillis());
  const int64_t seconds =
      std::max<int64_t>(1, (options_.leaseDuration.count() + 999) / 1000);  // whole seconds, up
  auto current =
      registry_.get(controllers::leaseKind(), options_.leaseNamespace, options_.leaseName);
  // Observations count from when the read returned: the record was current then at the latest.
  const auto readAt = clock_.steadyNow();
  if (!current.isOk() && current.status().code() != Code::kNotFound) return current.status();
  if (!current.isOk()) {
    // Deleted (or never made). A holder seen within its lease duration may still be running its
    // controllers: wait that out before making the Lease anew.
    if (claimLasts(observed_, readAt)) return Attempt::kNotHeld;
    Record mine{.holder = options_.identity,
                .leaseDurationSeconds = seconds,
                .acquireTime = now,
                .renewTime = now,
                .transitions = observed_.transitions};
    Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", options_.leaseName}}},
                  {"spec",
                   {{"holderIdentity", mine.holder},
                    {"leaseDurationSeconds", mine.leaseDurationSeconds},
                    {"acquireTime", mine.acquireTime},
                    {"renewTime", mine.renewTime},
                    {"leaseTransitions", mine.transitions}}}};
    auto created =
        registry_.create(controllers::leaseKind(), options_.leaseNamespace, std::move(lease));
    if (created.isOk()) {
      observed_ = mine;
      observedAt_ = clock_.steadyNow();
      return Attempt::kHeld;
    }
    // kube-system deleted: made again (as Kubernetes' apiserver does), then the next attempt.
    if (created.status().code() == Code::kNotFound) {
      if (auto s = registry_.ensureSystemNamespaces(); !s.isOk()) return s;
    }
    return created.status();  // AlreadyExists (another replica was first) included
  }
  Json& lease = current.value();
  Json& spec = lease["spec"];
  if (!spec.is_object()) spec = Json::object();
  Record seen{.holder = api::stringAt(spec, "holderIdentity"),
              .leaseDurationSeconds = api::intAt(spec, "leaseDurationSeconds"),
              .acquireTime = api::stringAt(spec, "acquireTime"),
              .renewTime = api::stringAt(spec, "renewTime"),
              .transitions = api::intAt(spec, "leaseTransitions")};
  const bool mine = isMine(seen.holder);
  if (!(seen == observed_)) {
    if (mine && leading() && !observed_.holder.empty()) {
      // Renewed by someone else under this replica's name: a copied leader-election-id.
      spdlog::error(
          "leader election: {}/{} was renewed by another process holding this replica's identity "
          "{} (was DATA_DIR/leader-election-id copied from another replica?)",
          options_.leaseNamespace, options_.leaseName, options_.identity);
    }
    observed_ = seen;
    observedAt_ = readAt;
  }
  if (claimLasts(seen, readAt)) return Attempt::kNotHeld;
  Record next{.holder = options_.identity,
              .leaseDurationSeconds = seconds,
              .acquireTime = mine && !seen.acquireTime.empty() ? seen.acquireTime : now,
              .renewTime = now,
              .transitions = mine ? seen.transitions : seen.transitions + 1};
  spec["holderIdentity"] = next.holder;
  spec["leaseDurationSeconds"] = next.leaseDurationSeconds;
  spec["acquireTime"] = next.acquireTime;
  spec["renewTime"] = next.renewTime;
  spec["leaseTransitions"] = next.transitions;
  // The resourceVersion read above makes this a compare-and-swap.
  auto updated = registry_.update(controllers::leaseKind(), options_.leaseNamespace,
                                  options_.leaseName, std::move(lease));
  if (!updated.isOk()) return updated.status();
  observed_ = next;
  observedAt_ = clock_.steadyNow();
  return Attempt::kHeld;
}

Status LeaderElector::release() {
  auto current =
      registry_.get(controllers::leaseKind(), options_.leaseNamespace, options_.leaseName);
  if (!current.isOk()) return current.status();
  Json& spec = current.value()["spec"];
  if (!spec.is_object() || !isMine(api::stringAt(spec, "holderIdentity"))) {
    return Status::ok();  // not ours (any more): nothing to give back
  }
  const std::string now = formatRfc3339Micro(clock_.nowMillis());
  spec["holderIdentity"] = "";
  spec["leaseDurationSeconds"] = 1;
  spec["acquireTime"] = now;
  spec["renewTime"] = now;
  auto updated = registry_.update(controllers::leaseKind(), options_.leaseNamespace,
                                  options_.leaseName, std::move(current.value()));
  return updated.isOk() ? Status::ok() : updated.status();
}

Result<std::string> loadOrCreateIdentity(const std::string& dataDir) {
  const std::string path = dataDir + "/leader-election-id";
  auto read = pki::readFile(path);
  if (!read.isOk() && read.status().code() == Code::kNotFound) {
    std::random_device random;
    std::string id;
    for (int i = 0; i < 16; ++i) id.push_back("0123456789abcdef"[random() % 16]);
    auto made = pki::createFileExclusive(path, id + "\n", 0600);
    if (!made.isOk() && made.code() != Code::kAlreadyExists) return made;
    read = pki::readFile(path);  // ours, or the one a concurrent start made first
  }
  if (!read.isOk()) return read.status();
  std::string id = *read;
  if (!id.empty() && id.back() == '\n') id.pop_back();
  if (id.size() != 16 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return invalidError(path + ": not 16 lower-case hex digits (delete it and a new one is made)");
  }
  char host[256] = {};
  std::string hostname = gethostname(host, sizeof host - 1) == 0 ? host : "";
  if (hostname.empty()) hostname = "cloudcore";
  return hostname + "_" + id;
}

}  // namespace ep::leaderelection
