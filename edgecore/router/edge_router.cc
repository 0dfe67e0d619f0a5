#include "edgecore/router/edge_router.h"

#include <spdlog/spdlog.h>

#include "common/api/rules.h"
#include "common/http/client.h"
#include "common/thread_annotations.h"
#include "edgecore/eventbus/mqtt_codec.h"
#include "proto/tunnel.pb.h"

namespace ep::edgecore::router {

namespace tv1 = edgeplane::tunnel::v1;

namespace {

constexpr const char* kRules = "rules.rules.kubeedge.io";
constexpr const char* kRuleEndpoints = "ruleendpoints.rules.kubeedge.io";

void answer(const edgehub::StreamSender& send, uint64_t id, const std::string& error) {
  tv1::EdgeMessage m;
  m.mutable_route_result()->set_id(id);
  m.mutable_route_result()->set_error(error);
  send(std::move(m));
}

}  // namespace

Result<ServiceAnswer> HttpServiceCaller::call(const ServiceCall& c) {
  http::ClientOptions o;
  o.timeout = c.timeout;
  o.peerName = "service";
  o.userAgent = "edgeplane-servicebus/0.1";
  o.maxBodyBytes = maxResponseBytes_;
  std::string contentType, accept = "*/*";
  for (const auto& [name, value] : c.headers) {
    if (name == "content-type") {
      contentType = value;
    } else if (name == "accept") {
      accept = value;
    } else {
      o.headers.emplace_back(name, value);
    }
  }
  http::HttpClient client("http://127.0.0.1:" + std::to_string(c.port), o);
  auto r = client.request(c.method, c.path.empty() ? "/" : c.path, c.body, contentType, accept);
  if (!r) return r.status();
  ServiceAnswer a;
  a.status = r->status;
  a.headers = std::move(r->headers);
  a.body = std::move(r->body);
  return a;
}

EdgeRouter::EdgeRouter(EdgeRouterOptions options, metamanager::CacheReader& cache,
                       metamanager::Outbox& outbox, RouteBus& bus, ServiceCaller& caller,
                       const Clock& clock)
    : options_(std::move(options)),
      cache_(cache),
      outbox_(outbox),
      bus_(bus),
      caller_(caller),
      clock_(clock) {}

EdgeRouter::~EdgeRouter() {
  stop();
}

Status EdgeRouter::start() {
  if (worker_.joinable()) return Status::ok();
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  auto notify = [this] {
    MutexLock l(mu_);
    wake_ = true;
    cv_.notify_all();
  };
  ruleSub_ = cache_.subscribe(kRules, "");
  endpointSub_ = cache_.subscribe(kRuleEndpoints, "");
  ruleSub_->setNotify(notify);
  endpointSub_->setNotify(notify);
  rebuild();  // the subscriptions are in place: no change is missed
  worker_ = std::thread([this] { run(); });
  // Service workers start with the first servicebus calls (most nodes make none).
  return Status::ok();
}

void EdgeRouter::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  std::vector<std::thread> services;
  {
    MutexLock l(mu_);
    services.swap(serviceThreads_);
  }
  for (auto& t : services) t.join();
  if (ruleSub_) ruleSub_->stop();
  if (endpointSub_) endpointSub_->stop();
}

EdgeRouterStats EdgeRouter::stats() const {
  MutexLock l(mu_);
  return stats_;
}

// Worker: the Rules this node's broker is a source of.
void EdgeRouter::rebuild() {
  // A subscription that fell behind has ended: subscribe again (the rebuild reads everything).
  if (ruleSub_->done() || endpointSub_->done()) {
    auto notify = [this] {
      MutexLock l(mu_);
      wake_ = true;
      cv_.notify_all();
    };
    ruleSub_->stop();
    endpointSub_->stop();
    ruleSub_ = cache_.subscribe(kRules, "");
    endpointSub_ = cache_.subscribe(kRuleEndpoints, "");
    ruleSub_->setNotify(notify);
    endpointSub_->setNotify(notify);
  }
  // Drain the events: the table is rebuilt from the cache as it is now.
  for (auto* sub : {ruleSub_.get(), endpointSub_.get()}) {
    while (!sub->poll(1024).empty()) {
    }
  }
  auto rules = cache_.list(kRules, "");
  auto endpoints = cache_.list(kRuleEndpoints, "");
  if (!rules || !endpoints) {
    spdlog::error("router: reading rules from the cache: {}",
                  (!rules ? rules.status() : endpoints.status()).message());
    return;
  }
  routes_.clear();
  for (const auto& r : api::resolveRules(*rules, *endpoints)) {
    if (r.sourceType != api::EndpointType::kEventbus || r.sourceNode != options_.nodeName) continue;
    if (!r.problem.empty()) {
      spdlog::warn("router: rule {}/{} cannot carry messages: {}", r.ns, r.name, r.problem);
      continue;
    }
    routes_[r.edgeTopic()].emplace_back(r.ns, r.name);
  }
  std::vector<std::string> topics;
  for (const auto& [topic, rs] : routes_) topics.push_back(topic);
  if (auto s = bus_.setRuleTopics(topics); !s.isOk()) {
    spdlog::error("router: subscribing to rule topics: {}", s.message());
  }
  MutexLock l(mu_);
  stats_.topics = std::move(topics);
}

void EdgeRouter::onMessage(eventbus::InboundMessage message) {
  {
    MutexLock l(mu_);
    if (queue_.size() >= options_.maxQueue && message.qos == 0) {
      ++stats_.failures;
      return;  // QoS 0: dropping is allowed; QoS 1 waits (the broker's window bounds it)
    }
    queue_.push_back(std::move(message));
    cv_.notify_all();
  }
}

void EdgeRouter::route(const eventbus::InboundMessage& m) {
  // An upload is a routed message of no Rule (namespace and name empty).
  static const std::vector<std::pair<std::string, std::string>> kUpload = {{"", ""}};
  auto it = routes_.find(m.topic);
  const auto* targets = isUpload(m.topic) ? &kUpload : it == routes_.end() ? nullptr : &it->second;
  bool ok = true;
  if (targets == nullptr) {
    MutexLock l(mu_);
    ++stats_.unrouted;
  } else {
    tv1::RoutedMessage rm;
    rm.set_topic(m.topic);
    rm.set_payload(m.payload);
    rm.set_timestamp_ms(clock_.nowMillis());
    const std::string payload = rm.SerializeAsString();
    for (const auto& [ns, name] : *targets) {
      auto seq = outbox_.enqueue(tv1::REPORT_KIND_ROUTED_MESSAGE, ns, name, payload);
      if (!seq && seq.status().code() != Code::kTooLarge) {
        // Not durable: leave it unacknowledged so the broker sends it again.
        spdlog::error("router: message on {} for rule {}/{} not queued: {}", m.topic, ns, name,
                      seq.status().message());
        ok = false;
        break;
      }
      MutexLock l(mu_);
      ++(seq ? stats_.routed : stats_.failures);
    }
  }
  if (ok && m.qos > 0) bus_.acknowledge(m.generation, m.packetId);
}

void EdgeRouter::run() {
  MutexLock l(mu_);
  while (!stopping_) {
    l.wait(cv_, [this]() EP_REQUIRES(mu_) { return stopping_ || wake_ || !queue_.empty(); });
    if (stopping_) break;
    if (wake_) {
      wake_ = false;
      l.unlock();
      rebuild();
      l.lock();
      continue;
    }
    eventbus::InboundMessage m = std::move(queue_.front());
    queue_.pop_front();
    l.unlock();
    route(m);
    l.lock();
  }
}

void EdgeRouter::onRouteDeliver(tv1::RouteDeliver d, edgehub::StreamSender send) {
  const uint64_t id = d.id();
  if (!d.topic().empty()) {
    if (auto s = eventbus::mqtt::checkTopicName(d.topic()); !s.isOk()) {
      return answer(send, id,
                    "rule " + d.rule_namespace() + "/" + d.rule_name() + ": " + s.message());
    }
    if (!bus_.connected()) {
      {
        MutexLock l(mu_);
        ++stats_.failures;
      }
      return answer(send, id, "the MQTT broker of node " + options_.nodeName + " is not connected");
    }
    auto s = bus_.publish(d.topic(), std::move(*d.mutable_body()), [this, id, send](Status st) {
      {
        MutexLock l(mu_);
        ++(st.isOk() ? stats_.published : stats_.failures);
      }
      answer(send, id, st.isOk() ? "" : st.message());
    });
    if (!s.isOk()) answer(send, id, s.message());
    return;
  }
  if (d.service_port() == 0 || d.service_port() > 65535) {
    return answer(send, id, "RouteDeliver names neither a topic nor a service port");
  }
  MutexLock l(mu_);
  if (services_.size() >= options_.maxServiceCalls) {
    ++stats_.failures;
    return answer(send, id,
                  "servicebus on node " + options_.nodeName + " is busy (" +
                      std::to_string(options_.maxServiceCalls) + " calls waiting)");
  }
  services_.push_back(ServiceJob{std::move(d), std::move(send)});
  if (idleServiceThreads_ == 0 && !stopping_ &&
      serviceThreads_.size() < std::max<size_t>(1, options_.serviceWorkers)) {
    serviceThreads_.emplace_back([this] { serviceLoop(); });
  }
  cv_.notify_all();
}

void EdgeRouter::serviceLoop() {
  MutexLock l(mu_);
  while (true) {
    ++idleServiceThreads_;
    l.wait(cv_, [this]() EP_REQUIRES(mu_) { return stopping_ || !services_.empty(); });
    --idleServiceThreads_;
    if (stopping_) return;
    ServiceJob job = std::move(services_.front());
    services_.pop_front();
    l.unlock();
    ServiceCall c;
    c.port = static_cast<uint16_t>(job.deliver.service_port());
    c.method = job.deliver.method().empty() ? "GET" : job.deliver.method();
    c.path = job.deliver.path();
    for (const auto& h : job.deliver.headers()) c.headers.emplace_back(h.name(), h.value());
    c.body = std::move(*job.deliver.mutable_body());
    c.timeout = job.deliver.timeout_ms() > 0 ? std::chrono::milliseconds(job.deliver.timeout_ms())
                                             : options_.defaultServiceTimeout;
    Result<ServiceAnswer> r = internalError("not called");
    try {
      r = caller_.call(c);
    } catch (const std::exception& e) {
      r = internalError(std::string("service call failed: ") + e.what());
    }
    tv1::EdgeMessage m;
    auto* res = m.mutable_route_result();
    res->set_id(job.deliver.id());
    if (!r) {
      res->set_error("calling 127.0.0.1:" + std::to_string(c.port) + c.path + ": " +
                     r.status().message());
    } else {
      res->set_status(r->status);
      for (auto& [name, value] : r->headers) {
        auto* h = res->add_headers();
        h->set_name(name);
        h->set_value(value);
      }
      res->set_body(std::move(r->body));
    }
    job.send(std::move(m));
    l.lock();
    ++(r ? stats_.serviceCalls : stats_.failures);
  }
}

}  // namespace ep::edgecore::router
