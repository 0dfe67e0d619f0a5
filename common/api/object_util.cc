#include "common/api/object_util.h"

#include <charconv>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace ep::api {
namespace {

std::map<std::string, std::string> stringMapAt(const nlohmann::json& obj, std::string_view path) {
  std::map<std::string, std::string> out;
  const nlohmann::json* m = lookupPath(obj, path);
  if (m == nullptr || !m->is_object()) return out;
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (it.value().is_string()) out.emplace(it.key(), it.value().get_ref<const std::string&>());
  }
  return out;
}

}  // namespace

const nlohmann::json* lookupPath(const nlohmann::json& root, std::string_view dotted) {
  const nlohmann::json* cur = &root;
  size_t i = 0;
  while (i < dotted.size()) {
    if (dotted[i] == '.') {
      ++i;
      continue;
    }
    if (dotted[i] == '[') {
      size_t close = dotted.find(']', i);
      if (close == std::string_view::npos || !cur->is_array()) return nullptr;
      std::string_view digits = dotted.substr(i + 1, close - i - 1);
      size_t index = 0;
      auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
      if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() ||
          index >= cur->size()) {
        return nullptr;
      }
      cur = &(*cur)[index];
      i = close + 1;
      continue;
    }
    size_t end = dotted.find_first_of(".[", i);
    if (end == std::string_view::npos) end = dotted.size();
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(std::string(dotted.substr(i, end - i)));
    if (it == cur->end()) return nullptr;
    cur = &*it;
    i = end;
  }
  return cur;
}

std::string stringAt(const nlohmann::json& root, std::string_view dotted,
                     std::string_view fallback) {
  const nlohmann::json* v = lookupPath(root, dotted);
  if (v == nullptr || !v->is_string()) return std::string(fallback);
  return v->get_ref<const std::string&>();
}

int64_t intAt(const nlohmann::json& root, std::string_view dotted, int64_t fallback) {
  const nlohmann::json* v = lookupPath(root, dotted);
  if (v == nullptr) return fallback;
  if (v->is_number_unsigned()) {
    auto u = v->get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? fallback : static_cast<int64_t>(u);
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  return fallback;
}

bool nestedDeeperThan(const nlohmann::json& v, size_t maxDepth) {
  std::vector<std::pair<const nlohmann::json*, size_t>> stack{{&v, 0}};
  while (!stack.empty()) {
    auto [cur, depth] = stack.back();
    stack.pop_back();
    if (!cur->is_structured()) continue;
    if (depth + 1 > maxDepth) return true;
    for (const auto& child : *cur) {
      if (child.is_structured()) stack.emplace_back(&child, depth + 1);
    }
  }
  return false;
}

std::map<std::string, std::string> labelsOf(const nlohmann::json& obj) {
  return stringMapAt(obj, "metadata.labels");
}

std::map<std::string, std::string> annotationsOf(const nlohmann::json& obj) {
  return stringMapAt(obj, "metadata.annotations");
}

}  // namespace ep::api
