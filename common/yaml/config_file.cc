#include "common/yaml/config_file.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common/yaml/yaml.h"

namespace ep::yaml {

using nlohmann::json;

Result<json> parseConfigText(std::string_view text, const std::string& source) {
  auto doc = parseYamlDocument(text, Scalars::kText);
  if (!doc.isOk()) return invalidError(source + ": " + doc.status().message());
  if (doc->is_null()) return json::object();
  if (!doc->is_object()) return invalidError(source + ": the top level must be a mapping");
  return std::move(doc.value());
}

Result<json> readConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalidError("config: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return invalidError("config: cannot read " + path);
  auto doc = parseConfigText(ss.str(), path);
  if (!doc.isOk()) return invalidError("config: " + doc.status().message());
  return doc;
}

Status unknownConfigKey(const std::string& key, const std::string& source) {
  return invalidError(key + ": unknown configuration key (in " + source + ")");
}

Result<std::string> configString(const json& value, const std::string& key) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  return invalidError(key + ": must be a string");
}

namespace {

// Digits only, at most 18 of them (no overflow): nullopt otherwise.
std::optional<uint64_t> unsignedOf(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  if (!value.is_string()) return std::nullopt;
  const auto& s = value.get_ref<const std::string&>();
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoull(s);
}

}  // namespace

Result<uint64_t> configPositive(const json& value, const std::string& key) {
  auto n = unsignedOf(value);
  if (!n || *n == 0) return invalidError(key + ": must be a positive integer");
  return *n;
}

Result<uint64_t> configCount(const json& value, const std::string& key) {
  auto n = unsignedOf(value);
  if (!n) return invalidError(key + ": must be a non-negative integer");
  return *n;
}

Result<std::vector<std::string>> configStringList(const json& value, const std::string& key) {
  if (!value.is_array()) return invalidError(key + ": must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : value) {
    auto s = configString(item, key);
    if (!s.isOk()) return invalidError(key + ": must be a list of strings");
    out.push_back(std::move(s.value()));
  }
  return out;
}

Result<const json*> configMapping(const json& value, const std::string& key) {
  if (value.is_null()) return static_cast<const json*>(nullptr);
  if (!value.is_object()) return invalidError(key + ": must be a mapping");
  return &value;
}

}  // namespace ep::yaml
