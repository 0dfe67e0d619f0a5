#include "edgecore/models/content_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/api/json_limits.h"
#include "common/api/models.h"
#include "common/digest/sha256.h"
#include "common/pki/pki.h"

// Models are often over 2 GiB: offsets and sizes must be 64-bit on 32-bit targets too
// (_FILE_OFFSET_BITS=64, CMakeLists.txt).
static_assert(sizeof(off_t) == 8, "content store: off_t must be 64-bit (_FILE_OFFSET_BITS=64)");

namespace ep::edgecore::models {
namespace fs = std::filesystem;
namespace {

std::string errnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

std::vector<std::string> digestsIn(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
    std::string d = "sha256:" + it->path().filename().string();
    if (api::isSha256Digest(d)) out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

ContentStore::ContentStore(std::string dir) : dir_(std::move(dir)) {}

std::string ContentStore::blobPath(const std::string& digest) const {
  return dir_ + "/blobs/" + digest.substr(7);
}
std::string ContentStore::partialPath(const std::string& digest) const {
  return dir_ + "/partial/" + digest.substr(7);
}

Status ContentStore::start() {
  for (const char* sub : {"", "/blobs", "/partial", "/refs"}) {
    std::string d = dir_ + sub;
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec) return internalError("creating " + d + ": " + ec.message());
    if (::chmod(d.c_str(), 0700) != 0) return internalError(errnoText("chmod", d));
  }
  return {};
}

std::optional<std::string> ContentStore::complete(const std::string& digest) const {
  if (!api::isSha256Digest(digest)) return std::nullopt;
  std::string p = blobPath(digest);
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return p;
}

Status ContentStore::hashPartial(const std::string& digest, digest::Sha256& hash,
                                 uint64_t* bytes) const {
  *bytes = 0;
  if (!api::isSha256Digest(digest)) return invalidError("digest: malformed");
  const std::string p = partialPath(digest);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status(Code::kNotFound, errnoText("opening", p));
  std::string buf(1u << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = errnoText("reading", p);
      ::close(fd);
      return internalError(why);
    }
    if (n == 0) break;
    hash.update(std::string_view(buf.data(), static_cast<size_t>(n)));
    *bytes += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return {};
}

uint64_t ContentStore::partialSize(const std::string& digest) const {
  struct stat st {};
  if (!api::isSha256Digest(digest) || ::stat(partialPath(digest).c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

Status ContentStore::appendPartial(const std::string& digest, uint64_t offset,
                                   std::string_view data, bool sync) {
  if (!api::isSha256Digest(digest)) return invalidError("digest: malformed");
  const std::string p = partialPath(digest);
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return internalError(errnoText("opening", p));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != offset) {
    ::close(fd);
    return Status(Code::kConflict, "download of " + digest + " is at " +
                                       std::to_string(st.st_size) + " bytes, not " +
                                       std::to_string(offset));
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      std::string why = errnoText("writing", p);
      (void)::ftruncate(fd, static_cast<off_t>(offset));  // never keep a torn chunk
      ::close(fd);
      return internalError(why);
    }
    done += static_cast<size_t>(w);
  }
  if (sync && ::fdatasync(fd) != 0) {
    std::string why = errnoText("syncing", p);
    (void)::ftruncate(fd, static_cast<off_t>(offset));
    ::close(fd);
    return internalError(why);
  }
  ::close(fd);
  return {};
}

Status ContentStore::finish(const std::string& digest, const std::string& computed) {
  const std::string p = partialPath(digest);
  std::string got = computed;
  if (got.empty()) {
    auto hashed = digest::sha256OfFile(p);
    if (!hashed.isOk()) return hashed.status();
    got = hashed->first;
  }
  if (got != digest) {
    ::unlink(p.c_str());
    return invalidError("downloaded bytes hash to " + got + ", not " + digest +
                        "; the download was discarded");
  }
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    return internalError(errnoText("syncing", p));
  }
  ::close(fd);
  ::chmod(p.c_str(), 0444);
  if (::rename(p.c_str(), blobPath(digest).c_str()) != 0) {
    return internalError(errnoText("renaming", p));
  }
  int dfd = ::open((dir_ + "/blobs").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Status ContentStore::verify(const std::string& digest) {
  const std::string p = blobPath(digest);
  auto got = digest::sha256OfFile(p);
  if (!got.isOk()) return got.status();
  if (got->first != digest) {
    ::unlink(p.c_str());
    return invalidError("model file " + p + " is corrupted (hashes to " + got->first +
                        "); removed, it will be fetched again");
  }
  return {};
}

void ContentStore::remove(const std::string& digest) {
  if (api::isSha256Digest(digest)) ::unlink(blobPath(digest).c_str());
}

void ContentStore::removePartial(const std::string& digest) {
  if (api::isSha256Digest(digest)) ::unlink(partialPath(digest).c_str());
}

std::string ContentStore::refPath(const std::string& key) const {
  return dir_ + "/refs/" + digest::sha256Of(key).substr(7);
}

Status ContentStore::putResolution(const OciResolution& r) {
  if (!api::isSha256Digest(r.digest)) return invalidError("resolution: bad digest " + r.digest);
  nlohmann::json j = {{"key", r.key},   {"url", r.url},   {"digest", r.digest},
                      {"file", r.file}, {"size", r.size}, {"manifestDigest", r.manifestDigest}};
  return pki::writeFileAtomic(refPath(r.key), j.dump() + "\n", 0600);
}

std::optional<OciResolution> ContentStore::readResolution(const std::string& path) const {
  auto text = pki::readFile(path);
  if (!text.isOk()) return std::nullopt;
  nlohmann::json j = api::parseJsonBounded(*text, 2);
  if (!j.is_object()) return std::nullopt;
  OciResolution r;
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  r.key = str("key");
  r.url = str("url");
  r.digest = str("digest");
  r.file = str("file");
  r.manifestDigest = str("manifestDigest");
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_unsigned()) return std::nullopt;
  r.size = size->get<uint64_t>();
  if (!api::isSha256Digest(r.digest) || !api::validateModelFileName(r.file).isOk()) {
    return std::nullopt;
  }
  return r;
}

std::optional<OciResolution> ContentStore::resolution(const std::string& key) const {
  auto r = readResolution(refPath(key));
  if (!r || r->key != key) return std::nullopt;  // damaged, or not this key's record
  return r;
}

void ContentStore::removeResolution(const std::string& key) {
  ::unlink(refPath(key).c_str());
}

std::vector<OciResolution> ContentStore::resolutions() const {
  std::vector<OciResolution> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir_ + "/refs", ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (auto r = readResolution(it->path().string())) {
      if (refPath(r->key) == it->path().string()) out.push_back(std::move(*r));
    }
  }
  return out;
}

std::vector<std::string> ContentStore::completeDigests() const {
  return digestsIn(dir_ + "/blobs");
}
std::vector<std::string> ContentStore::partialDigests() const {
  return digestsIn(dir_ + "/partial");
}

}  // namespace ep::edgecore::models
