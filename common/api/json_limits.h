#pragma once

// Bounded JSON parsing for input from outside (request bodies, edge reports, MQTT payloads):
// nesting is checked by a linear scan of the text before anything is built, so hostile nesting
// ("[[[[..." three megabytes deep) is refused at the cost of reading it, not of a parsed tree
// a hundred times its size. Pure; thread-safe.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

namespace ep::api {

// True when the JSON text nests arrays and objects deeper than `maxDepth` (brackets inside
// strings do not count). Malformed text is scanned the same way; the parser rejects it later.
bool jsonNestsDeeperThan(std::string_view text, size_t maxDepth);

// True when an already parsed value (e.g. from YAML) nests deeper than `maxDepth`; recursion
// stops there, so the check itself stays shallow.
bool nestsDeeperThan(const nlohmann::json& value, size_t maxDepth);

// Parses `text`; a discarded value when it is malformed or nests deeper than `maxDepth` (then
// `*tooDeep` is set, when given, and nothing was parsed).
nlohmann::json parseJsonBounded(std::string_view text, size_t maxDepth, bool* tooDeep = nullptr);

}  // namespace ep::api
