#include "cloudcore/store/store_keys.h"

namespace ep::store {

std::string keyString(const std::string& resource, const std::string& ns, const std::string& name) {
  return ns.empty() ? resource + " \"" + name + "\"" : resource + " \"" + ns + "/" + name + "\"";
}

std::string encodeContinue(int64_t rev, const std::string& ns, const std::string& name) {
  std::string raw = std::to_string(rev) + "/" + ns + "/" + name;
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool decodeContinue(const std::string& token, int64_t& rev, std::string& ns, std::string& name) {
  if (token.size() % 2 != 0) return false;
  std::string raw;
  for (size_t i = 0; i < token.size(); i += 2) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = hex(token[i]), lo = hex(token[i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw.push_back(static_cast<char>(hi * 16 + lo));
  }
  auto a = raw.find('/');
  if (a == std::string::npos) return false;
  auto b = raw.find('/', a + 1);
  if (b == std::string::npos) return false;
  try {
    rev = std::stoll(raw.substr(0, a));
  } catch (...) {
    return false;
  }
  ns = raw.substr(a + 1, b - a - 1);
  name = raw.substr(b + 1);
  return true;
}

Status continueExpired() {
  return Status(Code::kExpired,
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter.");
}

}  // namespace ep::store
