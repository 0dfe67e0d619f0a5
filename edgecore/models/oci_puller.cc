#include "edgecore/models/oci_puller.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/digest/sha256.h"
#include "common/thread_annotations.h"

namespace ep::edgecore::models {
namespace {

using SteadyClock = std::chrono::steady_clock;

}  // namespace

OciPuller::OciPuller(OciPullerOptions options, std::unique_ptr<OciRegistry> registry,
                     ContentStore& store, std::function<void()> onChange)
    : options_(options),
      registry_(std::move(registry)),
      store_(store),
      onChange_(std::move(onChange)) {
  registry_->setCancel([this] { return cancel_.load(); });
}

OciPuller::~OciPuller() {
  stop();
}

void OciPuller::start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
    cancel_ = false;
  }
  worker_ = std::thread([this] { run(); });
}

void OciPuller::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
    cancel_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void OciPuller::want(std::vector<OciJob> jobs) {
  // What is on the node already (read outside mu_: it touches the disk).
  std::map<std::string, std::string> complete;  // key -> digest
  for (const auto& j : jobs) {
    if (auto r = store_.resolution(j.key); r && store_.complete(r->digest)) {
      complete[j.key] = r->digest;
    }
  }
  bool changed = false;
  {
    MutexLock l(mu_);
    std::map<std::string, Entry> next;
    for (auto& j : jobs) {
      auto it = entries_.find(j.key);
      Entry e;
      if (it != entries_.end()) {
        e = std::move(it->second);
        // New credentials (a fixed Secret) or a Secret back: tried at once.
        if (e.job.creds.username != j.creds.username || e.job.creds.password != j.creds.password ||
            e.job.creds.registryToken != j.creds.registryToken ||
            e.job.creds.identityToken != j.creds.identityToken || e.job.blocked != j.blocked) {
          e.retryAt = {};
          e.delay = {};
          changed = true;
        }
      } else {
        changed = true;
      }
      auto done = complete.find(j.key);
      const bool fresh = done != complete.end();
      changed = changed || fresh != e.fresh;
      e.fresh = fresh;
      if (fresh) e.digest = done->second;
      e.job = std::move(j);
      std::string key = e.job.key;
      next.emplace(std::move(key), std::move(e));
    }
    changed = changed || next.size() != entries_.size();
    entries_ = std::move(next);
  }
  if (changed) cv_.notify_all();
}

std::map<std::string, std::string> OciPuller::errors() const {
  std::map<std::string, std::string> out;
  MutexLock l(mu_);
  for (const auto& [key, e] : entries_) {
    if (!e.error.empty()) out[key] = e.error;
  }
  return out;
}

std::optional<OciProgress> OciPuller::progress() const {
  MutexLock l(mu_);
  return progress_;
}

std::set<std::string> OciPuller::digestsInUse() const {
  std::set<std::string> out;
  MutexLock l(mu_);
  if (progress_ && !progress_->digest.empty()) out.insert(progress_->digest);
  for (const auto& [key, e] : entries_) {
    if (!e.digest.empty()) out.insert(e.digest);
  }
  return out;
}

void OciPuller::run() {
  for (;;) {
    OciJob job;
    {
      MutexLock l(mu_);
      for (;;) {
        if (stopping_) return;
        const auto now = SteadyClock::now();
        auto wake = SteadyClock::time_point::max();
        Entry* pick = nullptr;
        for (auto& [key, e] : entries_) {
          if (e.fresh || !e.job.blocked.empty()) continue;
          if (e.retryAt > now) {
            wake = std::min(wake, e.retryAt);
            continue;
          }
          pick = &e;
          break;
        }
        if (pick) {
          job = pick->job;
          progress_ = OciProgress{job.url, "", 0, 0};
          break;
        }
        if (wake == SteadyClock::time_point::max()) {
          l.wait(cv_);
        } else {
          l.waitUntil(cv_, wake);
        }
      }
    }
    std::string digest;
    Status s;
    try {
      s = pull(job, &digest);
    } catch (const std::exception& e) {  // nothing may escape the thread
      s = internalError(e.what());
    }
    bool notify = false;
    {
      MutexLock l(mu_);
      progress_.reset();
      if (stopping_) return;
      auto it = entries_.find(job.key);
      if (it == entries_.end()) continue;  // no longer wanted
      Entry& e = it->second;
      if (!digest.empty()) e.digest = digest;
      if (s.isOk()) {
        e.fresh = true;
        e.delay = {};
        e.error.clear();
        notify = true;
      } else {
        e.delay = e.delay.count() == 0 ? options_.retryDelay
                                       : std::min(options_.maxRetryDelay, e.delay * 2);
        e.retryAt = SteadyClock::now() + e.delay;
        notify = e.error != s.message();
        e.error = s.message();
        spdlog::warn("models: {} ({}): {}; trying again in {} s", job.url, job.user, s.message(),
                     e.delay.count() / 1000);
      }
    }
    if (notify && onChange_) onChange_();
  }
}

Status OciPuller::pull(const OciJob& job, std::string* digest) {
  // Recorded and complete meanwhile: nothing to ask the registry.
  if (auto r = store_.resolution(job.key); r && store_.complete(r->digest)) {
    *digest = r->digest;
    return {};
  }
  auto artifact = registry_->resolve(job.ref, job.creds);
  if (!artifact.isOk()) return artifact.status();
  *digest = artifact->digest;
  {
    MutexLock l(mu_);
    if (progress_) {
      progress_->digest = artifact->digest;
      progress_->size = artifact->size;
    }
  }
  if (!store_.complete(artifact->digest)) {
    if (auto s = download(job, *artifact); !s.isOk()) return s;
    spdlog::info("models: {} ({} bytes, {}) pulled and verified from {}", artifact->digest,
                 artifact->size, job.user, job.url);
  }
  auto previous = store_.resolution(job.key);
  OciResolution r{job.key,        job.url,        artifact->digest,
                  artifact->file, artifact->size, artifact->manifestDigest};
  if (previous && previous->digest == r.digest && previous->file == r.file &&
      previous->manifestDigest == r.manifestDigest) {
    return {};
  }
  return store_.putResolution(r);
}

Status OciPuller::download(const OciJob& job, const OciArtifact& a) {
  auto hash = std::make_unique<digest::Sha256>();
  uint64_t written = store_.partialSize(a.digest);
  if (written > a.size) {
    store_.removePartial(a.digest);
    written = 0;
  }
  if (written > 0) {
    uint64_t hashed = 0;
    if (!store_.hashPartial(a.digest, *hash, &hashed).isOk() || hashed != written) {
      store_.removePartial(a.digest);
      hash = std::make_unique<digest::Sha256>();
      written = 0;
    } else {
      spdlog::info("models: resuming {} from {} at {} bytes", a.digest, job.url, written);
    }
  }
  uint64_t unsynced = 0;
  uint64_t paced = 0;  // bytes counted against the bandwidth limit in this transfer
  const auto started = SteadyClock::now();
  const double rate = static_cast<double>(options_.bandwidthBytesPerSecond);
  auto onData = [&](uint64_t position, std::string_view bytes) -> Status {
    if (position == 0 && written > 0) {
      // The registry ignored the Range: start over with what it sends.
      store_.removePartial(a.digest);
      hash = std::make_unique<digest::Sha256>();
      written = 0;
    }
    if (position < written) {
      // A range starting before what is on disk: skip what we have.
      const uint64_t have = written - position;
      if (have >= bytes.size()) return {};
      bytes.remove_prefix(static_cast<size_t>(have));
      position = written;
    }
    if (position != written) {
      return invalidError("the registry sent bytes from " + std::to_string(position) +
                          ", expected " + std::to_string(written));
    }
    if (written + bytes.size() > a.size) {
      return invalidError("the blob is larger than the " + std::to_string(a.size) +
                          " bytes its manifest says");
    }
    unsynced += bytes.size();
    const bool last = written + bytes.size() == a.size;
    const bool sync = last || unsynced >= options_.syncEveryBytes;
    if (auto s = store_.appendPartial(a.digest, written, bytes, sync); !s.isOk()) return s;
    if (sync) unsynced = 0;
    hash->update(bytes);
    written += bytes.size();
    paced += bytes.size();
    MutexLock l(mu_);
    if (progress_) progress_->bytes = written;
    if (!entries_.count(job.key)) return unavailableError("no longer wanted; download paused");
    if (rate > 0) {
      const auto due = started + std::chrono::duration_cast<SteadyClock::duration>(
                                     std::chrono::duration<double>(paced / rate));
      l.waitUntil(cv_, due, [this]() EP_REQUIRES(mu_) { return stopping_; });
    }
    if (stopping_) return unavailableError("edgecore is stopping");
    return {};
  };
  if (written < a.size) {
    if (auto s = registry_->fetch(job.ref, job.creds, a, written, onData); !s.isOk()) return s;
  }
  if (written != a.size) {
    return invalidError("the registry sent " + std::to_string(written) + " of the blob's " +
                        std::to_string(a.size) + " bytes");
  }
  if (a.size == 0) {
    if (auto s = store_.appendPartial(a.digest, 0, ""); !s.isOk()) return s;
  }
  return store_.finish(a.digest, hash->finish());
}

}  // namespace ep::edgecore::models
