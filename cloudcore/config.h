#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/config_util.h"
#include "common/status.h"

namespace ep::cloudcore {

// cloudcore's configuration. Defaults are the documented ones (docs/configuration.md).
struct Config {
  std::string apiListen = "127.0.0.1:6443";
  std::string dataDir = "/var/lib/edgeplane/cloudcore";
  std::string logLevel = "info";
  std::chrono::seconds historyWindow{3600};
  std::chrono::seconds compactionInterval{60};
  uint64_t maxBodyBytes = 3 * 1024 * 1024;
  int workerThreads = 8;
  // cloudhub: the edge tunnel (docs/tunnel.md).
  std::string tunnelListen = "0.0.0.0:6444";
  std::string nodeRegistration = "auto";  // auto | manual
  // Rules (docs/rules.md): the router's REST entry, HTTPS with the API's authentication; ""
  // turns it off.
  std::string routerListen = "0.0.0.0:9443";
  // Node controller: Ready=Unknown after this long without a heartbeat.
  std::chrono::seconds nodeGracePeriod{40};
  // Leader election among replicas (docs/deployment.md): the controllers run on the holder of
  // the Lease kube-system/cloudcore. A dead leader's Lease is taken over after
  // leaderElectLeaseDuration; a leader that cannot renew for leaderElectRenewDeadline steps
  // down; attempts every leaderElectRetryPeriod.
  std::chrono::seconds leaderElectLeaseDuration{10};
  std::chrono::seconds leaderElectRenewDeadline{7};
  std::chrono::seconds leaderElectRetryPeriod{2};
  // Pod eviction: pods of a node not Ready for longer than this are deleted; 0 = never (the
  // default: edge autonomy keeps pods on a disconnected node). docs/workloads.md.
  std::chrono::seconds podEvictionTimeout{0};
  std::chrono::seconds eventTTL{3600};  // Events older than this are deleted; 0 keeps them
  // Device data (docs/devices.md): samples older than this, and all but the newest
  // deviceDataMaxSamples of each device property, are removed.
  std::chrono::seconds deviceDataRetention{std::chrono::hours(24)};
  uint64_t deviceDataMaxSamples = 10000;
  // The dashboard (docs/dashboard.md): served at /ui/ on the API port unless off; its files
  // from dashboardDir ("" = next to the binary: EXE_DIR/dashboard, then
  // EXE_DIR/../share/edgeplane/dashboard).
  bool dashboard = true;
  std::string dashboardDir;
  // Security (docs/security.md).
  std::vector<std::string> tlsSans;  // extra names/IPs for the serving certificates
  std::string tokenAuthFile;         // Kubernetes static token CSV; "" = none
  std::string auditLogPath;          // "" = DATA_DIR/audit.log; "-" = no audit log
  uint64_t auditLogMaxSizeMB = 100;  // rotate past this size
  int auditLogMaxBackup = 10;        // rotated files kept
  // Models (docs/models.md): where pushed model files are kept ("" = DATA_DIR/blobs), the
  // largest accepted, and how long a file no Model refers to is kept.
  std::string modelBlobDir;
  uint64_t modelMaxBytes = uint64_t{2} << 30;
  std::chrono::seconds modelBlobRetention{std::chrono::hours(24)};
  // How often the blob collector runs (first run one interval after start).
  std::chrono::seconds modelBlobGcInterval{std::chrono::minutes(1)};
  // Upgrades (docs/upgrades.md, "From an image"): the trust for registries cloudcore pulls
  // edgecore images from, as containerd keeps it (DIR/HOST[:PORT]/ca.crt or hosts.toml).
  std::string registryCertsDir = "/etc/containerd/certs.d";
  // Lifetime of node client certificates; nodes renew at 80% of it.
  std::chrono::seconds nodeCertificateLifetime{std::chrono::hours(24 * 365)};
  // Services (docs/services.md): where cluster IPs and node ports come from, and the address
  // the `kubernetes` Service's endpoints name ("" = the API's listen address when it is a
  // routable IPv4 address, else the host's first non-loopback IPv4 address).
  std::string serviceClusterIpRange = "10.96.0.0/12";
  std::string serviceNodePortRange = "30000-32767";
  std::string advertiseAddress;
  // The store (docs/store.md): "" or sqlite://DIR (DIR/store.db; "" = DATA_DIR), or
  // etcd://HOST:PORT[,HOST:PORT...] with keys under etcdPrefix and, for TLS, the etcd files.
  std::string store;
  std::string etcdPrefix = "/edgeplane";
  std::string etcdCaFile;
  std::string etcdCertFile;
  std::string etcdKeyFile;
};

// Where the store lives, from Config::store.
struct StoreLocation {
  bool etcd = false;
  std::string sqliteDir;               // !etcd
  std::vector<std::string> endpoints;  // etcd: HOST:PORT each
};
// "" (sqlite in dataDir), sqlite://DIR or etcd://HOST:PORT[,HOST:PORT...]; an error naming the
// `store` key otherwise.
Result<StoreLocation> parseStoreUrl(const std::string& url, const std::string& dataDir);

// The address the `kubernetes` Service's endpoints name: config.advertiseAddress, else the
// API's listen host when it is a routable IPv4 address, else the first non-loopback IPv4 address
// of the host's interfaces; "" when there is none.
std::string resolveAdvertiseAddress(const Config& config);

// HOST:PORT and duration values are parsed with common/config_util.h (splitHostPort,
// parseDurationSeconds).

// Loads a YAML config file over `config`. Unknown keys and wrong types are refused, naming the
// key ("historyWindow: invalid duration \"abc\"").
Status loadConfigFile(const std::string& path, Config& config);
// Checks the merged configuration.
Status validateConfig(const Config& config);

}  // namespace ep::cloudcore
