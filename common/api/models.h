#pragma once

// sedna.io/v1alpha1 Models as this platform versions and delivers them (docs/models.md), shared
// by cloudcore (upload, node authorization, dispatch), edgectl (push, history, rollback) and
// edgecore (download, the models.edgeplane.io CSI volume). Pure; thread-compatible.
//
// A pushed version is a content-addressed blob in cloudcore's blob store. The Model keeps
// Sedna's fields with Sedna's meaning: spec.url says where the model file is (for a pushed
// version "blob://sha256/HEX/FILE") and spec.format its format. The version name and the list of
// versions pushed so far live in two annotations, so Model objects written for Sedna (no
// annotations, any url) stay valid and unchanged.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ep::api {

inline constexpr const char* kModelResource = "models.sedna.io";
inline constexpr const char* kModelDriver = "models.edgeplane.io";  // CSI driver name
inline constexpr const char* kModelVersionAnnotation = "models.edgeplane.io/version";
// JSON array of ModelVersion objects, oldest first, at most kMaxModelHistory.
inline constexpr const char* kModelHistoryAnnotation = "models.edgeplane.io/history";
inline constexpr size_t kMaxModelHistory = 20;
// What every model volume holds beside the model file.
inline constexpr const char* kModelInfoFile = "model.json";
// Blobs travel and are verified in chunks of this size (the last one shorter): cloudcore's chunk
// index, BlobRequest offsets (multiples of it) and BlobChunk payloads.
inline constexpr uint32_t kBlobChunkBytes = 256 * 1024;

// "sha256:" followed by exactly 64 lower-case hex digits: the only digest form stored or
// accepted (OCI's canonical form).
bool isSha256Digest(std::string_view digest);

// A pushed model file's name: 1..255 bytes, no '/', NUL or control characters, not starting with
// '.', not model.json (which the volume reserves).
Status validateModelFileName(std::string_view name);

// "blob://sha256/HEX/FILE" <-> (digest, file).
std::string blobUrl(const std::string& digest, const std::string& file);
struct BlobRef {
  std::string digest;  // "sha256:HEX"
  std::string file;
};
std::optional<BlobRef> parseBlobUrl(std::string_view url);

// An artifact in an OCI registry named by a Model's spec.url (docs/models.md, "Models from an
// OCI registry"): "oci://REGISTRY/REPO:TAG", "oci://REGISTRY/REPO@sha256:HEX" or both (the
// digest wins). REGISTRY is a host name or IP literal with an optional port; REPO is one or more
// lower-case path components ([a-z0-9] runs joined by '.', '_', '__' or '-'), 1..255 bytes; TAG
// is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. Nodes pull these themselves, with the credentials of the
// Secret named by spec.credentialName.
struct OciRef {
  std::string registry;    // "host[:port]"
  std::string repository;  // "models/digits"
  std::string tag;         // "" when pinned by digest only
  std::string digest;      // "sha256:HEX" of the manifest, or ""
  // "TAG" or "sha256:HEX" (what the manifest request names).
  std::string reference() const { return digest.empty() ? tag : digest; }
};
inline constexpr std::string_view kOciScheme = "oci://";
bool isOciUrl(std::string_view url);
// The parsed reference, or kInvalid saying which part is wrong.
Result<OciRef> parseOciUrl(std::string_view url);

// One version of a Model.
struct ModelVersion {
  std::string version;
  std::string url;     // spec.url of that version
  std::string format;  // spec.format ("onnx", "pb", ...)
  std::string digest;  // "sha256:HEX" when url is a blob url, else ""
  std::string file;    // the file name when url is a blob url
  uint64_t size = 0;
  std::string pushedAt;  // RFC 3339
  bool oci = false;  // url is an oci:// artifact (digest and file are known once a node pulls it)
};
nlohmann::json toJson(const ModelVersion& v);

// The version spec points at now (url and format from spec, the name from the version
// annotation; "" for a Model written without one).
ModelVersion currentModelVersion(const nlohmann::json& model);
// The history annotation, oldest first. Entries that are not objects or lack a version are
// skipped (the annotation is user-writable).
std::vector<ModelVersion> modelHistory(const nlohmann::json& model);
// `version` ("" = the current one) of `model`, from spec or the history. kNotFound names the
// version; kInvalid when the version found is neither a pushed blob nor a well-formed oci:// url
// (a URL the platform does not deliver), naming spec.url. A Model written without the version
// annotation whose url is an oci:// artifact is named by its reference (the tag or digest).
Result<ModelVersion> resolveModelVersion(const nlohmann::json& model, const std::string& version);
// Staged rollout (docs/models.md): while the Model carries the rollout annotation, only the
// listed nodes get the current version; every other node keeps `previous`.
inline constexpr const char* kModelRolloutAnnotation = "models.edgeplane.io/rollout";
struct ModelRollout {
  std::string version;             // the version being rolled out (the current one)
  std::string previous;            // what the other nodes keep
  std::vector<std::string> nodes;  // the nodes that get `version`
};
// The rollout annotation, when present and well formed.
std::optional<ModelRollout> modelRollout(const nlohmann::json& model);
void setModelRollout(nlohmann::json& model, const std::optional<ModelRollout>& rollout);
// What a volume on `node` uses: the pinned `version` when set, else the current version unless a
// rollout of it excludes `node` (then the rollout's previous version). Errors as
// resolveModelVersion.
Result<ModelVersion> resolveModelVersionForNode(const nlohmann::json& model,
                                                const std::string& version,
                                                const std::string& node);

// Every blob digest the Model refers to (spec.url and the history).
std::set<std::string> modelDigests(const nlohmann::json& model);
// Every oci:// url the Model refers to (spec.url and the history).
std::set<std::string> modelOciUrls(const nlohmann::json& model);
// spec.credentialName (Sedna's field): the Secret, in the Model's namespace, whose credentials
// the nodes present to an OCI registry ("" = anonymous).
std::string modelCredentialName(const nlohmann::json& model);
// What a node's pull of an oci:// url is recorded under: the namespace, the credential Secret's
// name and the url. Pulls are never shared across namespaces or credentials: a Model without
// access to an artifact cannot use a copy another namespace's credentials brought to the node.
std::string ociPullKey(const std::string& ns, const std::string& credentialName,
                       const std::string& url);
// Secret types a Model's spec.credentialName may name (what cloudcore sends to nodes for it):
// kubernetes.io/dockerconfigjson, kubernetes.io/dockercfg, kubernetes.io/basic-auth.
bool isPullSecretType(const std::string& type);
// Makes `v` current: spec.url, spec.format and the version annotation. With `record`, also
// appends it to the history (replacing an entry with the same version, dropping the oldest
// beyond kMaxModelHistory); a rollback leaves the history as it is. `model` must be a JSON
// object.
void setModelVersion(nlohmann::json& model, const ModelVersion& v, bool record = true);

// The model volumes of a pod: CSI inline volumes with driver models.edgeplane.io.
struct ModelVolume {
  std::string volume;   // spec.volumes[i].name
  std::string model;    // volumeAttributes.model (required)
  std::string version;  // volumeAttributes.version ("" = follow the Model)
  std::string field;    // "spec.volumes[i]"
};
std::vector<ModelVolume> modelVolumes(const nlohmann::json& pod);

}  // namespace ep::api
