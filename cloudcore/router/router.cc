#include "cloudcore/router/router.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "cloudcore/cloudhub/route_broker.h"
#include "cloudcore/controllers/controller_loop.h"
#include "cloudcore/devicedata/device_data_store.h"
#include "cloudcore/registry/registry.h"
#include "common/api/base64.h"
#include "common/api/kinds.h"
#include "common/api/status_json.h"
#include "common/api/utf8.h"
#include "common/http/client.h"
#include "common/thread_annotations.h"

namespace ep::router {

namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

const api::KindInfo& rulesKind() {
  return *api::findByApiVersionKind("rules.kubeedge.io/v1", "Rule");
}
const api::KindInfo& endpointsKind() {
  return *api::findByApiVersionKind("rules.kubeedge.io/v1", "RuleEndpoint");
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Kubernetes' verbs for proxy subresources.
std::string verbFor(const std::string& method) {
  if (method == "GET" || method == "HEAD") return "get";
  if (method == "POST") return "create";
  if (method == "PUT") return "update";
  if (method == "PATCH") return "patch";
  if (method == "DELETE") return "delete";
  return lower(method);
}

// Headers that describe one hop, the caller's credentials, or framing: never forwarded.
bool forwardable(const std::string& lowerName) {
  static const std::set<std::string> kDrop = {
      "authorization",     "connection", "keep-alive", "proxy-authorization", "te",     "trailer",
      "transfer-encoding", "upgrade",    "host",       "content-length",      "cookie", "expect"};
  return kDrop.count(lowerName) == 0;
}

std::string laneOf(const QueuedMessage& m) {
  return m.direction == Direction::kToEdge ? "node/" + m.node
                                           : "rule/" + m.ruleNamespace + "/" + m.ruleName;
}

Json routeJson(const std::string& status, int64_t id, const api::RouteRule& rule,
               const std::string& node, const std::string& message) {
  Json j = {
      {"kind", "RouteResult"},    {"apiVersion", "rules.edgeplane.io/v1alpha1"}, {"status", status},
      {"id", std::to_string(id)}, {"rule", rule.ns + "/" + rule.name},           {"node", node},
      {"topic", rule.targetTopic}};
  if (!message.empty()) j["message"] = message;
  return j;
}

}  // namespace

// One REST caller waiting for the first outcome of its message.
struct Router::Waiter {
  Mutex mu;
  std::condition_variable cv;
  bool done EP_GUARDED_BY(mu) = false;
  Status status EP_GUARDED_BY(mu);
  cloudhub::RouteReply reply EP_GUARDED_BY(mu);  // servicebus
};

Status HttpRestPoster::post(const std::string& url, const std::string& body,
                            std::chrono::milliseconds timeout) {
  // Split scheme://host[:port] from the path: the client takes a base URL.
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return invalidError("rest target " + url + ": not a URL");
  const size_t slash = url.find('/', scheme + 3);
  const std::string base = slash == std::string::npos ? url : url.substr(0, slash);
  const std::string path = slash == std::string::npos ? "/" : url.substr(slash);
  http::ClientOptions o;
  o.timeout = timeout;
  o.peerName = "rest target";
  o.userAgent = "edgeplane-router/0.1";
  o.maxBodyBytes = 1 << 20;
  http::HttpClient client(base, o);
  auto r = client.request("POST", path, body, "application/json", "*/*");
  if (!r) return r.status();
  if (r->status < 200 || r->status > 299) {
    std::string excerpt = r->body.substr(0, 200);
    return unavailableError("POST " + url + ": HTTP " + std::to_string(r->status) +
                            (excerpt.empty() ? "" : ": " + excerpt));
  }
  return Status::ok();
}

Router::Router(RouterOptions options, registry::Registry& registry, cloudhub::RouteBroker& broker,
               RestPoster& poster, Clock& clock, devicedata::DeviceDataStore* data)
    : options_(std::move(options)),
      registry_(registry),
      broker_(broker),
      poster_(poster),
      clock_(clock),
      data_(data),
      queue_(MessageQueueOptions{.path = options_.dataDir + "/router.db",
                                 .maxMessages = options_.maxQueuedMessages,
                                 .maxBytes = options_.maxQueuedBytes}),
      rules_(std::make_shared<std::vector<api::RouteRule>>()) {}

Router::~Router() {
  stop();
}

Status Router::start() {
  size_t corrupt = 0;
  auto loaded = queue_.open(&corrupt);
  if (!loaded) return loaded.status();
  {
    MutexLock l(mu_);
    stopping_ = false;
    for (auto& m : *loaded) pending_[m.id] = std::move(m);
  }
  if (!loaded->empty() || corrupt > 0) {
    spdlog::info("router: {} queued messages to deliver ({} corrupt ones removed)", loaded->size(),
                 corrupt);
  }
  broker_.setConnectionListener([this](const std::string&, bool connected) {
    if (!connected) return;
    MutexLock l(mu_);
    wake_ = true;
    cv_.notify_all();
  });
  rulesLoop_ = std::make_unique<controllers::ControllerLoop>(
      "router", registry_, std::vector<const api::KindInfo*>{&rulesKind(), &endpointsKind()},
      [](const api::KindInfo&, const registry::WatchEvent&) { return true; },
      [this] {
        rebuildRules();
        flushStatus();
      },
      options_.statusInterval, std::chrono::milliseconds(20));
  // The table must be complete before the first request is matched against it.
  rebuildRules();
  if (auto s = rulesLoop_->start(); !s.isOk()) return s;
  restPool_ = std::make_unique<boost::asio::thread_pool>(options_.restWorkers);
  deliverer_ = std::thread([this] { deliverLoop(); });
  return Status::ok();
}

void Router::stop() {
  {
    MutexLock l(mu_);
    if (stopping_ && !deliverer_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (deliverer_.joinable()) deliverer_.join();
  if (restPool_) {
    restPool_->join();
    restPool_.reset();
  }
  if (rulesLoop_) {
    rulesLoop_->stop();
    rulesLoop_.reset();
  }
  // Outcomes that arrived while stopping are applied, so a delivered message is not resent.
  std::deque<std::pair<int64_t, Status>> late;
  {
    MutexLock l(mu_);
    late.swap(outcomes_);
  }
  for (auto& [id, s] : late) applyOutcome(id, s);
  flushStatus();
  queue_.close();
}

std::shared_ptr<const std::vector<api::RouteRule>> Router::rules() const {
  MutexLock l(mu_);
  return rules_;
}

size_t Router::queued() const {
  return queue_.size();
}

void Router::rebuildRules() {
  auto rules = registry_.list(rulesKind(), "", {});
  auto endpoints = registry_.list(endpointsKind(), "", {});
  if (!rules || !endpoints) {
    spdlog::warn("router: listing rules: {}",
                 (!rules ? rules.status() : endpoints.status()).message());
    return;
  }
  auto table = std::make_shared<std::vector<api::RouteRule>>(
      api::resolveRules(rules->items, endpoints->items));
  std::shared_ptr<const std::vector<api::RouteRule>> old;
  {
    MutexLock l(mu_);
    old = std::move(rules_);
    rules_ = table;
  }
  // A rule that became unusable says why in its status, once per change.
  std::map<RuleKey, std::string> before;
  if (old) {
    for (const auto& r : *old) before[{r.ns, r.name}] = r.problem;
  }
  for (const auto& r : *table) {
    auto it = before.find({r.ns, r.name});
    if (!r.problem.empty() && (it == before.end() || it->second != r.problem)) {
      spdlog::warn("router: rule {}/{} cannot carry messages: {}", r.ns, r.name, r.problem);
    }
  }
}

void Router::count(const RuleKey& rule, bool ok, const std::string& error) {
  // Called with mu_ held.
  auto& c = counters_[rule];
  if (ok) {
    ++c.success;
    return;
  }
  ++c.fail;
  if (!error.empty()) {
    c.errors.push_back(formatRfc3339(clock_.nowMillis()) + " " + error);
    if (c.errors.size() > options_.maxErrors) c.errors.erase(c.errors.begin());
  }
}

void Router::flushStatus() {
  std::map<RuleKey, Counters> deltas;
  {
    MutexLock l(mu_);
    deltas.swap(counters_);
  }
  for (auto& [key, delta] : deltas) {
    bool written = false;
    for (int attempt = 0; attempt < 3 && !written; ++attempt) {
      auto current = registry_.get(rulesKind(), key.first, key.second);
      if (!current) {
        if (current.status().code() == Code::kNotFound) written = true;  // rule deleted
        break;
      }
      Json obj = std::move(*current);
      Json& status = obj["status"];
      if (!status.is_object()) status = Json::object();
      auto num = [&status](const char* k) {
        auto it = status.find(k);
        return it != status.end() && it->is_number_integer() ? it->get<int64_t>() : int64_t{0};
      };
      status["successMessages"] = num("successMessages") + static_cast<int64_t>(delta.success);
      status["failMessages"] = num("failMessages") + static_cast<int64_t>(delta.fail);
      if (!delta.errors.empty()) {
        Json errors = status.contains("errors") && status["errors"].is_array() ? status["errors"]
                                                                               : Json::array();
        for (auto& e : delta.errors) errors.push_back(e);
        while (errors.size() > options_.maxErrors) errors.erase(errors.begin());
        status["errors"] = std::move(errors);
      }
      auto updated = registry_.update(rulesKind(), key.first, key.second, std::move(obj),
                                      registry::Subresource::kStatus);
      if (updated) {
        written = true;
      } else if (updated.status().code() != Code::kConflict) {
        spdlog::warn("router: writing the status of rule {}/{}: {}", key.first, key.second,
                     updated.status().message());
        break;
      }
    }
    if (!written) {  // kept for the next pass
      MutexLock l(mu_);
      auto& c = counters_[key];
      c.success += delta.success;
      c.fail += delta.fail;
      c.errors.insert(c.errors.begin(), delta.errors.begin(), delta.errors.end());
      while (c.errors.size() > options_.maxErrors) c.errors.erase(c.errors.begin());
    }
  }
}

Result<int64_t> Router::enqueue(QueuedMessage m, const std::string& body,
                                std::shared_ptr<Waiter> waiter) {
  m.createdMillis = clock_.nowMillis();
  m.nextAttemptMillis = 0;
  if (auto s = queue_.push(m, body); !s.isOk()) return s;
  const int64_t id = m.id;
  MutexLock l(mu_);
  if (waiter) waiters_[id] = std::move(waiter);
  pending_[id] = std::move(m);
  wake_ = true;
  cv_.notify_all();
  return id;
}

void Router::outcome(int64_t id, Status status) {
  MutexLock l(mu_);
  outcomes_.emplace_back(id, std::move(status));
  wake_ = true;
  cv_.notify_all();
}

void Router::deliverLoop() {
  MutexLock l(mu_);
  while (!stopping_) {
    // Outcomes first: they free lanes and update the disk.
    while (!outcomes_.empty()) {
      auto [id, status] = std::move(outcomes_.front());
      outcomes_.pop_front();
      l.unlock();
      applyOutcome(id, status);
      l.lock();
    }
    const auto now = SteadyClock::now();
    // Edge deliveries the node never answered.
    for (auto& [id, f] : inFlight_) {
      if (f.brokerId != 0 && f.deadline <= now && broker_.forget(f.brokerId)) {
        outcomes_.emplace_back(
            id, Status(Code::kTimeout, "the node did not answer within " +
                                           std::to_string(options_.edgeTimeout.count()) + " ms"));
        f.brokerId = 0;
      }
    }
    if (!outcomes_.empty()) continue;
    // The oldest message of each idle lane goes when due (and, to the edge, when its node is
    // connected): strict order per lane.
    const int64_t nowMs = clock_.nowMillis();
    int64_t nextDue = INT64_MAX;
    std::set<std::string> seen;
    std::vector<QueuedMessage> start;
    for (auto& [id, m] : pending_) {
      std::string lane = laneOf(m);
      if (!seen.insert(lane).second || busyLanes_.count(lane) > 0) continue;
      if (m.nextAttemptMillis > nowMs) {
        nextDue = std::min(nextDue, m.nextAttemptMillis);
        continue;
      }
      if (m.direction == Direction::kToEdge && !broker_.connected(m.node)) continue;
      busyLanes_.insert(lane);
      inFlight_[id] = InFlight{0, now + options_.edgeTimeout};
      start.push_back(m);
    }
    if (!start.empty()) {
      l.unlock();
      for (const auto& m : start) attempt(m);
      l.lock();
      continue;
    }
    auto until = now + std::chrono::seconds(1);
    for (const auto& [id, f] : inFlight_) {
      if (f.brokerId != 0) until = std::min(until, f.deadline);
    }
    if (nextDue != INT64_MAX) {
      until =
          std::min(until, now + std::chrono::milliseconds(std::max<int64_t>(0, nextDue - nowMs)));
    }
    while (!stopping_ && !wake_ && l.waitUntil(cv_, until) != std::cv_status::timeout) {
    }
    wake_ = false;
  }
}

void Router::attempt(const QueuedMessage& m) {
  auto body = queue_.body(m.id);
  if (!body) {
    outcome(m.id, body.status());
    return;
  }
  if (m.direction == Direction::kToEdge) {
    cloudhub::RouteRequest req;
    req.ruleNamespace = m.ruleNamespace;
    req.ruleName = m.ruleName;
    req.topic = m.target;
    req.body = std::move(*body);
    auto id = broker_.send(m.node, req, [this, mid = m.id](cloudhub::RouteReply r) {
      outcome(mid, std::move(r.status));
    });
    if (!id) {
      outcome(m.id, id.status());
      return;
    }
    MutexLock l(mu_);
    if (auto it = inFlight_.find(m.id); it != inFlight_.end()) it->second.brokerId = *id;
    return;
  }
  boost::asio::post(*restPool_, [this, id = m.id, url = m.target, b = std::move(*body)] {
    Status s;
    try {
      s = poster_.post(url, b, options_.restTimeout);
    } catch (const std::exception& e) {
      s = internalError(std::string("POST failed: ") + e.what());
    }
    outcome(id, std::move(s));
  });
}

void Router::applyOutcome(int64_t id, const Status& status) {
  QueuedMessage m;
  std::shared_ptr<Waiter> waiter;
  {
    MutexLock l(mu_);
    auto it = pending_.find(id);
    inFlight_.erase(id);
    if (it == pending_.end()) return;
    m = it->second;
    busyLanes_.erase(laneOf(m));
    if (auto w = waiters_.find(id); w != waiters_.end()) {
      waiter = std::move(w->second);
      waiters_.erase(w);
    }
  }
  const RuleKey key{m.ruleNamespace, m.ruleName};
  const int64_t nowMs = clock_.nowMillis();
  bool gone = status.isOk() || status.code() == Code::kNotFound ||  // body gone
              status.message().find("fails its checksum") != std::string::npos;
  // A rule deleted since: nothing to deliver for.
  bool ruleExists = false;
  {
    auto table = rules();
    for (const auto& r : *table)
      ruleExists = ruleExists || (r.ns == m.ruleNamespace && r.name == m.ruleName);
  }
  std::string error;
  if (!status.isOk()) {
    error =
        (m.direction == Direction::kToEdge ? "to node " + m.node + ": " : "") + status.message();
  }
  if (!gone && !ruleExists) {
    gone = true;
    spdlog::info("router: rule {}/{} is gone; queued message {} dropped", m.ruleNamespace,
                 m.ruleName, id);
  }
  if (!gone && m.createdMillis + options_.messageTtl.count() <= nowMs) {
    gone = true;
    error += " (given up after " + std::to_string(m.attempts + 1) + " attempts)";
    spdlog::warn("router: message {} of rule {}/{} given up: {}", id, m.ruleNamespace, m.ruleName,
                 error);
  }
  int64_t next = 0;
  if (gone) {
    if (auto s = queue_.remove(id); !s.isOk()) spdlog::error("router: {}", s.message());
  } else {
    auto backoff = options_.initialBackoff * (int64_t{1} << std::min<int64_t>(m.attempts, 16));
    next = nowMs + std::min<int64_t>(backoff.count(), options_.maxBackoff.count());
    if (auto s = queue_.reschedule(id, m.attempts + 1, next); !s.isOk()) {
      spdlog::error("router: {}", s.message());
    }
  }
  {
    MutexLock l(mu_);
    if (ruleExists) count(key, status.isOk(), error);
    if (gone) {
      pending_.erase(id);
    } else if (auto it = pending_.find(id); it != pending_.end()) {
      ++it->second.attempts;
      it->second.nextAttemptMillis = next;
    }
  }
  if (!status.isOk() && ruleExists) {
    spdlog::debug("router: message {} of rule {}/{}: attempt failed: {}", id, m.ruleNamespace,
                  m.ruleName, status.message());
  }
  if (waiter) {
    MutexLock l(waiter->mu);
    waiter->done = true;
    waiter->status = status;
    waiter->cv.notify_all();
  }
}

Status Router::routeFromEdge(const std::string& node, uint64_t sequence,
                             const std::string& ruleNamespace, const std::string& ruleName,
                             const std::string& topic, std::string payload,
                             int64_t timestampMillis) {
  if (ruleNamespace.empty() && ruleName.empty()) {  // an upload: kept, not delivered
    if (topic.rfind("$hw/events/upload/", 0) != 0) {
      return invalidError("a message of no rule must be an upload ($hw/events/upload/...)");
    }
    return keep(sequence, "", devicedata::nodeSeries(node), topic, payload, timestampMillis);
  }
  auto table = rules();
  const api::RouteRule* rule = nullptr;
  for (const auto& r : *table) {
    if (r.ns == ruleNamespace && r.name == ruleName) rule = &r;
  }
  const std::string what = "rule " + ruleNamespace + "/" + ruleName;
  if (rule == nullptr) return notFoundError(what + " not found");
  if (!rule->problem.empty()) return invalidError(what + ": " + rule->problem);
  if (rule->sourceType != api::EndpointType::kEventbus ||
      rule->targetType != api::EndpointType::kRest) {
    return invalidError(what + " is not an eventbus -> rest rule");
  }
  if (rule->sourceNode != node) {
    return invalidError(what + " takes messages from node " + rule->sourceNode + ", not " + node);
  }
  if (topic != rule->edgeTopic()) {
    return invalidError(what + " listens on topic " + rule->edgeTopic() + ", not " + topic);
  }
  // Kept as the Rule's time series first: what arrived is data even if delivery fails later.
  if (auto s = keep(sequence, ruleNamespace, devicedata::ruleSeries(ruleName), topic, payload,
                    timestampMillis);
      !s.isOk()) {
    return s;
  }
  QueuedMessage m;
  m.direction = Direction::kToRest;
  m.node = node;
  m.ruleNamespace = ruleNamespace;
  m.ruleName = ruleName;
  m.target = rule->targetUrl;
  Status s = enqueue(std::move(m), payload).status();
  if (s.code() == Code::kUnavailable && s.message().find("is full") != std::string::npos) {
    // Policy: a full queue drops the edge's message (counted) rather than stalling the node's
    // whole report stream.
    MutexLock l(mu_);
    count({ruleNamespace, ruleName}, false,
          "message from node " + node + " dropped: " + s.message());
    return invalidError(s.message());
  }
  return s;
}

// Binary payloads are kept base64-encoded ("base64:..."); those larger than a sample may be are
// not kept (a Rule still delivers them).
Status Router::keep(uint64_t sequence, const std::string& ns, const std::string& series,
                    const std::string& topic, const std::string& payload, int64_t timestampMillis) {
  if (data_ == nullptr) return Status::ok();
  std::string value = api::validUtf8(payload) ? payload : "base64:" + api::base64Encode(payload);
  if (value.size() > devicedata::kMaxValueBytes || topic.size() > 253) {
    spdlog::debug(
        "router: a {}-byte message on a {}-byte topic is not kept as data (limits {} "
        "and 253 bytes)",
        payload.size(), topic.size(), devicedata::kMaxValueBytes);
    return Status::ok();
  }
  devicedata::Sample sample;
  sample.property = topic;
  sample.timestamp = timestampMillis > 0 ? timestampMillis : clock_.nowMillis();
  sample.value = std::move(value);
  return data_->append(sequence, {devicedata::DeviceSamples{ns, series, {std::move(sample)}}});
}

auth::RequestAttributes Router::attributes(const http::ServerRequest& request) const {
  auth::RequestAttributes a;
  a.path = request.path;
  auto target = api::parseRouterPath(request.path);
  if (!target) {
    a.verb = lower(request.method);
    return a;
  }
  a.resourceRequest = true;
  a.verb = verbFor(request.method);
  a.apiGroup = "rules.kubeedge.io";
  a.apiVersion = "v1";
  a.resource = "rules";
  a.subresource = "proxy";
  a.ns = target->ns;
  auto table = rules();
  if (const auto* rule = api::matchRestRule(*table, target->ns, target->path, nullptr)) {
    a.name = rule->name;
  }
  return a;
}

http::ServerResponse Router::handle(http::ServerRequest& request) {
  auto target = api::parseRouterPath(request.path);
  if (!target) {
    return api::errorResponse(notFoundError(
        "the router's REST entry is /NODE/NAMESPACE/PATH (docs/rules.md); got " + request.path));
  }
  auto table = rules();
  std::string remainder;
  const api::RouteRule* rule = api::matchRestRule(*table, target->ns, target->path, &remainder);
  if (rule == nullptr) {
    return api::errorResponse(notFoundError("no Rule in namespace " + target->ns +
                                            " has a rest source matching " + target->path));
  }
  const api::KindInfo* nodeKind = api::findByApiVersionKind("v1", "Node");
  if (auto node = registry_.get(*nodeKind, "", target->node); !node) {
    return api::errorResponse(node.status(), nodeKind, target->node);
  }
  if (rule->targetType == api::EndpointType::kEventbus) return toEventbus(*rule, *target, request);
  return toServicebus(*rule, *target, remainder, request);
}

http::ServerResponse Router::toEventbus(const api::RouteRule& rule, const api::RouterTarget& target,
                                        const http::ServerRequest& request) {
  if (request.method != "POST" && request.method != "PUT") {
    return api::errorResponse(Status(
        Code::kMethodNotAllowed,
        "rule " + rule.ns + "/" + rule.name + " publishes on the edge's broker: use POST or PUT"));
  }
  // The edge's MQTT client takes packets up to 256 KiB: a larger body could never be published.
  constexpr size_t kMaxEventbusBody = 250 * 1024;
  if (request.body.size() > kMaxEventbusBody) {
    return api::errorResponse(Status(Code::kTooLarge, "rule " + rule.ns + "/" + rule.name +
                                                          ": a message for the "
                                                          "edge's broker may have at most " +
                                                          std::to_string(kMaxEventbusBody) +
                                                          " bytes"));
  }
  QueuedMessage m;
  m.direction = Direction::kToEdge;
  m.node = target.node;
  m.ruleNamespace = rule.ns;
  m.ruleName = rule.name;
  m.target = rule.targetTopic;
  auto waiter = std::make_shared<Waiter>();
  auto queued = enqueue(std::move(m), request.body, waiter);
  if (!queued) {
    MutexLock l(mu_);
    count({rule.ns, rule.name}, false, "REST message refused: " + queued.status().message());
    return api::errorResponse(queued.status());
  }
  const int64_t id = *queued;
  bool done = false;
  Status status;
  {
    MutexLock l(waiter->mu);
    const auto deadline = std::chrono::steady_clock::now() + options_.deliveryWait;
    while (!waiter->done && l.waitUntil(waiter->cv, deadline) != std::cv_status::timeout) {
    }
    done = waiter->done;
    status = waiter->status;
  }
  if (!done) {
    MutexLock l(mu_);
    waiters_.erase(id);
  }
  if (done && status.isOk()) {
    return api::jsonResponse(200, routeJson("Delivered", id, rule, target.node, ""));
  }
  std::string why =
      done ? status.message()
           : (broker_.connected(target.node) ? "the node has not confirmed it yet"
                                             : "node " + target.node + " is not connected");
  return api::jsonResponse(
      202, routeJson("Queued", id, rule, target.node, why + "; it will be delivered when it can"));
}

http::ServerResponse Router::toServicebus(const api::RouteRule& rule,
                                          const api::RouterTarget& target,
                                          const std::string& remainder,
                                          const http::ServerRequest& request) {
  static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"};
  if (kMethods.count(request.method) == 0) {
    return api::errorResponse(
        Status(Code::kMethodNotAllowed, "method " + request.method + " is not routed"));
  }
  cloudhub::RouteRequest req;
  req.ruleNamespace = rule.ns;
  req.ruleName = rule.name;
  req.servicePort = rule.servicePort;
  req.method = request.method;
  std::string path =
      rule.targetPath == "/" ? (remainder.empty() ? "/" : remainder) : rule.targetPath + remainder;
  if (auto q = request.target.find('?'); q != std::string::npos) path += request.target.substr(q);
  req.path = path;
  for (const auto& [name, value] : request.headers) {
    if (forwardable(name)) req.headers.emplace_back(name, value);
  }
  req.body = request.body;
  req.timeoutMs = static_cast<uint32_t>(options_.serviceTimeout.count());
  auto waiter = std::make_shared<Waiter>();
  auto id = broker_.send(target.node, req, [waiter](cloudhub::RouteReply r) {
    MutexLock l(waiter->mu);
    waiter->done = true;
    waiter->status = r.status;
    waiter->reply = std::move(r);
    waiter->cv.notify_all();
  });
  const RuleKey key{rule.ns, rule.name};
  if (!id) {
    MutexLock l(mu_);
    count(key, false, id.status().message());
    return api::errorResponse(id.status());
  }
  cloudhub::RouteReply reply;
  bool done = false;
  {
    MutexLock l(waiter->mu);
    const auto deadline =
        std::chrono::steady_clock::now() + options_.serviceTimeout + std::chrono::seconds(1);
    while (!waiter->done && l.waitUntil(waiter->cv, deadline) != std::cv_status::timeout) {
    }
    done = waiter->done;
    if (done) reply = std::move(waiter->reply);
  }
  if (!done) {
    broker_.forget(*id);
    Status s(Code::kTimeout, "node " + target.node + " did not answer within " +
                                 std::to_string(options_.serviceTimeout.count()) + " ms");
    MutexLock l(mu_);
    count(key, false, s.message());
    return api::errorResponse(s);
  }
  {
    MutexLock l(mu_);
    count(key, reply.status.isOk(), reply.status.isOk() ? "" : reply.status.message());
  }
  if (!reply.status.isOk()) {
    return api::errorResponse(Status(
        Code::kUnavailable, "servicebus on node " + target.node + ": " + reply.status.message()));
  }
  http::ServerResponse r;
  r.status = reply.httpStatus > 0 ? reply.httpStatus : 502;
  r.contentType.clear();
  for (auto& [name, value] : reply.headers) {
    const std::string n = lower(name);
    if (n == "content-type") {
      r.contentType = value;
    } else if (forwardable(n)) {
      r.headers.emplace_back(name, value);
    }
  }
  if (r.contentType.empty()) r.contentType = "application/octet-stream";
  r.body = std::move(reply.body);
  return r;
}

}  // namespace ep::router
