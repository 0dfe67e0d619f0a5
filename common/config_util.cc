#include "common/config_util.h"

#include <regex>

namespace ep {

namespace {

// Parses [<h>h][<m>m][<s>s][<ms>ms] or plain seconds into milliseconds; `examples` goes into the
// error text.
Result<std::chrono::milliseconds> parseDurationImpl(const std::string& key,
                                                    const std::string& value, bool allowMillis,
                                                    const char* examples) {
  static const std::regex kRe(R"(^(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,9})s)?(?:(\d{1,9})ms)?$)");
  auto bad = invalidError(key + ": invalid duration \"" + value + "\" (e.g. " + examples + ")");
  if (value.empty()) return bad;
  if (value.find_first_not_of("0123456789") == std::string::npos) {
    if (value.size() > 9) return bad;
    return std::chrono::milliseconds(std::stoll(value) * 1000);
  }
  std::smatch m;
  if (!std::regex_match(value, m, kRe) || (m[4].matched && !allowMillis)) return bad;
  int64_t ms = 0;
  if (m[1].matched) ms += std::stoll(m[1]) * 3600000;
  if (m[2].matched) ms += std::stoll(m[2]) * 60000;
  if (m[3].matched) ms += std::stoll(m[3]) * 1000;
  if (m[4].matched) ms += std::stoll(m[4]);
  return std::chrono::milliseconds(ms);
}

}  // namespace

Status splitHostPort(const std::string& key, const std::string& value, std::string& host,
                     uint16_t& port) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos) {
    return invalidError(key + ": \"" + value + "\" is not HOST:PORT");
  }
  std::string h = value.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) h = "0.0.0.0";
  std::string p = value.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return invalidError(key + ": invalid port in \"" + value + "\"");
  }
  host = std::move(h);
  port = static_cast<uint16_t>(std::stoi(p));
  return Status::ok();
}

Result<std::vector<std::string>> splitHostPortList(const std::string& key,
                                                   const std::string& value) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = value.find(',', start);
    std::string entry =
        value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t first = entry.find_first_not_of(' ');
    entry = first == std::string::npos
                ? ""
                : entry.substr(first, entry.find_last_not_of(' ') - first + 1);
    if (entry.empty()) return invalidError(key + ": empty address in \"" + value + "\"");
    std::string host;
    uint16_t port = 0;
    if (auto s = splitHostPort(key, entry, host, port); !s.isOk()) return s;
    out.push_back(std::move(entry));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

Result<std::chrono::milliseconds> parseDuration(const std::string& key, const std::string& value) {
  return parseDurationImpl(key, value, /*allowMillis=*/true, "500ms, 10s, 1m30s");
}

Result<std::chrono::seconds> parseDurationSeconds(const std::string& key,
                                                  const std::string& value) {
  auto ms = parseDurationImpl(key, value, /*allowMillis=*/false, "90s, 5m, 1h30m");
  if (!ms.isOk()) return ms.status();
  return std::chrono::duration_cast<std::chrono::seconds>(*ms);
}

}  // namespace ep
