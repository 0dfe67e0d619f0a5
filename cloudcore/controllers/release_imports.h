#pragma once

#include <functional>
#include <set>
#include <string>

namespace ep::controllers {

// The NodeUpgradeController's seam to what makes EdgecoreReleases from container images
// (cloudcore/upgrades/image_importer.h; a fake in tests). docs/upgrades.md, "From an image".
class ReleaseImports {
 public:
  struct Request {
    std::string key;         // one import per key (the job's uid): a new job tries again
    std::string image;       // spec.image: REGISTRY/REPO, tagged with version unless it has one
    std::string version;     // spec.version: the EdgecoreRelease written
    std::string pullSecret;  // "NAMESPACE/NAME" of the registry Secret, or ""
  };
  // Pending while neither done nor failed.
  struct State {
    bool done = false;
    std::string error;  // why it failed; kept until retain() drops the key
  };

  virtual ~ReleaseImports() = default;
  // Where the import of request.key stands; queues it when new. Never blocks; thread-safe.
  virtual State request(const Request& request) = 0;
  // Forgets the keys not in `keys` (jobs finished or deleted). Thread-safe.
  virtual void retain(const std::set<std::string>& keys) = 0;
  // Called (on the importer's thread) whenever an import ends; an empty function clears it.
  // Thread-safe; after it returns an earlier listener is no longer called.
  virtual void setListener(std::function<void()> listener) = 0;
};

}  // namespace ep::controllers
