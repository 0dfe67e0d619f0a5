#include "cloudcore/dashboard/dashboard.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/digest/sha256.h"

namespace ep::dashboard {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSums = "SHA256SUMS";
constexpr size_t kMaxPathLength = 200;

// Every answer, files and errors alike: the page may only load its own files and talk to its own
// origin, never be framed, and never send a Referer off the page.
const std::vector<std::pair<std::string, std::string>>& securityHeaders() {
  static const std::vector<std::pair<std::string, std::string>> h = {
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"}};
  return h;
}

std::string contentTypeOf(std::string_view path) {
  static const std::pair<std::string_view, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"}};
  for (const auto& [ext, type] : kTypes) {
    if (path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext) return type;
  }
  return "application/octet-stream";
}

// A relative path the build could have written: no absolute path, no "." or ".." segment, no
// empty segment, no control character.
bool safeRelativePath(std::string_view p) {
  if (p.empty() || p.size() > kMaxPathLength || p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string_view::npos) slash = p.size();
    std::string_view seg = p.substr(start, slash - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = slash + 1;
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') return false;
  }
  return true;
}

bool isHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> readFile(const fs::path& path, uint64_t limit) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return Status(Code::kNotFound, path.string() + ": " + ec.message());
  if (size > limit) {
    return Status(Code::kInvalid, path.string() + ": " + std::to_string(size) +
                                      " bytes, more than a dashboard holds (" +
                                      std::to_string(kMaxTotalBytes) + " in all)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kNotFound, path.string() + ": cannot be opened");
  std::string body(size, '\0');
  if (size > 0 && !in.read(body.data(), static_cast<std::streamsize>(size))) {
    return Status(Code::kInternal, path.string() + ": read error");
  }
  return body;
}

// Whether Accept-Encoding admits gzip (RFC 9110 12.5.3): a "gzip" or "x-gzip" entry, else "*",
// whose q-value is not 0. Names and parameters are case-insensitive.
bool acceptsGzip(std::string_view header) {
  auto lower = [](std::string_view v) {
    std::string out(v);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  bool star = false;
  size_t start = 0;
  while (start < header.size()) {
    size_t comma = header.find(',', start);
    if (comma == std::string_view::npos) comma = header.size();
    const std::string item = lower(header.substr(start, comma - start));
    start = comma + 1;
    const size_t semi = item.find(';');
    const std::string coding(trim(std::string_view(item).substr(0, semi)));
    bool zero = false;
    for (size_t p = semi; p != std::string::npos && p < item.size(); p = item.find(';', p + 1)) {
      std::string_view param = trim(std::string_view(item).substr(p + 1));
      if (param.substr(0, 2) != "q=") continue;
      // q=0, q=0.0, q=0.000: every digit is 0.
      std::string_view v = trim(param.substr(2).substr(0, param.substr(2).find(';')));
      zero = !v.empty() && v.find_first_not_of("0.") == std::string_view::npos && v[0] == '0';
    }
    if (coding == "gzip" || coding == "x-gzip") return !zero;  // an explicit entry decides
    if (coding == "*") star = !zero;
  }
  return star;
}

http::ServerResponse textResponse(int status, std::string body) {
  http::ServerResponse r;
  r.status = status;
  r.contentType = "text/plain; charset=utf-8";
  r.body = std::move(body);
  r.headers = securityHeaders();
  return r;
}

}  // namespace

Result<DashboardAssets> DashboardAssets::load(const std::string& dir) {
  const fs::path root(dir);
  auto sums = readFile(root / std::string(kSums), 1 << 20);
  if (!sums.isOk()) {
    return Status(Code::kNotFound,
                  "dashboard files: " + sums.status().message() +
                      " (the list of the build's files and their digests; build them with "
                      "scripts/build-dashboard.sh)");
  }
  DashboardAssets out;
  std::map<std::string, std::string> gz;  // base path -> gzip bytes
  std::istringstream lines(*sums);
  std::string line;
  int lineNo = 0;
  while (std::getline(lines, line)) {
    ++lineNo;
    if (line.empty()) continue;
    const std::string where =
        (root / std::string(kSums)).string() + " line " + std::to_string(lineNo);
    // sha256sum: 64 hex digits, two characters (" " or " *"), the path.
    if (line.size() < 67 || !isHex64(std::string_view(line).substr(0, 64)) || line[64] != ' ' ||
        (line[65] != ' ' && line[65] != '*')) {
      return Status(Code::kInvalid, where + ": expected \"SHA256  PATH\"");
    }
    std::string path = line.substr(66);
    if (!safeRelativePath(path)) {
      return Status(Code::kInvalid, where + ": \"" + path.substr(0, kMaxPathLength) +
                                        "\" is not a path inside the directory");
    }
    if (out.files_.size() + gz.size() >= kMaxFiles) {
      return Status(Code::kInvalid, where + ": more than " + std::to_string(kMaxFiles) + " files");
    }
    auto body = readFile(root / path, kMaxTotalBytes - out.totalBytes_);
    if (!body.isOk())
      return Status(body.status().code(), "dashboard files: " + body.status().message());
    const std::string digest = digest::sha256Of(*body);
    if (digest.compare(7, 64, line, 0, 64) != 0) {
      return Status(Code::kInvalid, "dashboard files: " + (root / path).string() +
                                        " does not match its digest in SHA256SUMS (damaged or "
                                        "changed after the build)");
    }
    out.totalBytes_ += body->size();
    if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
      gz[path.substr(0, path.size() - 3)] = std::move(*body);
      continue;
    }
    Asset a;
    a.contentType = contentTypeOf(path);
    a.etag = "\"" + digest.substr(7, 16) + "\"";
    a.immutable = path.compare(0, 7, "assets/") == 0;
    a.body = std::move(*body);
    out.files_.emplace(path, std::move(a));
  }
  for (auto& [path, bytes] : gz) {
    auto it = out.files_.find(path);
    if (it != out.files_.end()) it->second.gzip = std::move(bytes);
  }
  if (out.files_.find("index.html") == out.files_.end()) {
    return Status(Code::kInvalid, "dashboard files: " + (root / std::string(kSums)).string() +
                                      " lists no index.html");
  }
  return out;
}

const Asset* DashboardAssets::find(std::string_view path) const {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

std::vector<std::string> defaultAssetDirs(const std::string& exeDir) {
  return {
      (fs::path(exeDir) / "dashboard").string(),
      (fs::path(exeDir) / ".." / "share" / "edgeplane" / "dashboard").lexically_normal().string()};
}

DashboardHandler::DashboardHandler(std::optional<DashboardAssets> assets, std::string unavailable)
    : assets_(std::move(assets)), unavailable_(std::move(unavailable)) {}

bool DashboardHandler::handles(std::string_view path) {
  return path == "/ui" || path.substr(0, 4) == "/ui/";
}

http::ServerResponse DashboardHandler::handle(const http::ServerRequest& req) const {
  if (req.method != "GET") {
    auto r = textResponse(405, "the dashboard's files are read with GET\n");
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (req.path == "/ui") {
    auto r = textResponse(308, "");
    r.headers.emplace_back("Location", "/ui/");
    return r;
  }
  if (!assets_) {
    auto r = textResponse(503, "The dashboard is not available: " + unavailable_ + "\n");
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }
  std::string_view rel = std::string_view(req.path).substr(4);  // after "/ui/"
  const Asset* asset = rel.empty() ? nullptr : assets_->find(rel);
  if (asset == nullptr) {
    // A missing script, style or top-level file (favicon.ico, ../x) is a 404, never the page: a
    // browser would run HTML as a script. A page's first segment is a plain word (nodes, apps);
    // names after it may have dots (/ui/nodes/edge-1.example.com).
    const std::string_view first = rel.substr(0, rel.find('/'));
    if (rel.substr(0, 7) == "assets/" || first.find('.') != std::string_view::npos) {
      return textResponse(404, "no such file: " + req.path + "\n");
    }
    asset = assets_->find("index.html");  // a page of the app: the app routes it
  }
  http::ServerResponse r;
  r.headers = securityHeaders();
  // Each encoding is its own representation, with its own ETag (RFC 9110 8.8.3).
  const bool gzip = !asset->gzip.empty() && acceptsGzip(req.header("accept-encoding"));
  const std::string etag =
      gzip ? asset->etag.substr(0, asset->etag.size() - 1) + "-gz\"" : asset->etag;
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Cache-Control",
                         asset->immutable ? "public, max-age=31536000, immutable" : "no-cache");
  r.headers.emplace_back("Vary", "Accept-Encoding");
  r.contentType = asset->contentType;
  const std::string ifNoneMatch = req.header("if-none-match");
  if (!ifNoneMatch.empty() && ifNoneMatch.find(etag) != std::string::npos) {
    r.status = 304;
    return r;
  }
  if (gzip) {
    r.headers.emplace_back("Content-Encoding", "gzip");
    r.body = asset->gzip;
  } else {
    r.body = asset->body;
  }

  return r;
}

}  // namespace ep::dashboard
