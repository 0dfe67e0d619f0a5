#pragma once

// The management dashboard's static files (docs/dashboard.md), served by cloudcore at /ui/ on the
// API's port. The files are the front end scripts/build-dashboard.sh builds from dashboard/; they
// call the public API with the user's own token, so nothing here is privileged: the files are
// public (no authentication), hold no data, and every API request they make is authenticated and
// authorized like any other.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http/server_types.h"
#include "common/status.h"

namespace ep::dashboard {

// One file, read into memory at start.
struct Asset {
  std::string body;
  std::string gzip;  // the build's FILE.gz when there is one (served to clients that accept it)
  std::string contentType;
  std::string etag;        // quoted, from the file's sha256
  bool immutable = false;  // under assets/: content-hashed names, cached for a year
};

// Limits on what a dashboard directory may hold: the build writes a few files of a few hundred
// KB; anything far beyond that is not a dashboard.
inline constexpr size_t kMaxFiles = 256;
inline constexpr uint64_t kMaxTotalBytes = 32ull << 20;

// The files of a built dashboard, verified. Immutable after load; safe to share across threads.
class DashboardAssets {
 public:
  // Reads every file listed in DIR/SHA256SUMS (sha256sum's format, written by the build) and
  // checks each against its digest. Errors name the file: SHA256SUMS missing or malformed, a
  // listed file missing or different, a path leaving DIR, no index.html, too many or too large
  // files.
  [[nodiscard]] static Result<DashboardAssets> load(const std::string& dir);

  // The file at `path` relative to the directory ("index.html", "assets/index-abc.js"), or null.
  const Asset* find(std::string_view path) const;
  size_t fileCount() const { return files_.size(); }
  uint64_t totalBytes() const { return totalBytes_; }

 private:
  std::map<std::string, Asset, std::less<>> files_;
  uint64_t totalBytes_ = 0;
};

// Where to look for the files when no directory is configured: EXE_DIR/dashboard (a build tree:
// scripts/build-dashboard.sh writes BUILD_DIR/cloudcore/dashboard), then
// EXE_DIR/../share/edgeplane/dashboard (the Debian package: /usr/share/edgeplane/dashboard).
std::vector<std::string> defaultAssetDirs(const std::string& exeDir);

// Answers /ui and everything under it. GET only (405 otherwise). /ui redirects to /ui/; a path
// naming a file serves it (gzip when the client accepts it, ETag and If-None-Match, content-hashed
// assets cached for a year); any other path under /ui/ is a page of the single-page app and gets
// index.html (so /ui/nodes/edge-1 can be reloaded and linked to). Without files (not built, not
// installed) every answer is 503 saying why and how to get them.
class DashboardHandler {
 public:
  // `assets` empty: `unavailable` says why (shown in the 503).
  DashboardHandler(std::optional<DashboardAssets> assets, std::string unavailable);

  // Whether `path` (percent-decoded, without query) is the dashboard's.
  static bool handles(std::string_view path);

  // Thread-safe (reads immutable state).
  http::ServerResponse handle(const http::ServerRequest& req) const;

 private:
  std::optional<DashboardAssets> assets_;
  std::string unavailable_;
};

}  // namespace ep::dashboard
