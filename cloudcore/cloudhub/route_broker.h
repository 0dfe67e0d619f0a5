#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cloudcore/cloudhub/dispatcher.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace edgeplane::tunnel::v1 {
class RouteResult;
}  // namespace edgeplane::tunnel::v1

namespace ep::cloudhub {

// One message of a Rule for a node (docs/rules.md): either a publish on the node's MQTT broker
// (`topic` set) or an HTTP request to a service on the node (`servicePort` set).
struct RouteRequest {
  std::string ruleNamespace;
  std::string ruleName;
  std::string topic;
  uint32_t servicePort = 0;
  std::string method;
  std::string path;  // with query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  uint32_t timeoutMs = 0;
};

// The node's answer. `status` is OK when delivered (servicebus: `httpStatus`, `headers` and
// `body` are the service's response); the edge's error (kUnavailable) otherwise, or
// kUnavailable "node N disconnected" when the node's session ended first.
struct RouteReply {
  Status status;
  int httpStatus = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Called once per request: on a gRPC reaction thread (the result) or the thread that noticed
// the disconnect. Must not block.
using RouteCallback = std::function<void(RouteReply)>;

struct RouteBrokerOptions {
  size_t maxPendingPerNode = 256;  // RouteDelivers awaiting their RouteResult per node
};

// Carries rule messages over the tunnel: send() puts a RouteDeliver on the node's current
// session and calls back with its RouteResult; a session that ends fails its pending requests.
// Not durable: durability is the router's (cloudcore/router), which retries.
//
// Thread-safe; every method is non-blocking. Callbacks run outside the broker's lock.
class RouteBroker {
 public:
  explicit RouteBroker(RouteBrokerOptions options = {}) : options_(options) {}
  RouteBroker(const RouteBroker&) = delete;
  RouteBroker& operator=(const RouteBroker&) = delete;

  // Returns the request's id. kUnavailable when the node has no session or already has
  // maxPendingPerNode requests pending.
  Result<uint64_t> send(const std::string& node, const RouteRequest& request, RouteCallback done);
  // Forgets a request (its caller gave up waiting); once this returns its callback does not
  // start. False when it had completed already.
  bool forget(uint64_t id);
  bool connected(const std::string& node) const;
  // Called (outside the lock, on the tunnel's threads) whenever a node's session starts (true)
  // or ends (false). Set before the tunnel starts.
  void setConnectionListener(std::function<void(const std::string& node, bool connected)> l) {
    listener_ = std::move(l);
  }

  // --- called by the tunnel server ---
  void attach(const std::string& node, std::shared_ptr<SyncSink> sink);
  void detach(const std::string& node, const SyncSink* sink);
  void onResult(const SyncSink* sink, const edgeplane::tunnel::v1::RouteResult& result);

  size_t pending() const;

 private:
  struct Entry {
    std::string node;
    const SyncSink* sink = nullptr;
    RouteCallback done;
  };

  const RouteBrokerOptions options_;
  std::function<void(const std::string&, bool)> listener_;  // set before start, then read-only
  mutable Mutex mu_;
  uint64_t nextId_ EP_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::shared_ptr<SyncSink>> sinks_ EP_GUARDED_BY(mu_);
  std::map<uint64_t, Entry> pending_ EP_GUARDED_BY(mu_);
  std::map<std::string, size_t> perNode_ EP_GUARDED_BY(mu_);
};

}  // namespace ep::cloudhub
