#include "cloudcore/models/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "common/api/models.h"
#include "common/digest/sha256.h"
#include "common/pki/pki.h"
#include "common/thread_annotations.h"

namespace ep::models {
namespace fs = std::filesystem;
namespace {

constexpr const char* kIndexMagic = "ep-blob-index 1";

std::string errnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Reads up to `n` bytes at `offset`; fewer only at the end of the file.
Result<std::string> preadAll(int fd, uint64_t offset, size_t n, const std::string& path) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return internalError(errnoText("reading", path));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

Status writeAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return internalError(errnoText("writing", path));
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return {};
}

int64_t mtimeSeconds(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) : 0;
}

}  // namespace

BlobStore::BlobStore(BlobStoreOptions options) : options_(std::move(options)) {}

std::string BlobStore::blobPath(const std::string& digest) const {
  return options_.dir + "/sha256/" + digest.substr(7);
}
std::string BlobStore::indexPath(const std::string& digest) const {
  return blobPath(digest) + ".index";
}
std::string BlobStore::uploadPath(const std::string& digest) const {
  return options_.dir + "/uploads/" + digest.substr(7);
}

Status BlobStore::start() {
  for (const char* sub : {"", "/sha256", "/uploads"}) {
    std::string d = options_.dir + sub;
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec) return internalError("creating " + d + ": " + ec.message());
    if (::chmod(d.c_str(), 0700) != 0) return internalError(errnoText("chmod", d));
  }
  // Leftovers of an index write cut short by a crash.
  std::error_code ec;
  for (auto it = fs::directory_iterator(options_.dir + "/sha256", ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->path().extension() == ".tmp") fs::remove(it->path(), ec);
  }
  return {};
}

Result<UploadState> BlobStore::uploadState(const std::string& digest) {
  if (!api::isSha256Digest(digest)) {
    return invalidError("digest: \"" + digest + "\" is not sha256:<64 lower-case hex digits>");
  }
  MutexLock l(uploadMu_);
  if (auto info = stat(digest); info.isOk()) return UploadState{info->size, true};
  struct stat st {};
  if (::stat(uploadPath(digest).c_str(), &st) != 0) return UploadState{0, false};
  return UploadState{static_cast<uint64_t>(st.st_size), false};
}

Result<UploadState> BlobStore::append(const std::string& digest, uint64_t offset,
                                      std::string_view data) {
  if (!api::isSha256Digest(digest)) {
    return invalidError("digest: \"" + digest + "\" is not sha256:<64 lower-case hex digits>");
  }
  MutexLock l(uploadMu_);
  if (auto info = stat(digest); info.isOk()) return UploadState{info->size, true};
  const std::string path = uploadPath(digest);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return internalError(errnoText("opening", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return internalError(errnoText("stat", path));
  }
  const uint64_t have = static_cast<uint64_t>(st.st_size);
  if (offset != have) {
    ::close(fd);
    return Status(Code::kConflict, "offset: the upload of " + digest + " is at " +
                                       std::to_string(have) + " bytes, not " +
                                       std::to_string(offset));
  }
  if (have + data.size() > options_.maxBlobBytes) {
    ::close(fd);
    return Status(Code::kTooLarge, "the model file is larger than the limit of " +
                                       std::to_string(options_.maxBlobBytes) +
                                       " bytes (cloudcore --model-max-bytes)");
  }
  Status s;
  if (::lseek(fd, static_cast<off_t>(have), SEEK_SET) < 0) {
    s = internalError(errnoText("seeking", path));
  }
  if (s.isOk()) s = writeAll(fd, data, path);
  if (s.isOk() && ::fdatasync(fd) != 0) s = internalError(errnoText("syncing", path));
  if (!s.isOk()) {
    // A partial write would leave bytes the client does not know about: cut them off.
    (void)::ftruncate(fd, static_cast<off_t>(have));
    ::close(fd);
    return s;
  }
  ::close(fd);
  return UploadState{have + data.size(), false};
}

Result<BlobInfo> BlobStore::commit(const std::string& digest) {
  if (!api::isSha256Digest(digest)) {
    return invalidError("digest: \"" + digest + "\" is not sha256:<64 lower-case hex digits>");
  }
  MutexLock l(uploadMu_);
  if (auto info = stat(digest); info.isOk()) return info;
  const std::string path = uploadPath(digest);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status(Code::kNotFound, "nothing was uploaded for " + digest);
  digest::Sha256 whole;
  Index index;
  index.chunkBytes = api::kBlobChunkBytes;
  for (uint64_t off = 0;; off += index.chunkBytes) {
    auto chunk = preadAll(fd, off, index.chunkBytes, path);
    if (!chunk.isOk()) {
      ::close(fd);
      return chunk.status();
    }
    if (chunk->empty()) break;
    whole.update(*chunk);
    index.chunks.push_back(digest::sha256Of(*chunk));
    index.size += chunk->size();
    if (chunk->size() < index.chunkBytes) break;
  }
  ::close(fd);
  const std::string got = whole.finish();
  if (got != digest) {
    ::unlink(path.c_str());
    return invalidError("digest mismatch: the " + std::to_string(index.size) +
                        " bytes uploaded hash to " + got + ", not " + digest +
                        "; the upload was discarded");
  }
  std::ostringstream text;
  text << kIndexMagic << "\nsize " << index.size << "\nchunk " << index.chunkBytes << "\n";
  for (const auto& c : index.chunks) text << c << "\n";
  // Index first, then the blob: a blob without its index does not exist (stat checks both).
  if (auto s = pki::writeFileAtomic(indexPath(digest), text.str(), 0600); !s.isOk()) return s;
  if (::rename(path.c_str(), blobPath(digest).c_str()) != 0) {
    return internalError(errnoText("renaming", path));
  }
  int dfd = ::open((options_.dir + "/sha256").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return BlobInfo{digest, index.size, mtimeSeconds(blobPath(digest))};
}

Result<BlobInfo> BlobStore::stat(const std::string& digest) {
  if (!api::isSha256Digest(digest)) {
    return invalidError("digest: \"" + digest + "\" is not sha256:<64 lower-case hex digits>");
  }
  struct stat st {};
  struct stat ist {};
  if (::stat(blobPath(digest).c_str(), &st) != 0 || ::stat(indexPath(digest).c_str(), &ist) != 0) {
    return Status(Code::kNotFound, "blob " + digest + " not found");
  }
  return BlobInfo{digest, static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtime)};
}

Result<std::shared_ptr<const BlobStore::Index>> BlobStore::loadIndex(const std::string& digest) {
  {
    MutexLock l(indexMu_);
    if (auto it = indexes_.find(digest); it != indexes_.end()) return it->second;
  }
  const std::string path = indexPath(digest);
  // 2 GiB / 256 KiB chunks * 72 bytes: the index of the largest blob is about 600 KiB, inside
  // readFile's 1 MiB bound.
  auto text = pki::readFile(path);
  if (!text.isOk()) {
    if (text.status().code() == Code::kNotFound) {
      return Status(Code::kNotFound, "blob " + digest + " not found");
    }
    return internalError("blob " + digest + ": index " + path + ": " + text.status().message());
  }
  auto corrupted = [&](const std::string& why) {
    return internalError("blob " + digest + ": index " + path + " is corrupted (" + why + ")");
  };
  std::istringstream in(*text);
  std::string line;
  auto index = std::make_shared<Index>();
  if (!std::getline(in, line) || line != kIndexMagic) return corrupted("bad header");
  std::string word;
  if (!(in >> word >> index->size) || word != "size") return corrupted("bad size line");
  if (!(in >> word >> index->chunkBytes) || word != "chunk" || index->chunkBytes == 0) {
    return corrupted("bad chunk line");
  }
  while (in >> word) {
    if (!api::isSha256Digest(word)) return corrupted("bad chunk digest");
    index->chunks.push_back(word);
  }
  const uint64_t want = (index->size + index->chunkBytes - 1) / index->chunkBytes;
  if (index->chunks.size() != want) return corrupted("chunk count does not match the size");
  MutexLock l(indexMu_);
  indexes_[digest] = index;
  return std::shared_ptr<const Index>(index);
}

Result<BlobChunkData> BlobStore::readChunk(const std::string& digest, uint64_t offset) {
  if (!api::isSha256Digest(digest)) {
    return invalidError("digest: \"" + digest + "\" is not sha256:<64 lower-case hex digits>");
  }
  auto index = loadIndex(digest);
  if (!index.isOk()) return index.status();
  const Index& ix = **index;
  if (offset % ix.chunkBytes != 0 || offset >= std::max<uint64_t>(ix.size, 1)) {
    return invalidError("offset: " + std::to_string(offset) + " is not a chunk of " + digest +
                        " (" + std::to_string(ix.size) + " bytes, chunks of " +
                        std::to_string(ix.chunkBytes) + ")");
  }
  const std::string path = blobPath(digest);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status(Code::kNotFound, "blob " + digest + " not found");
  struct stat st {};
  const bool sizeOk = ::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == ix.size;
  const uint64_t n = std::min<uint64_t>(ix.chunkBytes, ix.size - std::min(offset, ix.size));
  auto data = preadAll(fd, offset, static_cast<size_t>(n), path);
  ::close(fd);
  if (!data.isOk()) return data.status();
  if (!sizeOk) {
    return internalError("blob " + digest + " is corrupted: " + path + " is not " +
                         std::to_string(ix.size) + " bytes long");
  }
  const size_t i = static_cast<size_t>(offset / ix.chunkBytes);
  std::string sum = digest::sha256Of(*data);
  if (sum != ix.chunks[i]) {
    return internalError("blob " + digest + " is corrupted: chunk " + std::to_string(i) +
                         " at offset " + std::to_string(offset) + " hashes to " + sum);
  }
  return BlobChunkData{offset, std::move(*data), std::move(sum), ix.size};
}

std::vector<BlobInfo> BlobStore::list() {
  std::vector<BlobInfo> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(options_.dir + "/sha256", ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find('.') != std::string::npos) continue;
    if (auto info = stat("sha256:" + name); info.isOk()) out.push_back(*info);
  }
  return out;
}

size_t BlobStore::collect(const std::set<std::string>& keep, int64_t nowSeconds,
                          int64_t olderThanSeconds) {
  MutexLock l(uploadMu_);
  size_t removed = 0;
  for (const auto& b : list()) {
    if (keep.count(b.digest) || nowSeconds - b.modifiedSeconds < olderThanSeconds) continue;
    // The blob goes first: without it the index is an orphan nobody reads.
    std::error_code ec;
    fs::remove(blobPath(b.digest), ec);
    fs::remove(indexPath(b.digest), ec);
    {
      MutexLock il(indexMu_);
      indexes_.erase(b.digest);
    }
    ++removed;
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator(options_.dir + "/uploads", ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (nowSeconds - mtimeSeconds(it->path().string()) < olderThanSeconds) continue;
    std::error_code rec;
    fs::remove(it->path(), rec);
    ++removed;
  }
  return removed;
}

}  // namespace ep::models
