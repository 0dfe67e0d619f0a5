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

const api::KindInfo& secretKind() {
  return *api::findByApiVersionKind("v1", "Secret");
}

// Whether `token` is this cluster's and its Secret still holds its secret.
bool stillValid(registry::Registry& registry, const pki::JoinToken& token,
                const std::string& caHash) {
  if (token.caHash != caHash) return false;
  auto s = registry.get(secretKind(), "kube-system", pki::bootstrapTokenSecretName(token.id));
  if (!s.isOk()) return false;
  auto secret = api::base64Decode(api::stringAt(*s, "data.token-secret"));
  return secret && pki::constantTimeEquals(*secret, token.secret) &&
         api::stringAt(*s, "data.expiration").empty();
}

Status writeFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return internalError("--join-token-file " + path + ": " + std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return internalError("--join-token-file " + path + ": " + std::strerror(ok ? errno : err));
  }
  return Status::ok();
}

}  // namespace

Status ensureJoinTokenFile(registry::Registry& registry, const std::string& caHash,
                           const std::string& path) {
  {
    std::ifstream in(path);
    std::string line;
    if (in && std::getline(in, line)) {
      auto token = pki::parseJoinToken(line);
      if (token.isOk() && stillValid(registry, *token, caHash)) {
        spdlog::info("join token: {} holds a valid token", path);
        return Status::ok();
      }
    }
  }
  auto id = pki::randomToken(6);
  auto secret = pki::randomToken(16);
  if (!id.isOk() || !secret.isOk()) return internalError("join token: no randomness");
  auto created = registry.create(
      secretKind(), "kube-system",
      api::bootstrapTokenSecret(
          {.id = *id, .secret = *secret, .description = "cloudcore --join-token-file"}));
  if (!created.isOk()) return created.status();
  pki::JoinToken token{*id, *secret, caHash};
  if (auto s = writeFile(path, token.toString() + "\n"); !s.isOk()) return s;
  spdlog::info("join token: wrote a new token (unlimited joins) to {}", path);
  return Status::ok();
}

}  // namespace ep::certs
