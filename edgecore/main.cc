// edgecore: the edge agent. Wires the cache (metamanager), the local API, the tunnel client
// (edgehub) and the node status reporter, waits for SIGINT/SIGTERM and stops them in reverse
// order. It comes up from the cache alone: the cloud being unreachable never blocks startup.
#include <fcntl.h>
#include <linux/close_range.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>

#include "common/clock.h"
#include "common/config_util.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/pki/pki.h"
#include "common/signals.h"
#include "common/thread_annotations.h"
#include "common/tunnel_features.h"
#include "edgecore/certmanager/node_credentials.h"
#include "edgecore/config.h"
#include "edgecore/devicetwin/device_twin.h"
#include "edgecore/dmi/device_manager.h"
#include "edgecore/edged/edged.h"
#include "edgecore/edged/runtime/cri_runtime.h"
#include "edgecore/edged/streaming/stream_server.h"
#include "edgecore/edgehub/edgehub.h"
#include "edgecore/eventbus/mqtt_client.h"
#include "edgecore/localapi/local_api.h"
#include "edgecore/metamanager/metamanager.h"
#include "edgecore/models/content_store.h"
#include "edgecore/models/model_fetcher.h"
#include "edgecore/nodestatus/node_status.h"
#include "edgecore/router/edge_router.h"
#include "edgecore/serviceproxy/service_proxy.h"
#include "edgecore/stats/stats.h"
#include "edgecore/upgrade/upgrade_manager.h"

#ifndef EP_VERSION_STRING
#define EP_VERSION_STRING "0.0.0"
#endif

int main(int argc, char** argv) {
  // glibc gives each allocating thread its own arena, up to 8 per core; edgecore's threads
  // mostly sleep, and per-thread arenas cost it ~200 KiB of RSS with pods running. Two arenas
  // keep allocation uncontended on a small device. Set before any thread starts.
  mallopt(M_ARENA_MAX, 2);
  using namespace ep;
  using namespace ep::edgecore;
  CLI::App app{"edgecore: edgeplane edge agent"};
  std::string configPath;
  std::string nodeName, cloud, dataDir, localApiListen, heartbeat, logLevel;
  app.add_option("--config", configPath, "YAML configuration file");
  auto* oNode = app.add_option("--node-name", nodeName, "node name (default: host name)");
  auto* oCloud = app.add_option("--cloud", cloud, "HOST:PORT of cloudcore's tunnel");
  auto* oData = app.add_option("--data-dir", dataDir, "directory of the edge cache");
  auto* oApi = app.add_option("--local-api-listen", localApiListen, "HOST:PORT of the local API");
  auto* oHb = app.add_option("--heartbeat-interval", heartbeat, "node status interval, e.g. 10s");
  auto* oLog = app.add_option("--log-level", logLevel, "trace, debug, info, warn, error");
  std::string joinToken;
  app.add_option("--token", joinToken,
                 "join token from `edgectl token create` (first start only; ignored once the "
                 "node has credentials)");
  std::string tokenFile;
  app.add_option("--token-file", tokenFile,
                 "read the join token from this file instead of --token (keeps it out of the "
                 "process list)");
  bool joinOnly = false;
  app.add_flag("--join-only", joinOnly,
               "join with --token unless the node has credentials already, then exit without "
               "starting (what deploy/install/install-edgecore.sh runs before starting the "
               "service)");
  std::string mqttServer;
  auto* oMqtt =
      app.add_option("--mqtt-server", mqttServer,
                     "MQTT broker of the device twin, tcp://HOST:PORT (\"\" turns MQTT off)");
  std::string modelBandwidth;
  app.add_option("--model-bandwidth-limit", modelBandwidth,
                 "model downloads from the cloud at most this many bytes per second, e.g. 10Mi "
                 "(default: no limit)");
  std::string registryCerts;
  auto* oRegistryCerts = app.add_option(
      "--model-registry-certs-dir", registryCerts,
      "CAs of the OCI registries models are pulled from: DIR/HOST[:PORT]/ca.crt or hosts.toml "
      "(default /etc/containerd/certs.d)");
  std::string dmiSocket;
  auto* oDmi = app.add_option("--dmi-socket", dmiSocket,
                              "unix socket of the DMI DeviceManagerService for mappers (\"\" turns "
                              "DMI off)");
  std::string runtimeEndpoint;
  auto* oRuntime = app.add_option("--runtime-endpoint", runtimeEndpoint,
                                  "CRI socket of the container runtime (\"\" runs no pods)");
  std::string serviceProxyMode;
  auto* oServiceProxy = app.add_option(
      "--service-proxy", serviceProxyMode,
      "how Services reach this node's pods: iptables (the default) or off (leaves the packet "
      "filter alone)");
  app.set_version_flag("--version", EP_VERSION_STRING);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  Config config;
  if (!configPath.empty()) {
    if (auto s = loadConfigFile(configPath, config); !s.isOk()) {
      std::cerr << "edgecore: invalid configuration: " << s.message() << "\n";
      return 2;
    }
  }
  FlagOverrides flags;
  if (oNode->count()) flags.nodeName = nodeName;
  if (oCloud->count()) flags.cloud = cloud;
  if (oData->count()) flags.dataDir = dataDir;
  if (oApi->count()) flags.localApiListen = localApiListen;
  if (oHb->count()) flags.heartbeatInterval = heartbeat;
  if (oLog->count()) flags.logLevel = logLevel;
  if (oRuntime->count()) flags.runtimeEndpoint = runtimeEndpoint;
  if (oMqtt->count()) flags.mqttServer = mqttServer;
  if (oDmi->count()) flags.dmiSocket = dmiSocket;
  if (oServiceProxy->count()) flags.serviceProxy = serviceProxyMode;
  if (!modelBandwidth.empty()) flags.modelBandwidthLimit = modelBandwidth;
  if (oRegistryCerts->count()) flags.modelRegistryCertsDir = registryCerts;
  if (auto s = applyOverrides(flags, config); !s.isOk()) {
    std::cerr << "edgecore: invalid configuration: " << s.message() << "\n";
    return 2;
  }
  if (auto s = finalizeConfig(config); !s.isOk()) {
    std::cerr << "edgecore: invalid configuration: " << s.message() << "\n";
    return 2;
  }
  if (auto s = setupLogging(config.logLevel, "edgecore"); !s.isOk()) {
    std::cerr << "edgecore: " << s.message() << "\n";
    return 2;
  }

  // Signals are taken synchronously by this thread; block them before any thread starts.
  // --join-only starts nothing that stays: Ctrl-C ends it at once.
  if (!joinOnly) blockTerminationSignals();

  // The data dir holds the node's key and the cache (which holds Secrets): root only.
  {
    std::error_code ec;
    std::filesystem::create_directories(config.dataDir, ec);
    if (ec || ::chmod(config.dataDir.c_str(), 0700) != 0) {
      spdlog::critical("data dir {}: cannot create it or make it private ({})", config.dataDir,
                       ec ? ec.message() : std::strerror(errno));
      return 1;
    }
  }
  // The node's identity: joined before, or joining now with --token (docs/security.md).
  certmanager::NodeCredentials credentials(config.dataDir);
  if (auto s = credentials.load(); !s.isOk()) {
    if (s.code() != Code::kNotFound) {
      spdlog::critical("node credentials: {}", s.message());
      return 1;
    }
    if (!tokenFile.empty()) {
      if (!joinToken.empty()) {
        std::cerr << "edgecore: --token and --token-file: give one of them\n";
        return 2;
      }
      std::ifstream f(tokenFile);
      if (!f || !std::getline(f, joinToken)) {
        std::cerr << "edgecore: --token-file " << tokenFile << ": cannot read it\n";
        return 1;
      }
      while (!joinToken.empty() && std::isspace(static_cast<unsigned char>(joinToken.back()))) {
        joinToken.pop_back();
      }
    }
    if (joinToken.empty()) {
      spdlog::critical("{}", s.message());
      return 1;
    }
    // With several cloud addresses (replicas): each in turn, from a random one, until one
    // answers with the cluster's CA. A refused token is final (every replica would refuse it).
    Status j = unavailableError("no cloud address");
    auto clouds = splitHostPortList("cloud", config.cloud);  // checked by finalizeConfig
    if (clouds.isOk() && clouds->size() > 1) {
      std::rotate(
          clouds->begin(),
          clouds->begin() + static_cast<std::ptrdiff_t>(std::random_device{}() % clouds->size()),
          clouds->end());
    }
    for (const std::string& cloud : clouds.isOk() ? *clouds : std::vector<std::string>{}) {
      j = certmanager::join(credentials, cloud, config.nodeName, joinToken,
                            std::chrono::seconds(30));
      if (j.code() != Code::kUnavailable && j.code() != Code::kForbidden) break;
    }
    if (!j.isOk()) {
      spdlog::critical("joining {} as node {} failed: {}", config.cloud, config.nodeName,
                       j.message());
      std::cerr << "edgecore: joining " << config.cloud << " failed: " << j.message() << "\n";
      return 1;
    }
    if (joinOnly)
      std::cout << "edgecore: node " << config.nodeName << " joined " << config.cloud << "\n";
  } else if (!joinToken.empty() || !tokenFile.empty() || joinOnly) {
    spdlog::info("edgecore: node {} already has credentials in {}; --token ignored",
                 config.nodeName, credentials.dir());
    if (joinOnly) {
      std::cout << "edgecore: node " << config.nodeName << " already has credentials in "
                << credentials.dir() << "\n";
    }
  }
  if (joinOnly) return 0;

  Clock& clock = SystemClock::instance();
  metamanager::MetaManager cache({.dataDir = config.dataDir,
                                  .maxEntries = config.outboxMaxEntries,
                                  .maxBytes = config.outboxMaxBytes});
  edgehub::EdgeHub hub({.cloud = config.cloud,
                        .nodeName = config.nodeName,
                        .version = EP_VERSION_STRING,
                        .credentials = &credentials,
                        // edged's StreamServer, set once the runtime is there, serves them.
                        .interactiveStreams = !config.runtimeEndpoint.empty(),
                        .portForward = !config.runtimeEndpoint.empty()},
                       cache, clock);
  cache.setOutboxNotify([&hub] { hub.wakeOutbox(); });
  cache.setRepairNotify(
      [&hub] { hub.resync("the edge cache removed damaged objects; asking for them again"); });
  // Every module below is started through `services` and stopped by it, newest first: on
  // every path that gives up (services.fail) and at shutdown (services.stopAll).
  Lifecycle services("edgecore");
  if (!services
           .start(
               "edge cache", [&] { return cache.start(); }, [&] { cache.stop(); })
           .isOk()) {
    return 1;
  }
  spdlog::info("edgecore {} starting (cache revision {}, {} objects)", config.nodeName,
               cache.lastAppliedRevision(), cache.objectCount());

  std::atomic<edged::Edged*> edgedForStatus{nullptr};  // set once edged runs; read by /status
  std::atomic<models::ModelFetcher*> fetcherForStatus{nullptr};      // likewise, model downloads
  std::atomic<stats::StatsReporter*> statsForStatus{nullptr};        // likewise, resource metrics
  std::atomic<serviceproxy::ServiceProxy*> proxyForStatus{nullptr};  // likewise, Services
  std::atomic<nodestatus::NodeStatusReporter*> heartbeatsForStatus{nullptr};  // the heartbeat
  // The content store of model files: edged's volumes hard-link from it (docs/models.md).
  models::ContentStore modelContent(config.dataDir + "/models");
  // Upgrades from the cloud (docs/upgrades.md): an upgrade this binary is the trial of, or one
  // whose new binary died, is found before anything connects. A handover stops every service as
  // SIGTERM does, then execs the other binary in this process.
  std::string executable;
  {
    std::error_code ec;
    executable = std::filesystem::canonical("/proc/self/exe", ec).string();
    if (ec) executable = argv[0];
  }
  // The architecture of this binary (what an upgrade gives this node); host facts once.
  const std::string architecture =
      nodestatus::SystemHostInfo(config.dataDir).collect().architecture;
  upgrade::UpgradeManager upgrades(
      {.nodeName = config.nodeName,
       .architecture = architecture,
       .version = EP_VERSION_STRING,
       .dataDir = config.dataDir,
       .executable = executable},
      cache, modelContent, clock, [&hub] { return hub.state().connected; },
      [] { ::kill(::getpid(), SIGUSR1); });
  if (auto s = upgrades.recoverAtStart(); !s.isOk()) {
    spdlog::error("upgrade: {}", s.message());
  }
  // The worker starts at once: a trial's deadline runs from here, whatever starts after.
  if (auto s = upgrades.start(); s.isOk()) {
    services.started("upgrades", [&] { upgrades.stop(); });
  }
  http::ServerOptions httpOptions;
  if (auto s = splitHostPort("localApiListen", config.localApiListen, httpOptions.host,
                             httpOptions.port);
      !s.isOk()) {
    spdlog::critical("{}", s.message());
    return services.fail(2);
  }
  httpOptions.workerThreads = 4;
  localapi::LocalApi localApi(
      httpOptions, cache, clock,
      {.version = EP_VERSION_STRING,
       .status = [&hub, &edgedForStatus, &fetcherForStatus, &statsForStatus, &proxyForStatus,
                  &heartbeatsForStatus, &upgrades] {
         auto j = hub.statusJson();
         j["upgrade"] = upgrades.statusJson();
         if (auto* h = heartbeatsForStatus.load()) {
           j["heartbeat"] = {{"fullReports", h->fullReports()},
                             {"leaseRenewals", h->leaseRenewals()}};
         }
         if (auto* e = edgedForStatus.load()) j["edged"] = e->statusJson();
         if (auto* f = fetcherForStatus.load()) j["models"] = f->statusJson();
         if (auto* r = statsForStatus.load()) {
           auto c = r->counters();
           j["stats"] = {{"samples", c.samples}, {"sent", c.sent}, {"lastError", c.lastError}};
         }
         if (auto* p = proxyForStatus.load()) j["serviceProxy"] = p->statusJson();
         return j;
       }});
  if (!services
           .start(
               "local API", [&] { return localApi.start(); }, [&] { localApi.stop(); })
           .isOk()) {
    return services.fail(1);
  }
  spdlog::info("edgecore: local API on {}", config.localApiListen);

  std::unique_ptr<edged::streaming::StreamServer> streams;  // logs/exec for the cloud
  // The hub stops before the stream server it hands streams to.
  if (!services
           .start(
               "edgehub", [&] { return hub.start(); },
               [&] {
                 hub.stop();
                 if (streams) streams->stop();
               })
           .isOk()) {
    return services.fail(1);
  }
  std::unique_ptr<edged::CriRuntime> runtime;
  if (!config.runtimeEndpoint.empty()) {
    runtime = std::make_unique<edged::CriRuntime>(
        edged::CriRuntimeOptions{.endpoint = config.runtimeEndpoint});
  }
  // Host facts plus the runtime's version, asked for until the runtime first answers (it may
  // start after edgecore at boot).
  class RuntimeAwareHostInfo final : public nodestatus::HostInfo {
   public:
    RuntimeAwareHostInfo(edged::ContainerRuntime* runtime, std::string dataDir)
        : system_(std::move(dataDir)), runtime_(runtime) {}
    nodestatus::HostFacts collect() override {
      auto facts = system_.collect();
      MutexLock lock(mu_);
      if (version_.empty() && runtime_) {
        if (auto v = runtime_->version(); v.isOk()) version_ = edged::nodeRuntimeVersion(*v);
      }
      facts.containerRuntimeVersion = version_;
      return facts;
    }

   private:
    nodestatus::SystemHostInfo system_;
    edged::ContainerRuntime* runtime_;
    Mutex mu_;
    std::string version_ EP_GUARDED_BY(mu_);
  };
  RuntimeAwareHostInfo hostInfo(runtime.get(), config.dataDir);
  // Heartbeats renew the node's Lease through the tunnel while the status stays the same.
  class HubLeases final : public nodestatus::LeaseChannel {
   public:
    HubLeases(edgehub::EdgeHub& hub, Clock& clock) : hub_(hub), clock_(clock) {}
    uint64_t leaseConnection() override { return hub_.connectionWith(kFeatureNodeLease); }
    bool renewLease(uint64_t connection) override {
      edgeplane::tunnel::v1::EdgeMessage m;
      m.mutable_lease_renewal()->set_timestamp_ms(clock_.nowMillis());
      return hub_.sendOnConnection(connection, std::move(m));
    }

   private:
    edgehub::EdgeHub& hub_;
    Clock& clock_;
  };
  HubLeases hubLeases(hub, clock);
  nodestatus::NodeStatusReporter reporter(
      {.nodeName = config.nodeName,
       .labels = config.labels,
       .taints = config.taints,
       .edgecoreVersion = EP_VERSION_STRING},
      {.interval = config.heartbeatInterval,
       .statusReportFrequency = config.nodeStatusReportFrequency,
       .reserve = {.path = config.dataDir + "/disk-reserve"},
       .leases = &hubLeases,
       .extraConditions =
           [&upgrades] {
             std::vector<nlohmann::json> out;
             if (auto c = upgrades.condition()) out.push_back(std::move(*c));
             return out;
           }},
      hostInfo, cache, clock);
  (void)reporter.start();  // a failed first report is logged; the heartbeat retries
  heartbeatsForStatus = &reporter;
  services.started("node status", [&] {
    heartbeatsForStatus = nullptr;
    reporter.stop();
  });

  // Devices: the twin (state in the cache database, reports through the outbox) and the MQTT
  // eventbus that devices and apps speak KubeEdge's topics on (docs/devices.md).
  class MqttBus final : public devicetwin::MessageBus {
   public:
    Status publish(std::string topic, std::string payload) override {
      if (!client) return Status::ok();  // MQTT off: results have no one to go to
      return client->publish(std::move(topic), std::move(payload), 1);
    }
    void acknowledge(uint64_t generation, uint16_t packetId) override {
      if (client) client->acknowledge(generation, packetId);
    }
    eventbus::MqttClient* client = nullptr;  // set before the twin starts; outlives it
  };
  MqttBus bus;
  devicetwin::DeviceTwin twin({.nodeName = config.nodeName}, cache, bus, clock);
  // Rules (docs/rules.md): Rule topics on the same broker, and services on this node.
  class MqttRouteBus final : public router::RouteBus {
   public:
    bool connected() const override { return client && client->stats().connected; }
    Status publish(std::string topic, std::string payload,
                   std::function<void(Status)> done) override {
      if (!client) return unavailableError("mqtt.server is empty on this node");
      return client->publish(std::move(topic), std::move(payload), 1, false, std::move(done));
    }
    Status setRuleTopics(std::vector<std::string> topics) override {
      return client ? client->setExtraSubscriptions(std::move(topics)) : Status::ok();
    }
    void acknowledge(uint64_t generation, uint16_t packetId) override {
      if (client) client->acknowledge(generation, packetId);
    }
    eventbus::MqttClient* client = nullptr;  // set before the router starts; outlives it
  };
  MqttRouteBus routeBus;
  router::HttpServiceCaller serviceCaller;
  router::EdgeRouter edgeRouter({.nodeName = config.nodeName}, cache, cache, routeBus,
                                serviceCaller, clock);
  std::unique_ptr<eventbus::MqttClient> mqtt;
  if (!config.mqttServer.empty()) {
    eventbus::MqttClientOptions mqttOptions;
    mqttOptions.server = config.mqttServer;
    mqttOptions.connect.clientId = config.mqttClientId;
    // A persistent session: the broker keeps QoS 1 messages for edgecore while it restarts.
    mqttOptions.connect.cleanSession = false;
    mqttOptions.connect.username = config.mqttUsername;
    mqttOptions.connect.password = config.mqttPassword;
    // TLS to the broker (ssl://): files named in the config, errors naming their key.
    mqttOptions.tlsFactory = eventbus::wolfsslMqttTls();
    mqttOptions.tls.serverName = config.mqttServerName;
    mqttOptions.tls.insecureSkipVerify = config.mqttInsecureSkipVerify;
    mqttOptions.tls.names = {.ca = "mqtt.caFile " + config.mqttCaFile,
                             .cert = "mqtt.certFile " + config.mqttCertFile,
                             .key = "mqtt.keyFile " + config.mqttKeyFile,
                             .serverName = "mqtt.serverName",
                             .insecure = "mqtt.insecureSkipVerify"};
    for (auto [path, pem] : {std::pair{&config.mqttCaFile, &mqttOptions.tls.caPem},
                             {&config.mqttCertFile, &mqttOptions.tls.certPem},
                             {&config.mqttKeyFile, &mqttOptions.tls.keyPem}}) {
      if (path->empty()) continue;
      auto content = pki::readFile(*path);
      if (!content) {
        spdlog::critical("mqtt: {}", content.status().message());
        return services.fail(2);
      }
      *pem = std::move(content).value();
    }
    for (const auto& topic : devicetwin::TwinEngine::subscriptions()) {
      mqttOptions.subscriptions.emplace_back(topic, 1);
    }
    mqttOptions.subscriptions.emplace_back(router::EdgeRouter::kUploadFilter, 1);
    mqtt = std::make_unique<eventbus::MqttClient>(
        mqttOptions, [&twin, &edgeRouter](eventbus::InboundMessage m) {
          if (router::EdgeRouter::owns(m.topic)) {  // a Rule topic or an upload
            edgeRouter.onMessage(std::move(m));
            return;
          }
          twin.onMessage({.topic = std::move(m.topic),
                          .payload = std::move(m.payload),
                          .qos = m.qos,
                          .packetId = m.packetId,
                          .generation = m.generation});
        });
    bus.client = mqtt.get();
    routeBus.client = mqtt.get();
  } else {
    spdlog::warn("edgecore: mqtt.server is empty: devices speaking MQTT cannot reach this node");
  }
  if (!services
           .start(
               "devicetwin", [&] { return twin.start(); }, [&] { twin.stop(); })
           .isOk()) {
    return services.fail(1);
  }
  std::unique_ptr<dmi::DeviceManager> deviceManager;  // mappers (KubeEdge DMI v1beta1)
  if (!config.dmiSocket.empty()) {
    deviceManager = std::make_unique<dmi::DeviceManager>(
        dmi::DeviceManagerOptions{.socketPath = config.dmiSocket, .nodeName = config.nodeName},
        cache, twin, clock);
    if (!services
             .start(
                 "dmi", [&] { return deviceManager->start(); }, [&] { deviceManager->stop(); })
             .isOk()) {
      return services.fail(1);
    }
  }
  if (!services
           .start(
               "router", [&] { return edgeRouter.start(); },
               [&] {
                 hub.setRouteHandler(nullptr);
                 edgeRouter.stop();
               })
           .isOk()) {
    return services.fail(1);
  }
  hub.setRouteHandler(&edgeRouter);
  if (mqtt) {
    if (!services
             .start(
                 "eventbus", [&] { return mqtt->start(); }, [&] { mqtt->stop(); })
             .isOk()) {
      return services.fail(1);
    }
  }

  // edged: pods on the container runtime, driven by the cache (works with the cloud away).
  std::unique_ptr<edged::Edged> podManager;
  if (runtime) {
    podManager = std::make_unique<edged::Edged>(
        edged::EdgedOptions{
            .nodeName = config.nodeName,
            .dataDir = config.dataDir,
            .hostIp = hostInfo.collect().internalIp,
            .syncPeriod = config.podSyncPeriod,
            .workers = config.podWorkers,
            .containerLogMaxSize = config.containerLogMaxSize,
            .containerLogMaxFiles = config.containerLogMaxFiles,
            .modelBlobs = [&modelContent](const api::ModelVersion& v, const std::string& ociKey)
                -> std::optional<edged::LocatedModel> {
              std::string digest = v.digest, file = v.file;
              uint64_t size = v.size;
              if (v.oci) {
                auto r = modelContent.resolution(ociKey);
                if (!r) return std::nullopt;
                digest = r->digest;
                file = r->file;
                size = r->size;
              }
              auto path = modelContent.complete(digest);
              if (!path) return std::nullopt;
              return edged::LocatedModel{*path, digest, file, size};
            }},
        *runtime, cache, cache, clock);
    if (!services
             .start(
                 "edged", [&] { return podManager->start(); },
                 [&] {
                   edgedForStatus = nullptr;
                   podManager->stop();  // containers keep running
                 })
             .isOk()) {
      return services.fail(1);
    }
    edgedForStatus = podManager.get();
    streams = std::make_unique<edged::streaming::StreamServer>(*runtime);
    hub.setStreamHandler(streams.get());
  } else {
    spdlog::warn("edgecore: runtimeEndpoint is empty: pods bound to this node will not run");
  }
  // Models (docs/models.md): the files of the models this node's pods use, fetched through the
  // tunnel (or pulled from an OCI registry) into DATA_DIR/models; edged switches the volumes
  // when one completes.
  edged::Edged* edgedForModels = podManager.get();
  models::ModelFetcher fetcher(
      {.nodeName = config.nodeName,
       .architecture = architecture,
       .bandwidthBytesPerSecond = config.modelBandwidthLimit},
      cache, cache, modelContent,
      [edgedForModels] {
        if (edgedForModels) edgedForModels->refreshVolumes();
      },
      oci::makeHttpsOciRegistry({.certsDir = config.modelRegistryCertsDir}));
  if (auto s = fetcher.start(); !s.isOk()) {
    spdlog::error("models: {}; model volumes will wait", s.toString());
  } else {
    hub.setBlobHandler(&fetcher);
    fetcherForStatus = &fetcher;
    services.started("models", [&] {
      fetcherForStatus = nullptr;
      hub.setBlobHandler(nullptr);
      fetcher.stop();
    });
  }
  // Resource metrics (docs/metrics.md): node and container CPU/memory for `kubectl top`, sent
  // while the tunnel is up and never stored.
  stats::ProcNodeUsage nodeUsage;
  std::unique_ptr<stats::StatsReporter> statsReporter;
  if (runtime && config.statsInterval.count() > 0) {
    statsReporter = std::make_unique<stats::StatsReporter>(
        stats::StatsOptions{.nodeName = config.nodeName, .interval = config.statsInterval},
        *runtime, nodeUsage,
        [&hub](edgeplane::tunnel::v1::EdgeMessage&& m) {
          return hub.sendIfConnected(std::move(m), kFeatureResourceMetrics);
        },
        clock);
    statsReporter->start();
    statsForStatus = statsReporter.get();
    services.started("stats", [&] {
      statsForStatus = nullptr;
      statsReporter->stop();
    });
  }
  // The service proxy (docs/services.md): cluster IPs and node ports to this node's endpoints,
  // from the cache, so it works offline.
  std::unique_ptr<serviceproxy::RuleApplier> ruleApplier;
  std::unique_ptr<serviceproxy::ServiceProxy> serviceProxy;
  if (config.serviceProxy == "iptables") {
    ruleApplier = serviceproxy::makeIptablesApplier();
    serviceProxy = std::make_unique<serviceproxy::ServiceProxy>(
        serviceproxy::ServiceProxyOptions{.nodeName = config.nodeName}, cache, *ruleApplier);
    serviceProxy->start();
    proxyForStatus = serviceProxy.get();
    services.started("service proxy", [&] {
      proxyForStatus = nullptr;
      serviceProxy->stop();
    });
  }
  spdlog::info("edgecore {} {} ready (cloud {}, data dir {})", config.nodeName, EP_VERSION_STRING,
               config.cloud, config.dataDir);

  // Every 10 s the main thread hands freed heap back to the kernel: applying a large Sync (a
  // thousand devices) or a burst of reports leaves megabytes free but resident in glibc's
  // arenas (1,000 devices: 18.8 MiB idle before, 15.8 MiB after; docs/performance.md).
  // SIGUSR1 is the upgrade's handover (docs/upgrades.md); a stray one is ignored.
  int sig = 0;
  for (;;) {
    sig = waitForTerminationSignal(10, [] { malloc_trim(0); });
    if (sig != SIGUSR1 || upgrades.handoverTarget()) break;
    spdlog::warn("edgecore: SIGUSR1 without an upgrade handover; ignored");
  }
  spdlog::info("edgecore: signal {}, shutting down", sig);
  services.stopAll();
  if (sig == SIGUSR1 && terminationSignalPending()) {
    spdlog::info("edgecore: stopping, not handing over (SIGTERM during the handover)");
    sig = SIGTERM;
  }
  if (sig != SIGUSR1) {
    upgrades.abandonHandover();  // a stop wins over a handover requested meanwhile
  } else if (auto target = upgrades.handoverTarget()) {
    // Same process, same arguments, the other binary. Nothing of this process's may reach
    // the next one but stdin/stdout/stderr (listeners such as the local API's port, the cache
    // database): some are still open here (objects outlive their stop) and not all were
    // opened close-on-exec. Should exec fail, the exit makes the service manager start the
    // installed binary, which records the rollback.
    spdlog::info("edgecore: handing over to {}", *target);
    spdlog::shutdown();
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {  // kernels before 5.11: one by one
      std::error_code ec;
      std::vector<int> fds;
      for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        const std::string n = e.path().filename().string();
        if (!n.empty() && std::all_of(n.begin(), n.end(), ::isdigit)) fds.push_back(std::stoi(n));
      }
      for (int fd : fds) {
        if (fd > 2) ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
      }
    }
    ::execv(target->c_str(), argv);
    std::cerr << "edgecore: exec " << *target << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  spdlog::info("edgecore: stopped");
  return 0;
}
