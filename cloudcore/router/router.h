#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cloudcore/auth/request_info.h"
#include "cloudcore/cloudhub/report_applier.h"
#include "cloudcore/router/message_queue.h"
#include "common/api/rules.h"
#include "common/clock.h"
#include "common/http/server_types.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace boost::asio {
class thread_pool;
}
namespace ep::cloudhub {
class RouteBroker;
}
namespace ep::controllers {
class ControllerLoop;
}
namespace ep::devicedata {
class DeviceDataStore;
}
namespace ep::registry {
class Registry;
}

namespace ep::router {

// Delivers a message to a rest target (the cloud app of an eventbus -> rest Rule). Blocking;
// thread-safe. OK only for a 2xx answer; otherwise the error names the URL and the status.
class RestPoster {
 public:
  virtual ~RestPoster() = default;
  virtual Status post(const std::string& url, const std::string& body,
                      std::chrono::milliseconds timeout) = 0;
};

// The real poster: HTTP/1.1 (ep::http::HttpClient), https targets verified against the
// system's trust store.
class HttpRestPoster final : public RestPoster {
 public:
  Status post(const std::string& url, const std::string& body,
              std::chrono::milliseconds timeout) override;
};

struct RouterOptions {
  std::string dataDir;  // router.db lives here
  size_t maxQueuedMessages = 10000;
  uint64_t maxQueuedBytes = 256ull << 20;
  // rest -> eventbus: how long the REST call waits for the node's broker to take the message
  // before answering 202 (queued, delivered later).
  std::chrono::milliseconds deliveryWait{5000};
  // A RouteDeliver the node does not answer within this counts as a failed attempt.
  std::chrono::milliseconds edgeTimeout{30000};
  // rest -> servicebus: bound on the edge service's answer.
  std::chrono::milliseconds serviceTimeout{30000};
  // eventbus -> rest: bound on one POST to the target.
  std::chrono::milliseconds restTimeout{10000};
  std::chrono::milliseconds initialBackoff{1000};
  std::chrono::milliseconds maxBackoff{60000};
  // A queued message not delivered within this is given up (counted, logged).
  std::chrono::milliseconds messageTtl{std::chrono::hours(24)};
  // Rule status (successMessages, failMessages, errors) is written at most this often.
  std::chrono::milliseconds statusInterval{1000};
  size_t restWorkers = 4;  // concurrent POSTs (one per rule at a time)
  size_t maxErrors = 10;   // kept in a Rule's status.errors, newest last
};

// The cloud side of KubeEdge's router (docs/rules.md):
//   - rest -> eventbus: the REST entry (/NODE/NAMESPACE/PATH) queues the body durably and
//     delivers it to the node, which publishes it on the Rule's topic; 200 when the broker took
//     it within deliveryWait, else 202 (delivered when the node is back).
//   - eventbus -> rest: messages edge apps publish on the Rule's topic arrive as reports
//     (routeFromEdge), are kept as the Rule's time series (with `data`), queued durably, then
//     POSTed to the Rule's URL.
//   - uploads: messages of no Rule from KubeEdge's $hw/events/upload/# are kept as the node's
//     time series (devicedata::nodeSeries, served at nodes/NAME/data).
//   - rest -> servicebus: the request goes to an HTTP service on the node and its answer comes
//     back (not queued: the caller waits for it).
// At-least-once: a queued message leaves router.db only when delivered (or after messageTtl);
// failed attempts are retried with exponential backoff, in order per node (to the edge) and
// per Rule (to rest targets). Counts and the last errors go to each Rule's status.
//
// Threads: a rules loop (watches Rules and RuleEndpoints, rebuilds the rule table, writes
// status), a delivery thread (schedules attempts, applies outcomes) and restWorkers POSTing.
// handle()/attributes()/routeFromEdge() are thread-safe and called on other modules' threads;
// handle() blocks its (HTTP worker) thread for at most deliveryWait or serviceTimeout.
// start()/stop() from one owner thread. The injected objects must outlive the router.
class Router final : public cloudhub::RoutedMessageSink {
 public:
  // `data` (may be null) keeps what eventbus -> rest Rules carried as time series
  // (devicedata::ruleSeries, served at rules/NAME/data).
  Router(RouterOptions options, registry::Registry& registry, cloudhub::RouteBroker& broker,
         RestPoster& poster, Clock& clock, devicedata::DeviceDataStore* data = nullptr);
  ~Router() override;
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Opens router.db (loading what it holds), starts the rules loop and the delivery thread.
  Status start();
  void stop();

  // The REST entry, behind cloudcore's authentication and authorization.
  http::ServerResponse handle(http::ServerRequest& request);
  // How authorization sees a REST entry request: verb (from the method, as Kubernetes' proxy
  // subresources) on rules/proxy in group rules.kubeedge.io, in NAMESPACE, named after the
  // matching Rule (when one matches).
  auth::RequestAttributes attributes(const http::ServerRequest& request) const;

  Status routeFromEdge(const std::string& node, uint64_t sequence, const std::string& ruleNamespace,
                       const std::string& ruleName, const std::string& topic, std::string payload,
                       int64_t timestampMillis) override;

  size_t queued() const;

 private:
  struct Waiter;
  struct Counters {
    uint64_t success = 0;
    uint64_t fail = 0;
    std::vector<std::string> errors;
  };
  using RuleKey = std::pair<std::string, std::string>;

  std::shared_ptr<const std::vector<api::RouteRule>> rules() const;
  void rebuildRules();
  void flushStatus();
  void deliverLoop();
  void attempt(const QueuedMessage& m);
  void outcome(int64_t id, Status status);
  void applyOutcome(int64_t id, const Status& status);
  void count(const RuleKey& rule, bool ok, const std::string& error) EP_REQUIRES(mu_);
  // Queues durably, then schedules it; `waiter` (optional) hears the first attempt's outcome.
  Result<int64_t> enqueue(QueuedMessage m, const std::string& body,
                          std::shared_ptr<Waiter> waiter = nullptr);
  // Appends one message to a time series of `data_` (when set).
  Status keep(uint64_t sequence, const std::string& ns, const std::string& series,
              const std::string& topic, const std::string& payload, int64_t timestampMillis);
  http::ServerResponse toEventbus(const api::RouteRule& rule, const api::RouterTarget& target,
                                  const http::ServerRequest& request);
  http::ServerResponse toServicebus(const api::RouteRule& rule, const api::RouterTarget& target,
                                    const std::string& remainder,
                                    const http::ServerRequest& request);

  const RouterOptions options_;
  registry::Registry& registry_;
  cloudhub::RouteBroker& broker_;
  RestPoster& poster_;
  Clock& clock_;
  devicedata::DeviceDataStore* const data_;
  MessageQueue queue_;
  std::unique_ptr<controllers::ControllerLoop> rulesLoop_;
  std::unique_ptr<boost::asio::thread_pool> restPool_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const std::vector<api::RouteRule>> rules_ EP_GUARDED_BY(mu_);
  std::map<int64_t, QueuedMessage> pending_ EP_GUARDED_BY(mu_);  // by id
  std::set<std::string> busyLanes_ EP_GUARDED_BY(mu_);
  struct InFlight {
    uint64_t brokerId = 0;  // 0: a POST (no broker request)
    std::chrono::steady_clock::time_point deadline;
  };
  std::map<int64_t, InFlight> inFlight_ EP_GUARDED_BY(mu_);
  std::deque<std::pair<int64_t, Status>> outcomes_ EP_GUARDED_BY(mu_);
  std::map<int64_t, std::shared_ptr<Waiter>> waiters_ EP_GUARDED_BY(mu_);
  std::map<RuleKey, Counters> counters_ EP_GUARDED_BY(mu_);
  bool wake_ EP_GUARDED_BY(mu_) = false;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::thread deliverer_;
};

}  // namespace ep::router
