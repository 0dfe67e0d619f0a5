#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace ep::api {

// Read-only helpers over objects held as JSON. Pure functions, thread-safe, never throw.

// Follows a dotted path with optional array indices ("spec.nodeName",
// "spec.containers[0].image", "status.podIPs[0].ip"). An empty path returns &root. Returns
// nullptr when a segment is missing, an index is out of range, or a value has the wrong type.
// Keys that themselves contain '.' or '[' cannot be addressed this way.
const nlohmann::json* lookupPath(const nlohmann::json& root, std::string_view dotted);

// The string at `dotted`, or `fallback` when it is missing or not a string.
std::string stringAt(const nlohmann::json& root, std::string_view dotted,
                     std::string_view fallback = {});

// The integer at `dotted`, or `fallback` when it is missing or not an integer.
int64_t intAt(const nlohmann::json& root, std::string_view dotted, int64_t fallback = 0);

// True when `v` nests objects/arrays more than `maxDepth` levels ("{}" is 1 level, a scalar 0).
// Iterative, so safe on any input; use it to refuse hostile documents before code that recurses
// (nlohmann's copy and dump do).
bool nestedDeeperThan(const nlohmann::json& v, size_t maxDepth);

// metadata.labels / metadata.annotations as a map; entries whose value is not a string are
// skipped; an absent or malformed map yields an empty one.
std::map<std::string, std::string> labelsOf(const nlohmann::json& obj);
std::map<std::string, std::string> annotationsOf(const nlohmann::json& obj);

}  // namespace ep::api
