#include "cloudcore/apiserver/api_handler.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "cloudcore/apiserver/delete_options.h"
#include "cloudcore/apiserver/openapi.h"
#include "common/api/discovery.h"
#include "common/api/json_limits.h"
#include "common/api/object_util.h"
#include "common/api/proto_json.h"
#include "common/api/proto_wire.h"
#include "common/api/status_json.h"
#include "common/api/table.h"
#include "common/yaml/yaml.h"

namespace ep::apiserver {

using registry::Json;

namespace {

// Deeper documents are refused before anything recursive touches them.
constexpr size_t kMaxJsonDepth = 512;

using api::apiGroupJson;
using api::errorResponse;
using api::jsonResponse;
using api::plainResponse;
using api::splitPath;

Json resourceList(const std::string& groupVersion) {
  Json resources = Json::array();
  static const Json kVerbs = {"create", "delete", "deletecollection", "get",
                              "list",   "patch",  "update",           "watch"};
  for (const auto& k : api::allKinds()) {
    if (k.apiVersion() != groupVersion) continue;
    Json r = {{"name", k.plural},
              {"singularName", k.singular},
              {"namespaced", k.namespaced},
              {"kind", k.kind},
              {"verbs", kVerbs}};
    if (!k.shortNames.empty()) r["shortNames"] = k.shortNames;
    if (!k.categories.empty()) r["categories"] = k.categories;
    resources.push_back(std::move(r));
    if (k.hasStatus) {
      resources.push_back({{"name", k.plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", k.namespaced},
                           {"kind", k.kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
    if (k.group.empty() && k.kind == "Pod") {
      // Served by eviction.cc (installed by cloudcore's main); kubectl drain looks for it.
      resources.push_back({{"name", "pods/eviction"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"group", "policy"},
                           {"version", "v1"},
                           {"kind", "Eviction"},
                           {"verbs", {"create"}}});
    }
    if ((k.group == "devices.kubeedge.io" && k.kind == "Device") ||
        (k.group == "rules.kubeedge.io" && k.kind == "Rule") ||
        (k.group.empty() && k.kind == "Node")) {
      // Served by device_data.cc (installed by cloudcore's main): the device's time series, the
      // messages a Rule carried to the cloud, what a node uploaded.
      resources.push_back({{"name", k.plural + "/data"},
                           {"singularName", ""},
                           {"namespaced", k.namespaced},
                           {"group", "data.edgeplane.io"},
                           {"version", "v1alpha1"},
                           {"kind", k.kind + "Data"},
                           {"verbs", {"get"}}});
    }
    if (k.group == "sedna.io" && k.kind == "Model") {
      // Served by model_upload.cc (installed by cloudcore's main): edgectl model push.
      resources.push_back({{"name", "models/upload"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"group", "models.edgeplane.io"},
                           {"version", "v1alpha1"},
                           {"kind", "ModelUpload"},
                           {"verbs", {"get", "update"}}});
    }
    if (k.group == "upgrade.edgeplane.io" && k.kind == "EdgecoreRelease") {
      // Served by model_upload.cc too: edgectl upgrade push.
      resources.push_back({{"name", "edgecorereleases/upload"},
                           {"singularName", ""},
                           {"namespaced", false},
                           {"group", "upgrade.edgeplane.io"},
                           {"version", "v1alpha1"},
                           {"kind", "EdgecoreUpload"},
                           {"verbs", {"get", "update"}}});
    }
    if (k.group == "apps" && (k.kind == "Deployment" || k.kind == "ReplicaSet")) {
      // Served by scale_subresource.cc (installed by cloudcore's main).
      resources.push_back({{"name", k.plural + "/scale"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"group", "autoscaling"},
                           {"version", "v1"},
                           {"kind", "Scale"},
                           {"verbs", {"get", "patch", "update"}}});
    }
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", groupVersion},
          {"resources", std::move(resources)}};
}

bool wantsTable(const ServerRequest& req) {
  return req.header("accept").find("as=Table") != std::string::npos;
}

// Output options for server-side Table rendering.
struct TableOptions {
  std::string includeObject = "Metadata";  // None | Metadata | Object
};

// A watch's chunked body: one JSON event per line. With bookmarks, a watch gets a BOOKMARK (an
// object of the kind with only metadata.resourceVersion) every `bookmarkInterval` (at least
// 100 ms, so the server never spins on it) and 2 s before its deadline, carrying the revision the
// watch is complete through, when that is newer than the start revision and what it sent last;
// so a client resumes from there instead of from a revision that compaction may have removed.
class WatchBody final : public BodyStream {
 public:
  WatchBody(std::unique_ptr<registry::ObjectWatch> watch, const api::KindInfo& kind, bool table,
            TableOptions tableOpts, Clock& clock, std::chrono::steady_clock::time_point deadline,
            std::optional<std::chrono::milliseconds> bookmarkInterval, int64_t startRevision)
      : watch_(std::move(watch)),
        kind_(kind),
        table_(table),
        tableOpts_(std::move(tableOpts)),
        clock_(clock),
        deadline_(deadline),
        bookmarkInterval_(bookmarkInterval ? std::optional(std::max(*bookmarkInterval,
                                                                    std::chrono::milliseconds(100)))
                                           : std::nullopt),
        sentRevision_(startRevision) {
    if (bookmarkInterval_) nextBookmark_ = bookmarkAfter(std::chrono::steady_clock::now());
  }

  std::string next(bool& finished) override {
    std::string out;
    auto events = watch_->poll(256);
    for (auto& e : events) {
      Json obj;
      const std::string rv =
          e.object->value("metadata", Json::object()).value("resourceVersion", "");
      if (e.type != "ERROR") sentRevision_ = std::max(sentRevision_, parseRevision(rv));
      if (table_ && e.type != "ERROR") {
        obj = api::tableJson(kind_, {*e.object}, clock_.nowMillis(), tableOpts_.includeObject, rv,
                             "", !sentColumns_);
        sentColumns_ = true;
      } else {
        obj = std::move(*e.object);
      }
      out += Json{{"type", e.type}, {"object", std::move(obj)}}.dump();
      out += '\n';
    }
    finished = events.empty() && watch_->done();
    const auto now = std::chrono::steady_clock::now();
    if (bookmarkInterval_ && events.empty() && !finished && now >= nextBookmark_) {
      nextBookmark_ = bookmarkAfter(now);
      if (int64_t rev = watch_->lastRevision(); rev > sentRevision_) {
        sentRevision_ = rev;
        out += Json{{"type", "BOOKMARK"},
                    {"object",
                     {{"kind", kind_.kind},
                      {"apiVersion", kind_.apiVersion()},
                      {"metadata", {{"resourceVersion", std::to_string(rev)}}}}}}
                   .dump();
        out += '\n';
      }
    }
    return out;
  }
  void setWake(std::function<void()> wake) override { watch_->setNotify(std::move(wake)); }
  std::chrono::steady_clock::time_point deadline() const override { return deadline_; }
  std::chrono::steady_clock::time_point nextCall() const override {
    return bookmarkInterval_ ? nextBookmark_ : std::chrono::steady_clock::time_point::max();
  }
  void close() override { watch_->stop(); }

  // A resourceVersion as a revision; 0 when empty or not a number.
  static int64_t parseRevision(const std::string& rv) {
    int64_t v = 0;
    std::from_chars(rv.data(), rv.data() + rv.size(), v);
    return v;
  }

 private:
  // The next bookmark: an interval from now, or 2 s before the deadline if that comes first
  // (and is still ahead).
  std::chrono::steady_clock::time_point bookmarkAfter(std::chrono::steady_clock::time_point now) {
    auto t = now + *bookmarkInterval_;
    const auto last = deadline_ - std::chrono::seconds(2);
    if (last > now && last < t) t = last;
    return t;
  }

  std::unique_ptr<registry::ObjectWatch> watch_;
  const api::KindInfo& kind_;
  const bool table_;
  const TableOptions tableOpts_;
  Clock& clock_;
  const std::chrono::steady_clock::time_point deadline_;
  const std::optional<std::chrono::milliseconds> bookmarkInterval_;
  // Only touched by next() and nextCall(), which the server serializes.
  bool sentColumns_ = false;
  int64_t sentRevision_;  // newest revision the start, an event or a bookmark carried
  std::chrono::steady_clock::time_point nextBookmark_ =
      std::chrono::steady_clock::time_point::max();
};

Result<Json> parseBody(const ServerRequest& req) {
  std::string ct = req.header("content-type");
  if (api::isKubernetesProtobuf(ct)) return api::kubernetesProtobufToJson(req.body);
  if (!ct.empty() && ct.find("json") == std::string::npos && ct.find("*/*") == std::string::npos) {
    return Status(Code::kUnsupportedMedia,
                  "the body of the request was in an unknown format - accepted media types "
                  "include: application/json");
  }
  bool tooDeep = false;
  Json body = api::parseJsonBounded(req.body, kMaxJsonDepth, &tooDeep);
  if (tooDeep) {
    return badRequestError("the request body is nested deeper than " +
                           std::to_string(kMaxJsonDepth) + " levels");
  }
  if (body.is_discarded()) {
    return badRequestError("the request body is not valid JSON");
  }
  if (!body.is_object()) return badRequestError("the request body must be a JSON object");
  return body;
}

// An apply-patch+yaml body: JSON (what kubectl sends) with the request's nesting limit, or
// YAML; it must be one object.
Result<Json> parseApplyConfiguration(const std::string& body) {
  size_t first = body.find_first_not_of(" \t\r\n");
  Json config;
  if (first != std::string::npos && body[first] == '{') {
    bool tooDeep = false;
    config = api::parseJsonBounded(body, 512, &tooDeep);
    if (tooDeep) return badRequestError("the request body is nested deeper than 512 levels");
    if (config.is_discarded())
      return badRequestError("the applied configuration is not valid JSON");
  } else {
    auto parsed = yaml::parseYamlDocument(body);
    if (!parsed.isOk()) {
      return badRequestError("the applied configuration is not valid YAML: " +
                             parsed.status().message());
    }
    config = std::move(parsed.value());
  }
  if (!config.is_object()) return badRequestError("the applied configuration must be an object");
  if (api::nestsDeeperThan(config, 512)) {
    return badRequestError("the request body is nested deeper than 512 levels");
  }
  return config;
}

bool isDryRun(const ServerRequest& req) {
  return req.param("dryRun") == "All";
}

int64_t parseLimit(const std::string& s) {
  if (s.empty()) return 0;
  try {
    return std::max<int64_t>(0, std::stoll(s));
  } catch (...) {
    return -1;
  }
}

// DeleteOptions.propagationPolicy: unset (the kind's default) or one of Kubernetes' three.
Status checkPropagationPolicy(const std::string& p, bool set) {
  if ((!set && p.empty()) || p == "Orphan" || p == "Background" || p == "Foreground") {
    return Status::ok();
  }
  return Status(Code::kInvalid,
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: "
                "Unsupported value: \"" +
                    p +
                    "\": supported values: "
                    "\"Foreground\", \"Background\", \"Orphan\"");
}

// The field check a write request asks for (`fieldValidation`), with the keys its JSON body
// repeats; a bad parameter is the error.
Result<registry::FieldCheck> fieldCheckFor(const ServerRequest& req) {
  auto mode = api::parseFieldValidation(req.param("fieldValidation"));
  if (!mode.isOk()) {
    const char* options = req.method == "POST"  ? "CreateOptions"
                          : req.method == "PUT" ? "UpdateOptions"
                                                : "PatchOptions";
    return Status(Code::kInvalid, std::string(options) +
                                      ".meta.k8s.io \"\" is invalid: " + mode.status().message());
  }
  registry::FieldCheck check;
  check.mode = *mode;
  if (check.mode != api::FieldValidation::kIgnore &&
      !api::isKubernetesProtobuf(req.header("content-type"))) {
    check.duplicates = api::duplicateFields(req.body);
  }
  return check;
}

// One `Warning: 299 - "TEXT"` header per warning (RFC 7234 5.5), as the apiserver sends them;
// control characters (a JSON key may hold CR LF) become '?', so no text ends a header.
ServerResponse withWarnings(ServerResponse resp, const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) {
    std::string quoted;
    for (char c : w) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        quoted += '?';
        continue;
      }
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    resp.headers.emplace_back("Warning", "299 - \"" + quoted + "\"");
  }
  return resp;
}

}  // namespace

ApiHandler::ApiHandler(registry::Registry& registry, Clock& clock, ApiHandlerOptions options)
    : registry_(registry), clock_(clock), options_(std::move(options)) {}

void ApiHandler::addRoute(std::string path, std::function<ServerResponse(ServerRequest&)> route) {
  routes_[std::move(path)] = std::move(route);
}

void ApiHandler::addSubresource(const std::string& plural, const std::string& sub,
                                SubresourceRoute route) {
  subresources_[plural + "/" + sub] = std::move(route);
}

void ApiHandler::addApiGroup(ApiGroupRoute group) {
  groups_.push_back(std::move(group));
}

registry::WriteOptions ApiHandler::writeOptions(const ServerRequest& req, const api::KindInfo& kind,
                                                const std::string& ns) const {
  registry::WriteOptions o;
  o.dryRun = isDryRun(req);
  o.fieldManager = fieldManagerOf(req);
  if (options_.admission) {
    o.admit = [this, &req, &kind, ns](const Json* current, const Json& next) {
      return options_.admission(req, kind, ns, current, next);
    };
  }
  return o;
}

std::string fieldManagerOf(const ServerRequest& req) {
  std::string manager = req.param("fieldManager");
  if (manager.empty()) {
    manager = req.header("user-agent");
    manager = manager.substr(0, manager.find('/'));
  }
  if (manager.size() > 128) manager.resize(128);
  return manager;
}

ServerResponse ApiHandler::handle(ServerRequest& req) {
  if (auto route = routes_.find(req.path); route != routes_.end()) return route->second(req);
  const auto parts = splitPath(req.path);
  if (parts.empty()) {
    return jsonResponse(
        200,
        {{"paths", {"/api", "/api/v1", "/apis", "/healthz", "/readyz", "/livez", "/version"}}});
  }
  if (parts[0] == "openapi" && parts.size() == 2 && parts[1] == "v2") {
    // kubectl's client-side validation asks for gnostic's protobuf; anything else gets JSON.
    if (req.header("accept").find("com.github.proto-openapi.spec.v2") != std::string::npos) {
      ServerResponse r;
      r.contentType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
      r.body = openApiV2Protobuf();
      return r;
    }
    return jsonResponse(200, openApiV2Json());
  }
  if (parts[0] == "openapi" && parts.size() >= 2 && parts[1] == "v3") {
    if (parts.size() == 2) return jsonResponse(200, openApiV3Root());
    std::string gv = parts.size() == 4 && parts[2] == "api"    ? parts[3]
                     : parts.size() == 5 && parts[2] == "apis" ? parts[3] + "/" + parts[4]
                                                               : "";
    const Json& doc = openApiV3GroupVersion(gv);
    if (doc.is_null()) {
      return errorResponse(notFoundError("the server could not find the requested resource"));
    }
    ServerResponse r = jsonResponse(200, doc);
    r.headers.emplace_back("Cache-Control", "public, immutable");
    return r;
  }
  if (parts.size() == 1) {
    if (parts[0] == "healthz" || parts[0] == "livez") return plainResponse(200, "ok");
    if (parts[0] == "readyz") {
      if (!ready_) return plainResponse(503, "not ready");
      if (options_.readinessCheck) {
        if (Status s = options_.readinessCheck(); !s.isOk()) {
          return plainResponse(503, "not ready: " + s.message());
        }
      }
      return plainResponse(200, "ok");
    }
    if (parts[0] == "version") {
      return jsonResponse(200, {{"major", "1"},
                                {"minor", "32"},
                                {"gitVersion", "v1.32.0+edgeplane." + options_.version},
                                {"gitCommit", ""},
                                {"gitTreeState", "clean"},
                                {"buildDate", ""},
                                {"goVersion", ""},
                                {"compiler", "gcc"},
                                {"platform", "linux/amd64"}});
    }
    if (parts[0] == "api") {
      return jsonResponse(200, {{"kind", "APIVersions"},
                                {"versions", {"v1"}},
                                {"serverAddressByClientCIDRs",
                                 {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", ""}}}}});
    }
    if (parts[0] == "apis") {
      Json groups = Json::array();
      for (const auto& g : api::apiGroups()) groups.push_back(apiGroupJson(g));
      for (const auto& g : groups_) groups.push_back(apiGroupJson(g.group, g.version));
      return jsonResponse(200,
                          {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}});
    }
  }

  // Resource paths: /api/v1/... or /apis/GROUP/VERSION/...
  std::string group, version;
  size_t i = 0;
  if (parts[0] == "api" && parts.size() >= 2) {
    version = parts[1];
    i = 2;
  } else if (parts[0] == "apis" && parts.size() >= 2) {
    group = parts[1];
    for (const auto& g : groups_) {
      if (g.group != group) continue;
      if (parts.size() == 2) {
        Json j = apiGroupJson(g.group, g.version);
        j["kind"] = "APIGroup";
        j["apiVersion"] = "v1";
        return jsonResponse(200, j);
      }
      if (parts[2] != g.version) break;
      if (parts.size() == 3) {
        return jsonResponse(200, {{"kind", "APIResourceList"},
                                  {"apiVersion", "v1"},
                                  {"groupVersion", g.group + "/" + g.version},
                                  {"resources", g.resources()}});
      }
      return g.route(req, std::vector<std::string>(parts.begin() + 3, parts.end()));
    }
    if (parts.size() == 2) {
      for (const auto& g : api::apiGroups()) {
        if (g == group) {
          Json j = apiGroupJson(g);
          j["kind"] = "APIGroup";
          j["apiVersion"] = "v1";
          return jsonResponse(200, j);
        }
      }
      return errorResponse(notFoundError("the server could not find the requested resource"));
    }
    version = parts[2];
    i = 3;
  } else {
    return errorResponse(notFoundError("the server could not find the requested resource"));
  }
  const std::string gv = group.empty() ? version : group + "/" + version;
  if (i == parts.size()) {
    Json list = resourceList(gv);
    if (list["resources"].empty()) {
      return errorResponse(notFoundError("the server could not find the requested resource"));
    }
    return jsonResponse(200, list);
  }
  std::vector<std::string> rest(parts.begin() + static_cast<long>(i), parts.end());
  std::string ns, plural, name, sub;
  if (rest[0] == "namespaces" && rest.size() >= 3 && rest[2] != "status" && rest[2] != "finalize") {
    ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  plural = rest[0];
  if (rest.size() > 1) name = rest[1];
  if (rest.size() > 2) sub = rest[2];
  if (rest.size() > 3) {
    return errorResponse(notFoundError("the server could not find the requested resource"));
  }
  const api::KindInfo* kind = api::findByResource(group, version, plural);
  if (!kind) {
    return errorResponse(notFoundError("the server could not find the requested resource (" +
                                       (group.empty() ? "" : group + "/") + version + ", " +
                                       plural + ")"));
  }
  if (!kind->namespaced && !ns.empty()) {
    return errorResponse(notFoundError("the server could not find the requested resource"));
  }
  registry::Subresource subresource = registry::Subresource::kNone;
  if (!sub.empty() && !name.empty()) {
    if (auto r = subresources_.find(plural + "/" + sub); r != subresources_.end()) {
      return r->second(req, ns, name);
    }
  }
  if (!sub.empty()) {
    if (sub != "status" || !kind->hasStatus) {
      return errorResponse(notFoundError("the server could not find the requested resource"), kind,
                           name);
    }
    subresource = registry::Subresource::kStatus;
  }

  const std::string& m = req.method;
  TableOptions tableOpts;
  if (!req.param("includeObject").empty()) tableOpts.includeObject = req.param("includeObject");
  const bool table = wantsTable(req);
  const int64_t now = clock_.nowMillis();

  if (name.empty()) {
    registry::ListQuery q;
    q.labelSelector = req.param("labelSelector");
    q.fieldSelector = req.param("fieldSelector");
    q.limit = parseLimit(req.param("limit"));
    if (q.limit < 0) return errorResponse(badRequestError("limit: must be a non-negative integer"));
    q.continueToken = req.param("continue");
    if (m == "GET") {
      // One damaged object never breaks a LIST, nor the initial list of a watch: it is left out
      // with a Warning.
      q.skipDamaged = true;
      if (req.flag("watch")) {
        auto w = registry_.watch(*kind, ns, q, req.param("resourceVersion"));
        if (!w.isOk()) return errorResponse(w.status(), kind);
        auto warnings = (*w)->warnings();
        auto timeout = options_.maxWatchTimeout;
        if (auto t = parseLimit(req.param("timeoutSeconds")); t > 0) {
          timeout = std::min(timeout, std::chrono::seconds(t));
        }
        ServerResponse r;
        r.contentType = "application/json";
        // Bookmarks only where the client asked for them (client-go's reflectors do); never
        // in a Table stream (kubectl get --watch).
        std::optional<std::chrono::milliseconds> bookmarks;
        if (req.flag("allowWatchBookmarks") && !table) bookmarks = options_.watchBookmarkInterval;
        r.stream =
            std::make_shared<WatchBody>(std::move(w.value()), *kind, table, tableOpts, clock_,
                                        std::chrono::steady_clock::now() + timeout, bookmarks,
                                        WatchBody::parseRevision(req.param("resourceVersion")));
        return withWarnings(std::move(r), warnings);
      }
      auto l = registry_.list(*kind, ns, q);
      if (!l.isOk()) return errorResponse(l.status(), kind);
      if (table) {
        return withWarnings(
            jsonResponse(200, api::tableJson(*kind, l->items, now, tableOpts.includeObject,
                                             l->resourceVersion, l->continueToken,
                                             /*withColumns=*/true)),
            l->warnings);
      }
      Json meta = {{"resourceVersion", l->resourceVersion}};
      if (!l->continueToken.empty()) meta["continue"] = l->continueToken;
      Json items = Json::array();
      for (auto& o : l->items) items.push_back(std::move(o));
      return withWarnings(jsonResponse(200, {{"kind", kind->listKind()},
                                             {"apiVersion", kind->apiVersion()},
                                             {"metadata", std::move(meta)},
                                             {"items", std::move(items)}}),
                          l->warnings);
    }
    if (m == "POST") {
      auto body = parseBody(req);
      if (!body.isOk()) return errorResponse(body.status(), kind);
      std::string objName = (*body)["metadata"].is_object()
                                ? (*body)["metadata"].value("name", std::string())
                                : std::string();
      auto check = fieldCheckFor(req);
      if (!check.isOk()) return errorResponse(check.status(), kind, objName);
      auto opts = writeOptions(req, *kind, ns);
      opts.fieldCheck = &check.value();
      auto r = registry_.create(*kind, ns, std::move(body.value()), opts);
      if (!r.isOk()) return errorResponse(r.status(), kind, objName);
      return withWarnings(jsonResponse(201, *r), check->warnings);
    }
    if (m == "DELETE") {
      if (auto s = checkPropagationPolicy(req.param("propagationPolicy"),
                                          req.query.contains("propagationPolicy"));
          !s.isOk()) {
        return errorResponse(s, kind);
      }
      auto l = registry_.list(*kind, ns, q);
      if (!l.isOk()) return errorResponse(l.status(), kind);
      Json items = Json::array();
      for (const auto& o : l->items) {
        std::string itemNs = o["metadata"].value("namespace", std::string());
        std::string itemName = o["metadata"].value("name", std::string());
        registry::DeleteOptions opts{.dryRun = isDryRun(req)};
        opts.propagationPolicy = req.param("propagationPolicy");
        auto r = registry_.remove(*kind, itemNs, itemName, opts);
        if (r.isOk()) items.push_back(std::move(r.value()));
      }
      return jsonResponse(200, {{"kind", kind->listKind()},
                                {"apiVersion", kind->apiVersion()},
                                {"metadata", {{"resourceVersion", l->resourceVersion}}},
                                {"items", std::move(items)}});
    }
    return errorResponse(Status(Code::kMethodNotAllowed,
                                "the server does not allow this method "
                                "on the requested resource"),
                         kind);
  }

  if (m == "GET") {
    auto r = registry_.get(*kind, ns, name);
    if (!r.isOk()) return errorResponse(r.status(), kind, name);
    if (table) {
      return jsonResponse(200, api::tableJson(*kind, {*r}, now, tableOpts.includeObject, "", "",
                                              /*withColumns=*/true));
    }
    return jsonResponse(200, *r);
  }
  if (m == "PUT") {
    auto body = parseBody(req);
    if (!body.isOk()) return errorResponse(body.status(), kind, name);
    auto check = fieldCheckFor(req);
    if (!check.isOk()) return errorResponse(check.status(), kind, name);
    auto opts = writeOptions(req, *kind, ns);
    opts.fieldCheck = &check.value();
    auto r = registry_.update(*kind, ns, name, std::move(body.value()), subresource, opts);
    if (!r.isOk()) return errorResponse(r.status(), kind, name);
    return withWarnings(jsonResponse(200, *r), check->warnings);
  }
  if (m == "PATCH") {
    std::string ct = req.header("content-type");
    auto semi = ct.find(';');
    if (semi != std::string::npos) ct = ct.substr(0, semi);
    if (ct == "application/apply-patch+yaml" && subresource != registry::Subresource::kNone) {
      return errorResponse(Status(Code::kMethodNotAllowed,
                                  "server-side apply of the status subresource is not supported; "
                                  "use a merge or JSON patch"),
                           kind, name);
    }
    if (ct == "application/apply-patch+yaml") {
      auto config = parseApplyConfiguration(req.body);
      if (!config.isOk()) return errorResponse(config.status(), kind, name);
      auto check = fieldCheckFor(req);
      if (!check.isOk()) return errorResponse(check.status(), kind, name);
      auto opts = writeOptions(req, *kind, ns);
      opts.fieldManager = req.param("fieldManager");  // required: no User-Agent default
      opts.fieldCheck = &check.value();
      bool created = false;
      auto r = registry_.apply(*kind, ns, name, *config, req.flag("force"), opts, &created);
      if (!r.isOk()) return errorResponse(r.status(), kind, name);
      return withWarnings(jsonResponse(created ? 201 : 200, *r), check->warnings);
    }
    if (req.query.contains("force")) {
      return errorResponse(Status(Code::kInvalid,
                                  "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: "
                                  "may not be specified for non-apply patch"),
                           kind, name);
    }
    registry::PatchType type;
    if (ct == "application/merge-patch+json") {
      type = registry::PatchType::kMerge;
    } else if (ct == "application/strategic-merge-patch+json") {
      type = registry::PatchType::kStrategicMerge;
    } else if (ct == "application/json-patch+json") {
      type = registry::PatchType::kJsonPatch;
    } else {
      return errorResponse(
          Status(Code::kUnsupportedMedia,
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/json-patch+json, application/merge-patch+json, "
                 "application/strategic-merge-patch+json, application/apply-patch+yaml"),
          kind, name);
    }
    auto check = fieldCheckFor(req);
    if (!check.isOk()) return errorResponse(check.status(), kind, name);
    auto opts = writeOptions(req, *kind, ns);
    opts.fieldCheck = &check.value();
    auto r = registry_.patch(*kind, ns, name, type, req.body, subresource, opts);
    if (!r.isOk()) return errorResponse(r.status(), kind, name);
    return withWarnings(jsonResponse(200, *r), check->warnings);
  }
  if (m == "DELETE") {
    registry::DeleteOptions opts;
    opts.dryRun = isDryRun(req);
    // As the apiserver: a body's DeleteOptions replace the query's; orphanDependents and
    // propagationPolicy together are refused.
    bool orphanSet = req.query.contains("orphanDependents");
    bool policySet = req.query.contains("propagationPolicy");
    if (orphanSet) opts.propagationPolicy = req.flag("orphanDependents") ? "Orphan" : "Background";
    if (policySet) opts.propagationPolicy = req.param("propagationPolicy");
    if (std::string g = req.param("gracePeriodSeconds"); !g.empty()) {
      char* end = nullptr;
      long long v = std::strtoll(g.c_str(), &end, 10);
      if (end == g.c_str() || *end != '\0') {
        return errorResponse(
            badRequestError("gracePeriodSeconds: must be an integer, got \"" + g + "\""), kind,
            name);
      }
      opts.gracePeriodSeconds = v;
    }
    if (!req.body.empty()) {
      auto parsed = parseDeleteOptionsBody(req);
      if (!parsed.isOk()) return errorResponse(parsed.status(), kind, name);
      const Json& body = *parsed;
      if (auto p = body.find("preconditions"); p != body.end() && p->is_object()) {
        if (p->contains("uid") && (*p)["uid"].is_string()) opts.preconditionUid = (*p)["uid"];
        if (p->contains("resourceVersion") && (*p)["resourceVersion"].is_string()) {
          opts.preconditionResourceVersion = (*p)["resourceVersion"];
        }
      }
      if (auto g = body.find("gracePeriodSeconds"); g != body.end() && !g->is_null()) {
        if (!g->is_number_integer()) {
          return errorResponse(badRequestError("gracePeriodSeconds: must be an integer"), kind,
                               name);
        }
        opts.gracePeriodSeconds = g->get<int64_t>();
      }
      if (auto u = body.find(kUnsafeDeleteOption);
          u != body.end() && !u->is_null() && !u->is_boolean()) {
        return errorResponse(
            badRequestError(std::string(kUnsafeDeleteOption) + ": must be a boolean"), kind, name);
      }
      if (auto d = body.find("dryRun"); d != body.end() && d->is_array()) {
        for (const auto& v : *d) {
          if (v == "All") opts.dryRun = true;
        }
      }
      orphanSet = policySet = false;
      opts.propagationPolicy.clear();
      if (auto o = body.find("orphanDependents"); o != body.end() && o->is_boolean()) {
        orphanSet = true;
        opts.propagationPolicy = o->get<bool>() ? "Orphan" : "Background";
      }
      if (auto p = body.find("propagationPolicy"); p != body.end() && !p->is_null()) {
        if (!p->is_string()) {
          return errorResponse(badRequestError("propagationPolicy: must be a string"), kind, name);
        }
        policySet = true;
        opts.propagationPolicy = p->get<std::string>();
      }
    }
    if (orphanSet && policySet) {
      return errorResponse(Status(Code::kInvalid,
                                  "DeleteOptions.meta.k8s.io \"\" is invalid: orphanDependents: "
                                  "Invalid value: orphanDependents and deletionPropagation cannot "
                                  "be both set"),
                           kind, name);
    }
    if (auto s = checkPropagationPolicy(opts.propagationPolicy, policySet); !s.isOk()) {
      return errorResponse(s, kind, name);
    }
    // The very reading the AuthFilter authorized ("unsafe-delete-ignore-read-errors").
    opts.ignoreStoreReadError = asksUnsafeDelete(req);
    auto r = registry_.remove(*kind, ns, name, opts);
    if (!r.isOk()) return errorResponse(r.status(), kind, name);
    return jsonResponse(200, *r);
  }
  return errorResponse(Status(Code::kMethodNotAllowed,
                              "the server does not allow this method on the requested "
                              "resource"),
                       kind, name);
}

}  // namespace ep::apiserver
