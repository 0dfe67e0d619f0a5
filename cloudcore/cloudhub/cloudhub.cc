#include "cloudcore/cloudhub/cloudhub.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <optional>

#include "cloudcore/cloudhub/dispatcher.h"
#include "cloudcore/cloudhub/metrics.h"
#include "cloudcore/cloudhub/node_leases.h"
#include "cloudcore/cloudhub/node_state_store.h"
#include "cloudcore/cloudhub/report_applier.h"
#include "cloudcore/cloudhub/route_broker.h"
#include "cloudcore/cloudhub/stream_broker.h"
#include "cloudcore/cloudhub/tunnel_server.h"
#include "cloudcore/registry/registry.h"

namespace ep::cloudhub {

struct CloudHub::Impl {
  Impl(CloudHubOptions o, registry::Registry& r)
      : options(std::move(o)),
        registry(r),
        nodeState(NodeStateStoreOptions{options.dataDir, options.flushInterval}),
        dispatcher(r.store(), metrics),
        leases(options.nodeLeaseDuration.count() > 0
                   ? std::make_unique<NodeLeases>(
                         r, options.clock ? *options.clock : SystemClock::instance(),
                         [this](std::function<void()> task) { execute(std::move(task)); },
                         options.nodeLeaseDuration,
                         [this](const std::string& node) {
                           // The node may be Unknown: its reconnect brings the full status.
                           if (server) server->closeNode(node, "lease lapsed; send status");
                         },
                         NodeLeases::Batching{.window = options.leaseWriteWindow,
                                              .parallel = options.workerThreads})
                   : nullptr),
        // With node certificates, Nodes are registered by joining, never by a report.
        applier(r, !options.manualRegistration && options.nodeCertificates == nullptr,
                options.deviceData, options.routedMessages, leases.get(),
                options.clock ? *options.clock : SystemClock::instance()),
        broker(StreamBrokerOptions{.maxStreamsPerNode = options.maxStreamsPerNode}) {}

  // Runs `task` on the worker pool (started by start(), joined by stop()); before start() the
  // task is dropped.
  void execute(std::function<void()> task) {
    if (!pool) return;
    boost::asio::post(*pool, [task = std::move(task)] {
      try {
        task();
      } catch (const std::exception& e) {
        spdlog::error("cloudhub: worker task failed: {}", e.what());
      }
    });
  }

  const CloudHubOptions options;
  registry::Registry& registry;
  Metrics metrics;
  NodeStateStore nodeState;
  Dispatcher dispatcher;
  std::optional<boost::asio::thread_pool> pool;
  std::unique_ptr<NodeLeases> leases;  // written by the pool's tasks
  ReportApplier applier;
  StreamBroker broker;
  std::unique_ptr<TunnelServer> server;
  bool started = false;
};

CloudHub::CloudHub(CloudHubOptions options, registry::Registry& registry)
    : impl_(std::make_unique<Impl>(std::move(options), registry)) {}

CloudHub::~CloudHub() {
  stop();
}

Status CloudHub::start() {
  auto& d = *impl_;
  d.pool.emplace(d.options.workerThreads);
  TunnelServerOptions so;
  so.host = d.options.host;
  so.port = d.options.port;
  so.manualRegistration = d.options.manualRegistration;
  so.sendQueueLimit = d.options.sendQueueLimit;
  so.version = d.options.version;
  so.helloTimeout = d.options.helloTimeout;
  so.tlsCertPem = d.options.tlsCertPem;
  so.tlsKeyPem = d.options.tlsKeyPem;
  so.caPem = d.options.caPem;
  so.ticketKey = d.options.ticketKey;
  so.nodeCertificates = d.options.nodeCertificates;
  d.server = std::make_unique<TunnelServer>(
      so, d.registry, d.dispatcher, d.nodeState, d.applier, d.metrics,
      [&d](std::function<void()> task) { d.execute(std::move(task)); });
  d.server->setStreamBroker(&d.broker);
  if (d.leases) d.server->setNodeLeases(d.leases.get());
  if (d.options.routes != nullptr) d.server->setRouteBroker(d.options.routes);
  if (d.options.blobs != nullptr) d.server->setBlobHandler(d.options.blobs);
  if (d.options.resourceMetrics != nullptr) {
    d.server->setResourceMetricsSink(d.options.resourceMetrics);
  }
  TunnelServer* server = d.server.get();
  d.nodeState.setOnPersisted(
      [server](const std::string& node, uint64_t seq) { server->reportsPersisted(node, seq); });
  if (auto s = d.nodeState.start(); !s.isOk()) return s;
  if (auto s = d.dispatcher.start(); !s.isOk()) {
    d.nodeState.stop();
    return s;
  }
  if (auto s = d.server->start(); !s.isOk()) {
    d.dispatcher.stop();
    d.nodeState.stop();
    return s;
  }
  // Last, so that no failure above leaves its thread running (renewals before it are written
  // as they come).
  if (d.leases) d.leases->start();
  d.started = true;
  return Status::ok();
}

void CloudHub::stop() {
  auto& d = *impl_;
  if (!d.started) return;
  d.started = false;
  d.server->stop();
  if (d.leases) d.leases->stop();  // what is due goes to the pool now
  d.pool->join();  // lease writes included: nothing renews them once the server stopped
  d.dispatcher.stop();
  d.nodeState.stop();
}

uint16_t CloudHub::port() const {
  return impl_->server ? impl_->server->port() : 0;
}
size_t CloudHub::connectedNodes() const {
  return impl_->server ? impl_->server->connectedNodes() : 0;
}
std::string CloudHub::metricsText() const {
  return impl_->metrics.render();
}
Metrics& CloudHub::metrics() {
  return impl_->metrics;
}
NodeStateStore& CloudHub::nodeState() {
  return impl_->nodeState;
}
Dispatcher& CloudHub::dispatcher() {
  return impl_->dispatcher;
}
StreamBroker& CloudHub::streams() {
  return impl_->broker;
}
NodeLeases* CloudHub::nodeLeases() {
  return impl_->leases.get();
}

}  // namespace ep::cloudhub
