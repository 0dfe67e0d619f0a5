#include "cloudcore/config.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "common/yaml/config_file.h"

namespace ep::cloudcore {

Status loadConfigFile(const std::string& path, Config& config) {
  auto root = yaml::readConfigFile(path);
  if (!root.isOk()) return root.status();
  // Each kind of value once: a table from key to where it goes.
  const std::map<std::string, std::string*> strings = {
      {"apiListen", &config.apiListen},
      {"dataDir", &config.dataDir},
      {"logLevel", &config.logLevel},
      {"tunnelListen", &config.tunnelListen},
      {"routerListen", &config.routerListen},
      {"nodeRegistration", &config.nodeRegistration},
      {"modelBlobDir", &config.modelBlobDir},
      {"dashboardDir", &config.dashboardDir},
      {"registryCertsDir", &config.registryCertsDir},
      {"tokenAuthFile", &config.tokenAuthFile},
      {"auditLogPath", &config.auditLogPath},
      {"serviceClusterIpRange", &config.serviceClusterIpRange},
      {"serviceNodePortRange", &config.serviceNodePortRange},
      {"advertiseAddress", &config.advertiseAddress},
      {"store", &config.store},
      {"etcdPrefix", &config.etcdPrefix},
      {"etcdCaFile", &config.etcdCaFile},
      {"etcdCertFile", &config.etcdCertFile},
      {"etcdKeyFile", &config.etcdKeyFile}};
  const std::map<std::string, std::chrono::seconds*> durations = {
      {"nodeGracePeriod", &config.nodeGracePeriod},
      {"leaderElectLeaseDuration", &config.leaderElectLeaseDuration},
      {"leaderElectRenewDeadline", &config.leaderElectRenewDeadline},
      {"leaderElectRetryPeriod", &config.leaderElectRetryPeriod},
      {"nodeCertificateLifetime", &config.nodeCertificateLifetime},
      {"podEvictionTimeout", &config.podEvictionTimeout},
      {"eventTTL", &config.eventTTL},
      {"historyWindow", &config.historyWindow},
      {"compactionInterval", &config.compactionInterval},
      {"modelBlobRetention", &config.modelBlobRetention},
      {"modelBlobGcInterval", &config.modelBlobGcInterval},
      {"deviceDataRetention", &config.deviceDataRetention}};
  const std::map<std::string, uint64_t*> counts = {
      {"modelMaxBytes", &config.modelMaxBytes},
      {"deviceDataMaxSamples", &config.deviceDataMaxSamples},
      {"maxBodyBytes", &config.maxBodyBytes},
      {"auditLogMaxSizeMB", &config.auditLogMaxSizeMB}};
  const std::map<std::string, int*> smallCounts = {
      {"workerThreads", &config.workerThreads}, {"auditLogMaxBackup", &config.auditLogMaxBackup}};
  for (auto it = root->begin(); it != root->end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "tlsSANs") {
      auto names = yaml::configStringList(v, key);
      if (!names.isOk()) return names.status();
      config.tlsSans.insert(config.tlsSans.end(), names->begin(), names->end());
    } else if (key == "dashboard") {
      auto text = yaml::configString(v, key);
      if (!text.isOk()) return text.status();
      if (*text != "true" && *text != "false") {
        return invalidError("dashboard: must be true or false, got \"" + *text + "\"");
      }
      config.dashboard = *text == "true";
    } else if (auto s = strings.find(key); s != strings.end()) {
      auto text = yaml::configString(v, key);
      if (!text.isOk()) return text.status();
      *s->second = *text;
    } else if (auto d = durations.find(key); d != durations.end()) {
      auto text = yaml::configString(v, key);
      if (!text.isOk()) return text.status();
      auto seconds = parseDurationSeconds(key, *text);
      if (!seconds.isOk()) return seconds.status();
      *d->second = *seconds;
    } else if (auto c = counts.find(key); c != counts.end()) {
      auto n = yaml::configCount(v, key);
      if (!n.isOk()) return n.status();
      *c->second = *n;
    } else if (auto sc = smallCounts.find(key); sc != smallCounts.end()) {
      auto n = yaml::configCount(v, key);
      if (!n.isOk()) return n.status();
      if (*n > 1'000'000) return invalidError(key + ": must be at most 1000000");
      *sc->second = static_cast<int>(*n);
    } else {
      return yaml::unknownConfigKey(key, path);
    }
  }
  return Status::ok();
}

Result<StoreLocation> parseStoreUrl(const std::string& url, const std::string& dataDir) {
  StoreLocation where;
  constexpr std::string_view kSqlite = "sqlite://", kEtcd = "etcd://";
  if (url.empty()) {
    where.sqliteDir = dataDir;
    return where;
  }
  if (url.rfind(kSqlite, 0) == 0) {
    where.sqliteDir = url.substr(kSqlite.size());
    if (where.sqliteDir.empty()) where.sqliteDir = dataDir;
    return where;
  }
  if (url.rfind(kEtcd, 0) != 0) {
    return invalidError("store: \"" + url +
                        "\" is neither sqlite://DIR nor etcd://HOST:PORT[,HOST:PORT...]");
  }
  where.etcd = true;
  std::string rest = url.substr(kEtcd.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t start = 0;
  for (;;) {
    const size_t comma = rest.find(',', start);
    std::string ep =
        rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t colon = ep.rfind(':');
    const bool bracketed = !ep.empty() && ep.front() == '[';
    if (ep.empty() || colon == std::string::npos || colon == 0 || colon + 1 == ep.size() ||
        ep.size() - colon - 1 > 5 || (bracketed && ep[colon - 1] != ']') ||
        (!bracketed && ep.find(':') != colon) ||
        ep.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
        std::stoi(ep.substr(colon + 1)) > 65535 || std::stoi(ep.substr(colon + 1)) == 0) {
      return invalidError("store: etcd endpoint \"" + ep + "\" is not HOST:PORT");
    }
    where.endpoints.push_back(std::move(ep));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return where;
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
  if (config.leaderElectRetryPeriod.count() < 1) {
    return invalidError("leaderElectRetryPeriod: must be at least 1s");
  }
  if (config.leaderElectRenewDeadline <= config.leaderElectRetryPeriod) {
    return invalidError("leaderElectRenewDeadline: must be longer than leaderElectRetryPeriod");
  }
  if (config.leaderElectLeaseDuration <= config.leaderElectRenewDeadline) {
    return invalidError("leaderElectLeaseDuration: must be longer than leaderElectRenewDeadline");
  }
  if (config.eventTTL.count() < 0) return invalidError("eventTTL: must not be negative");
  if (config.podEvictionTimeout.count() < 0) {
    return invalidError("podEvictionTimeout: must not be negative");
  }
  if (config.dataDir.empty()) return invalidError("dataDir: must not be empty");
  if (auto s = parseStoreUrl(config.store, config.dataDir); !s.isOk()) return s.status();
  if (config.etcdPrefix.empty() || config.etcdPrefix.front() != '/') {
    return invalidError("etcdPrefix: must start with '/', not \"" + config.etcdPrefix + "\"");
  }
  if (config.etcdCertFile.empty() != config.etcdKeyFile.empty()) {
    return invalidError("etcdCertFile, etcdKeyFile: give both or neither");
  }
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

namespace {

// A unicast IPv4 address an endpoint may name (not unspecified, loopback or link-local).
bool routableIpv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return false;
  uint32_t h = ntohl(a.s_addr);
  return h != 0 && (h >> 24) != 127 && (h >> 16) != 0xA9FE && (h >> 28) != 0xE;  // no multicast
}

}  // namespace

std::string resolveAdvertiseAddress(const Config& config) {
  if (!config.advertiseAddress.empty()) return config.advertiseAddress;
  std::string host;
  uint16_t port = 0;
  if (splitHostPort("apiListen", config.apiListen, host, port).isOk() && routableIpv4(host)) {
    return host;
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN] = {};
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) != nullptr && routableIpv4(buf)) {
      found = buf;
    }
  }
  freeifaddrs(list);
  return found;
}

}  // namespace ep::cloudcore
