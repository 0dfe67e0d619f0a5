#include "edgectl/upgrade.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "common/api/kinds.h"
#include "common/api/names.h"
#include "common/api/upgrades.h"
#include "common/clock.h"
#include "common/digest/sha256.h"
#include "edgectl/model.h"
#include "edgectl/paths.h"
#include "edgectl/printer.h"

namespace ep::edgectl {
namespace {

using Json = nlohmann::json;

const api::KindInfo& releaseKind() {
  return *api::findByApiVersionKind("upgrade.edgeplane.io/v1alpha1", "EdgecoreRelease");
}

int fail(Context& ctx, const std::string& message) {
  *ctx.err << "error: " << message << "\n";
  return 1;
}

}  // namespace

int runUpgradePush(Context& ctx, const UpgradeOptions& o) {
  if (o.args.size() != 2 || o.args[0] != "push") {
    return fail(ctx, "expected: edgectl upgrade push FILE --version V [--arch ARCH]");
  }
  const std::string& file = o.args[1];
  if (o.version.empty()) return fail(ctx, "--version is required");
  if (auto errs = api::checkDns1123Subdomain(o.version); !errs.empty()) {
    return fail(ctx,
                "--version: \"" + o.version + "\" names the release object, so it " + errs.front());
  }
  std::string arch = o.arch;
  if (arch.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail(ctx, file + ": cannot read it");
    std::string header(64, '\0');
    in.read(header.data(), static_cast<std::streamsize>(header.size()));
    header.resize(static_cast<size_t>(in.gcount()));
    arch = api::elfArchitecture(header);
    if (arch.empty()) {
      return fail(ctx, file +
                           ": not a Linux executable of a known architecture; say which "
                           "nodes take it with --arch (amd64, arm64, arm, ...)");
    }
  }
  auto hashed = digest::sha256OfFile(file);
  if (!hashed.isOk()) return fail(ctx, hashed.status().message());
  const auto [digest, size] = *hashed;

  auto get = [&]() -> Result<Json> {
    auto r = ctx.api->call("GET", resourcePath(releaseKind(), "", o.version));
    if (!r.isOk()) return r.status();
    if (r->status == 404) return Json();
    if (!r->ok()) return Status(Code::kInvalid, serverErrorLine(*r));
    return r->body;
  };
  // A release's binaries are immutable: the same version always means the same bytes.
  auto existing = get();
  if (!existing.isOk()) return fail(ctx, existing.status().message());
  if (!existing->is_null()) {
    if (auto b = api::releaseBinaryFor(*existing, arch); b && b->digest != digest) {
      return fail(ctx, "release " + o.version + " already has another " + arch + " binary (" +
                           b->digest + "); push it as a new version");
    }
  }
  uint64_t sent = 0;
  if (auto s = uploadBlob(ctx, releaseKind(), "", o.version, file, digest, size, o.chunkBytes,
                          o.retries, &sent);
      !s.isOk()) {
    return fail(ctx, "uploading " + file + ": " + s.message());
  }
  for (int attempt = 0;; ++attempt) {
    auto current = get();
    if (!current.isOk()) return fail(ctx, current.status().message());
    const bool create = current->is_null();
    Json rel = create ? Json{{"apiVersion", "upgrade.edgeplane.io/v1alpha1"},
                             {"kind", "EdgecoreRelease"},
                             {"metadata", {{"name", o.version}}},
                             {"spec", {{"version", o.version}, {"binaries", Json::array()}}}}
                      : *current;
    if (!rel["spec"].is_object()) rel["spec"] = Json::object();
    Json bins = Json::array();
    for (const auto& b : api::releaseBinaries(rel)) {
      if (b.architecture == arch) continue;
      bins.push_back({{"architecture", b.architecture},
                      {"digest", b.digest},
                      {"size", b.size},
                      {"pushedAt", b.pushedAt}});
    }
    bins.push_back({{"architecture", arch},
                    {"digest", digest},
                    {"size", size},
                    {"pushedAt", formatRfc3339(ctx.clock ? ctx.clock->nowMillis() : 0)}});
    rel["spec"]["version"] = o.version;
    rel["spec"]["binaries"] = std::move(bins);
    auto r = create ? ctx.api->call("POST", resourcePath(releaseKind(), ""), &rel)
                    : ctx.api->call("PUT", resourcePath(releaseKind(), "", o.version), &rel);
    if (!r.isOk()) return fail(ctx, r.status().message());
    if (r->ok()) break;
    if (r->status != 409 || attempt >= 5) return fail(ctx, serverErrorLine(*r));
  }
  *ctx.out << "edgecorerelease.upgrade.edgeplane.io/" << o.version << " pushed: " << arch << ", "
           << digest << ", " << size << " bytes (" << sent << " uploaded)\n";
  return 0;
}

}  // namespace ep::edgectl
