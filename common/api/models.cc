#include "common/api/models.h"

#include <algorithm>
#include <cctype>

#include "common/api/json_limits.h"
#include "common/api/object_util.h"

namespace ep::api {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kBlobPrefix = "blob://sha256/";

std::string str(const Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

ModelVersion withBlob(ModelVersion v) {
  v.oci = false;
  if (auto ref = parseBlobUrl(v.url)) {
    v.digest = ref->digest;
    v.file = ref->file;
  } else {
    v.digest.clear();
    v.file.clear();
    v.oci = parseOciUrl(v.url).isOk();
  }
  return v;
}

bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// One repository path component: [a-z0-9]+ runs joined by '.', '_', '__' or one or more '-'.
bool validRepoComponent(std::string_view c) {
  if (c.empty() || !isLowerAlnum(c.front()) || !isLowerAlnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (isLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !isLowerAlnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    const bool dashes = std::all_of(sep.begin(), sep.end(), [](char x) { return x == '-'; });
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

bool validRegistry(std::string_view r) {
  if (r.empty() || r.size() > 255) return false;
  std::string_view host = r;
  if (host.front() == '[') {  // [IPv6]:port
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.size() < 2)) return false;
    host = host.substr(1, close - 1);
    for (char c : host) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    }
    rest = rest.empty() ? rest : rest.substr(1);
    return std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    std::string_view port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    host = host.substr(0, colon);
  }
  if (host.empty()) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  });
}

bool validTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t[0])) return false;
  return std::all_of(t.begin(), t.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

}  // namespace

bool isSha256Digest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || digest.substr(0, kPrefix.size()) != kPrefix) {
    return false;
  }
  return std::all_of(digest.begin() + kPrefix.size(), digest.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Status validateModelFileName(std::string_view name) {
  if (name.empty() || name.size() > 255) return invalidError("must be 1 to 255 bytes long");
  if (name[0] == '.') return invalidError("must not start with '.'");
  if (name == kModelInfoFile) return invalidError("model.json is reserved for the version info");
  for (char c : name) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return invalidError("must not contain '/' or control characters");
    }
  }
  return {};
}

std::string blobUrl(const std::string& digest, const std::string& file) {
  return std::string(kBlobPrefix) + digest.substr(std::string_view("sha256:").size()) + "/" + file;
}

std::optional<BlobRef> parseBlobUrl(std::string_view url) {
  if (url.substr(0, kBlobPrefix.size()) != kBlobPrefix) return std::nullopt;
  std::string_view rest = url.substr(kBlobPrefix.size());
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  BlobRef ref{"sha256:" + std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
  if (!isSha256Digest(ref.digest) || !validateModelFileName(ref.file).isOk()) return std::nullopt;
  return ref;
}

bool isOciUrl(std::string_view url) {
  return url.substr(0, kOciScheme.size()) == kOciScheme;
}

Result<OciRef> parseOciUrl(std::string_view url) {
  const std::string shown = "\"" + std::string(url.substr(0, 300)) + "\"";
  if (!isOciUrl(url)) return invalidError(shown + " does not start with oci://");
  std::string_view rest = url.substr(kOciScheme.size());
  OciRef ref;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    if (!isSha256Digest(ref.digest)) {
      return invalidError(shown + ": the digest must be sha256: and 64 lower-case hex digits");
    }
    rest = rest.substr(0, at);
  }
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return invalidError(shown + ": expected oci://REGISTRY/REPOSITORY:TAG or @sha256:...");
  }
  std::string_view registry = rest.substr(0, slash);
  std::string_view path = rest.substr(slash + 1);
  // A ':' after the last '/' starts the tag.
  if (auto colon = path.rfind(':'); colon != std::string_view::npos) {
    ref.tag = std::string(path.substr(colon + 1));
    path = path.substr(0, colon);
    if (!validTag(ref.tag)) {
      return invalidError(shown + ": bad tag \"" + ref.tag.substr(0, 130) +
                          "\" (letters, digits, '_', '.', '-'; at most 128)");
    }
  }
  if (!validRegistry(registry)) return invalidError(shown + ": bad registry host[:port]");
  if (path.empty() || path.size() > 255) {
    return invalidError(shown + ": the repository must be 1 to 255 bytes long");
  }
  size_t start = 0;
  for (;;) {
    size_t end = path.find('/', start);
    std::string_view c = path.substr(start, end == std::string_view::npos ? end : end - start);
    if (!validRepoComponent(c)) {
      return invalidError(shown + ": bad repository component \"" + std::string(c) +
                          "\" (lower-case letters and digits joined by '.', '_' or '-')");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (ref.tag.empty() && ref.digest.empty()) {
    return invalidError(shown + ": name a tag (:TAG) or a digest (@sha256:...)");
  }
  ref.registry = std::string(registry);
  ref.repository = std::string(path);
  return ref;
}

Json toJson(const ModelVersion& v) {
  Json j = {{"version", v.version}, {"url", v.url}, {"format", v.format}};
  if (!v.digest.empty()) j["digest"] = v.digest;
  if (v.size > 0) j["size"] = v.size;
  if (!v.pushedAt.empty()) j["pushedAt"] = v.pushedAt;
  return j;
}

ModelVersion currentModelVersion(const Json& model) {
  ModelVersion v;
  v.url = stringAt(model, "spec.url");
  v.format = stringAt(model, "spec.format");
  if (const Json* ann = lookupPath(model, "metadata.annotations"); ann && ann->is_object()) {
    v.version = str(*ann, kModelVersionAnnotation);
  }
  v = withBlob(std::move(v));
  // Size and push time are known from the history entry of the same version and url.
  for (const auto& h : modelHistory(model)) {
    if (h.version == v.version && h.url == v.url) {
      v.size = h.size;
      v.pushedAt = h.pushedAt;
    }
  }
  return v;
}

std::vector<ModelVersion> modelHistory(const Json& model) {
  std::vector<ModelVersion> out;
  const Json* ann = lookupPath(model, "metadata.annotations");
  if (!ann || !ann->is_object()) return out;
  std::string text = str(*ann, kModelHistoryAnnotation);
  if (text.empty()) return out;
  Json list = parseJsonBounded(text, 4);  // entries are flat objects
  if (!list.is_array()) return out;
  for (const auto& e : list) {
    if (!e.is_object()) continue;
    ModelVersion v;
    v.version = str(e, "version");
    v.url = str(e, "url");
    v.format = str(e, "format");
    v.pushedAt = str(e, "pushedAt");
    if (auto it = e.find("size"); it != e.end() && it->is_number_unsigned()) {
      v.size = it->get<uint64_t>();
    }
    if (v.version.empty()) continue;
    out.push_back(withBlob(std::move(v)));
  }
  return out;
}

Result<ModelVersion> resolveModelVersion(const Json& model, const std::string& version) {
  const std::string name =
      stringAt(model, "metadata.namespace") + "/" + stringAt(model, "metadata.name");
  ModelVersion found;
  ModelVersion current = currentModelVersion(model);
  if (version.empty() || version == current.version) {
    found = std::move(current);
  } else {
    bool ok = false;
    for (auto& h : modelHistory(model)) {
      if (h.version == version) {
        found = std::move(h);
        ok = true;
      }
    }
    if (!ok) {
      return Status(Code::kNotFound, "model " + name + " has no version \"" + version + "\"");
    }
  }
  if (found.oci) {
    if (found.version.empty()) found.version = parseOciUrl(found.url)->reference();
    return found;
  }
  if (found.digest.empty()) {
    if (found.url.empty()) return invalidError("spec.url: model " + name + " has no url");
    if (isOciUrl(found.url)) {
      return invalidError("spec.url: " + parseOciUrl(found.url).status().message());
    }
    return invalidError(
        "spec.url: \"" + found.url + "\" of model " + name +
        " is neither a version pushed with edgectl model push (blob://sha256/...) nor an "
        "OCI artifact (oci://REGISTRY/REPO:TAG)");
  }
  return found;
}

std::optional<ModelRollout> modelRollout(const Json& model) {
  const Json* ann = lookupPath(model, "metadata.annotations");
  if (!ann || !ann->is_object()) return std::nullopt;
  std::string text = str(*ann, kModelRolloutAnnotation);
  if (text.empty()) return std::nullopt;
  Json j = parseJsonBounded(text, 4);
  if (!j.is_object()) return std::nullopt;
  ModelRollout r;
  r.version = str(j, "version");
  r.previous = str(j, "previous");
  if (auto it = j.find("nodes"); it != j.end() && it->is_array()) {
    for (const auto& n : *it) {
      if (n.is_string()) r.nodes.push_back(n.get<std::string>());
    }
  }
  if (r.version.empty() || r.previous.empty()) return std::nullopt;
  return r;
}

namespace {

// metadata.annotations of `model` (a JSON object), made an object first when metadata or
// annotations are missing or of another type: a malformed Model never makes this throw.
Json& annotationsOf(Json& model) {
  Json& meta = model["metadata"];
  if (!meta.is_object()) meta = Json::object();
  Json& ann = meta["annotations"];
  if (!ann.is_object()) ann = Json::object();
  return ann;
}

}  // namespace

void setModelRollout(Json& model, const std::optional<ModelRollout>& rollout) {
  Json& ann = annotationsOf(model);
  if (!rollout) {
    ann.erase(kModelRolloutAnnotation);
    return;
  }
  ann[kModelRolloutAnnotation] = Json{
      {"version", rollout->version},
      {"previous", rollout->previous},
      {"nodes", rollout->nodes}}.dump();
}

Result<ModelVersion> resolveModelVersionForNode(const Json& model, const std::string& version,
                                                const std::string& node) {
  if (version.empty()) {
    if (auto rollout = modelRollout(model)) {
      const bool included =
          std::find(rollout->nodes.begin(), rollout->nodes.end(), node) != rollout->nodes.end();
      if (rollout->version == currentModelVersion(model).version && !included) {
        return resolveModelVersion(model, rollout->previous);
      }
    }
  }
  return resolveModelVersion(model, version);
}

std::set<std::string> modelDigests(const Json& model) {
  std::set<std::string> out;
  if (auto ref = parseBlobUrl(stringAt(model, "spec.url"))) out.insert(ref->digest);
  for (const auto& h : modelHistory(model)) {
    if (!h.digest.empty()) out.insert(h.digest);
  }
  return out;
}

std::set<std::string> modelOciUrls(const Json& model) {
  std::set<std::string> out;
  const std::string url = stringAt(model, "spec.url");
  if (parseOciUrl(url).isOk()) out.insert(url);
  for (const auto& h : modelHistory(model)) {
    if (h.oci) out.insert(h.url);
  }
  return out;
}

std::string modelCredentialName(const Json& model) {
  return stringAt(model, "spec.credentialName");
}

std::string ociPullKey(const std::string& ns, const std::string& credentialName,
                       const std::string& url) {
  return ns + "\n" + credentialName + "\n" + url;
}

bool isPullSecretType(const std::string& type) {
  return type == "kubernetes.io/dockerconfigjson" || type == "kubernetes.io/dockercfg" ||
         type == "kubernetes.io/basic-auth";
}

void setModelVersion(Json& model, const ModelVersion& v, bool record) {
  Json& spec = model["spec"];
  if (!spec.is_object()) spec = Json::object();
  spec["url"] = v.url;
  spec["format"] = v.format;
  Json& ann = annotationsOf(model);
  ann[kModelVersionAnnotation] = v.version;
  if (!record) return;
  std::vector<ModelVersion> history = modelHistory(model);
  history.erase(std::remove_if(history.begin(), history.end(),
                               [&](const ModelVersion& h) { return h.version == v.version; }),
                history.end());
  history.push_back(v);
  if (history.size() > kMaxModelHistory) {
    history.erase(history.begin(),
                  history.begin() + static_cast<long>(history.size() - kMaxModelHistory));
  }
  Json list = Json::array();
  for (const auto& h : history) list.push_back(toJson(h));
  ann[kModelHistoryAnnotation] = list.dump();
}

std::vector<ModelVolume> modelVolumes(const Json& pod) {
  std::vector<ModelVolume> out;
  const Json* volumes = lookupPath(pod, "spec.volumes");
  if (!volumes || !volumes->is_array()) return out;
  for (size_t i = 0; i < volumes->size(); ++i) {
    const Json& v = (*volumes)[i];
    if (!v.is_object()) continue;
    auto csi = v.find("csi");
    if (csi == v.end() || !csi->is_object() || str(*csi, "driver") != kModelDriver) continue;
    ModelVolume mv;
    mv.volume = str(v, "name");
    mv.field = "spec.volumes[" + std::to_string(i) + "]";
    if (auto attrs = csi->find("volumeAttributes"); attrs != csi->end() && attrs->is_object()) {
      mv.model = str(*attrs, "model");
      mv.version = str(*attrs, "version");
    }
    out.push_back(std::move(mv));
  }
  return out;
}

}  // namespace ep::api
