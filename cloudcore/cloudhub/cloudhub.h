#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace ep::registry {
class Registry;
}
namespace ep::certs {
class NodeCertificates;
}
namespace ep::devicedata {
class DeviceDataStore;
}

namespace ep::cloudhub {

class Dispatcher;
class Metrics;
class NodeLeases;
class NodeStateStore;
class ReportApplier;
class RouteBroker;
class BlobRequestHandler;
class ResourceMetricsSink;
class RoutedMessageSink;
class StreamBroker;
class TunnelServer;

struct CloudHubOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 6444;             // 0 picks a free port
  std::string dataDir;              // cloudhub.db lives here
  bool manualRegistration = false;  // nodeRegistration: manual
  size_t sendQueueLimit = 1024;
  size_t workerThreads = 8;  // report application, node lookups
  std::chrono::milliseconds flushInterval{1000};
  std::string version = "0.0.0";
  std::chrono::milliseconds helloTimeout{10000};
  size_t maxStreamsPerNode = 16;  // concurrent logs/exec streams per node
  // mTLS (docs/security.md): serving certificate and key, the cluster CA node certificates
  // chain to, and the authority that joins, renews and checks nodes (must outlive the hub).
  // cloudcore always sets them; without them the tunnel is plaintext and trusts the Hello's
  // node name (in-process unit tests only).
  std::string tlsCertPem;
  std::string tlsKeyPem;
  std::string caPem;
  std::string ticketKey;  // TunnelServerOptions::ticketKey
  certs::NodeCertificates* nodeCertificates = nullptr;
  // Where device data reports go (must outlive the hub); null: acknowledged and not kept.
  devicedata::DeviceDataStore* deviceData = nullptr;
  // Where messages edge apps publish on Rule topics go (the router; must outlive the hub);
  // null: such reports are refused (and acknowledged).
  RoutedMessageSink* routedMessages = nullptr;
  // Carries the router's messages to nodes (must outlive the hub); null: RouteResults are
  // ignored.
  RouteBroker* routes = nullptr;
  // Serves model blobs to nodes (must outlive the hub); null: BlobRequests get an error.
  BlobRequestHandler* blobs = nullptr;
  // Keeps nodes' resource metrics for metrics.k8s.io (must outlive the hub); null: dropped.
  ResourceMetricsSink* resourceMetrics = nullptr;
  // Node heartbeats renew Leases in kube-node-lease (node_leases.h) of this duration (the node
  // grace period); 0: no Leases, every NODE_STATUS report is a Node write (unit tests).
  std::chrono::seconds nodeLeaseDuration{40};
  // Lease renewals are gathered this long and written in a burst (NodeLeases::Batching), so
  // that the store commits several together; 0: each written as it comes.
  std::chrono::milliseconds leaseWriteWindow{100};
  // The clock of the Leases' renewTime; null: the system clock.
  Clock* clock = nullptr;
};

// cloudhub: the tunnel server side of docs/tunnel.md, assembled from its parts (node state
// store, dispatcher, report applier, worker pool, gRPC server). Owns all of them.
//
// Lifecycle: start() starts node state store -> dispatcher -> tunnel server; stop() stops them
// in reverse (server first, then the worker pool drains, then dispatcher and the final flush).
// start()/stop() from one owner thread; the accessors are thread-safe.
class CloudHub {
 public:
  CloudHub(CloudHubOptions options, registry::Registry& registry);
  ~CloudHub();
  CloudHub(const CloudHub&) = delete;
  CloudHub& operator=(const CloudHub&) = delete;

  Status start();
  void stop();

  uint16_t port() const;
  size_t connectedNodes() const;
  // Prometheus text for GET /metrics.
  std::string metricsText() const;
  Metrics& metrics();
  NodeStateStore& nodeState();
  Dispatcher& dispatcher();
  // Opens logs/exec streams to connected nodes (stream_broker.h).
  StreamBroker& streams();
  // The node Leases; null when options.nodeLeaseDuration is 0.
  NodeLeases* nodeLeases();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::cloudhub
