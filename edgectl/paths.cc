#include "edgectl/paths.h"

#include <cctype>

namespace ep::edgectl {

std::string percentEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string resourcePath(const api::KindInfo& kind, std::string_view ns, std::string_view name) {
  std::string path =
      kind.group.empty() ? "/api/" + kind.version : "/apis/" + kind.group + "/" + kind.version;
  if (kind.namespaced && !ns.empty()) path += "/namespaces/" + percentEncode(ns);
  path += "/" + kind.plural;
  if (!name.empty()) path += "/" + percentEncode(name);
  return path;
}

std::string buildQuery(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    out += out.empty() ? '?' : '&';
    out += percentEncode(k) + "=" + percentEncode(v);
  }
  return out;
}

std::string kindDisplayName(const api::KindInfo& kind) {
  std::string name = kind.singular;
  if (!kind.group.empty()) name += "." + kind.group;
  return name;
}

std::string effectiveNamespace(const api::KindInfo& kind, std::string_view ns) {
  return kind.namespaced ? std::string(ns) : std::string();
}

}  // namespace ep::edgectl
