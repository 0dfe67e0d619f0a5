#pragma once

// YAML <-> JSON conversion for manifests and CLI output.
//
// Thread-safety: every function here is a pure function of its arguments and may be called from
// any thread concurrently.

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ep::yaml {

// Parses a stream of YAML documents (JSON is accepted too, being a subset of YAML) into JSON
// values, the way Kubernetes tools read manifests:
//  - Scalars follow the YAML 1.2 core schema: true/True/TRUE/false/..., null/Null/NULL/~ and the
//    empty value, decimal/0x/0o integers, floats including .inf/-.inf/.nan. Quoted and block
//    scalars are always strings, as is every other plain scalar. An explicit !!str tag forces a
//    string.
//  - Empty documents (and documents that are just null) are skipped.
//  - A document whose kind is "List" (or ends in "List") and that has an "items" array is
//    replaced by its items, in order.
//  - Mapping keys must be scalars (non-string keys become their text); duplicate keys are an
//    error; anchors, aliases and "<<" merge keys are supported.
// On failure the Status (Code::kInvalid) names the document ("document 2": 0-based index counted
// the same way as the positions in the returned vector) and the 1-based line and column, e.g.
// `document 1: line 7, column 3: duplicate key "name"`.
//
// With Scalars::kText every scalar except a plain null (`~`, `null`, empty) stays a string of
// exactly the text written (`0x1f`, `007`, `1.10`, `true`), as configuration files need: their
// readers decide what a value means, and a name or password must not be reinterpreted.
enum class Scalars { kCoreSchema, kText };
Result<std::vector<nlohmann::json>> parseYamlDocuments(std::string_view text,
                                                       Scalars scalars = Scalars::kCoreSchema);

// Parses text that must hold exactly one document (e.g. a config file). An empty text yields a
// null value. More than one document is an error.
Result<nlohmann::json> parseYamlDocument(std::string_view text,
                                         Scalars scalars = Scalars::kCoreSchema);

// Renders a JSON value as block-style YAML the way kubectl prints objects: keys in the order the
// JSON value iterates them, two-space indentation with sequences not indented under their key,
// `{}` and `[]` for empty containers, strings quoted only when a plain scalar would read back as
// something else (numbers, booleans, null, leading indicators, ": ", " #", ...), multi-line
// strings as `|` block literals. Non-finite doubles print as .inf/-.inf/.nan. The result ends
// with a newline and parses back (parseYamlDocuments) to an equal value.
std::string toYaml(const nlohmann::json& value);

}  // namespace ep::yaml
