#include "cloudcore/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

namespace ep::cloudcore {

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
      if (key == "tlsSANs") {
        if (!v.IsSequence()) return invalidError(key + ": must be a list of names or addresses");
        for (const auto& item : v) config.tlsSans.push_back(item.as<std::string>());
        continue;
      }
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
      } else if (key == "routerListen") {
        config.routerListen = s;
      } else if (key == "nodeRegistration") {
        config.nodeRegistration = s;
      } else if (key == "nodeGracePeriod") {
        auto d = parseDurationSeconds(key, s);
        if (!d.isOk()) return d.status();
        config.nodeGracePeriod = *d;
      } else if (key == "nodeCertificateLifetime") {
        auto d = parseDurationSeconds(key, s);
        if (!d.isOk()) return d.status();
        config.nodeCertificateLifetime = *d;
      } else if (key == "podEvictionTimeout" || key == "eventTTL") {
        auto d = parseDurationSeconds(key, s);
        if (!d.isOk()) return d.status();
        (key == "eventTTL" ? config.eventTTL : config.podEvictionTimeout) = *d;
      } else if (key == "historyWindow" || key == "compactionInterval") {
        auto d = parseDurationSeconds(key, s);
        if (!d.isOk()) return d.status();
        (key == "historyWindow" ? config.historyWindow : config.compactionInterval) = *d;
      } else if (key == "modelBlobDir") {
        config.modelBlobDir = s;
      } else if (key == "modelMaxBytes") {
        config.modelMaxBytes = v.as<uint64_t>();
      } else if (key == "modelBlobRetention") {
        auto d = parseDurationSeconds(key, s);
        if (!d.isOk()) return d.status();
        config.modelBlobRetention = *d;
      } else if (key == "modelBlobGcInterval") {
        auto d = parseDurationSeconds(key, s);
        if (!d.isOk()) return d.status();
        config.modelBlobGcInterval = *d;
      } else if (key == "deviceDataRetention") {
        auto d = parseDurationSeconds(key, s);
        if (!d.isOk()) return d.status();
        config.deviceDataRetention = *d;
      } else if (key == "deviceDataMaxSamples") {
        config.deviceDataMaxSamples = v.as<uint64_t>();
      } else if (key == "maxBodyBytes") {
        config.maxBodyBytes = v.as<uint64_t>();
      } else if (key == "workerThreads") {
        config.workerThreads = v.as<int>();
      } else if (key == "tokenAuthFile") {
        config.tokenAuthFile = s;
      } else if (key == "auditLogPath") {
        config.auditLogPath = s;
      } else if (key == "auditLogMaxSizeMB") {
        config.auditLogMaxSizeMB = v.as<uint64_t>();
      } else if (key == "auditLogMaxBackup") {
        config.auditLogMaxBackup = v.as<int>();
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
  if (!config.routerListen.empty()) {
    if (auto s = splitHostPort("routerListen", config.routerListen, host, port); !s.isOk()) {
      return s;
    }
  }
  if (config.nodeRegistration != "auto" && config.nodeRegistration != "manual") {
    return invalidError("nodeRegistration: must be auto or manual, not \"" +
                        config.nodeRegistration + "\"");
  }
  if (config.nodeGracePeriod.count() < 1) {
    return invalidError("nodeGracePeriod: must be at least 1s");
  }
  if (config.eventTTL.count() < 0) return invalidError("eventTTL: must not be negative");
  if (config.podEvictionTimeout.count() < 0) {
    return invalidError("podEvictionTimeout: must not be negative");
  }
  if (config.dataDir.empty()) return invalidError("dataDir: must not be empty");
  if (config.historyWindow.count() < 1) return invalidError("historyWindow: must be at least 1s");
  if (config.maxBodyBytes < 1024) return invalidError("maxBodyBytes: must be at least 1024");
  if (config.workerThreads < 1 || config.workerThreads > 256) {
    return invalidError("workerThreads: must be between 1 and 256");
  }
  if (config.nodeCertificateLifetime.count() < 60) {
    return invalidError("nodeCertificateLifetime: must be at least 1m");
  }
  if (config.deviceDataRetention.count() < 60) {
    return invalidError("deviceDataRetention: must be at least 1m");
  }
  if (config.modelMaxBytes < 1) return invalidError("modelMaxBytes: must be at least 1");
  if (config.modelBlobRetention.count() < 0) {
    return invalidError("modelBlobRetention: must not be negative");
  }
  if (config.modelBlobGcInterval.count() <= 0) {
    return invalidError("modelBlobGcInterval: must be positive");
  }
  if (config.deviceDataMaxSamples < 1 || config.deviceDataMaxSamples > 100'000'000) {
    return invalidError("deviceDataMaxSamples: must be between 1 and 100000000");
  }
  if (config.auditLogMaxSizeMB < 1) return invalidError("auditLogMaxSizeMB: must be at least 1");
  if (config.auditLogMaxBackup < 0) return invalidError("auditLogMaxBackup: must not be negative");
  for (const auto& san : config.tlsSans) {
    if (san.empty() || san.find_first_of(" /,") != std::string::npos) {
      return invalidError("tlsSANs: \"" + san + "\" is not a host name or IP address");
    }
  }
  static const std::vector<std::string> kLevels = {"trace", "debug", "info",
                                                   "warn",  "error", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), config.logLevel) == kLevels.end()) {
    return invalidError("logLevel: unknown level \"" + config.logLevel + "\"");
  }
  return Status::ok();
}

}  // namespace ep::cloudcore
