#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/api/models.h"
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
// Model volumes (CSI inline volumes of driver models.edgeplane.io, docs/models.md) are laid out
// as the kubelet's atomic writer lays out ConfigMap volumes: a directory per version
// (..m_<digest prefix>_<version>) holding a hard link to the verified model file and model.json,
// a `..data` symlink to the current one, and top-level symlinks FILE -> ..data/FILE and
// model.json -> ..data/model.json. A new version is switched to with one rename of `..data`, so a
// reader sees the old version or the new one, never a mix; until the new file is on the node the
// volume keeps the version it has (a pod's first version must be present before it starts).
//
// Thread-safety: calls for different pods may run concurrently; calls for one pod must not
// (edged's pod workers guarantee one sync per pod at a time).
// Where a model version's file is on the node (the edge's content store, edgecore/models).
struct LocatedModel {
  std::string path;    // the complete, verified file
  std::string digest;  // its digest
  std::string file;    // its name in the volume
  uint64_t size = 0;
};
// The file of `version` (a pushed blob by its digest; an oci:// url by what its pull, recorded
// under `ociKey` = api::ociPullKey, resolved to), or nothing when it is not on the node yet.
// Thread-safe.
using ModelBlobLocator = std::function<std::optional<LocatedModel>(const api::ModelVersion& version,
                                                                   const std::string& ociKey)>;

class VolumeManager {
 public:
  // `nodeName`: model volumes follow a staged rollout only on the nodes it names.
  explicit VolumeManager(std::string root, ModelBlobLocator models = {}, std::string nodeName = {});

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
  const ModelBlobLocator models_;
  const std::string nodeName_;
};

// Names of the volumes every container mounts read-only whatever its volumeMounts say: model
// volumes (CSI driver models.edgeplane.io) and CSI volumes with readOnly: true.
std::set<std::string> readOnlyVolumes(const Json& pod);

// The container's volumeMounts as runtime mounts. Errors name the field
// ("spec.containers[0].volumeMounts[1].name: volume \"x\" not found").
Result<std::vector<Mount>> containerMounts(const Json& container,
                                           const std::map<std::string, std::string>& volumes,
                                           const std::string& field,
                                           const std::set<std::string>& readOnly = {});

}  // namespace ep::edged
