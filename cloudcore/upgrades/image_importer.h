#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "cloudcore/controllers/release_imports.h"
#include "cloudcore/models/blob_store.h"
#include "cloudcore/registry/registry.h"
#include "common/api/models.h"
#include "common/clock.h"
#include "common/oci/registry.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::upgrades {

struct ImageImporterOptions {
  std::string workDir;  // scratch files of extractions in progress; emptied at start
  uint64_t maxBinaryBytes = uint64_t{512} << 20;
  // Longest one import may take (a registry that trickles bytes must not hold the worker).
  std::chrono::milliseconds importTimeout{std::chrono::minutes(10)};
  size_t maxQueued = 64;  // imports waiting; more are refused until some end
};

// The reference spec.image and spec.version name (docs/upgrades.md, "From an image"):
// KubeEdge's form REGISTRY/REPO is tagged with the version; a reference with its own tag or
// digest is taken as it is; a reference without a registry host is Docker Hub's. kInvalid
// naming spec.image otherwise.
Result<api::OciRef> imageRefFor(const std::string& image, const std::string& version);

// Makes EdgecoreReleases from container images for the NodeUpgradeController: pulls the image
// REF from its registry (with the credentials of the Secret the job names), and for every
// linux platform the image has (an index's manifests, or the one manifest) takes the file its
// config's entrypoint names (config.Entrypoint[0], else config.Cmd[0], else /usr/bin/edgecore)
// out of its layers, topmost first, honouring whiteouts. Each layer's sha256 is checked against
// the manifest before what came out of it is used; the binary must be an ELF executable of the
// platform's architecture. The binaries go into cloudcore's blob store (resuming an upload a
// restart cut short) and into EdgecoreRelease VERSION (created, or given the architectures it
// lacks: a pushed binary is never replaced), which nodes then download over the tunnel like a
// pushed release.
//
// Threads: one worker does every registry request and disk write; request(), retain() and
// setListener() are thread-safe and never block on it. start()/stop() from one owner thread;
// stop() interrupts a transfer at its next read.
class ImageImporter final : public controllers::ReleaseImports {
 public:
  ImageImporter(ImageImporterOptions options, registry::Registry& registry,
                models::BlobStore& blobs, std::unique_ptr<oci::OciRegistry> oci, Clock& clock);
  ~ImageImporter() override;
  ImageImporter(const ImageImporter&) = delete;
  ImageImporter& operator=(const ImageImporter&) = delete;

  Status start();
  void stop();

  State request(const Request& request) override;
  void retain(const std::set<std::string>& keys) override;
  void setListener(std::function<void()> listener) override;

  // One import on the caller's thread (the worker's body; tests call it directly).
  Status importNow(const Request& request);

 private:
  struct Binary {
    std::string architecture;
    std::string digest;
    uint64_t size = 0;
    std::string file;  // the extracted copy under workDir, removed when the import ends
  };
  // Takes the platform manifest's binary into the blob store.
  Result<Binary> importPlatform(const api::OciRef& repo, const oci::RegistryCredentials& creds,
                                const std::string& manifestDigest, const std::string& platform);
  Result<std::string> fetchSmallBlob(const api::OciRef& repo, const oci::RegistryCredentials& creds,
                                     const std::string& digest, uint64_t size,
                                     const std::string& what);
  Status store(const std::string& file, const std::string& digest, uint64_t size);
  Status writeRelease(const Request& request, const std::string& source,
                      const std::vector<Binary>& binaries);
  Result<oci::RegistryCredentials> credentials(const Request& request, const api::OciRef& ref);
  void run();

  const ImageImporterOptions options_;
  registry::Registry& registry_;
  models::BlobStore& blobs_;
  const std::unique_ptr<oci::OciRegistry> oci_;
  Clock& clock_;

  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::deque<Request> queue_ EP_GUARDED_BY(mu_);
  std::map<std::string, State> states_ EP_GUARDED_BY(mu_);  // key -> queued, running or ended
  std::atomic<bool> cancel_{false};
  // Steady-clock milliseconds past which the import under way is cut off; 0 = none.
  std::atomic<int64_t> deadlineMillis_{0};
  Mutex listenerMu_;  // held while the listener runs: setListener waits out a call
  std::function<void()> listener_ EP_GUARDED_BY(listenerMu_);
  std::thread worker_;
};

}  // namespace ep::upgrades
