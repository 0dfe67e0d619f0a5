#include "cloudcore/cloudhub/node_leases.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "common/api/object_util.h"

namespace ep::cloudhub {
namespace {

using Json = nlohmann::json;

constexpr int kMaxAttempts = 4;

const api::KindInfo& leaseKind() {
  return *api::findByApiVersionKind("coordination.k8s.io/v1", "Lease");
}

const api::KindInfo& nodeKind() {
  return *api::findByApiVersionKind("v1", "Node");
}

// Sets what a renewal writes into `lease` (the current object, changed in place); returns
// whether it had expired before (renewTime older than its duration).
bool renewIn(Json& lease, const std::string& node, int64_t seconds, int64_t nowMillis,
             const std::string& now) {
  Json& spec = lease["spec"];
  if (!spec.is_object()) spec = Json::object();
  const std::string previous = spec.value("renewTime", Json()).is_string()
                                   ? spec["renewTime"].get<std::string>()
                                   : std::string();
  const int64_t previousMillis = previous.empty() ? -1 : parseRfc3339(previous);
  spec["holderIdentity"] = node;
  spec["leaseDurationSeconds"] = seconds;
  spec["renewTime"] = now;
  return previousMillis >= 0 && nowMillis - previousMillis > seconds * 1000;
}

}  // namespace

NodeLeases::NodeLeases(registry::Registry& registry, Clock& clock, Executor executor,
                       std::chrono::seconds leaseDuration, LapsedCallback onLapsed,
                       Batching batching)
    : registry_(registry),
      clock_(clock),
      executor_(std::move(executor)),
      leaseDuration_(leaseDuration),
      onLapsed_(std::move(onLapsed)),
      batching_(batching) {}

NodeLeases::~NodeLeases() {
  {
    // Nothing may be handed to the executor now: its tasks would outlive this object.
    MutexLock lock(mu_);
    if (!due_.empty()) {
      spdlog::warn("cloudhub: {} lease renewals dropped at shutdown", due_.size());
      for (const auto& node : due_) pending_.erase(node);
      due_.clear();
    }
  }
  stop();
}

void NodeLeases::start() {
  if (batching_.window.count() <= 0 || burster_.joinable()) return;
  {
    MutexLock lock(mu_);
    stopping_ = false;
  }
  burster_ = std::thread([this] { burstLoop(); });
  MutexLock lock(mu_);
  bursting_ = true;  // only once the thread exists: else renewals would wait in due_ forever
}

void NodeLeases::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  dueCv_.notify_all();
  if (burster_.joinable()) burster_.join();
}

void NodeLeases::renew(const std::string& node) {
  {
    MutexLock lock(mu_);
    auto [it, inserted] = pending_.try_emplace(node, Write::kQueued);
    if (!inserted) {
      // Queued: its write takes the time it runs. Running: one more write after it.
      if (it->second == Write::kRunning) it->second = Write::kAgain;
      coalesced_.fetch_add(1);
      return;
    }
    if (bursting_) {
      due_.push_back(node);
      if (due_.size() == 1) dueCv_.notify_all();
      return;
    }
  }
  executor_([this, node] { run(node); });
}

void NodeLeases::burstLoop() {
  MutexLock lock(mu_);
  for (;;) {
    lock.wait(dueCv_, [&]() EP_REQUIRES(mu_) { return stopping_ || !due_.empty(); });
    if (stopping_ && due_.empty()) break;
    // Gather for the window; stop cuts it short (what is due goes at once).
    lock.waitFor(dueCv_, batching_.window, [&]() EP_REQUIRES(mu_) { return stopping_; });
    std::vector<std::string> burst = std::move(due_);
    due_.clear();
    lock.unlock();
    handOut(std::move(burst));
    lock.lock();
  }
  bursting_ = false;  // from now on renew() hands each renewal out at once
}

void NodeLeases::handOut(std::vector<std::string> nodes) {
  if (nodes.empty()) return;
  bursts_.fetch_add(1);
  const size_t tasks = std::max<size_t>(1, std::min(batching_.parallel, nodes.size()));
  std::vector<std::vector<std::string>> shares(tasks);
  for (size_t i = 0; i < nodes.size(); ++i) shares[i % tasks].push_back(std::move(nodes[i]));
  for (auto& share : shares) {
    executor_([this, share = std::move(share)] {
      for (const auto& node : share) {
        try {
          run(node);  // leaves pending_ whatever happens
        } catch (const std::exception& e) {
          spdlog::error("cloudhub: node {}: lease renewal failed: {}", node, e.what());
        }
      }
    });
  }
}

void NodeLeases::run(const std::string& node) {
  // Whatever happens (a renewal that throws included), the node leaves pending_ when this ends
  // without another write due: else its later renewals would all be "coalesced" into nothing.
  struct Done {
    NodeLeases* self;
    const std::string& node;
    ~Done() {
      MutexLock lock(self->mu_);
      self->pending_.erase(node);
      if (self->pending_.empty()) self->idle_.notify_all();
    }
  } done{this, node};
  {
    MutexLock lock(mu_);
    pending_[node] = Write::kRunning;
  }
  for (;;) {
    auto r = renewNow(node);
    if (!r.isOk()) {
      failed_.fetch_add(1);
      spdlog::warn("cloudhub: node {}: lease not renewed: {}", node, r.status().toString());
    } else if (*r == Renewal::kLapsed && onLapsed_) {
      onLapsed_(node);
    }
    MutexLock lock(mu_);
    auto it = pending_.find(node);
    if (it == pending_.end() || it->second != Write::kAgain) return;
    it->second = Write::kRunning;  // renewed meanwhile: write once more, with the time of now
  }
}

void NodeLeases::drain() {
  MutexLock lock(mu_);
  lock.wait(idle_, [&]() EP_REQUIRES(mu_) { return pending_.empty(); });
}

void NodeLeases::forget(const std::string& node) {
  MutexLock lock(mu_);
  lastWritten_.erase(node);
}

void NodeLeases::remember(const std::string& node, const Json& lease) {
  std::string text = lease.dump();
  MutexLock lock(mu_);
  lastWritten_[node] = std::move(text);
}

Result<NodeLeases::Renewal> NodeLeases::renewNow(const std::string& node) {
  const int64_t nowMillis = clock_.nowMillis();
  const std::string now = formatRfc3339Micro(nowMillis);
  const int64_t seconds = leaseDuration_.count();
  // The Lease as this replica last wrote it: renewed without reading the store (the write is a
  // compare-and-swap on its resourceVersion). Anybody else's write since (another replica, a
  // user, the node controller's delete) fails it, and the Lease is read as below.
  std::string known;
  {
    MutexLock lock(mu_);
    if (auto it = lastWritten_.find(node); it != lastWritten_.end()) known = it->second;
  }
  if (!known.empty()) {
    Json current = Json::parse(known, nullptr, /*allow_exceptions=*/false);
    if (current.is_object()) {
      Json next = current;
      const bool lapsed = renewIn(next, node, seconds, nowMillis, now);
      auto updated =
          registry_.updateFrom(leaseKind(), kNodeLeaseNamespace, node, current, std::move(next));
      if (updated.isOk()) {
        remember(node, *updated);
        written_.fetch_add(1);
        return lapsed ? Renewal::kLapsed : Renewal::kRenewed;
      }
      if (updated.status().code() == Code::kUnavailable) return updated.status();
    }
    // Moved on (or, whatever else failed, the copy may be the cause): read it again.
    forget(node);
  }
  auto current = registry_.get(leaseKind(), kNodeLeaseNamespace, node);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (!current.isOk() && current.status().code() != Code::kNotFound) return current.status();
    if (!current.isOk()) {
      auto owner = registry_.get(nodeKind(), "", node);
      if (!owner.isOk()) {
        if (owner.status().code() == Code::kNotFound) return Renewal::kNoNode;
        return owner.status();
      }
      Json lease = {
          {"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata",
           {{"name", node},
            {"namespace", kNodeLeaseNamespace},
            {"ownerReferences", Json::array({{{"apiVersion", "v1"},
                                              {"kind", "Node"},
                                              {"name", node},
                                              {"uid", api::stringAt(*owner, "metadata.uid")}}})}}},
          {"spec",
           {{"holderIdentity", node}, {"leaseDurationSeconds", seconds}, {"renewTime", now}}}};
      auto created = registry_.create(leaseKind(), kNodeLeaseNamespace, std::move(lease));
      if (created.isOk()) {
        remember(node, *created);
        written_.fetch_add(1);
        return Renewal::kRenewed;
      }
      if (created.status().code() == Code::kNotFound && attempt == 0) {
        // kube-node-lease was deleted: made again, as Kubernetes' apiserver does.
        if (auto s = registry_.ensureSystemNamespaces(); !s.isOk()) return s;
        continue;  // `current` is still "not found"
      }
      if (created.status().code() != Code::kAlreadyExists) return created.status();
    } else {
      Json next = std::move(current.value());  // its resourceVersion makes the update a CAS
      const bool lapsed = renewIn(next, node, seconds, nowMillis, now);
      auto updated = registry_.update(leaseKind(), kNodeLeaseNamespace, node, std::move(next));
      if (updated.isOk()) {
        remember(node, *updated);
        written_.fetch_add(1);
        return lapsed ? Renewal::kLapsed : Renewal::kRenewed;
      }
      if (updated.status().code() != Code::kConflict &&
          updated.status().code() != Code::kNotFound) {
        return updated.status();
      }
    }
    current = registry_.get(leaseKind(), kNodeLeaseNamespace, node);
  }
  return Status(Code::kConflict, "too many conflicting writes of its lease");
}

}  // namespace ep::cloudhub
