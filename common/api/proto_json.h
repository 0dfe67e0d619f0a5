#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace ep::api {

// Decodes a request body in Kubernetes' protobuf encoding (application/vnd.kubernetes.protobuf:
// "k8s\0" + runtime.Unknown around the object's message) into the JSON object the same request
// would have carried as application/json, so every write path (validation, admission, the
// store) stays JSON. Field numbers, names and types come from Kubernetes' generated.proto
// (k8s_proto_schema.inc, scripts/gen_k8s_proto_schema.py) for the built-in kinds served, Eviction
// and DeleteOptions. As Go's JSON would have it: embedded structs are inlined, metav1.Time and
// MicroTime become RFC 3339 text (the zero time is left out), Quantity and IntOrString their
// JSON forms, bytes base64; zero values of fields Go's JSON tags omitempty are left out (gogo
// writes every non-pointer field); unknown field numbers are skipped as protobuf does.
//
// Errors: kUnsupportedMedia for a kind with no schema here; kBadRequest naming the message and
// field for malformed input (truncated, wrong wire type, invalid UTF-8, nested deeper than 64).
// Pure; thread-safe; never throws.
[[nodiscard]] Result<nlohmann::json> kubernetesProtobufToJson(std::string_view body);

}  // namespace ep::api
