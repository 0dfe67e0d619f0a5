#include "edgecore/models/model_fetcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "common/api/models.h"
#include "common/api/object_util.h"
#include "common/api/registry_auth.h"
#include "common/api/upgrades.h"
#include "common/digest/sha256.h"
#include "common/thread_annotations.h"
#include "proto/tunnel.pb.h"

namespace ep::edgecore::models {
namespace {

namespace tv1 = edgeplane::tunnel::v1;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kGcInterval = std::chrono::seconds(60);
constexpr auto kStatusInterval = std::chrono::milliseconds(250);

// An api::ociPullKey as /status and logs show it: "URL (namespace NS, secret S)".
std::string displayKey(const std::string& key) {
  const auto a = key.find('\n');
  const auto b = a == std::string::npos ? a : key.find('\n', a + 1);
  if (b == std::string::npos) return key;
  const std::string cred = key.substr(a + 1, b - a - 1);
  return key.substr(b + 1) + " (namespace " + key.substr(0, a) +
         (cred.empty() ? "" : ", secret " + cred) + ")";
}

}  // namespace

ModelFetcher::ModelFetcher(ModelFetcherOptions options, metamanager::CacheReader& cache,
                           metamanager::Outbox& outbox, ContentStore& store,
                           std::function<void()> onAvailable, std::unique_ptr<OciRegistry> registry)
    : options_(options),
      cache_(cache),
      outbox_(outbox),
      store_(store),
      onAvailable_(std::move(onAvailable)) {
  if (registry) {
    OciPullerOptions o;
    o.bandwidthBytesPerSecond = options_.bandwidthBytesPerSecond;
    o.syncEveryBytes = options_.syncEveryBytes;
    o.retryDelay = options_.retryDelay;
    oci_ = std::make_unique<OciPuller>(o, std::move(registry), store_, [this] {
      {
        MutexLock l(mu_);
        ociChanged_ = true;
        dirty_ = true;
      }
      cv_.notify_all();
    });
  }
}

ModelFetcher::~ModelFetcher() {
  stop();
}

Status ModelFetcher::start() {
  if (auto s = store_.start(); !s.isOk()) return s;
  auto wake = [this] {
    {
      MutexLock l(mu_);
      dirty_ = true;
    }
    cv_.notify_all();
  };
  podSub_ = cache_.subscribe("pods", "");
  modelSub_ = cache_.subscribe(api::kModelResource, "");
  podSub_->setNotify(wake);
  modelSub_->setNotify(wake);
  upgradeJobSub_ = cache_.subscribe(api::kNodeUpgradeJobResource, "");
  releaseSub_ = cache_.subscribe(api::kEdgecoreReleaseResource, "");
  upgradeJobSub_->setNotify(wake);
  releaseSub_->setNotify(wake);
  if (oci_) {
    // A Secret named by a Model's spec.credentialName may arrive after the Model, or change.
    secretSub_ = cache_.subscribe("secrets", "");
    secretSub_->setNotify(wake);
  }
  {
    MutexLock l(mu_);
    stopping_ = false;
    dirty_ = true;
  }
  if (oci_) oci_->start();
  worker_ = std::thread([this] { run(); });
  return {};
}

void ModelFetcher::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (oci_) oci_->stop();
  for (auto* sub : {&podSub_, &modelSub_, &secretSub_}) {
    if (*sub) (*sub)->stop();
    sub->reset();
  }
}

void ModelFetcher::onTunnelUp(edgehub::StreamSender send) {
  {
    MutexLock l(mu_);
    sender_ = std::move(send);
    ++tunnelGen_;
  }
  cv_.notify_all();
}

void ModelFetcher::onTunnelDown() {
  {
    MutexLock l(mu_);
    sender_ = nullptr;
    ++tunnelGen_;
  }
  cv_.notify_all();
}

void ModelFetcher::onBlobChunk(tv1::BlobChunk&& chunk) {
  {
    MutexLock l(mu_);
    // At most `window` answers are outstanding; anything beyond is unsolicited: drop it.
    if (chunks_.size() >= options_.window * 2 + 8) return;
    chunks_.push_back(std::move(chunk));
  }
  cv_.notify_all();
}

ModelFetcherStats ModelFetcher::stats() const {
  return {chunksReceived_.load(), bytesReceived_.load(),      duplicateBytes_.load(),
          chunksRejected_.load(), downloadsCompleted_.load(), downloadsFailed_.load(),
          errorAnswers_.load(),   busyAnswers_.load()};
}

Json ModelFetcher::statusJson() const {
  Json out;
  {
    MutexLock l(mu_);
    out = status_;
  }
  auto s = stats();
  out["stats"] = {{"chunksReceived", s.chunksReceived},
                  {"bytesReceived", s.bytesReceived},
                  {"duplicateBytes", s.duplicateBytes},
                  {"chunksRejected", s.chunksRejected},
                  {"downloadsCompleted", s.downloadsCompleted},
                  {"downloadsFailed", s.downloadsFailed},
                  {"errorAnswers", s.errorAnswers}};
  return out;
}

void ModelFetcher::run() {
  if (!verified_) {
    // Data at rest is checked once per start: a corrupted file is removed and fetched again.
    for (const auto& d : store_.completeDigests()) {
      if (auto s = store_.verify(d); !s.isOk()) spdlog::error("models: {}", s.message());
    }
    verified_ = true;
  }
  auto next = SteadyClock::now();
  for (;;) {
    std::deque<tv1::BlobChunk> chunks;
    bool dirty = false;
    bool ociChanged = false;
    uint64_t gen = 0;
    edgehub::StreamSender send;  // of connection `gen`: requests go out only on what was seen
    {
      MutexLock l(mu_);
      l.waitUntil(cv_, next, [this]() EP_REQUIRES(mu_) {
        return stopping_ || dirty_ || !chunks_.empty() || tunnelGen_ != seenGen_;
      });
      if (stopping_) return;
      chunks.swap(chunks_);
      dirty = dirty_;
      dirty_ = false;
      ociChanged = ociChanged_;
      ociChanged_ = false;
      gen = tunnelGen_;
      send = sender_;
    }
    try {
      if (dirty || gen != seenGen_ || !chunks.empty()) statusDue_ = true;
      if (dirty) {
        while (podSub_ && !podSub_->poll(256).empty()) {
        }
        while (modelSub_ && !modelSub_->poll(256).empty()) {
        }
        while (secretSub_ && !secretSub_->poll(256).empty()) {
        }
        while (upgradeJobSub_ && !upgradeJobSub_->poll(256).empty()) {
        }
        while (releaseSub_ && !releaseSub_->poll(256).empty()) {
        }
        recompute();
      }
      // A file pulled from a registry: edged switches the volumes that wait for it.
      if (ociChanged && onAvailable_) onAvailable_();
      if (gen != seenGen_) {
        seenGen_ = gen;
        // Requests on the old connection are lost; ask again from what is on disk.
        if (active_) restartActive("");
      }
      for (auto& c : chunks) handleChunk(c);
      const auto now = SteadyClock::now();
      if (active_) {
        for (const auto& [id, sent] : active_->inflight) {
          if (now - sent.second > options_.requestTimeout) {
            restartActive("no answer within " +
                          std::to_string(options_.requestTimeout.count() / 1000) + " s");
            break;
          }
        }
      }
      pickNext(now);
      next = sendRequests(now, send);
      if (now - lastGc_ > kGcInterval) collectGarbage();
      // Reports and /status follow events, at most every kStatusInterval: a download's stream of
      // chunks does not list the store for each one.
      if (statusDue_ && now - lastStatus_ >= kStatusInterval) {
        statusDue_ = false;
        lastStatus_ = now;
        reportStates();
        publishStatus();
      } else if (statusDue_) {
        next = std::min(next, lastStatus_ + kStatusInterval);
      }
    } catch (const std::exception& e) {  // nothing may escape the thread
      spdlog::error("models: {}", e.what());
      next = SteadyClock::now() + options_.retryDelay;
    }
  }
}

void ModelFetcher::publishStatus() {
  Json downloads = Json::array();
  if (active_) {
    downloads.push_back(
        {{"digest", active_->digest},
         {"model", active_->want.release.empty() ? active_->want.ns + "/" + active_->want.model
                                                 : "edgecore " + active_->want.release},
         {"version", active_->want.version},
         {"bytes", active_->written},
         {"size", active_->size}});
  }
  if (oci_) {
    if (auto p = oci_->progress()) {
      downloads.push_back(
          {{"url", p->url}, {"digest", p->digest}, {"bytes", p->bytes}, {"size", p->size}});
    }
  }
  Json errors = Json::object();
  for (const auto& [d, e] : errors_) errors[d] = e.first;
  if (oci_) {
    for (const auto& [key, why] : oci_->errors()) errors[displayKey(key)] = why;
  }
  for (const auto& [m, why] : problems_) errors[m] = why;
  Json have = Json::array();
  for (const auto& d : store_.completeDigests()) have.push_back(d);
  MutexLock l(mu_);
  status_ = {{"downloading", std::move(downloads)},
             {"complete", std::move(have)},
             {"errors", std::move(errors)}};
}

void ModelFetcher::recompute() {
  std::map<std::string, Want> wanted;
  std::map<std::string, std::string> problems;
  std::map<std::string, Usage> usage;
  std::map<std::string, OciJob> jobs;
  auto pods = cache_.list("pods", "");
  if (!pods.isOk()) {
    spdlog::warn("models: cannot read pods from the cache: {}", pods.status().message());
    return;
  }
  for (const auto& pod : *pods) {
    const std::string ns = api::stringAt(pod, "metadata.namespace");
    for (const auto& v : api::modelVolumes(pod)) {
      if (v.model.empty()) continue;
      const std::string key = ns + "/" + v.model;
      Usage& u = usage[key];
      u.ns = ns;
      u.model = v.model;
      u.pods += 1;
      auto model = cache_.get(api::kModelResource, ns, v.model);
      if (!model.isOk()) {
        problems[key] = u.problem = "model " + key + " is not on this node (yet)";
        continue;
      }
      u.versions.clear();
      const std::string cred = api::modelCredentialName(model->object);
      for (const auto& h : api::modelHistory(model->object)) {
        if (!h.digest.empty()) u.versions.emplace_back(h.version, h.digest);
        if (auto r = h.oci ? store_.resolution(api::ociPullKey(ns, cred, h.url)) : std::nullopt) {
          u.versions.emplace_back(h.version, r->digest);
        }
      }
      auto version = api::resolveModelVersionForNode(model->object, v.version, options_.nodeName);
      if (!version.isOk()) {
        problems[key] = u.problem = version.status().message();
        continue;
      }
      u.version = version->version;
      if (version->oci) {
        u.ociUrl = version->url;
        u.ociKey = api::ociPullKey(ns, cred, version->url);
        if (auto r = store_.resolution(u.ociKey); r && store_.complete(r->digest)) {
          u.digest = r->digest;
        }
        if (!oci_) {
          problems[key] = u.problem =
              "spec.url: pulling from OCI registries is not enabled on this node";
          continue;
        }
        OciJob job;
        job.key = u.ociKey;
        job.url = version->url;
        job.ref = *api::parseOciUrl(version->url);
        // Secrets match the registry as docker config keys do (docker.io's other names).
        job.creds = credentialsFor(model->object, ns, api::registryHostOfAuthKey(job.ref.registry),
                                   &job.blocked);
        // A missing Secret keeps the pull wanted (what it has stays; nothing is collected) but
        // not attempted.
        if (!job.blocked.empty()) problems[key] = u.problem = job.blocked;
        job.user = key + " version " + version->version;
        jobs.emplace(job.key, std::move(job));
        continue;
      }
      u.digest = version->digest;
      wanted.emplace(version->digest, Want{ns, v.model, version->version, ""});
    }
  }
  // The edgecore binary of a NodeUpgradeJob upgrading this node (docs/upgrades.md): the cloud
  // sends the job and its EdgecoreRelease only while it does.
  if (auto upgradeJobs = cache_.list(api::kNodeUpgradeJobResource, ""); upgradeJobs.isOk()) {
    for (const auto& job : *upgradeJobs) {
      const auto nodes = api::upgradingNodesOf(job);
      if (std::find(nodes.begin(), nodes.end(), options_.nodeName) == nodes.end()) continue;
      const std::string version = api::stringAt(job, "spec.version");
      auto release = cache_.get(api::kEdgecoreReleaseResource, "", version);
      if (!release.isOk()) continue;
      if (auto bin = api::releaseBinaryFor(release->object, options_.architecture)) {
        wanted.emplace(bin->digest, Want{"", "", version, version});
      }
    }
  }
  wanted_ = std::move(wanted);
  problems_ = std::move(problems);
  usage_ = std::move(usage);
  if (oci_) {
    std::vector<OciJob> list;
    for (auto& [k, job] : jobs) list.push_back(std::move(job));
    oci_->want(std::move(list));
  }
  if (active_ && !wanted_.count(active_->digest)) {
    spdlog::info("models: {} is no longer wanted; download paused", active_->digest);
    active_.reset();
  }
}

RegistryCredentials ModelFetcher::credentialsFor(const Json& model, const std::string& ns,
                                                 const std::string& registry, std::string* why) {
  RegistryCredentials c;
  const std::string name = api::modelCredentialName(model);
  if (name.empty()) return c;
  auto secret = cache_.get("secrets", ns, name);
  if (!secret.isOk()) {
    *why = "spec.credentialName: secret " + ns + "/" + name + " is not on this node (yet)";
    return c;
  }
  auto auth = api::registryAuthFor(secret->object, registry);
  if (!auth) {
    *why = "spec.credentialName: secret " + ns + "/" + name + " holds no credentials for " +
           registry + " (kubernetes.io/dockerconfigjson or kubernetes.io/basic-auth)";
    return c;
  }
  if (!auth->basic(&c.username, &c.password)) {
    c.username.clear();
    c.password.clear();
  }
  c.identityToken = auth->identityToken;
  c.registryToken = auth->registryToken;
  if (c.empty())
    *why = "spec.credentialName: secret " + ns + "/" + name + " has an empty entry for " + registry;
  return c;
}

void ModelFetcher::reportStates() {
  std::map<std::string, std::string> now;
  const auto ociErrors = oci_ ? oci_->errors() : std::map<std::string, std::string>{};
  for (const auto& [key, u] : usage_) {
    Json s = {{"pods", u.pods}};
    if (!u.version.empty()) s["version"] = u.version;
    if (!u.digest.empty()) s["digest"] = u.digest;
    Json have = Json::array();
    for (const auto& [v, d] : u.versions) {
      if (store_.complete(d)) have.push_back(v);
    }
    s["have"] = std::move(have);
    if (!u.problem.empty() && !u.digest.empty() && store_.complete(u.digest)) {
      s["state"] = "Ready";  // serving what it has, though it cannot pull (e.g. no Secret)
      s["error"] = u.problem;
    } else if (!u.problem.empty()) {
      s["state"] = "Waiting";
      s["error"] = u.problem;
    } else if (store_.complete(u.digest)) {
      s["state"] = "Ready";
    } else if (auto o = ociErrors.find(u.ociKey); !u.ociKey.empty() && o != ociErrors.end()) {
      s["state"] = "Failed";
      s["error"] = o->second;
    } else if (auto e = errors_.find(u.digest); e != errors_.end()) {
      s["state"] = "Failed";
      s["error"] = e->second.first;
    } else {
      s["state"] = "Downloading";
    }
    now[key] = s.dump();
  }
  for (const auto& [key, payload] : reported_) {
    if (!now.count(key)) now[key] = Json{{"state", "Unused"}}.dump();
  }
  for (const auto& [key, payload] : now) {
    auto it = reported_.find(key);
    if (it != reported_.end() && it->second == payload) continue;
    const auto slash = key.find('/');
    auto seq = outbox_.enqueue(tv1::REPORT_KIND_MODEL_STATUS, key.substr(0, slash),
                               key.substr(slash + 1), payload);
    if (!seq.isOk()) {
      spdlog::warn("models: status of {} not queued: {}", key, seq.status().message());
      continue;  // tried again next pass
    }
    if (payload.find("\"Unused\"") != std::string::npos) {
      reported_.erase(key);
    } else {
      reported_[key] = payload;
    }
  }
}

void ModelFetcher::collectGarbage() {
  lastGc_ = SteadyClock::now();
  auto models = cache_.list(api::kModelResource, "");
  if (!models.isOk()) return;
  std::set<std::string> keep;
  std::set<std::string> keys;  // pulls of oci:// urls cached Models refer to
  for (const auto& m : *models) {
    for (const auto& d : api::modelDigests(m)) keep.insert(d);
    const std::string ns = api::stringAt(m, "metadata.namespace");
    const std::string cred = api::modelCredentialName(m);
    for (const auto& u : api::modelOciUrls(m)) keys.insert(api::ociPullKey(ns, cred, u));
  }
  for (const auto& [d, w] : wanted_) keep.insert(d);
  for (const auto& r : store_.resolutions()) {
    if (keys.count(r.key)) {
      keep.insert(r.digest);
    } else {
      spdlog::info("models: forgetting {} (no Model on this node refers to it)", displayKey(r.key));
      store_.removeResolution(r.key);
    }
  }
  const auto ociInUse = oci_ ? oci_->digestsInUse() : std::set<std::string>{};
  keep.insert(ociInUse.begin(), ociInUse.end());
  for (const auto& d : store_.completeDigests()) {
    if (!keep.count(d)) {
      spdlog::info("models: removing {} (no Model on this node refers to it)", d);
      store_.remove(d);
    }
  }
  for (const auto& d : store_.partialDigests()) {
    if (!wanted_.count(d) && !ociInUse.count(d) && !(active_ && active_->digest == d)) {
      store_.removePartial(d);
    }
  }
}

void ModelFetcher::restartActive(const std::string& why) {
  if (!active_) return;
  if (!why.empty()) spdlog::warn("models: {}: {}; asking again", active_->digest, why);
  active_->inflight.clear();
  active_->pending.clear();
  active_->retry.clear();
  active_->written = store_.partialSize(active_->digest);
  active_->next = active_->written;
}

void ModelFetcher::fail(const std::string& digest, const std::string& why, bool quiet) {
  if (!quiet) spdlog::warn("models: {}: {}", digest, why);
  errors_[digest] = {why, SteadyClock::now() + options_.retryDelay};
  if (active_ && active_->digest == digest) active_.reset();
}

void ModelFetcher::handleChunk(tv1::BlobChunk& c) {
  if (!active_ || c.digest() != active_->digest) return;  // a stale answer
  auto it = active_->inflight.find(c.id());
  if (it == active_->inflight.end()) return;  // from an old connection or a reset
  const uint64_t offset = it->second.first;
  active_->inflight.erase(it);
  if (!c.error().empty()) {
    ++errorAnswers_;
    if (c.busy() && offset >= active_->written) {
      // The cloud is busy (its queue or this node's share is full): only this chunk is asked
      // again, shortly; the download goes on.
      ++busyAnswers_;
      active_->retry.insert(offset);
      active_->retryAt = SteadyClock::now() + options_.busyRetryDelay;
      return;
    }
    const bool known = errors_.count(active_->digest) > 0;
    fail(active_->digest, "cloud: " + c.error(), known);
    return;
  }
  const uint64_t size = c.blob_size();
  const uint64_t expect =
      offset < size ? std::min<uint64_t>(api::kBlobChunkBytes, size - offset) : 0;
  if (c.offset() != offset || c.data().size() != expect ||
      digest::sha256Of(c.data()) != c.chunk_sha256() ||
      (active_->sizeKnown && size != active_->size)) {
    ++chunksRejected_;
    restartActive("chunk at " + std::to_string(offset) + " failed its check");
    return;
  }
  active_->size = size;
  active_->sizeKnown = true;
  ++chunksReceived_;
  if (offset < active_->written) {
    duplicateBytes_ += c.data().size();
    return;
  }
  bytesReceived_ += c.data().size();
  active_->pending[offset] = std::move(*c.mutable_data());
  while (!active_->pending.empty() && active_->pending.begin()->first == active_->written) {
    auto first = active_->pending.begin();
    active_->unsynced += first->second.size();
    const bool last = active_->written + first->second.size() == active_->size;
    const bool sync = last || active_->unsynced >= options_.syncEveryBytes;
    if (auto s = store_.appendPartial(active_->digest, active_->written, first->second, sync);
        !s.isOk()) {
      fail(active_->digest, s.message());
      return;
    }
    if (sync) active_->unsynced = 0;
    active_->hash->update(first->second);
    active_->written += first->second.size();
    active_->pending.erase(first);
  }
  if (active_->written == active_->size) {
    if (active_->size == 0) (void)store_.appendPartial(active_->digest, 0, "");
    const std::string digest = active_->digest;
    if (auto s = store_.finish(digest, active_->hash->finish()); !s.isOk()) {
      ++downloadsFailed_;
      fail(digest, s.message());
      return;
    }
    ++downloadsCompleted_;
    if (active_->want.release.empty()) {
      spdlog::info("models: {} ({} bytes, model {}/{} version {}) downloaded and verified", digest,
                   active_->size, active_->want.ns, active_->want.model, active_->want.version);
    } else {
      spdlog::info("models: {} ({} bytes, edgecore {}) downloaded and verified", digest,
                   active_->size, active_->want.release);
    }
    errors_.erase(digest);
    active_.reset();
    if (onAvailable_) onAvailable_();
  }
}

void ModelFetcher::pickNext(SteadyClock::time_point now) {
  if (active_) return;
  for (const auto& [digest, want] : wanted_) {
    if (store_.complete(digest)) continue;
    if (auto e = errors_.find(digest); e != errors_.end() && e->second.second > now) continue;
    active_ = std::make_unique<Download>();
    active_->digest = digest;
    active_->want = want;
    active_->written = store_.partialSize(digest);
    active_->next = active_->written;
    active_->hash = std::make_unique<digest::Sha256>();
    if (active_->written > 0) {
      // The running digest starts from what is on disk (read once, in blocks).
      uint64_t hashed = 0;
      if (!store_.hashPartial(digest, *active_->hash, &hashed).isOk() ||
          hashed != active_->written) {
        store_.removePartial(digest);
        active_->hash = std::make_unique<digest::Sha256>();
        active_->written = active_->next = 0;
      } else {
        spdlog::info("models: resuming {} at {} bytes", digest, active_->written);
      }
    }
    return;
  }
}

SteadyClock::time_point ModelFetcher::sendRequests(SteadyClock::time_point now,
                                                   const edgehub::StreamSender& send) {
  SteadyClock::time_point wakeAt = now + std::chrono::seconds(1);
  for (const auto& [d, e] : errors_) wakeAt = std::min(wakeAt, std::max(now, e.second));
  if (!active_) return wakeAt;
  if (!send) return wakeAt;  // offline: keep what we have
  const double rate = static_cast<double>(options_.bandwidthBytesPerSecond);
  const double burst = std::max<double>(api::kBlobChunkBytes, rate);
  if (rate > 0) {
    if (lastRefill_ == SteadyClock::time_point{}) {
      lastRefill_ = now;
      tokens_ = api::kBlobChunkBytes;
    }
    tokens_ =
        std::min(burst, tokens_ + rate * std::chrono::duration<double>(now - lastRefill_).count());
    lastRefill_ = now;
  }
  // Until the first answer tells the size, one request at a time.
  const size_t window = active_->sizeKnown ? std::max<size_t>(options_.window, 1) : 1;
  auto sendOne = [&](uint64_t offset) {
    tv1::EdgeMessage m;
    auto* r = m.mutable_blob_request();
    const uint64_t id = nextId_++;
    r->set_id(id);
    r->set_digest(active_->digest);
    r->set_offset(offset);
    r->set_length(api::kBlobChunkBytes);
    r->set_namespace_(active_->want.ns);
    r->set_model(active_->want.model);
    r->set_release(active_->want.release);
    if (!send(std::move(m))) return false;  // the connection went away; onTunnelDown follows
    if (rate > 0) tokens_ -= api::kBlobChunkBytes;
    active_->inflight[id] = {offset, now};
    return true;
  };
  while (active_->inflight.size() < window) {
    const bool retryDue = !active_->retry.empty() && now >= active_->retryAt;
    if (!retryDue && active_->sizeKnown && active_->next >= active_->size) break;
    if (rate > 0 && tokens_ < api::kBlobChunkBytes) {
      const double wait = (api::kBlobChunkBytes - tokens_) / rate;
      return std::min(wakeAt, now + std::chrono::duration_cast<SteadyClock::duration>(
                                        std::chrono::duration<double>(wait)));
    }
    if (retryDue) {
      const uint64_t offset = *active_->retry.begin();
      active_->retry.erase(active_->retry.begin());
      if (!sendOne(offset)) return wakeAt;
      continue;
    }
    if (!sendOne(active_->next)) return wakeAt;
    active_->next += api::kBlobChunkBytes;
  }
  if (!active_->retry.empty()) wakeAt = std::min(wakeAt, std::max(now, active_->retryAt));
  return std::min(wakeAt, now + options_.requestTimeout);
}

}  // namespace ep::edgecore::models
