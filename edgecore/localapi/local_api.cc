#include "edgecore/localapi/local_api.h"

#include <set>

#include "common/api/discovery.h"
#include "common/api/field_selector.h"
#include "common/api/kinds.h"
#include "common/api/label_selector.h"
#include "common/api/object_util.h"
#include "common/api/status_json.h"
#include "common/api/table.h"

namespace ep::edgecore::localapi {

using http::BodyStream;
using http::ServerRequest;
using http::ServerResponse;
using Json = nlohmann::json;

namespace {

using api::apiGroupJson;
using api::errorResponse;
using api::jsonResponse;
using api::plainResponse;
using api::splitPath;

Json resourceList(const std::string& groupVersion) {
  Json resources = Json::array();
  for (const auto& k : api::allKinds()) {
    if (k.apiVersion() != groupVersion) continue;
    Json r = {{"name", k.plural},
              {"singularName", k.singular},
              {"namespaced", k.namespaced},
              {"kind", k.kind},
              {"verbs", {"get", "list", "watch"}}};
    if (!k.shortNames.empty()) r["shortNames"] = k.shortNames;
    resources.push_back(std::move(r));
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", groupVersion},
          {"resources", std::move(resources)}};
}

// Selectors of one list/watch request.
struct Filter {
  std::optional<api::LabelSelector> labels;
  std::optional<api::FieldSelector> fields;
  bool matches(const Json& obj) const {
    if (labels && !labels->matches(api::labelsOf(obj))) return false;
    if (fields && !fields->matches(obj)) return false;
    return true;
  }
};

Result<Filter> parseFilter(const ServerRequest& req, const api::KindInfo& kind) {
  Filter f;
  if (auto ls = req.param("labelSelector"); !ls.empty()) {
    auto s = api::parseLabelSelector(ls);
    if (!s.isOk()) return badRequestError("labelSelector: " + s.status().message());
    f.labels = std::move(s.value());
  }
  if (auto fs = req.param("fieldSelector"); !fs.empty()) {
    auto s = api::parseFieldSelector(fs, kind);
    if (!s.isOk()) return badRequestError(s.status().message());
    f.fields = std::move(s.value());
  }
  return f;
}

std::string objectKey(const Json& obj) {
  return api::stringAt(obj, "metadata.namespace") + "/" + api::stringAt(obj, "metadata.name");
}

// A watch from the cache's fan-out, rendered as newline-delimited JSON events. The initial
// objects (resourceVersion ""/"0") come first as ADDED. Selector transitions are tracked with
// the set of keys sent so far: an object that stops matching is sent as DELETED.
class WatchBody final : public BodyStream {
 public:
  WatchBody(std::shared_ptr<metamanager::Subscription> sub, std::vector<Json> initial,
            Filter filter, const api::KindInfo& kind, bool table, std::string includeObject,
            Clock& clock, std::chrono::steady_clock::time_point deadline)
      : sub_(std::move(sub)),
        initial_(std::move(initial)),
        filter_(std::move(filter)),
        kind_(kind),
        table_(table),
        includeObject_(std::move(includeObject)),
        clock_(clock),
        deadline_(deadline) {}

  // Serialized by the server (one call at a time), so the members below need no lock.
  std::string next(bool& finished) override {
    std::string out;
    for (auto& obj : initial_) {
      if (!filter_.matches(obj)) continue;
      sent_.insert(objectKey(obj));
      out += render("ADDED", obj);
    }
    initial_.clear();
    for (auto& e : sub_->poll(256)) {
      const std::string key = objectKey(e.object);
      const bool deleted = e.type == "DELETED";
      const std::string_view type = api::filteredWatchEventType(
          deleted, sent_.count(key) > 0, !deleted && filter_.matches(e.object));
      if (type.empty()) continue;
      if (type == "DELETED") {
        sent_.erase(key);
      } else {
        sent_.insert(key);
      }
      out += render(std::string(type), e.object);
    }
    if (sub_->done()) {
      if (sub_->overflowed() && !errorSent_) {
        errorSent_ = true;
        Json err = api::statusObject(
            Status(Code::kExpired, "the watch fell behind the edge cache; relist and watch again"));
        out += Json{{"type", "ERROR"}, {"object", std::move(err)}}.dump() + "\n";
      }
      finished = true;
    }
    return out;
  }
  void setWake(std::function<void()> wake) override { sub_->setNotify(std::move(wake)); }
  std::chrono::steady_clock::time_point deadline() const override { return deadline_; }
  void close() override { sub_->stop(); }

 private:
  std::string render(const std::string& type, const Json& obj) {
    Json body;
    if (table_) {
      body = api::tableJson(kind_, {obj}, clock_.nowMillis(), includeObject_,
                            api::stringAt(obj, "metadata.resourceVersion"), "", !sentColumns_);
      sentColumns_ = true;
    } else {
      body = obj;
    }
    return Json{{"type", type}, {"object", std::move(body)}}.dump() + "\n";
  }

  std::shared_ptr<metamanager::Subscription> sub_;
  std::vector<Json> initial_;
  const Filter filter_;
  const api::KindInfo& kind_;
  const bool table_;
  const std::string includeObject_;
  Clock& clock_;
  const std::chrono::steady_clock::time_point deadline_;
  std::set<std::string> sent_;  // keys of matching objects the client knows about
  bool sentColumns_ = false;
  bool errorSent_ = false;
};

int64_t parseNonNegative(const std::string& s) {
  if (s.empty()) return 0;
  if (s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(s);
}

}  // namespace

LocalApiHandler::LocalApiHandler(metamanager::CacheReader& cache, Clock& clock,
                                 LocalApiOptions options)
    : cache_(cache), clock_(clock), options_(std::move(options)) {}

ServerResponse LocalApiHandler::handle(ServerRequest& req) {
  if (req.method != "GET" && req.method != "HEAD") {
    return errorResponse(Status(Code::kMethodNotAllowed, "the edge local API is read-only"));
  }
  const auto parts = splitPath(req.path);
  if (parts.empty()) {
    return jsonResponse(
        200,
        {{"paths",
          {"/api", "/api/v1", "/apis", "/healthz", "/readyz", "/livez", "/status", "/version"}}});
  }
  if (parts.size() == 1) {
    if (parts[0] == "healthz" || parts[0] == "livez") return plainResponse(200, "ok");
    if (parts[0] == "readyz") return plainResponse(200, "ok");
    if (parts[0] == "status") {
      Json s = options_.status ? options_.status() : Json::object();
      const auto stats = cache_.stats();
      s["cache"] = {{"lastAppliedRevision", stats.lastAppliedRevision},
                    {"objects", stats.objects},
                    {"damagedObjects", stats.integrity.damagedObjects}};
      if (!stats.integrity.rebuiltFrom.empty()) {
        s["cache"]["rebuiltFrom"] = stats.integrity.rebuiltFrom;
        s["cache"]["outboxSalvaged"] = stats.integrity.outboxSalvaged;
      }
      s["outbox"] = {{"entries", stats.outboxEntries},
                     {"bytes", stats.outboxBytes},
                     {"dropped", stats.outboxDropped},
                     {"lastSequence", stats.lastSequence}};
      return jsonResponse(200, s);
    }
    if (parts[0] == "version") {
      return jsonResponse(200, {{"major", "1"},
                                {"minor", "32"},
                                {"gitVersion", "v1.32.0-edgeplane-" + options_.version},
                                {"platform", "linux"}});
    }
    if (parts[0] == "api") {
      return jsonResponse(200, {{"kind", "APIVersions"}, {"versions", {"v1"}}});
    }
    if (parts[0] == "apis") {
      Json groups = Json::array();
      for (const auto& g : api::apiGroups()) groups.push_back(apiGroupJson(g));
      return jsonResponse(200,
                          {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}});
    }
  }
  static const Status kNoResource =
      notFoundError("the server could not find the requested resource");
  std::string group, version;
  size_t i = 0;
  if (parts[0] == "api" && parts.size() >= 2) {
    version = parts[1];
    i = 2;
  } else if (parts[0] == "apis" && parts.size() >= 3) {
    group = parts[1];
    version = parts[2];
    i = 3;
  } else {
    return errorResponse(kNoResource);
  }
  const std::string gv = group.empty() ? version : group + "/" + version;
  if (i == parts.size()) {
    Json list = resourceList(gv);
    if (list["resources"].empty()) return errorResponse(kNoResource);
    return jsonResponse(200, list);
  }
  std::vector<std::string> rest(parts.begin() + static_cast<long>(i), parts.end());
  std::string ns, name;
  if (rest[0] == "namespaces" && rest.size() >= 3) {
    ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (rest.size() > 2) return errorResponse(kNoResource);
  const api::KindInfo* kind = api::findByResource(group, version, rest[0]);
  if (!kind) {
    return errorResponse(notFoundError("the server could not find the requested resource (" +
                                       (group.empty() ? "" : group + "/") + version + ", " +
                                       rest[0] + ")"));
  }
  if (rest.size() == 2) name = rest[1];
  if (!kind->namespaced && !ns.empty()) return errorResponse(kNoResource);
  if (kind->group.empty() && kind->kind == "Secret") {
    // The local API is unauthenticated (loopback only): Secrets reach pods through their
    // volumes, never through it (docs/security.md).
    return errorResponse(Status(Code::kForbidden,
                                "secrets is forbidden: the edge's local API does not serve "
                                "Secrets; mount them into the pod instead"),
                         kind, name);
  }
  const bool table = req.header("accept").find("as=Table") != std::string::npos;
  std::string includeObject = req.param("includeObject");
  if (includeObject.empty()) includeObject = "Metadata";
  const int64_t now = clock_.nowMillis();
  const std::string resource = kind->resource();

  if (!name.empty()) {
    auto r = cache_.get(resource, ns, name);
    if (!r.isOk()) {
      if (r.status().code() == Code::kNotFound) {
        return errorResponse(notFoundError(kind->resource() + " \"" + name + "\" not found"), kind,
                             name);
      }
      return errorResponse(r.status(), kind, name);
    }
    if (table)
      return jsonResponse(200,
                          api::tableJson(*kind, {r->object}, now, includeObject, "", "", true));
    return jsonResponse(200, r->object);
  }

  auto filter = parseFilter(req, *kind);
  if (!filter.isOk()) return errorResponse(filter.status(), kind);
  const std::string watchParam = req.param("watch");
  if (watchParam == "1" || watchParam == "true") {
    const std::string rv = req.param("resourceVersion");
    std::vector<Json> initial;
    int64_t snapshotRev = 0;
    std::shared_ptr<metamanager::Subscription> sub;
    if (rv.empty() || rv == "0") {
      sub = cache_.subscribe(resource, ns, &initial, &snapshotRev);
    } else {
      // The cache keeps no history: only "from now" can be served exactly.
      int64_t from = parseNonNegative(rv);
      if (from < 0) {
        return errorResponse(badRequestError("resourceVersion: invalid value \"" + rv + "\""),
                             kind);
      }
      sub = cache_.subscribe(resource, ns, nullptr, &snapshotRev);
      if (from != snapshotRev) {
        sub->stop();
        return errorResponse(Status(Code::kExpired, "too old resource version: " + rv + " (" +
                                                        std::to_string(snapshotRev) + ")"),
                             kind);
      }
    }
    auto timeout = options_.maxWatchTimeout;
    if (auto t = parseNonNegative(req.param("timeoutSeconds")); t > 0) {
      timeout = std::min(timeout, std::chrono::seconds(t));
    }
    ServerResponse r;
    r.stream = std::make_shared<WatchBody>(std::move(sub), std::move(initial),
                                           std::move(filter.value()), *kind, table, includeObject,
                                           clock_, std::chrono::steady_clock::now() + timeout);
    return r;
  }

  int64_t rev = cache_.lastAppliedRevision();
  auto l = cache_.list(resource, ns);
  if (!l.isOk()) return errorResponse(l.status(), kind);
  std::vector<Json> items;
  for (auto& o : *l) {
    if (filter->matches(o)) items.push_back(std::move(o));
  }
  const std::string rvText = std::to_string(rev);
  if (table)
    return jsonResponse(200, api::tableJson(*kind, items, now, includeObject, rvText, "", true));
  return jsonResponse(200, {{"kind", kind->listKind()},
                            {"apiVersion", kind->apiVersion()},
                            {"metadata", {{"resourceVersion", rvText}}},
                            {"items", std::move(items)}});
}

LocalApi::LocalApi(http::ServerOptions serverOptions, metamanager::CacheReader& cache, Clock& clock,
                   LocalApiOptions options)
    : handler_(cache, clock, std::move(options)),
      server_(std::move(serverOptions),
              [this](http::ServerRequest& r) { return handler_.handle(r); }) {}

Status LocalApi::start() {
  return server_.start();
}

void LocalApi::stop() {
  server_.stop();
}

}  // namespace ep::edgecore::localapi
