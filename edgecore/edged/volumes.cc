#include "edgecore/edged/volumes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/api/base64.h"
#include "common/api/models.h"
#include "common/api/object_util.h"

namespace ep::edged {
namespace fs = std::filesystem;
namespace {

Result<std::string> readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return notFoundError(p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `content` to dir/name atomically (temporary file, fsync, rename) unless it already
// holds exactly that content with that mode.
Status writeIfChanged(const fs::path& dir, const std::string& name, const std::string& content,
                      int mode) {
  fs::path target = dir / name;
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && static_cast<int>(st.st_mode & 07777) == mode) {
    auto have = readFile(target);
    if (have.isOk() && *have == content) return {};
  }
  fs::path tmp = target.parent_path() / ("..tmp_" + target.filename().string());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return internalError("writing " + tmp.string() + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return internalError("writing " + tmp.string() + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  ::fchmod(fd, static_cast<mode_t>(mode));
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    return internalError("renaming " + tmp.string() + ": " + std::strerror(errno));
  }
  return {};
}

// Projects the key/value pairs into `dir`: all keys, or only `items` (key -> path) when given.
// Files not projected any more are removed.
Status project(const fs::path& dir, const std::map<std::string, std::string>& data,
               const Json* items, int defaultMode, const std::string& field) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return internalError(field + ": creating " + dir.string() + ": " + ec.message());
  std::set<std::string> wanted;
  if (items && items->is_array() && !items->empty()) {
    for (size_t i = 0; i < items->size(); ++i) {
      const Json& item = (*items)[i];
      if (!item.is_object()) continue;
      std::string key = api::stringAt(item, "key");
      std::string path = api::stringAt(item, "path");
      if (path.empty() || path.find("..") != std::string::npos || path[0] == '/') {
        return invalidError(field + ".items[" + std::to_string(i) + "].path: invalid path \"" +
                            path + "\"");
      }
      auto it = data.find(key);
      if (it == data.end()) {
        return Status(Code::kNotFound, field + ".items[" + std::to_string(i) + "].key: key \"" +
                                           key + "\" not found");
      }
      int mode = item.contains("mode") && item["mode"].is_number_integer() ? item["mode"].get<int>()
                                                                           : defaultMode;
      if (auto s = writeIfChanged(dir, path, it->second, mode); !s.isOk()) return s;
      wanted.insert(path);
    }
  } else {
    for (const auto& [key, value] : data) {
      if (key.empty() || key.find('/') != std::string::npos || key == "." || key == "..") continue;
      if (auto s = writeIfChanged(dir, key, value, defaultMode); !s.isOk()) return s;
      wanted.insert(key);
    }
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string rel = fs::relative(it->path(), dir).string();
    if (!wanted.count(rel)) fs::remove(it->path(), ec);
  }
  return {};
}

// Model volume (see the class comment). `dir` is ROOT/UID/volumes/models/NAME.
Status setUpModelVolume(const fs::path& dir, const Json& v, const std::string& ns,
                        const ObjectLookup& lookup, const ModelBlobLocator& models,
                        const std::string& node, const std::string& field) {
  const Json& csi = v["csi"];
  const Json* attrs = api::lookupPath(csi, "volumeAttributes");
  const std::string model = attrs ? api::stringAt(*attrs, "model") : "";
  const std::string pinned = attrs ? api::stringAt(*attrs, "version") : "";
  if (model.empty()) return invalidError(field + ".csi.volumeAttributes.model: required");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return internalError(field + ": creating " + dir.string() + ": " + ec.message());
  const fs::path data = dir / "..data";
  const bool haveVersion = fs::is_symlink(fs::symlink_status(data, ec));
  auto keepOrFail = [&](Status why) -> Status {
    // A volume that has a version keeps serving it (offline, a bad new version, a download
    // still running); a new volume cannot start without one.
    return haveVersion ? Status() : Status(why.code(), field + ": " + why.message());
  };
  auto object = lookup(api::kModelResource, ns, model);
  if (!object) {
    return keepOrFail(Status(Code::kNotFound, "model \"" + model + "\" not found on this node"));
  }
  auto version = api::resolveModelVersionForNode(*object, pinned, node);
  if (!version.isOk()) return keepOrFail(version.status());
  const std::string ociKey =
      version->oci ? api::ociPullKey(ns, api::modelCredentialName(*object), version->url) : "";
  auto blob = models ? models(*version, ociKey) : std::nullopt;
  if (!blob) {
    return keepOrFail(
        Status(Code::kUnavailable, "model " + ns + "/" + model + " version " + version->version +
                                       " (" + (version->oci ? version->url : version->digest) +
                                       ") is not on this node yet"));
  }
  version->digest = blob->digest;
  version->file = blob->file;
  if (blob->size > 0) version->size = blob->size;
  std::string safeVersion;
  for (char c : version->version)
    safeVersion +=
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ? c : '_';
  const std::string versionDir =
      "..m_" + version->digest.substr(7, 16) + "_" + safeVersion.substr(0, 64);
  if (haveVersion && fs::read_symlink(data, ec).string() == versionDir && !ec) return {};

  // Build the new version beside the old one, then switch with one rename.
  const fs::path target = dir / versionDir;
  fs::remove_all(target, ec);
  fs::create_directories(target, ec);
  if (ec) return internalError(field + ": creating " + target.string() + ": " + ec.message());
  const fs::path file = target / version->file;
  if (::link(blob->path.c_str(), file.c_str()) != 0) {
    // Another filesystem: copy (the content store's file is verified and never changes).
    fs::copy_file(blob->path, file, fs::copy_options::overwrite_existing, ec);
    if (ec) return internalError(field + ": copying the model file: " + ec.message());
    fs::permissions(file, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read,
                    ec);
  }
  Json info = {{"name", model},
               {"namespace", ns},
               {"version", version->version},
               {"sha256", version->digest.substr(7)},
               {"digest", version->digest},
               {"format", version->format},
               {"file", version->file},
               {"size", version->size}};
  if (version->oci) info["url"] = version->url;
  if (auto s = writeIfChanged(target, api::kModelInfoFile, info.dump(2) + "\n", 0444); !s.isOk()) {
    return s;
  }
  const fs::path tmpLink = dir / "..data_tmp";
  fs::remove(tmpLink, ec);
  fs::create_symlink(versionDir, tmpLink, ec);
  if (ec) return internalError(field + ": " + ec.message());
  if (::rename(tmpLink.c_str(), data.c_str()) != 0) {
    return internalError(field + ": switching " + data.string() + ": " + std::strerror(errno));
  }
  // Top-level names: the model file and model.json through ..data; stale names and versions go.
  for (const std::string& name : {version->file, std::string(api::kModelInfoFile)}) {
    const fs::path link = dir / name;
    if (fs::is_symlink(fs::symlink_status(link, ec)) &&
        fs::read_symlink(link, ec).string() == "..data/" + name) {
      continue;
    }
    const fs::path tmp = dir / ("..tmp_" + name);
    fs::remove(tmp, ec);
    fs::create_symlink("..data/" + name, tmp, ec);
    if (ec || ::rename(tmp.c_str(), link.c_str()) != 0) {
      return internalError(field + ": linking " + link.string());
    }
  }
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == "..data" || name == versionDir || name == version->file ||
        name == api::kModelInfoFile) {
      continue;
    }
    std::error_code rec;
    fs::remove_all(it->path(), rec);
  }
  return {};
}

}  // namespace

VolumeManager::VolumeManager(std::string root, ModelBlobLocator models, std::string nodeName)
    : root_(std::move(root)), models_(std::move(models)), nodeName_(std::move(nodeName)) {}

std::set<std::string> readOnlyVolumes(const Json& pod) {
  std::set<std::string> out;
  for (const auto& mv : api::modelVolumes(pod)) out.insert(mv.volume);
  const Json* volumes = api::lookupPath(pod, "spec.volumes");
  if (!volumes || !volumes->is_array()) return out;
  for (const auto& v : *volumes) {
    if (v.is_object() && v.contains("csi") && v["csi"].is_object() &&
        v["csi"].value("readOnly", false)) {
      out.insert(api::stringAt(v, "name"));
    }
  }
  return out;
}

std::string VolumeManager::podDir(const std::string& uid) const {
  return (fs::path(root_) / uid).string();
}

Result<std::map<std::string, std::string>> VolumeManager::setUp(const Json& pod,
                                                                const ObjectLookup& lookup) {
  std::map<std::string, std::string> out;
  const std::string uid = api::stringAt(pod, "metadata.uid");
  const std::string ns = api::stringAt(pod, "metadata.namespace");
  if (uid.empty()) return invalidError("metadata.uid: required to set up volumes");
  const Json* volumes = api::lookupPath(pod, "spec.volumes");
  if (!volumes || !volumes->is_array()) return out;
  fs::path base = fs::path(podDir(uid)) / "volumes";
  std::error_code ec;
  for (size_t i = 0; i < volumes->size(); ++i) {
    const Json& v = (*volumes)[i];
    std::string field = "spec.volumes[" + std::to_string(i) + "]";
    if (!v.is_object()) return invalidError(field + ": must be an object");
    std::string name = api::stringAt(v, "name");
    if (name.empty() || name.find('/') != std::string::npos || name == "..") {
      return invalidError(field + ".name: invalid volume name \"" + name + "\"");
    }
    if (v.contains("emptyDir")) {
      fs::path dir = base / "empty-dir" / name;
      fs::create_directories(dir, ec);
      if (ec) return internalError(field + ".emptyDir: " + ec.message());
      out[name] = dir.string();
    } else if (v.contains("hostPath") && v["hostPath"].is_object()) {
      std::string path = api::stringAt(v["hostPath"], "path");
      std::string type = api::stringAt(v["hostPath"], "type");
      if (path.empty() || path[0] != '/') {
        return invalidError(field + ".hostPath.path: must be an absolute path");
      }
      if (type == "DirectoryOrCreate") {
        fs::create_directories(path, ec);
        if (ec) return internalError(field + ".hostPath: creating " + path + ": " + ec.message());
      } else if (type == "FileOrCreate" && !fs::exists(path, ec)) {
        fs::create_directories(fs::path(path).parent_path(), ec);
        std::ofstream(path).flush();
      } else if (type == "Directory" && !fs::is_directory(path, ec)) {
        return Status(Code::kNotFound, field + ".hostPath: " + path + " is not a directory");
      } else if (type == "File" && !fs::is_regular_file(path, ec)) {
        return Status(Code::kNotFound, field + ".hostPath: " + path + " is not a file");
      }
      out[name] = path;
    } else if (v.contains("configMap") || v.contains("secret")) {
      bool secret = v.contains("secret");
      const Json& src = secret ? v["secret"] : v["configMap"];
      std::string sfield = field + (secret ? ".secret" : ".configMap");
      if (!src.is_object()) return invalidError(sfield + ": must be an object");
      std::string objName = secret ? api::stringAt(src, "secretName") : api::stringAt(src, "name");
      bool optional = src.value("optional", false);
      int defaultMode = src.contains("defaultMode") && src["defaultMode"].is_number_integer()
                            ? src["defaultMode"].get<int>()
                            : 0644;
      fs::path dir = base / (secret ? "secret" : "configmap") / name;
      std::map<std::string, std::string> data;
      auto object = lookup(secret ? "secrets" : "configmaps", ns, objName);
      if (!object) {
        if (!optional) {
          return Status(Code::kNotFound, sfield + ": " + (secret ? "secret" : "configmap") + " \"" +
                                             objName + "\" not found");
        }
      } else {
        for (const char* section : {"data", "binaryData"}) {
          auto it = object->find(section);
          if (it == object->end() || !it->is_object()) continue;
          bool encoded = secret || std::string(section) == "binaryData";
          for (auto kv = it->begin(); kv != it->end(); ++kv) {
            if (!kv->is_string()) continue;
            if (encoded) {
              auto d = api::base64Decode(kv->get<std::string>());
              if (d) data[kv.key()] = *d;
            } else {
              data[kv.key()] = kv->get<std::string>();
            }
          }
        }
      }
      const Json* items = src.contains("items") ? &src["items"] : nullptr;
      if (auto s = project(dir, data, items, defaultMode, sfield); !s.isOk()) return s;
      out[name] = dir.string();
    } else if (v.contains("csi") && v["csi"].is_object() &&
               api::stringAt(v["csi"], "driver") == api::kModelDriver) {
      fs::path dir = base / "models" / name;
      if (auto s = setUpModelVolume(dir, v, ns, lookup, models_, nodeName_, field); !s.isOk())
        return s;
      out[name] = dir.string();
    } else {
      return invalidError(field +
                          ": unsupported volume source (supported: emptyDir, hostPath, "
                          "configMap, secret, csi with driver models.edgeplane.io)");
    }
  }
  return out;
}

Status VolumeManager::tearDown(const std::string& uid) {
  if (uid.empty() || uid.find('/') != std::string::npos || uid == "..") {
    return invalidError("invalid pod uid \"" + uid + "\"");
  }
  std::error_code ec;
  fs::remove_all(podDir(uid), ec);
  if (ec) return internalError("removing " + podDir(uid) + ": " + ec.message());
  return {};
}

std::vector<std::string> VolumeManager::podUids() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(root_, ec); !ec && it != fs::end(it); it.increment(ec)) {
    if (it->is_directory()) out.push_back(it->path().filename().string());
  }
  return out;
}

Result<std::vector<Mount>> containerMounts(const Json& container,
                                           const std::map<std::string, std::string>& volumes,
                                           const std::string& field,
                                           const std::set<std::string>& readOnly) {
  std::vector<Mount> out;
  const Json* mounts = api::lookupPath(container, "volumeMounts");
  if (!mounts || !mounts->is_array()) return out;
  for (size_t i = 0; i < mounts->size(); ++i) {
    const Json& m = (*mounts)[i];
    std::string mfield = field + ".volumeMounts[" + std::to_string(i) + "]";
    if (!m.is_object()) return invalidError(mfield + ": must be an object");
    std::string name = api::stringAt(m, "name");
    auto it = volumes.find(name);
    if (it == volumes.end()) {
      return invalidError(mfield + ".name: volume \"" + name + "\" not found");
    }
    std::string mountPath = api::stringAt(m, "mountPath");
    if (mountPath.empty() || mountPath[0] != '/') {
      return invalidError(mfield + ".mountPath: must be an absolute path");
    }
    std::string hostPath = it->second;
    std::string subPath = api::stringAt(m, "subPath");
    if (!subPath.empty()) {
      if (subPath[0] == '/' || subPath.find("..") != std::string::npos) {
        return invalidError(mfield + ".subPath: must be a relative path without \"..\"");
      }
      hostPath = (fs::path(hostPath) / subPath).string();
      std::error_code ec;
      if (!fs::exists(hostPath, ec)) fs::create_directories(hostPath, ec);
    }
    out.push_back({mountPath, hostPath, m.value("readOnly", false) || readOnly.count(name) > 0});
  }
  return out;
}

}  // namespace ep::edged
