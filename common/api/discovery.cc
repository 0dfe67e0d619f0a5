#include "common/api/discovery.h"

#include <nlohmann/json.hpp>

#include "common/api/kinds.h"

namespace ep::api {

using Json = nlohmann::json;

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

Json apiGroupJson(const std::string& group) {
  std::string version;
  for (const auto& k : allKinds()) {
    if (k.group == group) {
      version = k.version;
      break;
    }
  }
  return apiGroupJson(group, version);
}

Json apiGroupJson(const std::string& group, const std::string& version) {
  Json gv = {{"groupVersion", group + "/" + version}, {"version", version}};
  return {{"name", group}, {"versions", Json::array({gv})}, {"preferredVersion", gv}};
}

}  // namespace ep::api
