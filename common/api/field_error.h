#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ep::api {

// One validation failure, shaped like apimachinery's field.Error so the API server can turn a
// list of them into a Kubernetes Status (details.causes[].{field,reason,message}).
struct FieldError {
  // Path in Kubernetes notation: "spec.containers[0].image", "metadata.labels", "data[key]".
  std::string field;
  // Kubernetes cause type: FieldValueRequired, FieldValueInvalid, FieldValueNotSupported,
  // FieldValueTypeInvalid, FieldValueDuplicate, FieldValueForbidden, FieldValueTooLong,
  // FieldValueNotFound.
  std::string reason;
  // Full message, field path first: "spec.containers[0].image: Required value".
  std::string message;

  // The message without the leading "<field>: " (what Kubernetes puts in StatusCause.message).
  std::string body() const;
};

// Field paths in Kubernetes notation: childField("spec", "replicas") == "spec.replicas" (no
// dot when base is empty), indexField("spec.containers", 0) == "spec.containers[0]".
std::string childField(std::string_view base, std::string_view name);
std::string indexField(std::string_view base, size_t i);

// Factories producing the Kubernetes wording. `detail` is appended after ": " when non-empty.
// Values are rendered as Kubernetes does: strings quoted, numbers and booleans bare, objects and
// arrays as compact JSON (invalid UTF-8 replaced). Thread-safe.
FieldError fieldRequired(std::string_view field, std::string_view detail = {});
FieldError fieldInvalid(std::string_view field, const nlohmann::json& value,
                        std::string_view detail);
FieldError fieldTypeInvalid(std::string_view field, const nlohmann::json& value,
                            std::string_view detail);
FieldError fieldNotSupported(std::string_view field, const nlohmann::json& value,
                             const std::vector<std::string>& supported);
FieldError fieldDuplicate(std::string_view field, const nlohmann::json& value);
FieldError fieldNotFound(std::string_view field, const nlohmann::json& value,
                         std::string_view detail = {});
FieldError fieldForbidden(std::string_view field, std::string_view detail);
FieldError fieldTooLong(std::string_view field, size_t maxBytes);

// Renders a JSON value for an error message (see above); output longer than 1 KiB is cut with
// "...", values nested more than 64 levels render as "{...}" / "[...]". Never throws.
std::string renderValue(const nlohmann::json& value);

// Kubernetes aggregate wording: the single message, or "[m1, m2, ...]" for several.
std::string joinFieldErrors(const std::vector<FieldError>& errors);

}  // namespace ep::api
