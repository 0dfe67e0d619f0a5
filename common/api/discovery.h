#pragma once

// Discovery and routing helpers shared by cloudcore's API server and edgecore's local API.
// Pure functions: thread-safe.

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace ep::api {

// The non-empty segments of a request path: "/api//v1/pods/" -> {"api", "v1", "pods"}.
std::vector<std::string> splitPath(const std::string& path);

// The APIGroup discovery entry for group, with the version its kinds are served at as both the
// only and the preferred version.
nlohmann::json apiGroupJson(const std::string& group);
// The same for a group served at `version` (groups that are not kinds of the registry, such as
// metrics.k8s.io).
nlohmann::json apiGroupJson(const std::string& group, const std::string& version);

}  // namespace ep::api
