#include "common/api/json_limits.h"

namespace ep::api {

bool nestsDeeperThan(const nlohmann::json& value, size_t maxDepth) {
  if (!value.is_structured()) return false;
  if (maxDepth == 0) return true;
  for (const auto& child : value) {
    if (nestsDeeperThan(child, maxDepth - 1)) return true;
  }
  return false;
}

bool jsonNestsDeeperThan(std::string_view text, size_t maxDepth) {
  size_t depth = 0;
  bool inString = false;
  bool escaped = false;
  for (char c : text) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > maxDepth) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

nlohmann::json parseJsonBounded(std::string_view text, size_t maxDepth, bool* tooDeep) {
  const bool deep = jsonNestsDeeperThan(text, maxDepth);
  if (tooDeep != nullptr) *tooDeep = deep;
  if (deep) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, false);
}

}  // namespace ep::api
