#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "edgecore/edged/pod_spec.h"

namespace ep::edged {

// Owns the host side of pod volumes under ROOT/UID/volumes/ (ROOT = DATA_DIR/pods):
// emptyDir directories, and configMap/secret/downwardAPI-free projections written as files. The
// directories are bind-mounted into containers, so a file replaced here (write to a temporary
// name, then rename) is seen by the running container: that is how configMap and secret updates
// reach applications without a restart. hostPath volumes are passed through (DirectoryOrCreate
// and FileOrCreate are created).
//
// Thread-safety: calls for different pods may run concurrently; calls for one pod must not
// (edged's pod workers guarantee one sync per pod at a time).
class VolumeManager {
 public:
  explicit VolumeManager(std::string root);

  // Makes every volume of `pod` ready and returns volume name -> host path. Idempotent: run on
  // every sync, it rewrites only the files whose contents changed and removes keys that went
  // away. Errors name the volume ("spec.volumes[1].configMap: configmap \"cfg\" not found");
  // an optional configMap/secret that is missing yields an empty directory.
  Result<std::map<std::string, std::string>> setUp(const Json& pod, const ObjectLookup& lookup);
  // Removes ROOT/UID (the pod's volumes; hostPath contents are never touched).
  Status tearDown(const std::string& uid);
  // UIDs that have a directory under ROOT.
  std::vector<std::string> podUids() const;
  std::string podDir(const std::string& uid) const;

 private:
  const std::string root_;
};

// The container's volumeMounts as runtime mounts. Errors name the field
// ("spec.containers[0].volumeMounts[1].name: volume \"x\" not found").
Result<std::vector<Mount>> containerMounts(const Json& container,
                                           const std::map<std::string, std::string>& volumes,
                                           const std::string& field);

}  // namespace ep::edged
