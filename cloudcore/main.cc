// cloudcore: the cloud control plane. Wires the store, registry, cloudhub (edge tunnel), node
// controller, workload controllers and API server, then waits for SIGINT/SIGTERM and stops them
// in reverse order.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/apiserver/pod_streams.h"
#include "cloudcore/apiserver/scale_subresource.h"
#include "cloudcore/cloudhub/cloudhub.h"
#include "cloudcore/config.h"
#include "cloudcore/controllers/deployment_controller.h"
#include "cloudcore/controllers/event_gc.h"
#include "cloudcore/controllers/node_controller.h"
#include "cloudcore/controllers/pod_eviction_controller.h"
#include "cloudcore/controllers/replicaset_controller.h"
#include "cloudcore/controllers/scheduler.h"
#include "cloudcore/registry/registry.h"
#include "cloudcore/store/sqlite_store.h"
#include "common/http/server.h"
#include "common/log.h"
#include "common/signals.h"
#include "proto/grpc_runtime.h"

#ifndef EP_VERSION_STRING
#define EP_VERSION_STRING "0.0.0"
#endif

int main(int argc, char** argv) {
  ep::tuneGrpcRuntime();
  using namespace ep;
  CLI::App app{"cloudcore: edgeplane cloud control plane"};
  std::string configPath, dataDir, apiListen, tunnelListen, logLevel, historyWindow;
  uint64_t maxBody = 0;
  app.add_option("--config", configPath, "YAML configuration file");
  app.add_option("--data-dir", dataDir, "directory for the embedded store");
  app.add_option("--api-listen", apiListen, "HOST:PORT of the Kubernetes-style API");
  app.add_option("--tunnel-listen", tunnelListen, "HOST:PORT of the edge tunnel (cloudhub)");
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error");
  app.add_option("--history-window", historyWindow, "watch history kept, e.g. 1h");
  app.add_option("--max-body-bytes", maxBody, "largest accepted request body");
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
  if (!logLevel.empty()) config.logLevel = logLevel;
  if (maxBody) config.maxBodyBytes = maxBody;
  if (!historyWindow.empty()) {
    auto d = parseDurationSeconds("--history-window", historyWindow);
    if (!d.isOk()) {
      std::cerr << "cloudcore: invalid configuration: " << d.status().message() << "\n";
      return 2;
    }
    config.historyWindow = *d;
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
  store::SqliteStoreOptions storeOptions;
  storeOptions.dataDir = config.dataDir;
  storeOptions.historyWindow = config.historyWindow;
  storeOptions.compactionInterval = config.compactionInterval;
  store::SqliteStore store(storeOptions, clock);
  if (auto s = store.start(); !s.isOk()) {
    spdlog::critical("{}", s.message());
    return 1;
  }
  registry::Registry registry(store, clock);
  if (auto s = registry.ensureSystemNamespaces(); !s.isOk()) {
    spdlog::critical("creating system namespaces: {}", s.toString());
    store.stop();
    return 1;
  }
  cloudhub::CloudHubOptions hubOptions;
  if (auto s = splitHostPort("tunnelListen", config.tunnelListen, hubOptions.host, hubOptions.port);
      !s.isOk()) {
    spdlog::critical("{}", s.message());
    store.stop();
    return 2;
  }
  hubOptions.dataDir = config.dataDir;
  hubOptions.manualRegistration = config.nodeRegistration == "manual";
  hubOptions.version = EP_VERSION_STRING;
  cloudhub::CloudHub hub(hubOptions, registry);
  if (auto s = hub.start(); !s.isOk()) {
    spdlog::critical("cloudhub: {}", s.toString());
    store.stop();
    return 1;
  }
  controllers::NodeController nodeController(registry, clock,
                                             {.gracePeriod = config.nodeGracePeriod});
  if (auto s = nodeController.start(); !s.isOk()) {
    spdlog::critical("node controller: {}", s.toString());
    hub.stop();
    store.stop();
    return 1;
  }
  // Workload controllers (docs/workloads.md), started after and stopped before the node
  // controller; stopWorkloads() stops whichever started, in reverse order.
  controllers::Scheduler scheduler(registry, clock);
  controllers::ReplicaSetController replicaSetController(registry, clock);
  controllers::DeploymentController deploymentController(registry, clock);
  controllers::PodEvictionController podEviction(registry, clock,
                                                 {.timeout = config.podEvictionTimeout});
  controllers::EventGc eventGc(registry, clock, {.ttl = config.eventTTL});
  auto stopWorkloads = [&] {
    eventGc.stop();
    podEviction.stop();
    deploymentController.stop();
    replicaSetController.stop();
    scheduler.stop();
  };
  for (auto [name, startFn] :
       std::initializer_list<std::pair<const char*, std::function<Status()>>>{
           {"scheduler", [&] { return scheduler.start(); }},
           {"replicaset controller", [&] { return replicaSetController.start(); }},
           {"deployment controller", [&] { return deploymentController.start(); }},
           {"pod eviction", [&] { return podEviction.start(); }},
           {"event gc", [&] {
              eventGc.start();
              return Status::ok();
            }}}) {
    if (auto s = startFn(); !s.isOk()) {
      spdlog::critical("{}: {}", name, s.toString());
      stopWorkloads();
      nodeController.stop();
      hub.stop();
      store.stop();
      return 1;
    }
  }

  apiserver::ApiHandler handler(registry, clock, {.version = EP_VERSION_STRING});
  apiserver::installScaleSubresource(handler, registry);
  handler.addRoute("/metrics", [&hub](http::ServerRequest&) {
    http::ServerResponse r;
    r.status = 200;
    r.contentType = "text/plain; version=0.0.4; charset=utf-8";
    r.body = hub.metricsText();
    return r;
  });
  apiserver::PodStreams podStreams(registry, hub.streams());  // pods/log, pods/exec
  podStreams.install(handler);
  http::ServerOptions httpOptions;
  if (auto s = splitHostPort("apiListen", config.apiListen, httpOptions.host, httpOptions.port);
      !s.isOk()) {
    spdlog::critical("{}", s.message());
    stopWorkloads();
    nodeController.stop();
    hub.stop();
    store.stop();
    return 2;
  }
  httpOptions.maxBodyBytes = config.maxBodyBytes;
  httpOptions.workerThreads = static_cast<size_t>(config.workerThreads);
  http::Server server(httpOptions,
                      [&handler](http::ServerRequest& r) { return handler.handle(r); });
  if (auto s = server.start(); !s.isOk()) {
    spdlog::critical("{}", s.message());
    stopWorkloads();
    nodeController.stop();
    hub.stop();
    store.stop();
    return 1;
  }
  handler.setReady(true);
  spdlog::info("cloudcore {} ready (data dir {})", EP_VERSION_STRING, config.dataDir);

  int sig = waitForTerminationSignal();
  spdlog::info("cloudcore: signal {}, shutting down", sig);
  handler.setReady(false);
  server.stop();
  stopWorkloads();
  nodeController.stop();
  hub.stop();
  store.stop();
  spdlog::info("cloudcore: stopped");
  return 0;
}
