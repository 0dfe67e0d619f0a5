#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/api/models.h"
#include "common/oci/registry.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/models/content_store.h"

namespace ep::edgecore::models {

using oci::OciArtifact;
using oci::OciRegistry;
using oci::RegistryCredentials;

// One oci:// url this node's pods use, with what to present to its registry.
struct OciJob {
  std::string key;  // api::ociPullKey(namespace, credential Secret, url)
  std::string url;
  api::OciRef ref;
  RegistryCredentials creds;
  std::string user;     // "ns/model version V", for logs
  std::string blocked;  // why it cannot be pulled now (its Secret is missing); kept, not pulled
};

struct OciPullerOptions {
  // Bytes per second for registry downloads (edgecore's modelBandwidthLimit); 0 = none.
  uint64_t bandwidthBytesPerSecond = 0;
  uint64_t syncEveryBytes = 8u << 20;  // the partial file is made durable this often
  // After a failure the url is tried again after retryDelay, doubling up to maxRetryDelay.
  std::chrono::milliseconds retryDelay{5000};
  std::chrono::milliseconds maxRetryDelay{300000};
};

// A download's progress, for /status.
struct OciProgress {
  std::string url;
  std::string digest;
  uint64_t bytes = 0;
  uint64_t size = 0;
};

// Pulls the model files of oci:// Models from their registries into the ContentStore
// (docs/models.md, "Models from an OCI registry"): resolves the url's manifest, downloads the
// model layer (resuming a partial file with a Range request), checks its sha256 against the
// manifest's digest before it becomes visible, then records the resolution under the job's key
// (namespace, credential Secret, url: pulls are never shared across them). As imagePullPolicy
// IfNotPresent does for images, a key whose file is on the node is not asked of the registry
// again (a moved tag is followed by changing the Model's url); while a registry cannot be
// reached the recorded file keeps serving.
//
// Threads: one worker does every registry request and disk write for OCI files, blocking on the
// network (never on a caller's thread). want(), errors(), progress(), digestsInUse() are
// thread-safe; onChange is called on the worker after a url resolves to a complete file or its
// error changes. start()/stop() from one owner thread; stop() interrupts a transfer at its next
// read (at most the registry client's read timeout).
class OciPuller {
 public:
  OciPuller(OciPullerOptions options, std::unique_ptr<OciRegistry> registry, ContentStore& store,
            std::function<void()> onChange);
  ~OciPuller();
  OciPuller(const OciPuller&) = delete;
  OciPuller& operator=(const OciPuller&) = delete;

  void start();
  void stop();

  // The pulls wanted now (by key); replaces the previous set. A download in progress for a key no
  // longer wanted stops.
  void want(std::vector<OciJob> jobs);
  // key -> why its last attempt failed (cleared when it succeeds).
  std::map<std::string, std::string> errors() const;
  std::optional<OciProgress> progress() const;  // url, digest, bytes
  // Digests whose partial files the garbage collector must leave: the one downloading and the
  // last artifacts of wanted urls.
  std::set<std::string> digestsInUse() const;

 private:
  struct Entry {
    OciJob job;
    bool fresh = false;  // its resolution is recorded and the file complete
    std::chrono::steady_clock::time_point retryAt{};
    std::chrono::milliseconds delay{0};
    std::string error;
    std::string digest;  // the last artifact's digest
  };

  void run();
  // Resolves and downloads one url; returns the artifact's digest (for digestsInUse).
  Status pull(const OciJob& job, std::string* digest);
  Status download(const OciJob& job, const OciArtifact& artifact);

  const OciPullerOptions options_;
  const std::unique_ptr<OciRegistry> registry_;
  ContentStore& store_;
  const std::function<void()> onChange_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::atomic<bool> cancel_{false};  // stopping_, readable without mu_ (the registry's reads)
  std::map<std::string, Entry> entries_ EP_GUARDED_BY(mu_);  // key -> state
  std::optional<OciProgress> progress_ EP_GUARDED_BY(mu_);
  std::thread worker_;
};

}  // namespace ep::edgecore::models
