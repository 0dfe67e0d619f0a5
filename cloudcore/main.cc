// cloudcore: the cloud control plane. Wires the store, registry, cloudhub (edge tunnel), node
// controller, workload controllers and API server, then waits for SIGINT/SIGTERM and stops them
// in reverse order.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/apiserver/auth_filter.h"
#include "cloudcore/apiserver/device_data.h"
#include "cloudcore/apiserver/eviction.h"
#include "cloudcore/apiserver/model_upload.h"
#include "cloudcore/apiserver/pod_streams.h"
#include "cloudcore/apiserver/scale_subresource.h"
#include "cloudcore/apiserver/token_request.h"
#include "cloudcore/audit/audit_log.h"
#include "cloudcore/auth/authenticator.h"
#include "cloudcore/auth/escalation.h"
#include "cloudcore/auth/node_authorizer.h"
#include "cloudcore/auth/rbac.h"
#include "cloudcore/auth/service_account_tokens.h"
#include "cloudcore/certs/cluster_pki.h"
#include "cloudcore/certs/join_token_file.h"
#include "cloudcore/certs/node_certs.h"
#include "cloudcore/cloudhub/cloudhub.h"
#include "cloudcore/cloudhub/route_broker.h"
#include "cloudcore/cloudhub/stream_broker.h"
#include "cloudcore/config.h"
#include "cloudcore/controllers/controller_manager.h"
#include "cloudcore/controllers/endpoints_controller.h"
#include "cloudcore/controllers/periodic_task.h"
#include "cloudcore/dashboard/dashboard.h"
#include "cloudcore/devicedata/device_data_store.h"
#include "cloudcore/encryption/encrypting_store.h"
#include "cloudcore/encryption/encryption_config.h"
#include "cloudcore/leaderelection/leader_elector.h"
#include "cloudcore/models/blob_gc.h"
#include "cloudcore/models/blob_server.h"
#include "cloudcore/models/blob_store.h"
#include "cloudcore/registry/registry.h"
#include "cloudcore/resourcemetrics/metrics_api.h"
#include "cloudcore/resourcemetrics/resource_metrics_store.h"
#include "cloudcore/router/router.h"
#include "cloudcore/store/etcd_store.h"
#include "cloudcore/store/sqlite_store.h"
#include "cloudcore/store/store_copy.h"
#include "cloudcore/upgrades/image_importer.h"
#include "common/api/upgrades.h"
#include "common/http/server.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/oci/registry.h"
#include "common/signals.h"
#include "common/thread_annotations.h"
#include "proto/grpc_runtime.h"

#ifndef EP_VERSION_STRING
#define EP_VERSION_STRING "0.0.0"
#endif

namespace {

// The dashboard's handler (docs/dashboard.md). A configured directory must load (an error
// otherwise); without one, the first default directory that has the files is used, and when none
// has them, or they fail verification, /ui/ answers 503 saying why.
ep::Result<ep::dashboard::DashboardHandler> loadDashboard(const std::string& configured) {
  if (!configured.empty()) {
    auto assets = ep::dashboard::DashboardAssets::load(configured);
    if (!assets.isOk()) return assets.status();
    spdlog::info("dashboard: {} files ({} bytes) from {}, at /ui/", assets->fileCount(),
                 assets->totalBytes(), configured);
    return ep::dashboard::DashboardHandler(std::move(*assets), "");
  }
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const auto dirs = ep::dashboard::defaultAssetDirs(ec ? "." : exe.parent_path().string());
  for (const auto& dir : dirs) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "SHA256SUMS", ec)) continue;
    auto assets = ep::dashboard::DashboardAssets::load(dir);
    if (!assets.isOk()) {
      spdlog::error("dashboard: {}", assets.status().message());
      return ep::dashboard::DashboardHandler(std::nullopt, assets.status().message());
    }
    spdlog::info("dashboard: {} files ({} bytes) from {}, at /ui/", assets->fileCount(),
                 assets->totalBytes(), dir);
    return ep::dashboard::DashboardHandler(std::move(*assets), "");
  }
  std::string why = "its files are not installed (looked in";
  for (const auto& dir : dirs) why += " " + dir;
  why += "); build them with scripts/build-dashboard.sh or pass --dashboard-dir";
  spdlog::warn("dashboard: {}", why);
  return ep::dashboard::DashboardHandler(std::nullopt, why);
}

}  // namespace

int main(int argc, char** argv) {
  ep::tuneGrpcRuntime();
  using namespace ep;
  CLI::App app{"cloudcore: edgeplane cloud control plane"};
  std::string configPath, dataDir, apiListen, tunnelListen, logLevel, historyWindow;
  std::string tokenAuthFile, auditLogPath, nodeCertLifetime, deviceDataRetention;
  uint64_t deviceDataMaxSamples = 0;
  std::vector<std::string> tlsSans;
  std::string encryptionProviderConfig;
  bool rewriteSecrets = false;
  bool verifyStore = false;
  std::string dashboardDir;
  std::optional<bool> dashboardOn;
  uint64_t maxBody = 0;
  app.add_option("--config", configPath, "YAML configuration file");
  app.add_option("--data-dir", dataDir,
                 "directory for the PKI, the tunnel state and (by default) the embedded store");
  app.add_option("--api-listen", apiListen, "HOST:PORT of the Kubernetes-style API");
  app.add_option("--tunnel-listen", tunnelListen, "HOST:PORT of the edge tunnel (cloudhub)");
  std::string routerListen;
  auto* oRouter = app.add_option("--router-listen", routerListen,
                                 "HOST:PORT of the rules router's REST entry (HTTPS, default "
                                 "0.0.0.0:9443; \"\" turns it off)");
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error");
  app.add_option("--history-window", historyWindow, "watch history kept, e.g. 1h");
  std::string storeUrl, etcdPrefix, etcdCaFile, etcdCertFile, etcdKeyFile;
  app.add_option("--store", storeUrl,
                 "where objects are kept: sqlite://DIR (DIR/store.db; default sqlite://DATA_DIR) "
                 "or etcd://HOST:PORT[,HOST:PORT...] (docs/store.md)");
  app.add_option("--etcd-prefix", etcdPrefix, "key prefix in etcd (default /edgeplane)");
  std::string migrateStoreTo;
  app.add_option("--migrate-store-to", migrateStoreTo,
                 "copy every object of the SQLite store into etcd://HOST:PORT[,...] (which must "
                 "hold none yet), then exit; run with cloudcore stopped (docs/store.md)");
  app.add_option("--etcd-cafile", etcdCaFile, "CA certificate that signed the etcd members'");
  app.add_option("--etcd-certfile", etcdCertFile,
                 "client certificate for etcd (with --etcd-keyfile)");
  app.add_option("--etcd-keyfile", etcdKeyFile, "client key for etcd");
  app.add_option("--max-body-bytes", maxBody, "largest accepted request body");
  app.add_option("--tls-san", tlsSans,
                 "extra host name or IP address for the serving certificates (repeatable)");
  app.add_option("--token-auth-file", tokenAuthFile,
                 "static bearer tokens, Kubernetes CSV format: token,user,uid,\"group1,group2\"");
  app.add_option("--node-certificate-lifetime", nodeCertLifetime,
                 "lifetime of node client certificates, e.g. 8760h (nodes renew at 80%)");
  app.add_option("--encryption-provider-config", encryptionProviderConfig,
                 "Kubernetes EncryptionConfiguration for Secrets (default: "
                 "DATA_DIR/pki/encryption-config.yaml, created on first start)");
  app.add_flag("--rewrite-secrets", rewriteSecrets,
               "rewrite every Secret with the current first key, then exit (key rotation; run "
               "with cloudcore stopped)");
  app.add_flag("--verify", verifyStore,
               "check the whole store at start (SQLite's integrity_check and every row's "
               "checksum, repairing what the history allows) instead of the quick check; refuses "
               "to start when anything stays damaged (docs/store.md, \"Damaged data\")");
  app.add_option("--audit-log-path", auditLogPath,
                 "audit log file (default DATA_DIR/audit.log; - for none)");
  std::string modelBlobDir;
  std::string registryCertsDir;
  app.add_option("--registry-certs-dir", registryCertsDir,
                 "trust for registries edgecore images are pulled from: DIR/HOST[:PORT]/ca.crt "
                 "or hosts.toml, as containerd keeps it (default /etc/containerd/certs.d)");
  std::string modelBlobRetention;
  std::string modelBlobGcInterval;
  uint64_t modelMaxBytes = 0;
  app.add_option("--model-blob-dir", modelBlobDir,
                 "where pushed model files are kept (default DATA_DIR/blobs)");
  app.add_option("--model-max-bytes", modelMaxBytes,
                 "largest model file accepted by edgectl model push (default 2 GiB)");
  app.add_option("--model-blob-retention", modelBlobRetention,
                 "model files no Model refers to are removed after this, e.g. 24h (default 24h)");
  app.add_option("--model-blob-gc-interval", modelBlobGcInterval,
                 "how often unused model files are looked for, e.g. 10m (default 1m)");
  app.add_option("--device-data-retention", deviceDataRetention,
                 "device data older than this is removed, e.g. 24h (default 24h)");
  app.add_option("--device-data-max-samples", deviceDataMaxSamples,
                 "samples kept per device property (default 10000)");
  std::string serviceCidr, nodePortRange, advertiseAddress;
  app.add_option("--service-cluster-ip-range", serviceCidr,
                 "IPv4 CIDR Services take cluster IPs from (default 10.96.0.0/12)");
  app.add_option("--service-node-port-range", nodePortRange,
                 "LOW-HIGH ports NodePort Services take node ports from (default 30000-32767)");
  std::string joinTokenFile;
  app.add_option("--join-token-file", joinTokenFile,
                 "keep a join token (unlimited joins, no expiry) in this file for edges started "
                 "with edgecore --token-file: compose projects and CI (docs/install.md)");
  app.add_option("--advertise-address", advertiseAddress,
                 "IPv4 address of this cloudcore for the `kubernetes` Service's endpoints "
                 "(default: the API's listen address, else the host's first non-loopback one)");
  app.add_option("--dashboard", dashboardOn,
                 "serve the dashboard at /ui/ on the API port (default true; --dashboard=false "
                 "turns it off)")
      ->expected(0, 1)
      ->default_str("true");
  app.add_option("--dashboard-dir", dashboardDir,
                 "the dashboard's built files (default: EXE_DIR/dashboard, then "
                 "EXE_DIR/../share/edgeplane/dashboard)");
  app.set_version_flag("--version", EP_VERSION_STRING);
  CLI11_PARSE(app, argc, argv);

  cloudcore::Config config;
  if (!configPath.empty()) {
    if (auto s = cloudcore::loadConfigFile(configPath, config); !s.isOk()) {
      std::cerr << "cloudcore: invalid configuration: " << s.message() << "\n";
      return 2;
    }
  }
  if (!dataDir.empty()) config.dataDir = dataDir;
  if (!apiListen.empty()) config.apiListen = apiListen;
  if (!tunnelListen.empty()) config.tunnelListen = tunnelListen;
  if (oRouter->count()) config.routerListen = routerListen;
  if (!logLevel.empty()) config.logLevel = logLevel;
  if (maxBody) config.maxBodyBytes = maxBody;
  for (const auto& san : tlsSans) config.tlsSans.push_back(san);
  if (!tokenAuthFile.empty()) config.tokenAuthFile = tokenAuthFile;
  if (!auditLogPath.empty()) config.auditLogPath = auditLogPath;
  if (deviceDataMaxSamples) config.deviceDataMaxSamples = deviceDataMaxSamples;
  if (!modelBlobDir.empty()) config.modelBlobDir = modelBlobDir;
  if (!registryCertsDir.empty()) config.registryCertsDir = registryCertsDir;
  if (!serviceCidr.empty()) config.serviceClusterIpRange = serviceCidr;
  if (!storeUrl.empty()) config.store = storeUrl;
  if (!etcdPrefix.empty()) config.etcdPrefix = etcdPrefix;
  if (!etcdCaFile.empty()) config.etcdCaFile = etcdCaFile;
  if (!etcdCertFile.empty()) config.etcdCertFile = etcdCertFile;
  if (!etcdKeyFile.empty()) config.etcdKeyFile = etcdKeyFile;
  if (!nodePortRange.empty()) config.serviceNodePortRange = nodePortRange;
  if (!advertiseAddress.empty()) config.advertiseAddress = advertiseAddress;
  if (modelMaxBytes) config.modelMaxBytes = modelMaxBytes;
  if (dashboardOn) config.dashboard = *dashboardOn;
  if (!dashboardDir.empty()) config.dashboardDir = dashboardDir;
  // Duration flags ("90s", "24h", ...): each given one replaces its config value.
  const std::pair<const char*, std::pair<const std::string*, std::chrono::seconds*>> durations[] = {
      {"--node-certificate-lifetime", {&nodeCertLifetime, &config.nodeCertificateLifetime}},
      {"--model-blob-retention", {&modelBlobRetention, &config.modelBlobRetention}},
      {"--model-blob-gc-interval", {&modelBlobGcInterval, &config.modelBlobGcInterval}},
      {"--device-data-retention", {&deviceDataRetention, &config.deviceDataRetention}},
      {"--history-window", {&historyWindow, &config.historyWindow}},
  };
  for (const auto& [flag, target] : durations) {
    if (target.first->empty()) continue;
    auto d = parseDurationSeconds(flag, *target.first);
    if (!d.isOk()) {
      std::cerr << "cloudcore: invalid configuration: " << d.status().message() << "\n";
      return 2;
    }
    *target.second = *d;
  }
  if (auto s = cloudcore::validateConfig(config); !s.isOk()) {
    std::cerr << "cloudcore: invalid configuration: " << s.message() << "\n";
    return 2;
  }
  if (auto s = setupLogging(config.logLevel, "cloudcore"); !s.isOk()) {
    std::cerr << "cloudcore: " << s.message() << "\n";
    return 2;
  }

  // Signals are taken synchronously by this thread; block them before any thread starts.
  blockTerminationSignals();

  Clock& clock = SystemClock::instance();
  // The store: embedded SQLite (default) or etcd, for several cloudcores (docs/store.md).
  auto storeLocation = cloudcore::parseStoreUrl(config.store, config.dataDir);
  if (!storeLocation) {
    std::cerr << "cloudcore: invalid configuration: " << storeLocation.status().message() << "\n";
    return 2;
  }
  if (storeLocation->etcd && verifyStore) {
    std::cerr << "cloudcore: --verify checks the embedded SQLite store; etcd checks its own data "
                 "(docs/store.md, \"etcd\")\n";
    return 2;
  }
  auto etcdOptionsFor = [&](const std::vector<std::string>& endpoints) {
    store::EtcdStoreOptions o;
    o.endpoints = endpoints;
    o.prefix = config.etcdPrefix;
    o.caFile = config.etcdCaFile;
    o.certFile = config.etcdCertFile;
    o.keyFile = config.etcdKeyFile;
    o.historyWindow = config.historyWindow;
    o.compactionInterval = std::chrono::seconds(0);
    return o;
  };
  if (!migrateStoreTo.empty()) {
    // Moving from the embedded store to etcd (docs/store.md, "Moving to etcd").
    auto target = cloudcore::parseStoreUrl(migrateStoreTo, config.dataDir);
    if (!target || !target->etcd || storeLocation->etcd) {
      std::cerr << "cloudcore: --migrate-store-to: copies the SQLite store (--store sqlite://DIR, "
                   "the default) into etcd://HOST:PORT[,...]"
                << (target ? "" : ": " + target.status().message()) << "\n";
      return 2;
    }
    store::SqliteStoreOptions so;
    so.dataDir = storeLocation->sqliteDir;
    so.compactionInterval = std::chrono::seconds(0);
    store::SqliteStore source(so, clock);
    store::EtcdStore destination(etcdOptionsFor(target->endpoints), clock);
    auto migrate = [&]() -> Result<size_t> {
      // Never a fresh, empty source: the cluster's store may be elsewhere (--store), and an
      // empty etcd would make every edge drop what it runs.
      const std::string db = storeLocation->sqliteDir + "/store.db";
      if (!std::filesystem::exists(db)) {
        return notFoundError("no SQLite store at " + db +
                             " (give --store sqlite://DIR when the cluster's store is elsewhere)");
      }
      if (auto s = source.start(); !s.isOk()) return s;
      if (auto s = destination.start(); !s.isOk()) return s;
      auto resources = source.resources();
      if (!resources) return resources.status();
      if (resources->empty())
        return invalidError("the SQLite store at " + db + " holds no objects");
      auto present = destination.countObjects();
      if (!present) return present.status();
      if (*present > 0) {
        return Status(Code::kAlreadyExists,
                      "etcd already holds " + std::to_string(*present) + " keys under " +
                          config.etcdPrefix +
                          "/; copy only into an empty prefix (after a failed copy: ETCDCTL_API=3 "
                          "etcdctl del --prefix " +
                          config.etcdPrefix + "/)");
      }
      return store::copyObjects(source, *resources, destination);
    };
    auto copied = migrate();
    destination.stop();
    source.stop();
    if (!copied) {
      std::cerr << "cloudcore: --migrate-store-to: " << copied.status().message() << "\n";
      return 1;
    }
    std::cout << "copied " << *copied << " objects from sqlite://" << storeLocation->sqliteDir
              << " to " << migrateStoreTo << " (prefix " << config.etcdPrefix
              << "); start cloudcore with --store " << migrateStoreTo << "\n";
    return 0;
  }
  std::unique_ptr<store::Store> backend;
  if (storeLocation->etcd) {
    store::EtcdStoreOptions etcdOptions = etcdOptionsFor(storeLocation->endpoints);
    etcdOptions.compactionInterval = config.compactionInterval;
    backend = std::make_unique<store::EtcdStore>(etcdOptions, clock);
  } else {
    store::SqliteStoreOptions storeOptions;
    storeOptions.dataDir = storeLocation->sqliteDir;
    storeOptions.historyWindow = config.historyWindow;
    storeOptions.compactionInterval = config.compactionInterval;
    storeOptions.verify = verifyStore;
    backend = std::make_unique<store::SqliteStore>(storeOptions, clock);
  }
  // Secrets are encrypted before they reach SQLite (docs/security.md, "Secrets at rest"):
  // everything above the store sees plaintext, the files hold only ciphertext.
  auto encryptionConfig = encryptionProviderConfig.empty()
                              ? encryption::loadOrCreateDefaultConfig(config.dataDir)
                              : encryption::EncryptionConfig::load(encryptionProviderConfig);
  if (!encryptionConfig) {
    spdlog::critical("encryption provider config: {}", encryptionConfig.status().message());
    return 1;
  }
  encryption::EncryptingStore store(*backend, std::move(encryptionConfig).value());
  // Every module below is started through `services` and stopped by it, newest first: on
  // every path that gives up (services.fail) and at shutdown (services.stopAll).
  Lifecycle services("cloudcore");
  if (!services
           .start(
               "store", [&] { return store.start(); }, [&] { store.stop(); })
           .isOk()) {
    return 1;
  }
  if (rewriteSecrets) {
    // Key rotation: every Secret rewritten with the first key, then exit (cloudcore stopped).
    auto n = encryption::rewriteAll(store, "secrets");
    services.stopAll();
    if (!n) {
      std::cerr << "cloudcore: rewriting Secrets: " << n.status().message() << "\n";
      return 1;
    }
    std::cout << "rewrote " << *n << " Secrets with the current first key\n";
    return 0;
  }
  auto serviceNetwork =
      registry::ServiceNetwork::parse(config.serviceClusterIpRange, config.serviceNodePortRange);
  if (!serviceNetwork) {
    spdlog::critical("invalid configuration: {}", serviceNetwork.status().message());
    return services.fail(2);
  }
  registry::Registry registry(store, clock, *serviceNetwork);
  if (auto s = registry.ensureSystemNamespaces(); !s.isOk()) {
    spdlog::critical("creating system namespaces: {}", s.toString());
    return services.fail(1);
  }
  if (auto s = auth::ensureBootstrapPolicy(registry); !s.isOk()) {
    spdlog::critical("creating the default RBAC policy: {}", s.toString());
    return services.fail(1);
  }
  http::ServerOptions httpOptions;
  if (auto s = splitHostPort("apiListen", config.apiListen, httpOptions.host, httpOptions.port);
      !s.isOk()) {
    spdlog::critical("{}", s.message());
    return services.fail(2);
  }
  // The `kubernetes` Service in `default`, as kube-apiserver keeps it (docs/services.md).
  // Reservations no Service holds (a crash between reserving and writing) are released first:
  // on SQLite no write is in flight yet, so without a grace (its first IP may be one of them);
  // on etcd another replica may be between reserving and writing, so with the usual grace.
  if (auto r = registry.serviceAllocator().repair(storeLocation->etcd ? 60'000 : 0); !r.isOk()) {
    spdlog::warn("service allocation repair: {}", r.status().toString());
  }
  if (auto s = controllers::ensureKubernetesService(
          registry, cloudcore::resolveAdvertiseAddress(config), httpOptions.port);
      !s.isOk()) {
    spdlog::critical("creating the kubernetes Service: {}", s.toString());
    return services.fail(1);
  }
  // The cluster PKI: CA, serving certificates, admin.kubeconfig (docs/security.md).
  certs::ClusterPkiOptions pkiOptions;
  pkiOptions.dataDir = config.dataDir;
  pkiOptions.sans = config.tlsSans;
  for (const std::string& listen : {config.apiListen, config.tunnelListen, config.routerListen}) {
    std::string host;
    uint16_t port = 0;
    if (splitHostPort("listen", listen, host, port).isOk()) pkiOptions.sans.push_back(host);
  }
  {
    std::string host =
        httpOptions.host == "0.0.0.0" || httpOptions.host == "::" ? "127.0.0.1" : httpOptions.host;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    pkiOptions.apiServerUrl = "https://" + host + ":" + std::to_string(httpOptions.port);
  }
  auto clusterPki = certs::loadOrCreateClusterPki(pkiOptions);
  if (!clusterPki) {
    spdlog::critical("pki: {}", clusterPki.status().message());
    return services.fail(1);
  }
  if (auto s = certs::publishClusterInfo(registry, *clusterPki, pkiOptions.apiServerUrl);
      !s.isOk()) {
    spdlog::critical("publishing kube-public/cluster-info: {}", s.toString());
    return services.fail(1);
  }
  if (!joinTokenFile.empty()) {
    if (auto s = certs::ensureJoinTokenFile(registry, clusterPki->caHash, joinTokenFile);
        !s.isOk()) {
      spdlog::critical("{}", s.message());
      return services.fail(1);
    }
  }
  cloudhub::CloudHubOptions hubOptions;
  if (auto s = splitHostPort("tunnelListen", config.tunnelListen, hubOptions.host, hubOptions.port);
      !s.isOk()) {
    spdlog::critical("{}", s.message());
    return services.fail(2);
  }
  hubOptions.dataDir = config.dataDir;
  hubOptions.manualRegistration = config.nodeRegistration == "manual";
  hubOptions.version = EP_VERSION_STRING;
  hubOptions.nodeLeaseDuration = config.nodeGracePeriod;
  certs::NodeCertificates nodeCertificates(
      registry, clusterPki->ca, clock,
      {.lifetime = config.nodeCertificateLifetime,
       .manualRegistration = config.nodeRegistration == "manual"});
  hubOptions.tlsCertPem = clusterPki->tunnelServing.certPem;
  hubOptions.tlsKeyPem = clusterPki->tunnelServing.keyPem;
  hubOptions.caPem = clusterPki->ca.certPem;
  hubOptions.ticketKey = clusterPki->tunnelTicketKey;
  hubOptions.nodeCertificates = &nodeCertificates;
  // Device data time series (docs/devices.md), written by the hub's report applier; declared
  // before the hub so that it closes after it on every path.
  devicedata::SqliteDeviceDataStore deviceData(
      {.path = config.dataDir + "/devicedata.db",
       .maxAge = std::chrono::duration_cast<std::chrono::milliseconds>(config.deviceDataRetention),
       .maxSamplesPerProperty = config.deviceDataMaxSamples},
      clock);
  if (!services
           .start(
               "device data", [&] { return deviceData.start(); }, [&] { deviceData.stop(); })
           .isOk()) {
    return services.fail(1);
  }
  hubOptions.deviceData = &deviceData;
  // Rules (docs/rules.md): the router takes messages from the hub's reports and sends through
  // its route broker; declared before the hub so that it stops after it on every path.
  cloudhub::RouteBroker routes;
  router::HttpRestPoster restPoster;
  router::Router router({.dataDir = config.dataDir}, registry, routes, restPoster, clock,
                        &deviceData);
  if (!services
           .start(
               "router", [&] { return router.start(); }, [&] { router.stop(); })
           .isOk()) {
    return services.fail(1);
  }
  hubOptions.routedMessages = &router;
  hubOptions.routes = &routes;
  // Models (docs/models.md): the blob store behind edgectl model push, served to nodes through
  // the tunnel; declared before the hub so that the server outlives it on every path.
  models::BlobStore blobs(
      {.dir = config.modelBlobDir.empty() ? config.dataDir + "/blobs" : config.modelBlobDir,
       .maxBlobBytes = config.modelMaxBytes});
  if (!services
           .start(
               "models", [&] { return blobs.start(); }, nullptr)
           .isOk()) {
    return services.fail(1);
  }
  models::BlobServer blobServer(blobs, store);
  blobServer.start();
  services.started("model blob server", [&] { blobServer.stop(); });
  hubOptions.blobs = &blobServer;
  // Edgecore releases made from images for NodeUpgradeJobs with spec.image (docs/upgrades.md):
  // their binaries go into the blob store.
  upgrades::ImageImporter imageImporter(
      {.workDir = config.dataDir + "/upgrade-imports"}, registry, blobs,
      oci::makeHttpsOciRegistry(
          {.certsDir = config.registryCertsDir,
           .userAgent = "cloudcore-upgrades/1",
           .credentialsHint = std::string("name a Secret with them in the NodeUpgradeJob's ") +
                              api::kImagePullSecretAnnotation + " annotation"}),
      clock);
  if (!services
           .start(
               "edgecore image imports", [&] { return imageImporter.start(); },
               [&] { imageImporter.stop(); })
           .isOk()) {
    return services.fail(1);
  }
  // Nodes' CPU/memory samples for metrics.k8s.io (`kubectl top`; docs/metrics.md), in memory.
  resourcemetrics::ResourceMetricsStore resourceMetrics(clock);
  hubOptions.resourceMetrics = &resourceMetrics;
  // Unreferenced blobs and abandoned uploads go after the retention (checked every
  // modelBlobGcInterval).
  controllers::PeriodicTask blobGc(config.modelBlobGcInterval, [&store, &blobs, &clock, &config] {
    models::collectUnusedBlobs(store, blobs, clock.nowMillis() / 1000,
                               config.modelBlobRetention.count());
  });
  blobGc.start();
  services.started("model blob collector", [&] { blobGc.stop(); });
  cloudhub::CloudHub hub(hubOptions, registry);
  if (!services
           .start(
               "cloudhub", [&] { return hub.start(); }, [&] { hub.stop(); })
           .isOk()) {
    return services.fail(1);
  }
  // Cluster-wide controllers run on one replica, the leader (docs/deployment.md): every
  // replica competes for the Lease kube-system/cloudcore; a lone replica leads from its first
  // attempt, before start() returns. Started after cloudhub and stopped before it.
  controllers::ControllerManager controllerManager(registry, clock,
                                                   {.nodeGracePeriod = config.nodeGracePeriod,
                                                    .podEvictionTimeout = config.podEvictionTimeout,
                                                    .eventTTL = config.eventTTL,
                                                    .releaseImports = &imageImporter});
  auto identity = leaderelection::loadOrCreateIdentity(config.dataDir);
  if (!identity) {
    spdlog::critical("leader election: {}", identity.status().message());
    return services.fail(1);
  }
  leaderelection::LeaderElector elector(
      registry, clock,
      {.identity = *identity,
       .leaseDuration = config.leaderElectLeaseDuration,
       .renewDeadline = config.leaderElectRenewDeadline,
       .retryPeriod = config.leaderElectRetryPeriod},
      [&] { return controllerManager.start(); }, [&] { controllerManager.stop(); });
  if (!services
           .start(
               "leader election", [&] { return elector.start(); }, [&] { elector.stop(); })
           .isOk()) {
    return services.fail(1);
  }

  // Authentication, authorization and audit in front of the API (docs/security.md).
  std::unique_ptr<auth::StaticTokens> staticTokens;
  if (!config.tokenAuthFile.empty()) {
    auto loaded = auth::StaticTokens::load(config.tokenAuthFile);
    if (!loaded) {
      spdlog::critical("{}", loaded.status().message());
      return services.fail(2);
    }
    staticTokens = std::move(loaded).value();
    spdlog::info("auth: {} static tokens from {}", staticTokens->size(), config.tokenAuthFile);
  }
  // ServiceAccount tokens (TokenRequest, `kubectl create token`), signed with DATA_DIR/pki/sa.key.
  std::unique_ptr<auth::ServiceAccountTokens> serviceAccountTokens;
  {
    auto key = auth::loadOrCreateSigningKey(config.dataDir + "/pki");
    auto tokens = key ? auth::ServiceAccountTokens::create(
                            *key, clock, auth::ServiceAccountTokens::registryCheck(registry, clock))
                      : Result<std::unique_ptr<auth::ServiceAccountTokens>>(key.status());
    if (!tokens) {
      spdlog::critical("service account tokens: {}", tokens.status().message());
      return services.fail(1);
    }
    serviceAccountTokens = std::move(tokens).value();
  }
  std::vector<auth::TokenAuthenticator*> tokenAuthenticators;
  if (staticTokens) tokenAuthenticators.push_back(staticTokens.get());
  tokenAuthenticators.push_back(serviceAccountTokens.get());
  // A node certificate is refused once its Node is gone or no longer lists it (revoked).
  auth::Authenticator authenticator(
      tokenAuthenticators, [&nodeCertificates](const std::string& cn, const std::string& serial) {
        const std::string prefix = auth::kNodeUserPrefix;
        if (cn.compare(0, prefix.size(), prefix) != 0) return false;
        return nodeCertificates.checkActive(cn.substr(prefix.size()), serial).code() ==
               Code::kForbidden;
      });
  auth::RbacAuthorizer rbac(registry);
  apiserver::PrivilegedGroupAuthorizer privileged;
  auth::NodeAuthorizer nodeAuthorizer(registry);  // system:node:NAME users
  std::unique_ptr<audit::AuditLog> auditLog;
  if (config.auditLogPath != "-") {
    audit::AuditLogOptions auditOptions;
    auditOptions.path =
        config.auditLogPath.empty() ? config.dataDir + "/audit.log" : config.auditLogPath;
    auditOptions.maxBytes = config.auditLogMaxSizeMB << 20;
    auditOptions.maxBackups = config.auditLogMaxBackup;
    auditLog = std::make_unique<audit::AuditLog>(auditOptions);
  }
  if (!services
           .start(
               "rbac", [&] { return rbac.start(); }, [&] { rbac.stop(); })
           .isOk()) {
    return services.fail(1);
  }
  if (auditLog &&
      !services
           .start(
               "audit log", [&] { return auditLog->start(); }, [&] { auditLog->stop(); })
           .isOk()) {
    return services.fail(1);
  }

  // RBAC writes never grant more than the writer holds (Kubernetes' escalation prevention).
  auth::RbacEscalationCheck escalation(registry, {&privileged, &rbac});
  apiserver::ApiHandlerOptions handlerOptions{.version = EP_VERSION_STRING};
  handlerOptions.admission = [&escalation](const http::ServerRequest& req,
                                           const api::KindInfo& kind, const std::string& ns,
                                           const nlohmann::json* current,
                                           const nlohmann::json& next) {
    const auto* user = std::any_cast<auth::UserInfo>(&req.context);
    if (user == nullptr) return Status::ok();  // not through the AuthFilter: trusted caller
    return escalation.admit(*user, kind, ns, current, next);
  };
  // /readyz proves the store can still make a write durable (a full disk answered 503 to every
  // write while /readyz said ok), probing at most once a second.
  struct WriteProbe {
    Mutex mu;
    int64_t at EP_GUARDED_BY(mu) = 0;
    Status last EP_GUARDED_BY(mu);
  };
  auto writeProbe = std::make_shared<WriteProbe>();
  handlerOptions.readinessCheck = [&store, &clock, writeProbe]() -> Status {
    MutexLock l(writeProbe->mu);
    const int64_t now = clock.nowMillis();
    if (writeProbe->at == 0 || now - writeProbe->at >= 1000) {
      writeProbe->last = store.probeWrite();
      writeProbe->at = now;
    }
    return writeProbe->last;
  };
  apiserver::ApiHandler handler(registry, clock, handlerOptions);
  apiserver::installScaleSubresource(handler, registry);
  apiserver::installEviction(handler, registry);  // pods/eviction (kubectl drain)
  apiserver::installTokenRequest(handler, registry, *serviceAccountTokens);
  apiserver::installDeviceData(handler, registry, deviceData, clock);        // devices/NAME/data
  apiserver::installModelUpload(handler, blobs);                             // edgectl model push
  resourcemetrics::MetricsApi metricsApi(resourceMetrics, registry, clock);  // kubectl top
  handler.addApiGroup(
      {.group = resourcemetrics::kMetricsGroup,
       .version = resourcemetrics::kMetricsVersion,
       .resources = &resourcemetrics::MetricsApi::resources,
       .route = [&metricsApi](http::ServerRequest& req, const std::vector<std::string>& rest) {
         return metricsApi.handle(req, rest);
       }});
  auto* sqlite = dynamic_cast<store::SqliteStore*>(backend.get());
  handler.addRoute("/metrics", [&hub, sqlite](http::ServerRequest&) {
    http::ServerResponse r;
    r.status = 200;
    r.contentType = "text/plain; version=0.0.4; charset=utf-8";
    r.body = hub.metricsText();
    r.body +=
        "# HELP store_damaged_reads_total Reads that found a store row damaged on disk (not "
        "served).\n# TYPE store_damaged_reads_total counter\nstore_damaged_reads_total " +
        std::to_string(sqlite ? sqlite->damagedReads() : 0) + "\n";
    return r;
  });
  // pods/log, pods/exec; at most half the API's workers wait for silent nodes at once.
  apiserver::PodStreams podStreams(
      registry, hub.streams(),
      {.maxWaitingOpens = std::max<size_t>(1, static_cast<size_t>(config.workerThreads) / 2)});
  podStreams.install(handler);
  apiserver::AuthFilter front(authenticator, {&privileged, &nodeAuthorizer, &rbac}, auditLog.get(),
                              clock,
                              [&handler](http::ServerRequest& r) { return handler.handle(r); });
  httpOptions.maxBodyBytes = config.maxBodyBytes;
  httpOptions.workerThreads = static_cast<size_t>(config.workerThreads);
  httpOptions.tls.certPem = clusterPki->apiServing.certPem;
  httpOptions.tls.keyPem = clusterPki->apiServing.keyPem;
  httpOptions.tls.clientCaPem = clusterPki->ca.certPem;
  // The dashboard's files, public and outside the AuthFilter (cloudcore/dashboard/README.md).
  std::optional<dashboard::DashboardHandler> dashboardHandler;
  if (config.dashboard) {
    auto loaded = loadDashboard(config.dashboardDir);
    if (!loaded.isOk()) {
      std::cerr << "cloudcore: --dashboard-dir: " << loaded.status().message() << "\n";
      return services.fail(2);
    }
    dashboardHandler.emplace(std::move(*loaded));
  }
  http::Server server(httpOptions, [&front, &dashboardHandler](http::ServerRequest& r) {
    if (dashboardHandler && dashboard::DashboardHandler::handles(r.path)) {
      return dashboardHandler->handle(r);
    }
    return front.handle(r);
  });
  // The router's REST entry: same certificate, authentication, authorization and audit as the
  // API; requests are authorized as verbs on rules/proxy.
  apiserver::AuthFilter routerFront(
      authenticator, {&privileged, &nodeAuthorizer, &rbac}, auditLog.get(), clock,
      [&router](http::ServerRequest& r) { return router.handle(r); },
      [&router](const http::ServerRequest& r) { return router.attributes(r); });
  std::unique_ptr<http::Server> routerServer;
  if (!config.routerListen.empty()) {
    http::ServerOptions routerOptions = httpOptions;
    (void)splitHostPort("routerListen", config.routerListen, routerOptions.host,
                        routerOptions.port);  // validated with the config
    routerOptions.workerThreads = 4;
    routerServer = std::make_unique<http::Server>(
        routerOptions, [&routerFront](http::ServerRequest& r) { return routerFront.handle(r); });
  }
  if (!services
           .start(
               "apiserver", [&] { return server.start(); }, [&] { server.stop(); })
           .isOk()) {
    return services.fail(1);
  }
  if (routerServer) {
    if (!services
             .start(
                 "router (routerListen " + config.routerListen + ")",
                 [&] { return routerServer->start(); }, [&] { routerServer->stop(); })
             .isOk()) {
      return services.fail(1);
    }
    spdlog::info("router: REST entry on https://{}", config.routerListen);
  }
  handler.setReady(true);
  spdlog::info("cloudcore {} ready (data dir {}); admin credentials: {}", EP_VERSION_STRING,
               config.dataDir, clusterPki->adminKubeconfigPath);

  // Every 10 s the main thread hands freed heap back to the kernel: a burst of large requests
  // leaves memory free but resident in glibc's per-thread arenas otherwise.
  int sig = waitForTerminationSignal(10, [] { malloc_trim(0); });
  spdlog::info("cloudcore: signal {}, shutting down", sig);
  handler.setReady(false);
  services.stopAll();
  spdlog::info("cloudcore: stopped");
  return 0;
}
