// File helpers of the PKI (no crypto): atomic private writes and bounded reads. In ep_pki_common,
// shared by the OpenSSL (ep_pki) and the edge's wolfSSL (ep_pki_edge) implementations.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "common/pki/pki.h"

namespace ep::pki {
namespace {

constexpr size_t kMaxFileBytes = 1024 * 1024;

Status tooLarge(std::string m) {
  return {Code::kTooLarge, std::move(m)};
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

std::string errnoText(int err) {
  return std::system_category().message(err);
}

}  // namespace

// --- Files ---------------------------------------------------------------------------------

namespace {

// Creates the missing directories of `dir` with mode 0700 (exactly: chmod after mkdir).
Status makeDirectories(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    if (dir[i - 1] == '/') continue;  // "//" or a trailing slash
    std::string prefix = dir.substr(0, i);
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      if (::chmod(prefix.c_str(), 0700) != 0) {
        return internalError("cannot create " + prefix + ": " + errnoText(errno));
      }
    } else if (errno != EEXIST) {
      return internalError("cannot create " + prefix + ": " + errnoText(errno));
    }
  }
  return Status::ok();
}

// Removes a temporary file unless released, closing its descriptor first.
class TempFile {
 public:
  TempFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~TempFile() {
    closeFd();
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Returns close()'s errno, 0 on success.
  int closeFd() {
    if (fd_ < 0) return 0;
    int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }
  void release() { path_.clear(); }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

namespace {

// Writes `content` to a temporary file beside `path` (mode `mode`), fsyncs it, then puts it in
// place: rename(2) replacing `path` (replace) or link(2) failing with kAlreadyExists when `path`
// exists (exclusive); then fsyncs the directory. The temporary file never outlives the call.
Status writeThroughTempFile(const std::string& path, std::string_view content, mode_t mode,
                            bool replace) {
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") {
    return invalidError("cannot write " + quoted(path) + ": not a file path");
  }
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  Status st = makeDirectories(dir);
  if (!st.isOk()) return st;

  std::string tmpl = (dir == "/" ? "" : dir) + "/." + base + ".tmp-XXXXXX";
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return internalError("cannot write " + path + ": " + errnoText(errno));
  TempFile tmp(fd, tmpl);
  auto fail = [&path](int err) {
    return internalError("cannot write " + path + ": " + errnoText(err));
  };
  if (::fchmod(tmp.fd(), mode) != 0) return fail(errno);
  for (size_t done = 0; done < content.size();) {
    ssize_t n = ::write(tmp.fd(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(tmp.fd()) != 0) return fail(errno);
  if (int err = tmp.closeFd(); err != 0) return fail(err);
  if (replace) {
    if (::rename(tmp.path().c_str(), path.c_str()) != 0) return fail(errno);
    tmp.release();
  } else if (::link(tmp.path().c_str(), path.c_str()) != 0) {  // tmp is removed either way
    if (errno == EEXIST) return Status(Code::kAlreadyExists, path + " already exists");
    return fail(errno);
  }

  int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0) return internalError("cannot sync " + dir + ": " + errnoText(errno));
  int rc = ::fsync(dirFd);
  int err = errno;
  ::close(dirFd);
  if (rc != 0) return internalError("cannot sync " + dir + ": " + errnoText(err));
  return Status::ok();
}

}  // namespace

Status writeFileAtomic(const std::string& path, std::string_view content, mode_t mode) {
  return writeThroughTempFile(path, content, mode, /*replace=*/true);
}

Status createFileExclusive(const std::string& path, std::string_view content, mode_t mode) {
  return writeThroughTempFile(path, content, mode, /*replace=*/false);
}

Result<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string m = "cannot read " + path + ": " + errnoText(err);
    return err == ENOENT ? notFoundError(std::move(m)) : internalError(std::move(m));
  }
  std::string out;
  char buf[16384];
  int err = 0;
  while (out.size() <= kMaxFileBytes) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (err != 0) return internalError("cannot read " + path + ": " + errnoText(err));
  if (out.size() > kMaxFileBytes) return tooLarge("cannot read " + path + ": larger than 1 MiB");
  return out;
}

// --- Encoding and randomness ---------------------------------------------------------------

}  // namespace ep::pki
