#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/edgehub/stream_handler.h"
#include "edgecore/eventbus/mqtt_client.h"
#include "edgecore/metamanager/cache.h"

namespace ep::edgecore::router {

// The node's MQTT broker as the router uses it (the eventbus's MqttClient in production).
class RouteBus {
 public:
  virtual ~RouteBus() = default;
  virtual bool connected() const = 0;
  // QoS 1; `done` once the broker acknowledged it (or with why not). Never blocks; `done` runs
  // on another thread and must not block.
  virtual Status publish(std::string topic, std::string payload,
                         std::function<void(Status)> done) = 0;
  // The Rule topics to receive (the whole set, replacing the previous one).
  virtual Status setRuleTopics(std::vector<std::string> topics) = 0;
  virtual void acknowledge(uint64_t generation, uint16_t packetId) = 0;
};

// One HTTP request to a service on this node (servicebus).
struct ServiceCall {
  uint16_t port = 0;
  std::string method;
  std::string path;  // with query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{30000};
};
struct ServiceAnswer {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Calls services on this node. Blocking; thread-safe.
class ServiceCaller {
 public:
  virtual ~ServiceCaller() = default;
  virtual Result<ServiceAnswer> call(const ServiceCall& call) = 0;
};

// The real caller: plain HTTP/1.1 to 127.0.0.1:PORT (ep_http_client_small).
class HttpServiceCaller final : public ServiceCaller {
 public:
  // Larger answers are refused: a RouteResult must fit in one tunnel message (4 MiB).
  explicit HttpServiceCaller(size_t maxResponseBytes = 3u << 20)
      : maxResponseBytes_(maxResponseBytes) {}
  Result<ServiceAnswer> call(const ServiceCall& call) override;

 private:
  const size_t maxResponseBytes_;
};

struct EdgeRouterOptions {
  std::string nodeName;
  size_t maxQueue = 4096;       // broker messages waiting for the worker (QoS 0 beyond: dropped)
  size_t serviceWorkers = 2;    // concurrent servicebus calls
  size_t maxServiceCalls = 64;  // waiting servicebus calls; beyond them the cloud gets "busy"
  std::chrono::milliseconds defaultServiceTimeout{30000};
};

struct EdgeRouterStats {
  uint64_t routed = 0;     // messages put in the outbox for the cloud (Rules and uploads)
  uint64_t unrouted = 0;   // messages on a topic no Rule takes (acknowledged, dropped)
  uint64_t published = 0;  // cloud messages the broker acknowledged
  uint64_t serviceCalls = 0;
  uint64_t failures = 0;
  std::vector<std::string> topics;  // Rule topics subscribed
};

// The edge side of Rules (docs/rules.md), KubeEdge's eventbus and servicebus for the router:
//   - eventbus -> rest: subscribes to {namespace}/{topic} of every usable Rule whose source is
//     this node's eventbus, and puts each message in the durable outbox (REPORT_KIND_ROUTED_
//     MESSAGE) before acknowledging it to the broker; the cloud POSTs it on.
//   - rest -> eventbus: publishes a RouteDeliver's body on its topic (QoS 1) and answers once
//     the broker acknowledged it.
//   - rest -> servicebus: calls 127.0.0.1:PORT and answers with the response.
//   - uploads: messages on $hw/events/upload/# (subscribed by the eventbus) go to the outbox
//     as routed messages of no Rule; the cloud keeps them as the node's time series.
// Rules and RuleEndpoints come from the cache, so subscriptions survive restarts and outages.
//
// Threads: one worker (cache events, outbox writes) and up to serviceWorkers for HTTP calls,
// started by the first calls.
// onMessage/onRouteDeliver never block and may be called from any thread; start()/stop() from
// the owner. The injected objects must outlive the router.
class EdgeRouter final : public edgehub::RouteHandler {
 public:
  EdgeRouter(EdgeRouterOptions options, metamanager::CacheReader& cache,
             metamanager::Outbox& outbox, RouteBus& bus, ServiceCaller& caller, const Clock& clock);
  ~EdgeRouter() override;
  EdgeRouter(const EdgeRouter&) = delete;
  EdgeRouter& operator=(const EdgeRouter&) = delete;

  Status start();
  void stop();

  // KubeEdge's upload topic: what devices and apps publish under it goes to the cloud, kept
  // there as the node's time series (docs/rules.md, "Uploads").
  static constexpr const char* kUploadFilter = "$hw/events/upload/#";
  static bool isUpload(const std::string& topic) {
    return topic.rfind("$hw/events/upload/", 0) == 0;
  }
  // Whether a broker message on `topic` is the router's: uploads and every topic outside
  // KubeEdge's $hw/ (Rule topics).
  static bool owns(const std::string& topic) {
    return topic.rfind("$hw/", 0) != 0 || isUpload(topic);
  }
  // A broker message on a Rule topic or an upload (the eventbus's own type).
  void onMessage(eventbus::InboundMessage message);
  void onRouteDeliver(edgeplane::tunnel::v1::RouteDeliver deliver,
                      edgehub::StreamSender send) override;

  EdgeRouterStats stats() const;

 private:
  struct ServiceJob {
    edgeplane::tunnel::v1::RouteDeliver deliver;
    edgehub::StreamSender send;
  };
  void run();
  void serviceLoop();
  void rebuild();
  void route(const eventbus::InboundMessage& m);

  const EdgeRouterOptions options_;
  metamanager::CacheReader& cache_;
  metamanager::Outbox& outbox_;
  RouteBus& bus_;
  ServiceCaller& caller_;
  const Clock& clock_;

  std::shared_ptr<metamanager::Subscription> ruleSub_, endpointSub_;  // worker (and start)
  // Rule topic -> the Rules (namespace, name) that take it. Worker thread only.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> routes_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<eventbus::InboundMessage> queue_ EP_GUARDED_BY(mu_);
  std::deque<ServiceJob> services_ EP_GUARDED_BY(mu_);
  bool wake_ EP_GUARDED_BY(mu_) = false;  // cache events are pending
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  EdgeRouterStats stats_ EP_GUARDED_BY(mu_);
  size_t idleServiceThreads_ EP_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> serviceThreads_ EP_GUARDED_BY(mu_);  // started on demand
  std::thread worker_;
};

}  // namespace ep::edgecore::router
