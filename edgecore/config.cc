#include "edgecore/config.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/api/label_selector.h"
#include "common/api/names.h"
#include "common/api/quantity.h"
#include "common/yaml/config_file.h"

namespace ep::edgecore {

using Json = nlohmann::json;

namespace {

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  std::string h = buf;
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  return h;
}

}  // namespace

namespace {

Status parseLabels(const Json& v, Config& config) {
  auto labels = yaml::configMapping(v, "labels");
  if (!labels.isOk()) return invalidError("labels: must be a mapping of label keys to values");
  if (*labels == nullptr) return Status::ok();
  for (auto l = (*labels)->begin(); l != (*labels)->end(); ++l) {
    const std::string where = "labels." + l.key();
    auto value = yaml::configString(l.value(), where);
    if (!value.isOk()) return value.status();
    if (auto s = api::validateLabelKey(l.key()); !s.isOk()) {
      return invalidError(where + ": " + s.message());
    }
    if (auto s = api::validateLabelValue(*value); !s.isOk()) {
      return invalidError(where + ": " + s.message());
    }
    config.labels[l.key()] = *value;
  }
  return Status::ok();
}

Status parseTaints(const Json& v, const std::string& source, Config& config) {
  if (v.is_null()) return Status::ok();
  if (!v.is_array()) return invalidError("taints: must be a list of {key, value, effect}");
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = "taints[" + std::to_string(i) + "]";
    const Json& t = v[i];
    if (!t.is_object()) return invalidError(where + ": must be a mapping {key, value, effect}");
    Taint taint;
    const std::map<std::string, std::string*> fields = {
        {"key", &taint.key}, {"value", &taint.value}, {"effect", &taint.effect}};
    for (auto f = t.begin(); f != t.end(); ++f) {
      auto field = fields.find(f.key());
      if (field == fields.end()) return yaml::unknownConfigKey(where + "." + f.key(), source);
      auto text = yaml::configString(f.value(), where + "." + f.key());
      if (!text.isOk()) return text.status();
      *field->second = *text;
    }
    if (taint.key.empty()) return invalidError(where + ".key: required");
    if (auto s = api::validateLabelKey(taint.key); !s.isOk()) {
      return invalidError(where + ".key: " + s.message());
    }
    if (taint.effect != "NoSchedule" && taint.effect != "PreferNoSchedule" &&
        taint.effect != "NoExecute") {
      return invalidError(where +
                          ".effect: must be NoSchedule, PreferNoSchedule or NoExecute, got \"" +
                          taint.effect + "\"");
    }
    config.taints.push_back(std::move(taint));
  }
  return Status::ok();
}

Status parseMqtt(const Json& v, const std::string& source, Config& config) {
  auto mqtt = yaml::configMapping(v, "mqtt");
  if (!mqtt.isOk()) return mqtt.status();
  if (*mqtt == nullptr) return Status::ok();
  const std::map<std::string, std::string*> strings = {
      {"server", &config.mqttServer},   {"clientId", &config.mqttClientId},
      {"caFile", &config.mqttCaFile},   {"certFile", &config.mqttCertFile},
      {"keyFile", &config.mqttKeyFile}, {"serverName", &config.mqttServerName}};
  // Optional: set (even to "") only when given.
  const std::map<std::string, std::optional<std::string>*> optionals = {
      {"username", &config.mqttUsername}, {"password", &config.mqttPassword}};
  for (auto o = (*mqtt)->begin(); o != (*mqtt)->end(); ++o) {
    const std::string where = "mqtt." + o.key();
    auto text = yaml::configString(o.value(), where);
    if (!text.isOk()) return text.status();
    if (auto s = strings.find(o.key()); s != strings.end()) {
      *s->second = *text;
    } else if (auto opt = optionals.find(o.key()); opt != optionals.end()) {
      *opt->second = *text;
    } else if (o.key() == "insecureSkipVerify") {
      if (*text != "true" && *text != "false") {
        return invalidError(where + ": must be true or false, got \"" + *text + "\"");
      }
      config.mqttInsecureSkipVerify = *text == "true";
    } else {
      return yaml::unknownConfigKey(where, source);
    }
  }
  return Status::ok();
}

Status parseOutbox(const Json& v, const std::string& source, Config& config) {
  auto outbox = yaml::configMapping(v, "outbox");
  if (!outbox.isOk()) return outbox.status();
  if (*outbox == nullptr) return Status::ok();
  for (auto o = (*outbox)->begin(); o != (*outbox)->end(); ++o) {
    const std::string where = "outbox." + o.key();
    if (o.key() != "maxEntries" && o.key() != "maxBytes") {
      return yaml::unknownConfigKey(where, source);
    }
    auto n = yaml::configPositive(o.value(), where);
    if (!n.isOk()) return n.status();
    (o.key() == "maxEntries" ? config.outboxMaxEntries : config.outboxMaxBytes) = *n;
  }
  return Status::ok();
}

}  // namespace

Status parseConfigYaml(const std::string& text, const std::string& source, Config& config) {
  auto root = yaml::parseConfigText(text, source);
  if (!root.isOk()) return root.status();
  const std::map<std::string, std::string*> strings = {
      {"nodeName", &config.nodeName},
      {"cloud", &config.cloud},
      {"dataDir", &config.dataDir},
      {"localApiListen", &config.localApiListen},
      {"logLevel", &config.logLevel},
      {"runtimeEndpoint", &config.runtimeEndpoint},
      {"dmiSocket", &config.dmiSocket},
      {"modelRegistryCertsDir", &config.modelRegistryCertsDir},
      {"serviceProxy", &config.serviceProxy}};
  const std::map<std::string, std::chrono::milliseconds*> durations = {
      {"heartbeatInterval", &config.heartbeatInterval},
      {"nodeStatusReportFrequency", &config.nodeStatusReportFrequency},
      {"podSyncPeriod", &config.podSyncPeriod},
      {"statsInterval", &config.statsInterval}};
  for (auto it = root->begin(); it != root->end(); ++it) {
    const std::string& key = it.key();
    const Json& v = it.value();
    Status st = Status::ok();
    if (auto s = strings.find(key); s != strings.end()) {
      auto text = yaml::configString(v, key);
      if (!text.isOk()) return text.status();
      *s->second = *text;
    } else if (auto d = durations.find(key); d != durations.end()) {
      auto text = yaml::configString(v, key);
      if (!text.isOk()) return text.status();
      auto ms = parseDuration(key, *text);
      if (!ms.isOk()) return ms.status();
      *d->second = *ms;
    } else if (key == "modelBandwidthLimit") {
      auto text = yaml::configString(v, key);
      if (!text.isOk()) return text.status();
      auto q = api::parseQuantityBytes(*text);
      if (!q.isOk() || *q < 0) {
        return invalidError("modelBandwidthLimit: \"" + *text +
                            "\" is not a byte quantity such as 10Mi (bytes per second)");
      }
      config.modelBandwidthLimit = static_cast<uint64_t>(*q);
    } else if (key == "containerLogMaxSize") {
      auto text = yaml::configString(v, key);
      if (!text.isOk()) return text.status();
      auto bytes = api::parseQuantityBytes(*text);
      if (!bytes.isOk() || *bytes < 1024) {
        return invalidError(
            "containerLogMaxSize: must be a size of at least 1Ki such as 10Mi, got \"" + *text +
            "\"");
      }
      config.containerLogMaxSize = static_cast<uint64_t>(*bytes);
    } else if (key == "containerLogMaxFiles") {
      auto n = yaml::configPositive(v, key);
      if (!n.isOk()) return n.status();
      if (*n < 2 || *n > 100)
        return invalidError("containerLogMaxFiles: must be between 2 and 100");
      config.containerLogMaxFiles = static_cast<int>(*n);
    } else if (key == "podWorkers") {
      auto n = yaml::configPositive(v, key);
      if (!n.isOk()) return n.status();
      if (*n > 64) return invalidError("podWorkers: must be between 1 and 64");
      config.podWorkers = static_cast<size_t>(*n);
    } else if (key == "labels") {
      st = parseLabels(v, config);
    } else if (key == "taints") {
      st = parseTaints(v, source, config);
    } else if (key == "mqtt") {
      st = parseMqtt(v, source, config);
    } else if (key == "outbox") {
      st = parseOutbox(v, source, config);
    } else {
      return yaml::unknownConfigKey(key, source);
    }
    if (!st.isOk()) return st;
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
  if (flags.serviceProxy) {
    if (*flags.serviceProxy != "iptables" && *flags.serviceProxy != "off") {
      return invalidError("--service-proxy: must be \"iptables\" or \"off\", got \"" +
                          *flags.serviceProxy + "\"");
    }
    config.serviceProxy = *flags.serviceProxy;
  }
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
  if (auto clouds = splitHostPortList("cloud", config.cloud); !clouds.isOk()) {
    return clouds.status();
  }
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
  if (config.nodeStatusReportFrequency < config.heartbeatInterval ||
      config.nodeStatusReportFrequency > std::chrono::hours(1)) {
    return invalidError("nodeStatusReportFrequency: must be between heartbeatInterval and 1h");
  }
  if (config.statsInterval.count() != 0 && (config.statsInterval < std::chrono::seconds(1) ||
                                            config.statsInterval > std::chrono::minutes(10))) {
    return invalidError("statsInterval: must be 0s (off) or between 1s and 10m");
  }
  if (config.serviceProxy != "iptables" && config.serviceProxy != "off") {
    return invalidError("serviceProxy: must be \"iptables\" or \"off\", got \"" +
                        config.serviceProxy + "\"");
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
