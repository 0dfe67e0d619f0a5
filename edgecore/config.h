#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/config_util.h"
#include "common/status.h"

namespace ep::edgecore {

struct Taint {
  std::string key;
  std::string value;
  std::string effect;  // NoSchedule | PreferNoSchedule | NoExecute
};

// edgecore's configuration: defaults, then the YAML file, then command-line flags.
struct Config {
  std::string nodeName;  // default: the host name, lower-cased
  // HOST:PORT of cloudhub, or several (HOST:PORT,HOST:PORT...: replicas, tried in turn).
  std::string cloud = "127.0.0.1:6444";
  std::string dataDir = "/var/lib/edgeplane/edgecore";
  std::string localApiListen = "127.0.0.1:10550";
  std::chrono::milliseconds heartbeatInterval{10000};
  // The full Node status goes to the cloud when it changes, on each new connection, and at
  // least this often (kubelet's nodeStatusReportFrequency); other heartbeats only renew the
  // node's Lease. Config only.
  std::chrono::milliseconds nodeStatusReportFrequency{std::chrono::minutes(5)};
  // How often node and container CPU/memory are sampled and sent for metrics.k8s.io
  // (edgecore/stats); 0 turns it off.
  std::chrono::milliseconds statsInterval{15000};
  // The service proxy (docs/services.md): "iptables" programs cluster IPs and node ports to the
  // ready endpoints on this node; "off" leaves the packet filter alone.
  std::string serviceProxy = "iptables";
  std::string logLevel = "info";
  // CRI endpoint of the container runtime (unix:// socket); "" turns pod management off.
  std::string runtimeEndpoint = "unix:///run/containerd/containerd.sock";
  std::chrono::milliseconds podSyncPeriod{1000};    // how often edged relists the runtime
  size_t podWorkers = 4;                            // config only: pods synced in parallel
  uint64_t containerLogMaxSize = 10 * 1024 * 1024;  // config only: rotate a log above this
  int containerLogMaxFiles = 5;                     // config only: files kept per container
  std::map<std::string, std::string> labels;        // config only
  std::vector<Taint> taints;                        // config only
  uint64_t outboxMaxEntries = 10000;                // config only: outbox.maxEntries
  uint64_t outboxMaxBytes = 16 * 1024 * 1024;       // config only: outbox.maxBytes
  // MQTT broker of the device twin and eventbus (KubeEdge's topics); "" turns MQTT off.
  std::string mqttServer = "tcp://127.0.0.1:1883";  // --mqtt-server / mqtt.server
  std::string mqttClientId;                         // mqtt.clientId (default edgecore-NODE)
  std::optional<std::string> mqttUsername;          // mqtt.username
  std::optional<std::string> mqttPassword;          // mqtt.password
  // TLS to the broker (mqtt.server ssl://HOST:PORT): its CA (required unless
  // mqtt.insecureSkipVerify), an optional client certificate and key, the name the broker's
  // certificate must carry (default HOST). Files are read at start.
  std::string mqttCaFile;               // mqtt.caFile
  std::string mqttCertFile;             // mqtt.certFile
  std::string mqttKeyFile;              // mqtt.keyFile
  std::string mqttServerName;           // mqtt.serverName
  bool mqttInsecureSkipVerify = false;  // mqtt.insecureSkipVerify
  // Unix socket of KubeEdge's DMI DeviceManagerService for mappers; "" turns DMI off.
  std::string dmiSocket = "/etc/kubeedge/dmi.sock";  // --dmi-socket / dmiSocket
  // Models (docs/models.md): download limit in bytes per second for model files, a Kubernetes
  // quantity ("10Mi" = 10 MiB/s); 0 = none. --model-bandwidth-limit / modelBandwidthLimit.
  uint64_t modelBandwidthLimit = 0;
  // Trust for OCI registries that models are pulled from, containerd's layout:
  // DIR/HOST[:PORT]/ca.crt or the ca = "FILE" of DIR/HOST[:PORT]/hosts.toml; other registries
  // are checked against the system's CA bundle. --model-registry-certs-dir /
  // modelRegistryCertsDir.
  std::string modelRegistryCertsDir = "/etc/containerd/certs.d";
};

// Values given on the command line; each overrides the file.
struct FlagOverrides {
  std::optional<std::string> nodeName;
  std::optional<std::string> cloud;
  std::optional<std::string> dataDir;
  std::optional<std::string> localApiListen;
  std::optional<std::string> heartbeatInterval;
  std::optional<std::string> logLevel;
  std::optional<std::string> runtimeEndpoint;
  std::optional<std::string> mqttServer;
  std::optional<std::string> dmiSocket;
  std::optional<std::string> modelBandwidthLimit;
  std::optional<std::string> modelRegistryCertsDir;
  std::optional<std::string> serviceProxy;
};

// HOST:PORT and duration values are parsed with common/config_util.h (splitHostPort,
// parseDuration).

// Parses YAML config text over `config`. Unknown keys and wrong types are refused naming the
// key path ("outbox.maxEntries: must be a positive integer"). `source` names the file in errors.
Status parseConfigYaml(const std::string& text, const std::string& source, Config& config);
// Reads the file and calls parseConfigYaml.
Status loadConfigFile(const std::string& path, Config& config);
// Applies flags over `config`; errors name the flag.
Status applyOverrides(const FlagOverrides& flags, Config& config);
// Fills the node name from the host name when empty, then checks the merged configuration.
Status finalizeConfig(Config& config);

}  // namespace ep::edgecore
