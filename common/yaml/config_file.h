#pragma once

// Configuration files (cloudcore's and edgecore's --config, edgectl's config): one YAML mapping,
// read through parseYamlDocument with Scalars::kText (syntax errors and duplicate keys name the
// line; every value keeps the text written, so `nodeName: 0x1f` stays "0x1f"), and typed
// readers for its values. Every error is kInvalid and starts with the key's path ("mqtt.server:
// must be a string") or, for the document itself, with the file. Pure functions: thread-safe.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ep::yaml {

// The mapping in `text`; an empty document is an empty mapping. `source` (the file) prefixes
// syntax errors and "the top level must be a mapping".
Result<nlohmann::json> parseConfigText(std::string_view text, const std::string& source);
// The same for a file, its errors prefixed "config: "; "config: cannot read PATH" when it cannot
// be read.
Result<nlohmann::json> readConfigFile(const std::string& path);

// "KEY: unknown configuration key (in SOURCE)".
Status unknownConfigKey(const std::string& key, const std::string& source);

// A scalar as the text written ("0x1f", "007", "true"). "KEY: must be a string" for mappings,
// lists and null.
Result<std::string> configString(const nlohmann::json& value, const std::string& key);
// An integer above 0 (or a string of digits). "KEY: must be a positive integer".
Result<uint64_t> configPositive(const nlohmann::json& value, const std::string& key);
// An integer of 0 or more (or a string of digits). "KEY: must be a non-negative integer".
Result<uint64_t> configCount(const nlohmann::json& value, const std::string& key);
// A list of scalars, each as configString reads it. "KEY: must be a list of strings".
Result<std::vector<std::string>> configStringList(const nlohmann::json& value,
                                                  const std::string& key);
// A nested mapping: the value itself, or nullptr when it is null (an empty section, "mqtt:").
// "KEY: must be a mapping".
Result<const nlohmann::json*> configMapping(const nlohmann::json& value, const std::string& key);

}  // namespace ep::yaml
