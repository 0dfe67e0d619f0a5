#pragma once

#include <string>

#include "common/http/server_types.h"

namespace ep::auth {

// What a request asks to do, in the terms authorization speaks (Kubernetes
// authorizer.Attributes). Resource requests name a verb (get list watch create update patch
// delete deletecollection) on apiGroup/resource[/subresource] in a namespace, possibly one
// name; everything else is a non-resource request whose verb is the lower-case HTTP method
// ("get", "post", ...) on `path`.
struct RequestAttributes {
  bool resourceRequest = false;
  std::string verb;
  std::string apiGroup;  // "" for the core group
  std::string apiVersion;
  std::string resource;     // "pods"
  std::string subresource;  // "status", "log", "exec", ...
  std::string ns;
  std::string name;
  std::string path;

  // "pods", "pods/status"
  std::string resourceWithSubresource() const {
    return subresource.empty() ? resource : resource + "/" + subresource;
  }
};

// Parses a request the way Kubernetes' RequestInfoFactory does: /api/v1/... and
// /apis/GROUP/VERSION/...; GET of a collection is "list" (or "watch" with ?watch=1), GET of
// one object "get"; a list or watch narrowed with fieldSelector=metadata.name=X names X; DELETE
// of a collection is "deletecollection"; connecting to pods/exec, pods/attach and
// pods/portforward is "create" whatever the method. Pure; thread-safe.
RequestAttributes requestAttributes(const http::ServerRequest& request);

}  // namespace ep::auth
