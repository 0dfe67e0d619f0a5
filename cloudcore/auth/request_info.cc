#include "cloudcore/auth/request_info.h"

#include <vector>

#include "common/api/discovery.h"

namespace ep::auth {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The name a fieldSelector pins down ("metadata.name=x" or "metadata.name==x"), else "".
std::string nameFromFieldSelector(const std::string& selector) {
  if (selector.find(',') != std::string::npos) return {};
  for (const char* prefix : {"metadata.name==", "metadata.name="}) {
    std::string p = prefix;
    if (selector.compare(0, p.size(), p) == 0) return selector.substr(p.size());
  }
  return {};
}

}  // namespace

RequestAttributes requestAttributes(const http::ServerRequest& req) {
  RequestAttributes a;
  a.path = req.path;
  a.verb = lower(req.method);
  auto parts = api::splitPath(req.path);
  size_t i = 0;
  if (parts.size() >= 2 && parts[0] == "api") {
    a.apiVersion = parts[1];
    i = 2;
  } else if (parts.size() >= 3 && parts[0] == "apis") {
    a.apiGroup = parts[1];
    a.apiVersion = parts[2];
    i = 3;
  } else {
    return a;  // non-resource: /healthz, /version, /api, /apis, /apis/GROUP, /openapi/...
  }
  if (i == parts.size()) {
    a.apiGroup.clear();
    a.apiVersion.clear();
    return a;  // discovery of a group version
  }
  a.resourceRequest = true;
  std::vector<std::string> rest(parts.begin() + static_cast<long>(i), parts.end());
  // /namespaces/NS/RESOURCE/... ; /namespaces/NAME[/status|/finalize] is the namespace itself.
  if (rest[0] == "namespaces" && rest.size() >= 2) {
    a.ns = rest[1];
    if (rest.size() == 2 || rest[2] == "status" || rest[2] == "finalize") {
      a.resource = "namespaces";
      a.name = rest[1];
      if (rest.size() >= 3) a.subresource = rest[2];
      a.ns.clear();
      rest.clear();
    } else {
      rest.erase(rest.begin(), rest.begin() + 2);
    }
  }
  if (!rest.empty()) {
    a.resource = rest[0];
    if (rest.size() >= 2) a.name = rest[1];
    if (rest.size() >= 3) a.subresource = rest[2];
  }
  const std::string& m = req.method;
  const bool collection = a.name.empty();
  if (m == "GET" || m == "HEAD") {
    if (req.flag("watch")) {
      a.verb = "watch";
    } else {
      a.verb = collection ? "list" : "get";
    }
    if (collection) a.name = nameFromFieldSelector(req.param("fieldSelector"));
  } else if (m == "POST") {
    a.verb = "create";
  } else if (m == "PUT") {
    a.verb = "update";
  } else if (m == "PATCH") {
    a.verb = "patch";
  } else if (m == "DELETE") {
    a.verb = collection ? "deletecollection" : "delete";
  }
  if (a.resource == "pods" &&
      (a.subresource == "exec" || a.subresource == "attach" || a.subresource == "portforward")) {
    a.verb = "create";
  }
  return a;
}

}  // namespace ep::auth
