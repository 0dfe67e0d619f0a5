#include "common/oci/image.h"

#include <nlohmann/json.hpp>

#include "common/api/json_limits.h"
#include "common/api/models.h"

namespace ep::oci {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxEntries = 256;
constexpr size_t kMaxArgs = 256;

std::string str(const Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<Json> parseObject(std::string_view body, const std::string& what) {
  bool tooDeep = false;
  Json j = api::parseJsonBounded(body, 16, &tooDeep);
  if (tooDeep) return invalidError(what + ": nested too deeply");
  if (!j.is_object()) return invalidError(what + ": not a JSON object");
  return j;
}

Result<OciDescriptor> descriptor(const Json& d, const std::string& field) {
  if (!d.is_object()) return invalidError(field + ": not an object");
  OciDescriptor out;
  out.mediaType = str(d, "mediaType");
  out.digest = str(d, "digest");
  if (!api::isSha256Digest(out.digest)) {
    return invalidError(field + ".digest: \"" + out.digest.substr(0, 100) +
                        "\" is not a sha256 digest");
  }
  auto size = d.find("size");
  if (size == d.end() || !size->is_number_unsigned()) {
    return invalidError(field + ".size: must be a byte count");
  }
  out.size = size->get<uint64_t>();
  if (auto p = d.find("platform"); p != d.end() && p->is_object()) {
    out.os = str(*p, "os");
    out.architecture = str(*p, "architecture");
    out.variant = str(*p, "variant");
  }
  return out;
}

Result<std::vector<std::string>> stringList(const Json& o, const char* key,
                                            const std::string& field) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return out;
  if (!it->is_array()) return invalidError(field + ": must be a list of strings");
  if (it->size() > kMaxArgs) return invalidError(field + ": more than 256 entries");
  for (const auto& v : *it) {
    if (!v.is_string()) return invalidError(field + ": must be a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

bool isImageIndex(std::string_view mediaType) {
  return mediaType == "application/vnd.oci.image.index.v1+json" ||
         mediaType == "application/vnd.docker.distribution.manifest.list.v2+json";
}

Result<std::vector<OciDescriptor>> parseImageIndex(std::string_view body) {
  auto j = parseObject(body, "index");
  if (!j.isOk()) return j.status();
  auto ms = j->find("manifests");
  if (ms == j->end() || !ms->is_array()) return invalidError("index: manifests: must be a list");
  if (ms->size() > kMaxEntries) return invalidError("index: manifests: more than 256 entries");
  std::vector<OciDescriptor> out;
  for (size_t i = 0; i < ms->size(); ++i) {
    auto d = descriptor((*ms)[i], "index: manifests[" + std::to_string(i) + "]");
    if (!d.isOk()) return d.status();
    out.push_back(std::move(*d));
  }
  return out;
}

Result<OciImageManifest> parseImageManifest(std::string_view body) {
  auto j = parseObject(body, "manifest");
  if (!j.isOk()) return j.status();
  if (isImageIndex(str(*j, "mediaType"))) {
    return invalidError("manifest: an image index where an image manifest was expected");
  }
  OciImageManifest out;
  auto config = j->find("config");
  if (config == j->end()) return invalidError("manifest: config: required");
  auto c = descriptor(*config, "manifest: config");
  if (!c.isOk()) return c.status();
  out.config = std::move(*c);
  auto layers = j->find("layers");
  if (layers == j->end() || !layers->is_array()) {
    return invalidError("manifest: layers: must be a list");
  }
  if (layers->size() > kMaxEntries) return invalidError("manifest: layers: more than 256 entries");
  for (size_t i = 0; i < layers->size(); ++i) {
    auto d = descriptor((*layers)[i], "manifest: layers[" + std::to_string(i) + "]");
    if (!d.isOk()) return d.status();
    out.layers.push_back(std::move(*d));
  }
  return out;
}

Result<OciImageConfig> parseImageConfig(std::string_view body) {
  auto j = parseObject(body, "image config");
  if (!j.isOk()) return j.status();
  OciImageConfig out;
  out.os = str(*j, "os");
  out.architecture = str(*j, "architecture");
  out.variant = str(*j, "variant");
  if (auto c = j->find("config"); c != j->end() && c->is_object()) {
    auto e = stringList(*c, "Entrypoint", "image config: config.Entrypoint");
    if (!e.isOk()) return e.status();
    out.entrypoint = std::move(*e);
    auto cmd = stringList(*c, "Cmd", "image config: config.Cmd");
    if (!cmd.isOk()) return cmd.status();
    out.cmd = std::move(*cmd);
  }
  return out;
}

bool isTarLayer(std::string_view t) {
  for (std::string_view known :
       {"application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}) {
    if (t == known) return true;
  }
  return false;
}

}  // namespace ep::oci
