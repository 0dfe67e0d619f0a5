#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace ep::registry {
class Registry;
}
namespace ep::certs {
class NodeCertificates;
}

namespace edgeplane::tunnel::v1 {
class BlobRequest;
class ResourceMetrics;
}  // namespace edgeplane::tunnel::v1

namespace ep::cloudhub {

class Dispatcher;
class Metrics;
class NodeLeases;
class NodeStateStore;
class ReportApplier;
class RouteBroker;
class StreamBroker;
class SyncSink;

// Where the tunnel hands model blob requests (docs/models.md): cloudcore/models' BlobServer; a
// seam so cloudhub needs nothing from it. Called on a reaction thread: must not block. The
// answer (one BlobChunk) goes to `sink`.
class BlobRequestHandler {
 public:
  virtual ~BlobRequestHandler() = default;
  virtual void onBlobRequest(const std::string& node, const std::shared_ptr<SyncSink>& sink,
                             const edgeplane::tunnel::v1::BlobRequest& request) = 0;
};

// Where the tunnel hands a node's resource metrics (docs/metrics.md): cloudcore/resourcemetrics'
// store; a seam so cloudhub needs nothing from it. Called on a reaction thread: must not block.
// `node` is the stream's authenticated node.
class ResourceMetricsSink {
 public:
  virtual ~ResourceMetricsSink() = default;
  virtual void onResourceMetrics(const std::string& node,
                                 const edgeplane::tunnel::v1::ResourceMetrics& metrics) = 0;
};

// Runs a task on the worker pool (registry/store writes). Must not run it inline.
using Executor = std::function<void(std::function<void()>)>;

struct TunnelServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 6444;  // 0 picks a free port (see port())
  // nodeRegistration: manual -> a Hello from a node without a Node object is refused.
  bool manualRegistration = false;
  // Messages queued per node before its stream is ended with RESOURCE_EXHAUSTED.
  size_t sendQueueLimit = 1024;
  std::string version = "0.0.0";  // HelloReply.cloudcore_version
  // A stream that sends no first message within this is ended (DEADLINE_EXCEEDED).
  std::chrono::milliseconds helloTimeout{10000};
  // mTLS: see CloudHubOptions. With tlsCertPem set, Connect needs a node certificate whose CN
  // names the Hello's node and whose serial the Node lists; only TLS 1.3 is accepted.
  std::string tlsCertPem;
  std::string tlsKeyPem;
  std::string caPem;
  certs::NodeCertificates* nodeCertificates = nullptr;
  // 80 bytes encrypting TLS 1.3 session tickets (DATA_DIR/pki/tunnel-ticket.key): the same key
  // after a restart lets nodes resume without a full handshake. Empty = random per process.
  std::string ticketKey;
  std::chrono::seconds ticketLifetime{24 * 3600};
  unsigned ioThreads = 2;  // the tunnel's I/O threads
  // An open stream of a deleted Node is closed within this.
  std::chrono::milliseconds revocationCheckInterval{1000};
};

// The gRPC Tunnel service (docs/tunnel.md) on grpclite's StreamServer (HTTP/2 on nghttp2, TLS on
// OpenSSL directly: an idle node costs no TLS buffers), with gRPC's callback contract: one
// observer per edge stream, so no thread is parked per node. Reactions never block: node lookups
// and report application run on the injected executor, syncs come from the Dispatcher thread. Per
// stream at most one read and one write are in flight; each node has its own bounded send queue and
// mutex, so a slow or stuck node never delays another. The transport stays behind this pimpl.
//
// start()/stop() from one owner thread; other methods are thread-safe. The injected objects
// must outlive the server, and the executor must keep running until stop() returned.
class TunnelServer {
 public:
  TunnelServer(TunnelServerOptions options, registry::Registry& registry, Dispatcher& dispatcher,
               NodeStateStore& nodeState, ReportApplier& applier, Metrics& metrics,
               Executor executor);
  ~TunnelServer();
  TunnelServer(const TunnelServer&) = delete;
  TunnelServer& operator=(const TunnelServer&) = delete;

  // Logs/exec streams of accepted nodes are routed through `broker` (it must outlive the
  // server). Call before start(); without one, edge stream messages are ignored.
  void setStreamBroker(StreamBroker* broker);
  // Rule messages (RouteDeliver/RouteResult) likewise go through `routes`.
  void setRouteBroker(RouteBroker* routes);
  // Model blob requests likewise go to `blobs`; without one they are answered with an error.
  void setBlobHandler(BlobRequestHandler* blobs);
  // Resource metrics likewise go to `sink`; without one they are dropped.
  void setResourceMetricsSink(ResourceMetricsSink* sink);
  // Renews nodes' Leases on their LeaseRenewal messages (and lists kFeatureNodeLease in every
  // HelloReply); null (the default): the feature is not offered. Set before start(); must
  // outlive the server.
  void setNodeLeases(NodeLeases* leases);

  Status start();
  // Ends every stream (UNAVAILABLE) and shuts the server down.
  void stop();
  uint16_t port() const;
  size_t connectedNodes() const;

  // Ends `node`'s stream (UNAVAILABLE `why`), if it has one; the edge reconnects. Thread-safe,
  // non-blocking.
  void closeNode(const std::string& node, const std::string& why);
  // Reports of `node` up to `sequence` are durably recorded: acknowledge them on its stream.
  // Called from the node state store's flush thread; never blocks.
  void reportsPersisted(const std::string& node, uint64_t sequence);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::cloudhub
