#include "cloudcore/upgrades/image_importer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cloudcore/upgrades/layer_file.h"
#include "common/api/kinds.h"
#include "common/api/object_util.h"
#include "common/api/registry_auth.h"
#include "common/api/upgrades.h"
#include "common/digest/sha256.h"
#include "common/oci/image.h"

namespace ep::upgrades {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kMaxConfigBytes = 1u << 20;
constexpr size_t kStoreChunkBytes = 4u << 20;
constexpr const char* kDefaultBinary = "/usr/bin/edgecore";

const api::KindInfo& releaseKind() {
  return *api::findByApiVersionKind("upgrade.edgeplane.io/v1alpha1", "EdgecoreRelease");
}
const api::KindInfo& secretKind() {
  return *api::findByApiVersionKind("v1", "Secret");
}

// A file written once, removed when the scope ends unless kept.
class ScratchFile {
 public:
  explicit ScratchFile(std::string path) : path_(std::move(path)) {}
  ~ScratchFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

Result<api::OciRef> imageRefFor(const std::string& image, const std::string& version) {
  if (image.empty()) return invalidError("spec.image: empty");
  std::string ref = image;
  const auto slash = ref.rfind('/');
  const std::string last = slash == std::string::npos ? ref : ref.substr(slash + 1);
  if (last.find(':') == std::string::npos && last.find('@') == std::string::npos) {
    ref += ":" + version;
  }
  const auto first = ref.find('/');
  const std::string host = first == std::string::npos ? "" : ref.substr(0, first);
  if (host.empty() || (host.find('.') == std::string::npos && host.find(':') == std::string::npos &&
                       host != "localhost")) {
    ref = "docker.io/" + ref;
  }
  auto parsed = api::parseOciUrl(std::string(api::kOciScheme) + ref);
  if (!parsed.isOk()) {
    return invalidError("spec.image: \"" + image + "\" with version \"" + version +
                        "\" is not an image reference: " + parsed.status().message());
  }
  return parsed;
}

ImageImporter::ImageImporter(ImageImporterOptions options, registry::Registry& registry,
                             models::BlobStore& blobs, std::unique_ptr<oci::OciRegistry> oci,
                             Clock& clock)
    : options_(std::move(options)),
      registry_(registry),
      blobs_(blobs),
      oci_(std::move(oci)),
      clock_(clock) {
  oci_->setCancel([this] {
    const int64_t deadline = deadlineMillis_.load();
    return cancel_.load() ||
           (deadline > 0 && std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now().time_since_epoch())
                                    .count() > deadline);
  });
}

ImageImporter::~ImageImporter() {
  stop();
}

Status ImageImporter::start() {
  std::error_code ec;
  fs::remove_all(options_.workDir, ec);
  fs::create_directories(options_.workDir, ec);
  if (ec) {
    return Status(Code::kInternal, "edgecore image imports: cannot create " + options_.workDir +
                                       ": " + ec.message());
  }
  fs::permissions(options_.workDir, fs::perms::owner_all, ec);
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  cancel_ = false;
  worker_ = std::thread([this] { run(); });
  return {};
}

void ImageImporter::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cancel_ = true;
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

controllers::ReleaseImports::State ImageImporter::request(const Request& r) {
  MutexLock l(mu_);
  if (auto it = states_.find(r.key); it != states_.end()) return it->second;
  if (queue_.size() >= options_.maxQueued) {
    return {false, ""};  // asked again on the controller's next pass
  }
  states_[r.key] = {};
  queue_.push_back(r);
  cv_.notify_all();
  return {};
}

void ImageImporter::retain(const std::set<std::string>& keys) {
  MutexLock l(mu_);
  for (auto it = states_.begin(); it != states_.end();) {
    it = keys.count(it->first) ? std::next(it) : states_.erase(it);
  }
  for (auto it = queue_.begin(); it != queue_.end();) {
    it = keys.count(it->key) ? std::next(it) : queue_.erase(it);
  }
}

void ImageImporter::setListener(std::function<void()> listener) {
  MutexLock l(listenerMu_);
  listener_ = std::move(listener);
}

void ImageImporter::run() {
  while (true) {
    Request next;
    {
      MutexLock l(mu_);
      l.wait(cv_, [this]() EP_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto t0 = std::chrono::steady_clock::now();
    deadlineMillis_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                          (t0 + options_.importTimeout).time_since_epoch())
                          .count();
    Status s = importNow(next);
    deadlineMillis_ = 0;
    if (cancel_) {
      // Stopping: forgotten, so that a request after the next start() queues it again.
      MutexLock l(mu_);
      states_.erase(next.key);
      return;
    }
    if (!s.isOk() && std::chrono::steady_clock::now() - t0 >= options_.importTimeout) {
      const int64_t ms = options_.importTimeout.count();
      s = Status(Code::kUnavailable, "the import took longer than " +
                                         (ms % 1000 == 0 ? std::to_string(ms / 1000) + "s"
                                                         : std::to_string(ms) + "ms") +
                                         " (" + s.message() + ")");
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (s.isOk()) {
      spdlog::info("edgecore image imports: EdgecoreRelease {} from {} in {} ms", next.version,
                   next.image, ms);
    } else {
      spdlog::warn("edgecore image imports: {} for {}: {}", next.image, next.version, s.message());
    }
    {
      MutexLock l(mu_);
      // Recorded only while still wanted (retain() may have dropped the key meanwhile).
      if (auto it = states_.find(next.key); it != states_.end()) {
        it->second = {s.isOk(), s.isOk() ? "" : s.message()};
      }
    }
    MutexLock l(listenerMu_);
    if (listener_) listener_();
  }
}

Result<oci::RegistryCredentials> ImageImporter::credentials(const Request& r,
                                                            const api::OciRef& ref) {
  oci::RegistryCredentials creds;
  if (r.pullSecret.empty()) return creds;
  const auto [ns, name] = api::imagePullSecretRef(r.pullSecret);
  auto secret = registry_.get(secretKind(), ns, name);
  if (!secret.isOk()) {
    return Status(secret.status().code(),
                  "image pull secret " + ns + "/" + name + ": " + secret.status().message());
  }
  // A basic-auth Secret names no registry: its password would go wherever spec.image points.
  const std::string type = api::stringAt(*secret, "type");
  if (type != "kubernetes.io/dockerconfigjson" && type != "kubernetes.io/dockercfg") {
    return invalidError("image pull secret " + ns + "/" + name + " is of type \"" + type +
                        "\"; it must be kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg "
                        "(credentials per registry)");
  }
  auto auth = api::registryAuthFor(*secret, ref.registry);
  if (!auth) {
    return invalidError("image pull secret " + ns + "/" + name + " holds no credentials for " +
                        ref.registry + " (no entry for that registry in its auths)");
  }
  if (!auth->basic(&creds.username, &creds.password)) {
    creds.username.clear();
    creds.password.clear();
  }
  creds.identityToken = auth->identityToken;
  creds.registryToken = auth->registryToken;
  return creds;
}

Status ImageImporter::importNow(const Request& r) {
  auto ref = imageRefFor(r.image, r.version);
  if (!ref.isOk()) return ref.status();
  auto creds = credentials(r, *ref);
  if (!creds.isOk()) return creds.status();
  // The reference as pulled, for errors.
  const std::string shown = ref->registry + "/" + ref->repository +
                            (ref->digest.empty() ? ":" + ref->tag : "@" + ref->digest);
  auto top = oci_->manifest(*ref, *creds);
  if (!top.isOk()) return top.status();
  // The platforms to take: an index's linux manifests, or the one manifest.
  std::vector<std::pair<std::string, std::string>> platforms;  // (manifest digest, arch or "")
  if (oci::isImageIndex(top->mediaType)) {
    auto index = oci::parseImageIndex(top->body);
    if (!index.isOk()) return Status(Code::kInvalid, shown + ": " + index.status().message());
    std::set<std::string> seen;
    for (const auto& m : *index) {
      if (m.os != "linux" || !api::isKnownArchitecture(m.architecture))
        continue;                                         // attestations too
      if (!seen.insert(m.architecture).second) continue;  // arm v6 and v7: the first listed
      platforms.emplace_back(m.digest, m.architecture);
    }
    if (platforms.empty()) {
      return invalidError(shown + ": the image index lists no linux platform edgecore runs on");
    }
  } else {
    platforms.emplace_back(top->digest, "");
  }
  std::vector<Binary> binaries;
  // The extracted copies go when the import ends, whatever its outcome.
  struct Cleanup {
    std::vector<Binary>& b;
    ~Cleanup() {
      for (const auto& x : b) ::unlink(x.file.c_str());
    }
  } cleanup{binaries};
  for (const auto& [digest, arch] : platforms) {
    auto b = importPlatform(*ref, *creds, digest, arch);
    if (!b.isOk()) {
      return Status(b.status().code(), shown + (arch.empty() ? "" : " (linux/" + arch + ")") +
                                           ": " + b.status().message());
    }
    binaries.push_back(std::move(*b));
  }
  for (const auto& b : binaries) {
    if (Status st = store(b.file, b.digest, b.size); !st.isOk()) return st;
  }
  if (Status st =
          writeRelease(r, ref->registry + "/" + ref->repository + "@" + top->digest, binaries);
      !st.isOk()) {
    return st;
  }
  // A blob that was already there but referred to by nothing may have been collected before
  // the release named it: stored again (it is now kept as the release's).
  for (const auto& b : binaries) {
    if (blobs_.stat(b.digest).isOk()) continue;
    if (Status st = store(b.file, b.digest, b.size); !st.isOk()) return st;
  }
  return {};
}

Result<std::string> ImageImporter::fetchSmallBlob(const api::OciRef& repo,
                                                  const oci::RegistryCredentials& creds,
                                                  const std::string& digest, uint64_t size,
                                                  const std::string& what) {
  if (size > kMaxConfigBytes) return invalidError(what + ": over 1 MiB");
  std::string body;
  oci::OciArtifact a;
  a.digest = digest;
  a.size = size;
  Status s = oci_->fetch(repo, creds, a, 0, [&](uint64_t, std::string_view bytes) -> Status {
    if (body.size() + bytes.size() > kMaxConfigBytes) return invalidError(what + ": over 1 MiB");
    body.append(bytes);
    return {};
  });
  if (!s.isOk()) return s;
  if (digest::sha256Of(body) != digest) {
    return invalidError(what + ": the bytes received do not hash to " + digest);
  }
  return body;
}

Result<ImageImporter::Binary> ImageImporter::importPlatform(const api::OciRef& repo,
                                                            const oci::RegistryCredentials& creds,
                                                            const std::string& manifestDigest,
                                                            const std::string& platform) {
  api::OciRef byDigest = repo;
  byDigest.tag.clear();
  byDigest.digest = manifestDigest;
  auto m = oci_->manifest(byDigest, creds);
  if (!m.isOk()) return m.status();
  auto manifest = oci::parseImageManifest(m->body);
  if (!manifest.isOk()) return manifest.status();
  auto configBody = fetchSmallBlob(repo, creds, manifest->config.digest, manifest->config.size,
                                   "the image config");
  if (!configBody.isOk()) return configBody.status();
  auto config = oci::parseImageConfig(*configBody);
  if (!config.isOk()) return config.status();
  if (!config->os.empty() && config->os != "linux") {
    return invalidError("the image is for " + config->os + ", not linux");
  }
  const std::string arch = platform.empty() ? config->architecture : platform;
  if (!api::isKnownArchitecture(arch)) {
    return invalidError("the image's architecture \"" + arch + "\" is not one edgecore runs on");
  }
  std::string path = kDefaultBinary;
  if (!config->entrypoint.empty()) {
    path = config->entrypoint[0];
  } else if (!config->cmd.empty()) {
    path = config->cmd[0];
  }
  if (path.empty() || path[0] != '/') {
    return invalidError("the image's entrypoint \"" + path.substr(0, 200) +
                        "\" is not an absolute path (the edgecore binary is taken from there)");
  }
  // Topmost layer first: the first that holds the file (or deletes it) decides.
  for (size_t i = manifest->layers.size(); i-- > 0;) {
    const oci::OciDescriptor& layer = manifest->layers[i];
    const std::string what = "layer " + std::to_string(i) + " (" + layer.digest + ")";
    if (!layer.mediaType.empty() && !oci::isTarLayer(layer.mediaType)) {
      return invalidError(what + ": media type " + layer.mediaType + " is not a tar layer");
    }
    ScratchFile scratch(options_.workDir + "/" + layer.digest.substr(7) + ".part");
    int fd = ::open(scratch.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status(Code::kInternal, "cannot create " + scratch.path() + ": " + strerror(errno));
    }
    digest::Sha256 fileHash;
    std::string header;  // the binary's first bytes, for its architecture
    LayerFileFinder finder(path, options_.maxBinaryBytes, [&](std::string_view bytes) -> Status {
      if (header.size() < 64) header.append(bytes.substr(0, 64 - header.size()));
      fileHash.update(bytes);
      while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
          return Status(Code::kInternal, "writing " + scratch.path() + ": " + strerror(errno));
        bytes.remove_prefix(static_cast<size_t>(n));
      }
      return {};
    });
    digest::Sha256 layerHash;
    uint64_t received = 0;
    oci::OciArtifact a;
    a.digest = layer.digest;
    a.size = layer.size;
    // The whole blob is hashed even after the finder gave up: a corrupt download is reported
    // as that, not as whatever the finder made of it.
    Status found;
    Status s = oci_->fetch(repo, creds, a, 0, [&](uint64_t position, std::string_view bytes) {
      if (position != received) {
        return invalidError("the registry answered from byte " + std::to_string(position));
      }
      received += bytes.size();
      if (received > layer.size) {
        return invalidError("the bytes received do not match the manifest's digest and size");
      }
      layerHash.update(bytes);
      if (found.isOk()) found = finder.feed(bytes);
      return Status();
    });
    if (s.isOk() && found.isOk()) found = finder.finish();
    const bool closed = ::close(fd) == 0;
    if (!s.isOk()) return Status(s.code(), what + ": " + s.message());
    // The layer's bytes are checked before anything taken out of them is used.
    if (received != layer.size || layerHash.finish() != layer.digest) {
      return invalidError(what +
                          ": the bytes received do not match the manifest's digest and size");
    }
    if (!found.isOk()) return Status(found.code(), what + ": " + found.message());
    if (!closed) return Status(Code::kInternal, "writing " + scratch.path() + ": close failed");
    if (finder.outcome() == LayerFileFinder::Outcome::kDeleted) {
      return invalidError(what + " deletes or hides " + path +
                          " (a whiteout, or a parent directory replaced by a file or link)");
    }
    if (finder.outcome() == LayerFileFinder::Outcome::kAbsent) continue;
    const std::string binArch = api::elfArchitecture(header);
    if (binArch != arch) {
      return invalidError(path + " in " + what + " is " +
                          (binArch.empty() ? std::string("not a Linux executable")
                                           : "an executable for " + binArch) +
                          ", the image's platform is linux/" + arch);
    }
    Binary b{arch, fileHash.finish(), finder.fileSize(), ""};
    b.file = options_.workDir + "/" + b.digest.substr(7) + "-" + arch;
    if (::rename(scratch.path().c_str(), b.file.c_str()) != 0) {
      return Status(Code::kInternal, "renaming " + scratch.path() + ": " + strerror(errno));
    }
    return b;
  }
  return invalidError("no " + path + " in the image's layers");
}

Status ImageImporter::store(const std::string& file, const std::string& digest, uint64_t size) {
  if (blobs_.stat(digest).isOk()) return {};
  auto state = blobs_.uploadState(digest);
  if (!state.isOk()) return state.status();
  uint64_t offset = state->complete ? size : state->offset;
  if (offset > size) offset = 0;
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string chunk(kStoreChunkBytes, '\0');
  while (offset < size) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) return Status(Code::kInternal, "reading " + file + ": short file");
    auto st = blobs_.append(digest, offset, std::string_view(chunk.data(), n));
    if (!st.isOk()) return st.status();
    offset += n;
  }
  auto committed = blobs_.commit(digest);
  return committed.isOk() ? Status() : committed.status();
}

Status ImageImporter::writeRelease(const Request& r, const std::string& source,
                                   const std::vector<Binary>& binaries) {
  const std::string now = formatRfc3339(clock_.nowMillis());
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto existing = registry_.get(releaseKind(), "", r.version);
    if (!existing.isOk() && existing.status().code() != Code::kNotFound) {
      return existing.status();
    }
    Json rel;
    if (existing.isOk()) {
      rel = std::move(*existing);
    } else {
      rel = {{"apiVersion", "upgrade.edgeplane.io/v1alpha1"},
             {"kind", "EdgecoreRelease"},
             {"metadata", {{"name", r.version}}},
             {"spec", {{"version", r.version}, {"binaries", Json::array()}}}};
    }
    if (!rel["spec"].is_object()) rel["spec"] = Json::object();
    if (!rel["spec"]["binaries"].is_array()) rel["spec"]["binaries"] = Json::array();
    bool changed = false;
    for (const auto& b : binaries) {
      if (auto have = api::releaseBinaryFor(rel, b.architecture)) {
        if (have->digest != b.digest) {
          spdlog::info(
              "edgecore image imports: EdgecoreRelease {} keeps its {} binary {} (the image's "
              "is {})",
              r.version, b.architecture, have->digest, b.digest);
        }
        continue;
      }
      rel["spec"]["binaries"].push_back({{"architecture", b.architecture},
                                         {"digest", b.digest},
                                         {"size", b.size},
                                         {"pushedAt", now},
                                         {"image", source}});
      changed = true;
    }
    if (!changed) return {};
    auto w = existing.isOk() ? registry_.update(releaseKind(), "", r.version, rel)
                             : registry_.create(releaseKind(), "", rel);
    if (w.isOk()) return {};
    if (w.status().code() != Code::kConflict && w.status().code() != Code::kAlreadyExists) {
      return Status(w.status().code(),
                    "EdgecoreRelease " + r.version + ": " + w.status().message());
    }
  }
  return Status(Code::kConflict, "EdgecoreRelease " + r.version + ": kept changing");
}

}  // namespace ep::upgrades
