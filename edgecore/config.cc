#include "edgecore/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/api/label_selector.h"
#include "common/api/names.h"
#include "common/api/quantity.h"

namespace ep::edgecore {

namespace {

Result<std::string> scalar(const YAML::Node& v, const std::string& key) {
  if (!v.IsScalar()) return invalidError(key + ": must be a string");
  return v.as<std::string>();
}

Result<uint64_t> positive(const YAML::Node& v, const std::string& key) {
  auto bad = invalidError(key + ": must be a positive integer");
  if (!v.IsScalar()) return bad;
  std::string s = v.as<std::string>();
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
    return bad;
  }
  uint64_t n = std::stoull(s);
  if (n == 0) return bad;
  return n;
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  std::string h = buf;
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  return h;
}

}  // namespace

Status parseConfigYaml(const std::string& text, const std::string& source, Config& config) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return invalidError(source + ": " + e.what());
  }
  if (root.IsNull()) return Status::ok();
  if (!root.IsMap()) return invalidError(source + ": the top level must be a mapping");
  for (const auto& kv : root) {
    std::string key;
    try {
      key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "nodeName" || key == "cloud" || key == "dataDir" || key == "localApiListen" ||
          key == "logLevel" || key == "heartbeatInterval" || key == "runtimeEndpoint" ||
          key == "podSyncPeriod" || key == "dmiSocket" || key == "modelBandwidthLimit" ||
          key == "modelRegistryCertsDir") {
        auto s = scalar(v, key);
        if (!s.isOk()) return s.status();
        if (key == "nodeName") config.nodeName = *s;
        if (key == "cloud") config.cloud = *s;
        if (key == "dataDir") config.dataDir = *s;
        if (key == "localApiListen") config.localApiListen = *s;
        if (key == "logLevel") config.logLevel = *s;
        if (key == "runtimeEndpoint") config.runtimeEndpoint = *s;
        if (key == "dmiSocket") config.dmiSocket = *s;
        if (key == "modelRegistryCertsDir") config.modelRegistryCertsDir = *s;
        if (key == "modelBandwidthLimit") {
          auto q = api::parseQuantityBytes(*s);
          if (!q.isOk() || *q < 0) {
            return invalidError("modelBandwidthLimit: \"" + *s +
                                "\" is not a byte quantity such as 10Mi (bytes per second)");
          }
          config.modelBandwidthLimit = static_cast<uint64_t>(*q);
        }
        if (key == "podSyncPeriod") {
          auto d = parseDuration(key, *s);
          if (!d.isOk()) return d.status();
          config.podSyncPeriod = *d;
        }
        if (key == "heartbeatInterval") {
          auto d = parseDuration(key, *s);
          if (!d.isOk()) return d.status();
          config.heartbeatInterval = *d;
        }
      } else if (key == "labels") {
        if (v.IsNull()) continue;
        if (!v.IsMap()) return invalidError("labels: must be a mapping of label keys to values");
        for (const auto& l : v) {
          std::string lk = l.first.as<std::string>();
          auto lv = scalar(l.second, "labels." + lk);
          if (!lv.isOk()) return lv.status();
          if (auto s = api::validateLabelKey(lk); !s.isOk()) {
            return invalidError("labels." + lk + ": " + s.message());
          }
          if (auto s = api::validateLabelValue(*lv); !s.isOk()) {
            return invalidError("labels." + lk + ": " + s.message());
          }
          config.labels[lk] = *lv;
        }
      } else if (key == "taints") {
        if (v.IsNull()) continue;
        if (!v.IsSequence()) return invalidError("taints: must be a list of {key, value, effect}");
        for (size_t i = 0; i < v.size(); ++i) {
          const std::string where = "taints[" + std::to_string(i) + "]";
          const YAML::Node& t = v[i];
          if (!t.IsMap()) return invalidError(where + ": must be a mapping {key, value, effect}");
          Taint taint;
          for (const auto& f : t) {
            std::string fk = f.first.as<std::string>();
            auto fv = scalar(f.second, where + "." + fk);
            if (!fv.isOk()) return fv.status();
            if (fk == "key") {
              taint.key = *fv;
            } else if (fk == "value") {
              taint.value = *fv;
            } else if (fk == "effect") {
              taint.effect = *fv;
            } else {
              return invalidError(where + "." + fk + ": unknown configuration key (in " + source +
                                  ")");
            }
          }
          if (taint.key.empty()) return invalidError(where + ".key: required");
          if (auto s = api::validateLabelKey(taint.key); !s.isOk()) {
            return invalidError(where + ".key: " + s.message());
          }
          if (taint.effect != "NoSchedule" && taint.effect != "PreferNoSchedule" &&
              taint.effect != "NoExecute") {
            return invalidError(where +
                                ".effect: must be NoSchedule, PreferNoSchedule or "
                                "NoExecute, got \"" +
                                taint.effect + "\"");
          }
          config.taints.push_back(std::move(taint));
        }
      } else if (key == "containerLogMaxSize") {
        auto text = scalar(v, key);
        if (!text.isOk()) return text.status();
        auto bytes = api::parseQuantityBytes(*text);
        if (!bytes.isOk() || *bytes < 1024) {
          return invalidError(
              "containerLogMaxSize: must be a size of at least 1Ki such as 10Mi, got \"" + *text +
              "\"");
        }
        config.containerLogMaxSize = static_cast<uint64_t>(*bytes);
      } else if (key == "containerLogMaxFiles") {
        auto n = positive(v, key);
        if (!n.isOk()) return n.status();
        if (*n < 2 || *n > 100)
          return invalidError("containerLogMaxFiles: must be between 2 and 100");
        config.containerLogMaxFiles = static_cast<int>(*n);
      } else if (key == "podWorkers") {
        auto n = positive(v, key);
        if (!n.isOk()) return n.status();
        if (*n > 64) return invalidError("podWorkers: must be between 1 and 64");
        config.podWorkers = static_cast<size_t>(*n);
      } else if (key == "mqtt") {
        if (v.IsNull()) continue;
        if (!v.IsMap()) return invalidError("mqtt: must be a mapping");
        for (const auto& o : v) {
          std::string mk = o.first.as<std::string>();
          auto mv = scalar(o.second, "mqtt." + mk);
          if (!mv.isOk()) return mv.status();
          if (mk == "server") {
            config.mqttServer = *mv;
          } else if (mk == "clientId") {
            config.mqttClientId = *mv;
          } else if (mk == "username") {
            config.mqttUsername = *mv;
          } else if (mk == "password") {
            config.mqttPassword = *mv;
          } else if (mk == "caFile") {
            config.mqttCaFile = *mv;
          } else if (mk == "certFile") {
            config.mqttCertFile = *mv;
          } else if (mk == "keyFile") {
            config.mqttKeyFile = *mv;
          } else if (mk == "serverName") {
            config.mqttServerName = *mv;
          } else if (mk == "insecureSkipVerify") {
            if (*mv != "true" && *mv != "false") {
              return invalidError("mqtt.insecureSkipVerify: must be true or false, got \"" + *mv +
                                  "\"");
            }
            config.mqttInsecureSkipVerify = *mv == "true";
          } else {
            return invalidError("mqtt." + mk + ": unknown configuration key (in " + source + ")");
          }
        }
      } else if (key == "outbox") {
        if (v.IsNull()) continue;
        if (!v.IsMap()) return invalidError("outbox: must be a mapping");
        for (const auto& o : v) {
          std::string ok = o.first.as<std::string>();
          if (ok == "maxEntries" || ok == "maxBytes") {
            auto n = positive(o.second, "outbox." + ok);
            if (!n.isOk()) return n.status();
            (ok == "maxEntries" ? config.outboxMaxEntries : config.outboxMaxBytes) = *n;
          } else {
            return invalidError("outbox." + ok + ": unknown configuration key (in " + source + ")");
          }
        }
      } else {
        return invalidError(key + ": unknown configuration key (in " + source + ")");
      }
    } catch (const YAML::Exception&) {
      return invalidError(key + ": wrong type (in " + source + ")");
    }
  }
  return Status::ok();
}

Status loadConfigFile(const std::string& path, Config& config) {
  std::ifstream in(path);
  if (!in) return invalidError("config: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parseConfigYaml(ss.str(), path, config);
}

Status applyOverrides(const FlagOverrides& flags, Config& config) {
  if (flags.nodeName) config.nodeName = *flags.nodeName;
  if (flags.cloud) config.cloud = *flags.cloud;
  if (flags.dataDir) config.dataDir = *flags.dataDir;
  if (flags.localApiListen) config.localApiListen = *flags.localApiListen;
  if (flags.logLevel) config.logLevel = *flags.logLevel;
  if (flags.runtimeEndpoint) config.runtimeEndpoint = *flags.runtimeEndpoint;
  if (flags.mqttServer) config.mqttServer = *flags.mqttServer;
  if (flags.dmiSocket) config.dmiSocket = *flags.dmiSocket;
  if (flags.modelRegistryCertsDir) config.modelRegistryCertsDir = *flags.modelRegistryCertsDir;
  if (flags.modelBandwidthLimit) {
    auto q = api::parseQuantityBytes(*flags.modelBandwidthLimit);
    if (!q.isOk() || *q < 0) {
      return invalidError("--model-bandwidth-limit: \"" + *flags.modelBandwidthLimit +
                          "\" is not a byte quantity such as 10Mi (bytes per second)");
    }
    config.modelBandwidthLimit = static_cast<uint64_t>(*q);
  }
  if (flags.heartbeatInterval) {
    auto d = parseDuration("--heartbeat-interval", *flags.heartbeatInterval);
    if (!d.isOk()) return d.status();
    config.heartbeatInterval = *d;
  }
  return Status::ok();
}

Status finalizeConfig(Config& config) {
  if (config.nodeName.empty()) config.nodeName = hostName();
  if (config.nodeName.empty()) return invalidError("nodeName: empty and no host name available");
  if (auto errs = api::checkDns1123Subdomain(config.nodeName); !errs.empty()) {
    return invalidError("nodeName: \"" + config.nodeName + "\": " + errs.front());
  }
  std::string host;
  uint16_t port;
  if (auto s = splitHostPort("cloud", config.cloud, host, port); !s.isOk()) return s;
  if (auto s = splitHostPort("localApiListen", config.localApiListen, host, port); !s.isOk()) {
    return s;
  }
  if (config.dataDir.empty()) return invalidError("dataDir: must not be empty");
  // Volume paths under the data dir are handed to the container runtime, which resolves
  // relative paths against its own directories: keep it absolute.
  {
    std::error_code ec;
    auto abs = std::filesystem::absolute(config.dataDir, ec);
    if (ec) return invalidError("dataDir: cannot make \"" + config.dataDir + "\" absolute");
    config.dataDir = abs.lexically_normal().string();
    if (config.dataDir.size() > 1 && config.dataDir.back() == '/') config.dataDir.pop_back();
  }
  if (config.heartbeatInterval < std::chrono::seconds(1)) {
    return invalidError("heartbeatInterval: must be at least 1s");
  }
  if (!config.runtimeEndpoint.empty() && config.runtimeEndpoint.rfind("unix://", 0) != 0) {
    return invalidError(
        "runtimeEndpoint: must be a unix:// socket address (or empty to run no "
        "pods), got \"" +
        config.runtimeEndpoint + "\"");
  }
  if (!config.mqttServer.empty()) {
    const bool tls = config.mqttServer.rfind("ssl://", 0) == 0 ||
                     config.mqttServer.rfind("tls://", 0) == 0 ||
                     config.mqttServer.rfind("mqtts://", 0) == 0;
    if (config.mqttServer.rfind("tcp://", 0) != 0 && !tls) {
      return invalidError(
          "mqtt.server: must be tcp://HOST:PORT or ssl://HOST:PORT (or empty to turn MQTT off), "
          "got \"" +
          config.mqttServer + "\"");
    }
    const std::string hostPort = config.mqttServer.substr(config.mqttServer.find("://") + 3);
    if (auto s = splitHostPort("mqtt.server", hostPort, host, port); !s.isOk()) return s;
    if (tls && config.mqttCaFile.empty() && !config.mqttInsecureSkipVerify) {
      return invalidError(
          "mqtt.caFile: required for an ssl:// server (or mqtt.insecureSkipVerify)");
    }
    if (config.mqttCertFile.empty() != config.mqttKeyFile.empty()) {
      return invalidError(config.mqttCertFile.empty()
                              ? "mqtt.certFile: required with mqtt.keyFile"
                              : "mqtt.keyFile: required with mqtt.certFile");
    }
    if (!tls && (!config.mqttCaFile.empty() || !config.mqttCertFile.empty())) {
      return invalidError("mqtt.caFile, mqtt.certFile: TLS options need an ssl:// mqtt.server");
    }
    if (config.mqttClientId.empty()) config.mqttClientId = "edgecore-" + config.nodeName;
    if (config.mqttClientId.size() > 256)
      return invalidError("mqtt.clientId: longer than 256 bytes");
  }
  if (!config.dmiSocket.empty() && (config.dmiSocket[0] != '/' || config.dmiSocket.size() > 100)) {
    return invalidError(
        "dmiSocket: must be an absolute path of at most 100 bytes (or empty to "
        "turn DMI off), got \"" +
        config.dmiSocket + "\"");
  }
  if (config.podSyncPeriod < std::chrono::milliseconds(100) ||
      config.podSyncPeriod > std::chrono::minutes(5)) {
    return invalidError("podSyncPeriod: must be between 100ms and 5m");
  }
  static const std::vector<std::string> kLevels = {"trace", "debug", "info",
                                                   "warn",  "error", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), config.logLevel) == kLevels.end()) {
    return invalidError("logLevel: unknown level \"" + config.logLevel + "\"");
  }
  return Status::ok();
}

}  // namespace ep::edgecore
