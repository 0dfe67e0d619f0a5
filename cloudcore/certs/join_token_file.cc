#include "cloudcore/certs/join_token_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/api/base64.h"
#include "common/api/bootstrap_token.h"
#include "common/api/kinds.h"
#include "common/api/object_util.h"
#include "common/pki/join_token.h"
#include "common/pki/pki.h"

namespace ep::certs {
namespace {

constexpr const char* kLabel = "edgeplane.io/join-token-file";

const api::KindInfo& secretKind() {
  return *api::findByApiVersionKind("v1", "Secret");
}

std::string failure(const std::string& path, const std::string& why) {
  return "--join-token-file " + path + ": " + why;
}

// A private temporary file beside `path` holding `text` (synced); its name, or an error.
Result<std::string> writeTemp(const std::string& path, const std::string& text) {
  std::string tmpl = path + ".XXXXXX";
  int fd = ::mkstemp(tmpl.data());  // O_EXCL, mode 0600
  if (fd < 0) return internalError(failure(path, std::strerror(errno)));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmpl.c_str());
    return internalError(failure(path, std::strerror(err)));
  }
  return tmpl;
}

void syncDirectoryOf(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
}

}  // namespace

Status ensureJoinTokenFile(registry::Registry& registry, const std::string& caHash,
                           const std::string& path) {
  // The token the file holds, if any.
  std::optional<pki::JoinToken> held;
  {
    std::ifstream in(path);
    std::string line;
    if (in && std::getline(in, line)) {
      if (auto t = pki::parseJoinToken(line); t.isOk()) held = *t;
    }
  }
  if (held) {
    auto s = registry.get(secretKind(), "kube-system", pki::bootstrapTokenSecretName(held->id));
    if (!s.isOk() && s.status().code() != Code::kNotFound) return s.status();  // e.g. etcd away
    if (s.isOk()) {
      auto secret = api::base64Decode(api::stringAt(*s, "data.token-secret"));
      const bool same = held->caHash == caHash && secret &&
                        pki::constantTimeEquals(*secret, held->secret) &&
                        api::stringAt(*s, "data.expiration").empty();
      if (same) {
        spdlog::info("join token: {} holds a valid token", path);
        return Status::ok();
      }
      // Replaced below: the old one goes, if it was this flag's.
      if (api::labelsOf(*s).count(kLabel)) {
        (void)registry.remove(secretKind(), "kube-system", pki::bootstrapTokenSecretName(held->id));
      }
    }
  }
  auto id = pki::randomToken(6);
  auto secret = pki::randomToken(16);
  if (!id.isOk() || !secret.isOk()) return internalError("join token: no randomness");
  pki::JoinToken token{*id, *secret, caHash};
  // The file first (aside), then the Secret, then the rename: a token never exists in the
  // cluster without the file that names it.
  auto tmp = writeTemp(path, token.toString() + "\n");
  if (!tmp.isOk()) return tmp.status();
  nlohmann::json body = api::bootstrapTokenSecret(
      {.id = *id, .secret = *secret, .description = "cloudcore --join-token-file"});
  body["metadata"]["labels"][kLabel] = "true";
  auto created = registry.create(secretKind(), "kube-system", body);
  if (!created.isOk()) {
    ::unlink(tmp->c_str());
    return created.status();
  }
  if (::rename(tmp->c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp->c_str());
    (void)registry.remove(secretKind(), "kube-system", pki::bootstrapTokenSecretName(*id));
    return internalError(failure(path, why));
  }
  syncDirectoryOf(path);
  spdlog::info("join token: wrote a new token (unlimited joins) to {}", path);
  return Status::ok();
}

}  // namespace ep::certs
