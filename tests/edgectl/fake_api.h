#pragma once

// An in-memory stand-in for cloudcore's REST API used by the edgectl command tests. Objects are
// stored by their full item path; collections are answered by prefix. Not thread-safe.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "edgectl/api_client.h"
#include "edgectl/apply_patch.h"

namespace ep::edgectl::testing {

class FakeApi : public ApiTransport {
 public:
  struct Call {
    std::string method;
    std::string path;  // with query
    nlohmann::json body;
    std::string contentType;
    std::string accept;
  };

  std::vector<Call> calls;
  // Scripted answers by "METHOD path" (query included); consulted before the store.
  std::map<std::string, ApiResponse> overrides;
  // Scripted watch events by path; each watch() call replays one stream from the queue.
  std::map<std::string, std::vector<std::vector<nlohmann::json>>> watchStreams;
  std::optional<Status> transportError;
  // Objects deleted stay visible to this many GETs (to exercise delete --wait).
  int deleteLingers = 0;

  void put(const std::string& itemPath, nlohmann::json object) {
    store_[itemPath] = std::move(object);
  }
  const nlohmann::json* find(const std::string& itemPath) const {
    auto it = store_.find(itemPath);
    return it == store_.end() ? nullptr : &it->second;
  }
  size_t count(const std::string& method) const {
    size_t n = 0;
    for (const auto& c : calls) n += c.method == method;
    return n;
  }

  Result<ApiResponse> call(std::string_view method, std::string_view path,
                           const nlohmann::json* body, std::string_view contentType,
                           std::string_view accept) override {
    calls.push_back(Call{std::string(method), std::string(path), body ? *body : nlohmann::json(),
                         std::string(contentType), std::string(accept)});
    if (transportError) return *transportError;
    auto o = overrides.find(std::string(method) + " " + std::string(path));
    if (o != overrides.end()) return o->second;
    std::string p(path.substr(0, path.find('?')));
    if (method == "GET") {
      if (auto it = store_.find(p); it != store_.end()) return ok(it->second);
      if (auto it = lingering_.find(p); it != lingering_.end() && it->second > 0) {
        --it->second;
        return ok(nlohmann::json{{"metadata", {{"name", "lingering"}}}});
      }
      nlohmann::json items = nlohmann::json::array();
      for (const auto& [k, v] : store_) {
        if (k.rfind(p + "/", 0) == 0 && k.find('/', p.size() + 1) == std::string::npos) {
          items.push_back(v);
        }
      }
      if (!items.empty() || isCollection(p)) {
        return ok({{"kind", "List"}, {"metadata", {{"resourceVersion", "100"}}}, {"items", items}});
      }
      return notFound(p);
    }
    if (method == "POST") {
      nlohmann::json obj = body ? *body : nlohmann::json::object();
      std::string item = p + "/" + obj["metadata"].value("name", "");
      if (store_.count(item)) return status(409, "AlreadyExists", "already exists");
      obj["metadata"]["uid"] = "uid-" + obj["metadata"].value("name", "");
      obj["metadata"]["resourceVersion"] = "1";
      obj["status"] = {{"phase", "Pending"}};  // a server-populated field
      store_[item] = obj;
      return ApiResponse{201, obj, obj.dump()};
    }
    if (method == "PATCH") {
      auto it = store_.find(p);
      if (it == store_.end()) return notFound(p);
      applyMergePatch(it->second, body ? *body : nlohmann::json::object());
      return ok(it->second);
    }
    if (method == "DELETE") {
      auto it = store_.find(p);
      if (it == store_.end()) return notFound(p);
      store_.erase(it);
      if (deleteLingers > 0) lingering_[p] = deleteLingers;
      return ok({{"kind", "Status"}, {"status", "Success"}});
    }
    return status(405, "MethodNotAllowed", "method not allowed");
  }

  Status watch(std::string_view path, std::string_view accept,
               const std::function<bool(const nlohmann::json&)>& onEvent) override {
    calls.push_back(Call{"WATCH", std::string(path), nlohmann::json(), "", std::string(accept)});
    std::string key(path.substr(0, path.find('?')));
    auto it = watchStreams.find(key);
    if (it == watchStreams.end() || it->second.empty()) {
      return Status(Code::kUnavailable, "no more scripted streams");
    }
    auto events = it->second.front();
    it->second.erase(it->second.begin());
    for (const auto& e : events) {
      if (!onEvent(e)) break;
    }
    return Status::ok();
  }

  static ApiResponse ok(nlohmann::json body) { return ApiResponse{200, body, body.dump()}; }
  static ApiResponse status(int code, const std::string& reason, const std::string& message,
                            nlohmann::json causes = nullptr) {
    nlohmann::json body = {{"kind", "Status"},   {"apiVersion", "v1"}, {"status", "Failure"},
                           {"message", message}, {"reason", reason},   {"code", code}};
    if (!causes.is_null()) body["details"] = {{"causes", causes}};
    return ApiResponse{code, body, body.dump()};
  }

 private:
  // True for ".../PLURAL" and ".../namespaces/NS/PLURAL" (not for item paths).
  static bool isCollection(const std::string& p) {
    std::vector<std::string> seg;
    size_t start = 1;
    while (start <= p.size()) {
      size_t slash = p.find('/', start);
      seg.push_back(
          p.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    size_t skip = !seg.empty() && seg[0] == "api" ? 2 : 3;  // api/v1 | apis/G/V
    if (seg.size() < skip) return false;
    size_t rest = seg.size() - skip;
    bool namespaced = rest >= 2 && seg[skip] == "namespaces";
    return namespaced ? rest == 3 : rest == 1;
  }
  static ApiResponse notFound(const std::string& p) {
    auto slash = p.rfind('/');
    std::string name = p.substr(slash + 1);
    std::string before = p.substr(0, slash);
    std::string plural = before.substr(before.rfind('/') + 1);
    return status(404, "NotFound", plural + " \"" + name + "\" not found");
  }

  std::map<std::string, nlohmann::json> store_;
  std::map<std::string, int> lingering_;
};

}  // namespace ep::edgectl::testing
