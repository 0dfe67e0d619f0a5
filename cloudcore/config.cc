#include "cloudcore/config.h"

#include <yaml-cpp/yaml.h>

#include <regex>

namespace ep::cloudcore {

Status splitHostPort(const std::string& key, const std::string& value, std::string& host,
                     uint16_t& port) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos) {
    return invalidError(key + ": \"" + value + "\" is not HOST:PORT");
  }
  host = value.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  std::string p = value.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return invalidError(key + ": invalid port in \"" + value + "\"");
  }
  port = static_cast<uint16_t>(std::stoi(p));
  return Status::ok();
}

Result<std::chrono::seconds> parseDuration(const std::string& key, const std::string& value) {
  static const std::regex kRe(R"(^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$)");
  auto bad = invalidError(key + ": invalid duration \"" + value + "\" (e.g. 90s, 5m, 1h30m)");
  if (value.empty()) return bad;
  if (value.find_first_not_of("0123456789") == std::string::npos) {
    if (value.size() > 9) return bad;
    return std::chrono::seconds(std::stoll(value));
  }
  std::smatch m;
  if (!std::regex_match(value, m, kRe)) return bad;
  int64_t secs = 0;
  if (m[1].matched) secs += std::stoll(m[1]) * 3600;
  if (m[2].matched) secs += std::stoll(m[2]) * 60;
  if (m[3].matched) secs += std::stoll(m[3]);
  return std::chrono::seconds(secs);
}

Status loadConfigFile(const std::string& path, Config& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return invalidError("config: cannot read " + path);
  } catch (const YAML::Exception& e) {
    return invalidError("config: " + path + ": " + e.what());
  }
  if (root.IsNull()) return Status::ok();
  if (!root.IsMap()) return invalidError("config: " + path + ": the top level must be a mapping");
  for (const auto& kv : root) {
    std::string key;
    try {
      key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (!v.IsScalar()) return invalidError(key + ": must be a scalar value");
      std::string s = v.as<std::string>();
      if (key == "apiListen") {
        config.apiListen = s;
      } else if (key == "dataDir") {
        config.dataDir = s;
      } else if (key == "logLevel") {
        config.logLevel = s;
      } else if (key == "tunnelListen") {
        config.tunnelListen = s;
      } else if (key == "nodeRegistration") {
        config.nodeRegistration = s;
      } else if (key == "nodeGracePeriod") {
        auto d = parseDuration(key, s);
        if (!d.isOk()) return d.status();
        config.nodeGracePeriod = *d;
      } else if (key == "historyWindow" || key == "compactionInterval") {
        auto d = parseDuration(key, s);
        if (!d.isOk()) return d.status();
        (key == "historyWindow" ? config.historyWindow : config.compactionInterval) = *d;
      } else if (key == "maxBodyBytes") {
        config.maxBodyBytes = v.as<uint64_t>();
      } else if (key == "workerThreads") {
        config.workerThreads = v.as<int>();
      } else {
        return invalidError(key + ": unknown configuration key (in " + path + ")");
      }
    } catch (const YAML::Exception&) {
      return invalidError(key + ": wrong type (in " + path + ")");
    }
  }
  return Status::ok();
}

Status validateConfig(const Config& config) {
  std::string host;
  uint16_t port;
  if (auto s = splitHostPort("apiListen", config.apiListen, host, port); !s.isOk()) return s;
  if (auto s = splitHostPort("tunnelListen", config.tunnelListen, host, port); !s.isOk()) {
    return s;
  }
  if (config.nodeRegistration != "auto" && config.nodeRegistration != "manual") {
    return invalidError("nodeRegistration: must be auto or manual, not \"" +
                        config.nodeRegistration + "\"");
  }
  if (config.nodeGracePeriod.count() < 1) {
    return invalidError("nodeGracePeriod: must be at least 1s");
  }
  if (config.dataDir.empty()) return invalidError("dataDir: must not be empty");
  if (config.historyWindow.count() < 1) return invalidError("historyWindow: must be at least 1s");
  if (config.maxBodyBytes < 1024) return invalidError("maxBodyBytes: must be at least 1024");
  if (config.workerThreads < 1 || config.workerThreads > 256) {
    return invalidError("workerThreads: must be between 1 and 256");
  }
  static const std::vector<std::string> kLevels = {"trace", "debug", "info",
                                                   "warn",  "error", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), config.logLevel) == kLevels.end()) {
    return invalidError("logLevel: unknown level \"" + config.logLevel + "\"");
  }
  return Status::ok();
}

}  // namespace ep::cloudcore
