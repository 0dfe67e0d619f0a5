#include "common/api/field_error.h"

#include <nlohmann/json.hpp>

#include "common/api/object_util.h"

namespace ep::api {

std::string childField(std::string_view base, std::string_view name) {
  if (base.empty()) return std::string(name);
  std::string out(base);
  out += '.';
  out += name;
  return out;
}

std::string indexField(std::string_view base, size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}
namespace {

FieldError make(std::string_view field, const char* reason, std::string body,
                std::string_view detail) {
  if (!detail.empty()) {
    body += ": ";
    body += detail;
  }
  FieldError e;
  e.field = std::string(field);
  e.reason = reason;
  e.message = e.field.empty() ? body : e.field + ": " + body;
  return e;
}

}  // namespace

std::string FieldError::body() const {
  std::string prefix = field + ": ";
  if (message.compare(0, prefix.size(), prefix) == 0) return message.substr(prefix.size());
  return message;
}

std::string renderValue(const nlohmann::json& value) {
  constexpr size_t kMaxRenderDepth = 64;
  constexpr size_t kMaxRenderChars = 1024;
  try {
    if (nestedDeeperThan(value, kMaxRenderDepth)) return value.is_object() ? "{...}" : "[...]";
    std::string s = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (s.size() > kMaxRenderChars) s = s.substr(0, kMaxRenderChars) + "...";
    return s;
  } catch (...) {
    return "<unprintable>";
  }
}

FieldError fieldRequired(std::string_view field, std::string_view detail) {
  return make(field, "FieldValueRequired", "Required value", detail);
}

FieldError fieldInvalid(std::string_view field, const nlohmann::json& value,
                        std::string_view detail) {
  return make(field, "FieldValueInvalid", "Invalid value: " + renderValue(value), detail);
}

FieldError fieldTypeInvalid(std::string_view field, const nlohmann::json& value,
                            std::string_view detail) {
  return make(field, "FieldValueTypeInvalid", "Invalid value: " + renderValue(value), detail);
}

FieldError fieldNotSupported(std::string_view field, const nlohmann::json& value,
                             const std::vector<std::string>& supported) {
  std::string detail;
  if (!supported.empty()) {
    detail = "supported values: ";
    for (size_t i = 0; i < supported.size(); ++i) {
      if (i > 0) detail += ", ";
      detail += renderValue(nlohmann::json(supported[i]));
    }
  }
  return make(field, "FieldValueNotSupported", "Unsupported value: " + renderValue(value), detail);
}

FieldError fieldDuplicate(std::string_view field, const nlohmann::json& value) {
  return make(field, "FieldValueDuplicate", "Duplicate value: " + renderValue(value), {});
}

FieldError fieldNotFound(std::string_view field, const nlohmann::json& value,
                         std::string_view detail) {
  return make(field, "FieldValueNotFound", "Not found: " + renderValue(value), detail);
}

FieldError fieldForbidden(std::string_view field, std::string_view detail) {
  return make(field, "FieldValueForbidden", "Forbidden", detail);
}

FieldError fieldTooLong(std::string_view field, size_t maxBytes) {
  return make(field, "FieldValueTooLong", "Too long",
              "may not be more than " + std::to_string(maxBytes) + " bytes");
}

std::string joinFieldErrors(const std::vector<FieldError>& errors) {
  if (errors.empty()) return "";
  if (errors.size() == 1) return errors.front().message;
  std::string out = "[";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) out += ", ";
    out += errors[i].message;
  }
  return out + "]";
}

}  // namespace ep::api
