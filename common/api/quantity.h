#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::api {

// Kubernetes resource.Quantity parsing. Accepted syntax (as Kubernetes):
//   [+-]digits[.digits][suffix]   suffix: Ki Mi Gi Ti Pi Ei | n u m "" k M G T P E | e<int> E<int>
// e.g. "100m", "0.5", "2", "64Mi", "1G", "128974848", "1e3". Results are exact and rounded up
// (towards +infinity) like Quantity.MilliValue()/Value(). Values that do not fit int64, and
// numbers with more than 20 significant digits, are rejected. Errors are kInvalid with the
// Kubernetes wording. Pure functions, thread-safe, never throw.

// The quantity times 1000 (CPU in millicores: "100m" -> 100, "2" -> 2000).
Result<int64_t> parseQuantityMilli(std::string_view text);
// The quantity itself (memory in bytes: "64Mi" -> 67108864, "1G" -> 1000000000).
Result<int64_t> parseQuantityBytes(std::string_view text);
// A quantity as manifests hold it: a string, or a JSON number read as its text (2, 0.5).
// kInvalid for any other JSON type.
Result<int64_t> quantityOf(const nlohmann::json& value, bool milli);

// Canonical text of a quantity, as Kubernetes prints one it made (metrics.k8s.io usage):
// nanocores with the largest decimal suffix that keeps the number whole (1500000000 -> "1500m",
// 2000000000 -> "2", 1234 -> "1234n"), bytes with the largest binary one (1048576 -> "1Mi",
// 1536 -> "1536"). Zero is "0".
std::string formatNanoQuantity(uint64_t nano);
std::string formatBinaryQuantity(uint64_t bytes);

}  // namespace ep::api
