#include "common/oci/registry.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/api/base64.h"
#include "common/api/json_limits.h"
#include "common/digest/sha256.h"
#include "common/http/client.h"

namespace ep::oci {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxManifestBytes = 4u << 20;
constexpr size_t kMaxFileBytes = 1u << 20;  // CA files
constexpr int kMaxRedirects = 3;
constexpr size_t kMaxClients = 16;  // HTTP clients kept (registries, token services, redirects)
constexpr const char* kManifestAccept =
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

std::string str(const Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<std::string> readSmall(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out(kMaxFileBytes + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  if (out.size() > kMaxFileBytes) return std::nullopt;
  return out;
}

// The CA a host's certs.d directory names (see HttpsOciRegistryOptions::certsDir).
std::optional<std::string> hostCa(const std::string& certsDir, const std::string& host) {
  const std::string dir = certsDir + "/" + host;
  if (auto ca = readSmall(dir + "/ca.crt")) return ca;
  auto toml = readSmall(dir + "/hosts.toml");
  if (!toml) return std::nullopt;
  std::istringstream lines(*toml);
  std::string line;
  while (std::getline(lines, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq);
    key.erase(std::remove_if(key.begin(), key.end(), ::isspace), key.end());
    if (key != "ca") continue;
    auto open = line.find('"', eq);
    auto close = open == std::string::npos ? open : line.find('"', open + 1);
    if (close == std::string::npos) continue;
    std::string file = line.substr(open + 1, close - open - 1);
    if (!file.empty() && file[0] != '/') file = dir + "/" + file;
    if (auto ca = readSmall(file)) return ca;
  }
  return std::nullopt;
}

std::string percentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// "CODE message; CODE message" from a registry's error body, or its first 200 bytes.
std::string registryErrors(const std::string& body) {
  Json j = api::parseJsonBounded(body, 8);
  std::string out;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      std::string one = str(e, "code");
      if (std::string msg = str(e, "message"); !msg.empty()) {
        one += (one.empty() ? "" : " ") + msg;
      }
      if (!one.empty()) out += (out.empty() ? "" : "; ") + one;
    }
  }
  if (out.empty()) {
    for (char c : body.substr(0, 200)) {
      out += std::isprint(static_cast<unsigned char>(c)) ? c : ' ';
    }
  }
  return out;
}

std::string statusText(int status) {
  switch (status) {
    case 401:
      return "401 Unauthorized";
    case 403:
      return "403 Forbidden";
    case 404:
      return "404 Not Found";
    case 416:
      return "416 Range Not Satisfiable";
    case 429:
      return "429 Too Many Requests";
    default:
      return std::to_string(status);
  }
}

Code codeOf(int status) {
  if (status == 401) return Code::kUnauthorized;
  if (status == 403) return Code::kForbidden;
  if (status == 404) return Code::kNotFound;
  if (status >= 500 || status == 429) return Code::kUnavailable;
  return Code::kInvalid;
}

struct SplitUrl {
  std::string base;  // scheme://host:port
  std::string host;  // host:port as written
  std::string pathAndQuery;
};

std::optional<SplitUrl> splitUrl(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::nullopt;
  auto slash = url.find('/', scheme + 3);
  SplitUrl out;
  out.base = std::string(url.substr(0, slash));
  out.host = std::string(url.substr(
      scheme + 3, slash == std::string_view::npos ? std::string_view::npos : slash - scheme - 3));
  out.pathAndQuery = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (out.host.empty()) return std::nullopt;
  return out;
}

// Where a reference's registry API is: Docker Hub's name is not its API host, and its
// one-component repositories are official images under library/.
api::OciRef endpointOf(api::OciRef ref) {
  if (ref.registry == "docker.io" || ref.registry == "index.docker.io") {
    ref.registry = "registry-1.docker.io";
    if (ref.repository.find('/') == std::string::npos) ref.repository = "library/" + ref.repository;
  }
  return ref;
}

class HttpsOciRegistry final : public OciRegistry {
 public:
  explicit HttpsOciRegistry(HttpsOciRegistryOptions o) : options_(std::move(o)) {}

  Result<OciManifest> manifest(const api::OciRef& asWritten,
                               const RegistryCredentials& creds) override {
    const api::OciRef ref = endpointOf(asWritten);
    auto m = fetchManifest(ref, creds);
    if (!m.isOk()) return failure(ref, whatOf(ref), m.status());
    return m;
  }

  Result<OciArtifact> resolve(const api::OciRef& asWritten,
                              const RegistryCredentials& creds) override {
    const api::OciRef ref = endpointOf(asWritten);
    auto m = fetchManifest(ref, creds);
    if (!m.isOk()) return failure(ref, whatOf(ref), m.status());
    auto artifact = parseModelManifest(m->body);
    if (!artifact.isOk()) return failure(ref, whatOf(ref), artifact.status());
    artifact->manifestDigest = m->digest;
    return artifact;
  }

  Status fetch(const api::OciRef& asWritten, const RegistryCredentials& creds, const OciArtifact& a,
               uint64_t offset,
               const std::function<Status(uint64_t, std::string_view)>& onData) override {
    const api::OciRef ref = endpointOf(asWritten);
    const std::string what = ref.repository + "@" + a.digest;
    std::vector<std::pair<std::string, std::string>> extra;
    if (offset > 0) extra.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
    std::string url = "https://" + ref.registry + "/v2/" + ref.repository + "/blobs/" + a.digest;
    uint64_t position = 0;
    Status stop;
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
      auto split = splitUrl(url);
      if (!split) return failure(ref, what, invalidError("bad redirect URL \"" + url + "\""));
      const bool sameHost = split->host == ref.registry;
      auto r = call(
          ref, sameHost ? creds : RegistryCredentials{}, split->base, split->pathAndQuery, "*/*",
          extra,
          [&](std::string_view bytes) -> Status {
            Status s = cancelled() ? unavailableError("cancelled") : onData(position, bytes);
            position += bytes.size();
            if (!s.isOk()) stop = s;
            return s;
          },
          /*authorize=*/sameHost,
          [&](const http::HttpResponse& head) -> Status {
            position = startOf(head, offset);
            return {};
          });
      if (!stop.isOk()) return stop;
      if (!r.isOk()) return failure(ref, what, r.status());
      if (r->status == 200 || r->status == 206) return {};
      if (r->status == 301 || r->status == 302 || r->status == 303 || r->status == 307 ||
          r->status == 308) {
        std::string location = r->header("Location");
        if (location.empty())
          return failure(ref, what, invalidError("a redirect without Location"));
        if (location[0] == '/') location = split->base + location;
        if (location.rfind("https://", 0) != 0) {
          return failure(ref, what,
                         invalidError("refusing a redirect to \"" + location.substr(0, 200) +
                                      "\" (not https)"));
        }
        url = location;
        continue;
      }
      return failure(ref, what, answerError(*r));
    }
    return failure(ref, what, invalidError("more than 3 redirects"));
  }

 private:
  static std::string whatOf(const api::OciRef& ref) {
    return ref.repository + (ref.digest.empty() ? ":" + ref.tag : "@" + ref.digest);
  }

  // The manifest or index ref names, its digest checked when the reference is one.
  Result<OciManifest> fetchManifest(const api::OciRef& ref, const RegistryCredentials& creds) {
    OciManifest out;
    auto r = call(ref, creds, "https://" + ref.registry,
                  "/v2/" + ref.repository + "/manifests/" + ref.reference(), kManifestAccept, {},
                  [&](std::string_view bytes) -> Status {
                    if (out.body.size() + bytes.size() > kMaxManifestBytes) {
                      return Status(Code::kTooLarge, "the manifest exceeds 4 MiB");
                    }
                    out.body.append(bytes);
                    return {};
                  });
    if (!r.isOk()) return r.status();
    if (r->status != 200) return answerError(*r);
    out.digest = digest::sha256Of(out.body);
    if (!ref.digest.empty() && out.digest != ref.digest) {
      return invalidError("the manifest received hashes to " + out.digest + ", not " + ref.digest);
    }
    Json j = api::parseJsonBounded(out.body, 8);
    out.mediaType = j.is_object() ? str(j, "mediaType") : "";
    if (out.mediaType.empty()) {
      out.mediaType = r->header("Content-Type");
      if (auto semi = out.mediaType.find(';'); semi != std::string::npos) {
        out.mediaType.resize(semi);
      }
    }
    return out;
  }

  // Where a blob answer's data starts: Content-Range's first byte for a 206, else 0.
  static uint64_t startOf(const http::HttpResponse& r, uint64_t asked) {
    if (r.status != 206) return 0;
    std::string cr = r.header("Content-Range");  // "bytes START-END/TOTAL"
    auto sp = cr.find(' ');
    if (sp == std::string::npos) return asked;
    try {
      return std::stoull(cr.substr(sp + 1));
    } catch (...) {
      return asked;
    }
  }

  static Status answerError(const http::HttpResponse& r) {
    return Status(codeOf(r.status), statusText(r.status) + ": " + registryErrors(r.body));
  }
  static Status failure(const api::OciRef& ref, const std::string& what, const Status& s) {
    return Status(s.code(), "registry " + ref.registry + ": " + what + ": " + s.message());
  }

  http::HttpClient& clientFor(const std::string& base, const std::string& host) {
    auto it = clients_.find(base);
    if (it != clients_.end()) return *it->second;
    if (clients_.size() >= kMaxClients) clients_.clear();  // bounded, whatever redirects say
    http::ClientOptions o;
    o.timeout = options_.timeout;
    o.userAgent = options_.userAgent;
    o.peerName = "registry " + host;
    o.maxBodyBytes = 64 * 1024;  // error bodies
    if (auto ca = hostCa(options_.certsDir, host)) {
      o.caPem = *ca;
    } else if (auto bundle = readSmall(options_.caBundle)) {
      o.caPem = *bundle;
    }
    auto c = std::make_unique<http::HttpClient>(base, o);
    auto& ref = *c;
    clients_[base] = std::move(c);
    return ref;
  }

  // One GET, answering the registry's 401 challenge once. 2xx bodies go to onBody.
  Result<http::HttpResponse> call(
      const api::OciRef& ref, const RegistryCredentials& creds, const std::string& base,
      const std::string& path, const std::string& accept,
      std::vector<std::pair<std::string, std::string>> extra,
      const std::function<Status(std::string_view)>& onBody, bool authorize = true,
      const std::function<Status(const http::HttpResponse&)>& onHeaders = {}) {
    // Tokens are the credentials' own: another Model's credentials never reuse them.
    const std::string key =
        ref.registry + "/" + ref.repository + "\n" + creds.username + "\n" +
        digest::sha256Of(creds.password + "\n" + creds.identityToken + "\n" + creds.registryToken);
    auto host = splitUrl(base + "/");
    for (int attempt = 0; attempt < 2; ++attempt) {
      // Looked up on each attempt: answering a challenge may make clients (and drop old ones).
      http::HttpClient& client = clientFor(base, host ? host->host : base);
      auto headers = extra;
      if (authorize) {
        if (auto it = auth_.find(key); it != auth_.end()) {
          headers.emplace_back("Authorization", it->second);
        }
      }
      auto r = client.download(path, headers, onBody, accept, onHeaders);
      if (!r.isOk()) return r.status();
      if (r->status != 401 || attempt > 0 || !authorize) return r;
      auto challenge = parseAuthChallenge(r->header("WWW-Authenticate"));
      if (!challenge) return r;
      auto header = answerChallenge(*challenge, ref, creds);
      if (!header.isOk()) return header.status();
      auth_[key] = *header;
    }
    return unavailableError("unreachable");
  }

  Result<std::string> answerChallenge(const AuthChallenge& c, const api::OciRef& ref,
                                      const RegistryCredentials& creds) {
    std::string user, pass;
    const bool haveBasic = !creds.username.empty() || !creds.password.empty();
    if (c.scheme == "basic") {
      if (!haveBasic) {
        return Status(Code::kUnauthorized, "401 Unauthorized: the registry asks for credentials; " +
                                               options_.credentialsHint);
      }
      return "Basic " + api::base64Encode(creds.username + ":" + creds.password);
    }
    if (c.scheme != "bearer") {
      return Status(Code::kUnauthorized,
                    "401 Unauthorized: unsupported authentication scheme \"" + c.scheme + "\"");
    }
    if (!creds.registryToken.empty()) return "Bearer " + creds.registryToken;
    auto realm = c.params.find("realm");
    auto split = realm == c.params.end() ? std::nullopt : splitUrl(realm->second);
    if (!split || split->pathAndQuery.find('?') != std::string::npos) {
      return Status(Code::kUnauthorized,
                    "401 Unauthorized: the bearer challenge has no usable realm");
    }
    std::string service = c.params.count("service") ? c.params.at("service") : "";
    std::string scope =
        c.params.count("scope") ? c.params.at("scope") : "repository:" + ref.repository + ":pull";
    std::string query = "?service=" + percentEncode(service) + "&scope=" + percentEncode(scope);
    http::HttpClient& client = clientFor(split->base, split->host);
    std::vector<std::pair<std::string, std::string>> headers;
    if (haveBasic) {
      headers.emplace_back("Authorization",
                           "Basic " + api::base64Encode(creds.username + ":" + creds.password));
    }
    std::string body;
    auto collect = [&](std::string_view b) -> Status {
      if (body.size() + b.size() > 64 * 1024) return Status(Code::kTooLarge, "token too large");
      body.append(b);
      return {};
    };
    Result<http::HttpResponse> r = Status(Code::kInternal, "");
    if (!creds.identityToken.empty()) {
      // OAuth2 refresh token: POST a form.
      client.setHeaders({});
      auto posted = client.request(
          "POST", split->pathAndQuery,
          "grant_type=refresh_token&service=" + percentEncode(service) +
              "&scope=" + percentEncode(scope) +
              "&client_id=edgecore&refresh_token=" + percentEncode(creds.identityToken),
          "application/x-www-form-urlencoded");
      if (posted.isOk()) body = posted->body;
      r = std::move(posted);
    } else {
      r = client.download(split->pathAndQuery + query, headers, collect, "application/json");
    }
    if (!r.isOk()) return r.status();
    if (r->status != 200) {
      return Status(codeOf(r->status), "token service " + split->base + ": " +
                                           statusText(r->status) + ": " + registryErrors(r->body));
    }
    Json j = api::parseJsonBounded(body, 4);
    std::string token;
    if (j.is_object()) {
      for (const char* k : {"token", "access_token"}) {
        if (j.contains(k) && j[k].is_string() && !j[k].get<std::string>().empty()) {
          token = j[k].get<std::string>();
          break;
        }
      }
    }
    if (token.empty()) {
      return Status(Code::kUnauthorized, "token service " + split->base + " answered no token");
    }
    return "Bearer " + token;
  }

  const HttpsOciRegistryOptions options_;
  std::map<std::string, std::unique_ptr<http::HttpClient>> clients_;  // by base URL
  std::map<std::string, std::string> auth_;  // "registry/repository" -> Authorization
};

}  // namespace

std::unique_ptr<OciRegistry> makeHttpsOciRegistry(HttpsOciRegistryOptions options) {
  return std::make_unique<HttpsOciRegistry>(std::move(options));
}

std::optional<AuthChallenge> parseAuthChallenge(std::string_view h) {
  size_t i = 0;
  auto skipSpace = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  skipSpace();
  size_t start = i;
  while (i < h.size() && h[i] != ' ' && h[i] != '\t') ++i;
  AuthChallenge c;
  c.scheme = lower(std::string(h.substr(start, i - start)));
  if (c.scheme.empty()) return std::nullopt;
  while (i < h.size()) {
    skipSpace();
    if (i < h.size() && h[i] == ',') {
      ++i;
      continue;
    }
    start = i;
    while (i < h.size() && h[i] != '=' && h[i] != ',' && h[i] != ' ') ++i;
    std::string name = lower(std::string(h.substr(start, i - start)));
    skipSpace();
    if (i >= h.size() || h[i] != '=') {
      if (i < h.size() && h[i] != ',') ++i;  // a token68 or stray text: skip it
      continue;
    }
    ++i;
    skipSpace();
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        value += h[i++];
      }
      if (i < h.size()) ++i;  // closing quote
    } else {
      while (i < h.size() && h[i] != ',' && h[i] != ' ') value += h[i++];
    }
    if (!name.empty() && c.params.size() < 16) c.params[name] = value;
  }
  return c;
}

Result<OciArtifact> parseModelManifest(std::string_view body) {
  bool tooDeep = false;
  Json m = api::parseJsonBounded(body, 8, &tooDeep);
  if (!m.is_object()) return invalidError("the manifest is not a JSON object");
  const std::string mediaType = str(m, "mediaType");
  if (mediaType == "application/vnd.oci.image.index.v1+json" ||
      mediaType == "application/vnd.docker.distribution.manifest.list.v2+json" ||
      (m.contains("manifests") && !m.contains("layers"))) {
    return invalidError(
        "the reference names an image index (several manifests); name one "
        "manifest by its digest");
  }
  auto layers = m.find("layers");
  if (layers == m.end() || !layers->is_array() || layers->empty()) {
    return invalidError(
        "manifest: layers: the manifest has no layers (a model artifact has its "
        "file as a layer)");
  }
  const Json* chosen = nullptr;
  size_t index = 0;
  if (layers->size() == 1) {
    chosen = &(*layers)[0];
  } else {
    for (size_t i = 0; i < layers->size(); ++i) {
      const Json& l = (*layers)[i];
      if (l.is_object() && l.contains("annotations") && l["annotations"].is_object() &&
          l["annotations"].contains("org.opencontainers.image.title")) {
        chosen = &l;
        index = i;
        break;
      }
    }
    if (!chosen) {
      return invalidError("manifest: layers: " + std::to_string(layers->size()) +
                          " layers and none titled (org.opencontainers.image.title); a model "
                          "artifact has one file");
    }
  }
  const std::string field = "manifest: layers[" + std::to_string(index) + "]";
  if (!chosen->is_object()) return invalidError(field + ": not an object");
  OciArtifact a;
  a.digest = str(*chosen, "digest");
  if (!api::isSha256Digest(a.digest)) {
    return invalidError(field + ".digest: \"" + a.digest.substr(0, 100) +
                        "\" is not a sha256 digest");
  }
  auto size = chosen->find("size");
  if (size == chosen->end() || !size->is_number_unsigned()) {
    return invalidError(field + ".size: must be a byte count");
  }
  a.size = size->get<uint64_t>();
  a.mediaType = str(*chosen, "mediaType");
  a.file = "model";
  if (chosen->contains("annotations") && (*chosen)["annotations"].is_object()) {
    const Json& ann = (*chosen)["annotations"];
    auto t = ann.find("org.opencontainers.image.title");
    if (t != ann.end() && t->is_string() &&
        api::validateModelFileName(t->get<std::string>()).isOk()) {
      a.file = t->get<std::string>();
    }
  }
  return a;
}

}  // namespace ep::oci
