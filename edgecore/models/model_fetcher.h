#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "common/digest/sha256.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/edgehub/stream_handler.h"
#include "edgecore/metamanager/cache.h"
#include "edgecore/models/content_store.h"
#include "edgecore/models/oci_puller.h"

namespace ep::edgecore::models {

struct ModelFetcherOptions {
  std::string nodeName;  // staged rollouts name the nodes that get a new version
  // GOARCH name of this node (amd64, arm64, ...): which binary of an EdgecoreRelease it fetches.
  std::string architecture;
  // Per-node bandwidth limit for model downloads, bytes per second; 0 = none (edgecore's
  // modelBandwidthLimit).
  uint64_t bandwidthBytesPerSecond = 0;
  size_t window = 16;  // chunk requests in flight (16 x 256 KiB = 4 MiB)
  // The partial file is made durable every this many bytes (and at the end).
  uint64_t syncEveryBytes = 8u << 20;
  std::chrono::milliseconds requestTimeout{30000};  // no answer: ask again
  std::chrono::milliseconds retryDelay{5000};       // after an error answer or a bad download
  // A chunk the cloud answered "busy" for (retryable: its per-node share or queue is full) is
  // asked for again after this long; the rest of the download goes on.
  std::chrono::milliseconds busyRetryDelay{200};
};

// Counters for /status and tests. Monotonic since start().
struct ModelFetcherStats {
  uint64_t chunksReceived = 0;
  uint64_t bytesReceived = 0;   // payload bytes of accepted chunks
  uint64_t duplicateBytes = 0;  // payload bytes received a second time (resent)
  uint64_t chunksRejected = 0;  // payload not matching its chunk digest, or the wrong size
  uint64_t downloadsCompleted = 0;
  uint64_t downloadsFailed = 0;  // whole-file digest mismatch (fetched again)
  uint64_t errorAnswers = 0;     // BlobChunks carrying an error
  uint64_t busyAnswers = 0;      // of which retryable ("busy"): only that chunk is asked again
};

// Brings the model files this node's pods use into the ContentStore (docs/models.md): from the
// edge cache it computes which blobs are wanted (each pod's models.edgeplane.io volumes -> the
// Model -> the version's digest), then fetches each missing one over the tunnel in 256 KiB
// chunks, `window` requests in flight, paced by the bandwidth limit. Every chunk is checked
// against the digest the cloud's chunk index gives for it, written in order and made durable, so
// after a disconnect or a restart the download resumes from what the partial file holds; the
// whole file is checked against the Model's digest before it becomes visible (ContentStore).
// When a file completes `onAvailable` is called, and edged switches the volumes. Offline it
// does nothing and keeps what it has. Files no cached Model refers to are removed. Models whose
// url is an oci:// artifact are handed to an OciPuller (over `registry`, with the credentials of
// the Secret spec.credentialName names) instead of the tunnel; without a registry client they
// wait with a reason.
//
// Threads: one worker owns all download state and does every disk write; the tunnel's
// callbacks only queue (chunks are bounded by the request window). start()/stop() from one
// owner thread; stats()/statusJson() are thread-safe.
class ModelFetcher final : public edgehub::BlobHandler {
 public:
  ModelFetcher(ModelFetcherOptions options, metamanager::CacheReader& cache,
               metamanager::Outbox& outbox, ContentStore& store, std::function<void()> onAvailable,
               std::unique_ptr<OciRegistry> registry = nullptr);
  ~ModelFetcher() override;
  ModelFetcher(const ModelFetcher&) = delete;
  ModelFetcher& operator=(const ModelFetcher&) = delete;

  Status start();
  void stop();

  void onTunnelUp(edgehub::StreamSender send) override;
  void onBlobChunk(edgeplane::tunnel::v1::BlobChunk&& chunk) override;
  void onTunnelDown() override;

  ModelFetcherStats stats() const;
  nlohmann::json statusJson() const;

 private:
  struct Want {
    std::string ns;
    std::string model;
    std::string version;
    std::string release;  // an edgecore binary (docs/upgrades.md) instead of ns/model
  };
  struct Download {
    std::string digest;
    Want want;
    uint64_t written = 0;  // bytes in the partial file
    uint64_t next = 0;     // next offset to ask for
    uint64_t size = 0;     // known after the first answer
    bool sizeKnown = false;
    std::map<uint64_t, std::pair<uint64_t, std::chrono::steady_clock::time_point>>
        inflight;                             // request id -> (offset, sent at)
    std::map<uint64_t, std::string> pending;  // offset -> data received ahead of `written`
    std::set<uint64_t> retry;                 // offsets the cloud was busy for: ask again
    std::chrono::steady_clock::time_point retryAt{};
    std::unique_ptr<digest::Sha256> hash;  // of the `written` bytes, in order
    uint64_t unsynced = 0;                 // bytes written since the last fdatasync
  };

  // One Model used by this node's pods.
  struct Usage {
    std::string ns;
    std::string model;
    std::string version;  // what the pods resolve to
    std::string digest;   // "" when it cannot be fetched (problem says why) or is not pulled yet
    std::string problem;
    std::string ociUrl;  // the version's oci:// url, "" for a pushed version
    std::string ociKey;  // api::ociPullKey of that pull
    uint64_t pods = 0;
    std::vector<std::pair<std::string, std::string>> versions;  // (version, digest) of the Model
  };

  void run();
  void recompute();
  // The credentials the Model's spec.credentialName Secret holds for `registry`; "" or a
  // problem in *why.
  RegistryCredentials credentialsFor(const nlohmann::json& model, const std::string& ns,
                                     const std::string& registry, std::string* why);
  // Puts this node's state of every used Model (and "Unused" for ones no longer used) in the
  // outbox when it changed (REPORT_KIND_MODEL_STATUS).
  void reportStates();
  // Rebuilds statusJson()'s answer (lists the content store).
  void publishStatus();
  void collectGarbage();
  void handleChunk(edgeplane::tunnel::v1::BlobChunk& chunk);
  void restartActive(const std::string& why);
  void pickNext(std::chrono::steady_clock::time_point now);
  // Sends requests while the window, the size and the bandwidth allow; returns when to come back.
  // Only on `send`, the sender of the connection whose generation this pass observed.
  std::chrono::steady_clock::time_point sendRequests(std::chrono::steady_clock::time_point now,
                                                     const edgehub::StreamSender& send);
  void fail(const std::string& digest, const std::string& why, bool quiet = false);

  const ModelFetcherOptions options_;
  metamanager::CacheReader& cache_;
  metamanager::Outbox& outbox_;
  ContentStore& store_;
  const std::function<void()> onAvailable_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  bool dirty_ EP_GUARDED_BY(mu_) = true;             // cache changed
  edgehub::StreamSender sender_ EP_GUARDED_BY(mu_);  // empty when down
  uint64_t tunnelGen_ EP_GUARDED_BY(mu_) = 0;
  std::deque<edgeplane::tunnel::v1::BlobChunk> chunks_ EP_GUARDED_BY(mu_);
  nlohmann::json status_ EP_GUARDED_BY(mu_) = nlohmann::json::object();
  std::shared_ptr<metamanager::Subscription> podSub_;
  std::shared_ptr<metamanager::Subscription> modelSub_;
  std::shared_ptr<metamanager::Subscription> secretSub_;
  std::shared_ptr<metamanager::Subscription> upgradeJobSub_;  // NodeUpgradeJobs
  std::shared_ptr<metamanager::Subscription> releaseSub_;     // EdgecoreReleases
  bool ociChanged_ EP_GUARDED_BY(mu_) = false;  // the puller completed a file or its errors changed
  std::unique_ptr<OciPuller> oci_;              // null without a registry client

  // Worker-only state.
  std::map<std::string, Want> wanted_;  // digest -> first user
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>>
      errors_;                                   // digest -> (why, retry after)
  std::map<std::string, std::string> problems_;  // "ns/model" -> why it cannot be fetched
  std::map<std::string, Usage> usage_;           // "ns/model" -> usage
  std::map<std::string, std::string> reported_;  // "ns/model" -> last payload put in the outbox
  std::unique_ptr<Download> active_;
  uint64_t seenGen_ = 0;
  uint64_t nextId_ = 1;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point lastRefill_{};
  std::chrono::steady_clock::time_point lastGc_{};
  bool verified_ = false;
  bool statusDue_ = true;  // something changed since the last report and /status
  std::chrono::steady_clock::time_point lastStatus_{};

  std::atomic<uint64_t> chunksReceived_{0}, bytesReceived_{0}, duplicateBytes_{0},
      chunksRejected_{0}, downloadsCompleted_{0}, downloadsFailed_{0}, errorAnswers_{0},
      busyAnswers_{0};
  std::thread worker_;
};

}  // namespace ep::edgecore::models
