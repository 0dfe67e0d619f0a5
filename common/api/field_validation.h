#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/kinds.h"
#include "common/status.h"

namespace ep::api {

// How a write treats fields its kind does not have and fields a JSON object repeats, as the
// apiserver's `fieldValidation` query parameter says. Unknown fields are dropped from what is
// stored in every mode (Go's decoder has nowhere to put them); kWarn also answers one Warning
// header per field, kStrict refuses the write (400) naming them all. Duplicates keep the last
// value.
enum class FieldValidation { kIgnore, kWarn, kStrict };

// "" (the apiserver's default: Warn), "Ignore", "Warn", "Strict"; anything else is kInvalid
// naming the parameter ("fieldValidation: Unsupported value: ...").
[[nodiscard]] Result<FieldValidation> parseFieldValidation(std::string_view value);

// Removes from `obj` the fields that `kind` does not have, at any depth, and returns their
// paths in the apiserver's notation ("spec.replica", "spec.template.spec.containers[0].imagee",
// "metadata.labelz"), in document order: at most 100 (all are removed), each cut at 256 bytes
// ("..." marks a cut). Built-in kinds are checked against Kubernetes' own
// message shapes (k8s_schema.h) down to every nested struct; custom kinds (no schema here) at
// the top level (apiVersion, kind, metadata, spec, status) and in metadata. Values of the
// wrong JSON type are left for validation. Pure; thread-safe.
std::vector<std::string> pruneUnknownFields(const KindInfo& kind, nlohmann::json& obj);

// The paths of the keys that a JSON document repeats within one object ("spec.replicas"), in
// document order, at most 100, each cut at 256 bytes. Empty for text that is not JSON (the
// caller's parse reports that); nothing beyond 512 levels of nesting is looked at. Memory is
// proportional to the input; time O(n log n) in the number of keys.
std::vector<std::string> duplicateFields(std::string_view json);

}  // namespace ep::api
