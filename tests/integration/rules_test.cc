// Rules end to end (docs/rules.md): cloudcore's router, a real edgecore, a real mosquitto;
// mosquitto_pub/mosquitto_sub play the edge apps, an HTTP server in the test plays the cloud
// app (rest target) and the edge service (servicebus).
#include <gtest/gtest.h>
#include <signal.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/http/server.h"
#include "tests/integration/broker_fixture.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;

// An HTTP server in the test: records requests, answers with `status` (503 for the first
// `failFirst` requests).
class Receiver {
 public:
  explicit Receiver(int failFirst = 0) : failFirst_(failFirst) {
    http::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.workerThreads = 2;
    server_ = std::make_unique<http::Server>(o, [this](http::ServerRequest& r) {
      http::ServerResponse resp;
      std::lock_guard l(mu_);
      requests_.push_back(r.method + " " + r.target + " " + r.body);
      if (failFirst_ > 0) {
        --failFirst_;
        resp.status = 503;
        resp.body = "not yet";
        return resp;
      }
      resp.status = 200;
      resp.contentType = "application/json";
      resp.headers.emplace_back("X-Served-By", "edge-app");
      resp.body = Json{{"method", r.method}, {"target", r.target}, {"body", r.body}}.dump();
      return resp;
    });
    EXPECT_TRUE(server_->start().isOk());
  }
  ~Receiver() { server_->stop(); }
  uint16_t port() const { return server_->port(); }
  std::vector<std::string> requests() {
    std::lock_guard l(mu_);
    return requests_;
  }
  // Bodies of the POSTs received, in order, without the probes.
  std::vector<std::string> bodies() {
    std::vector<std::string> out;
    for (const auto& r : requests()) {
      std::string body = r.substr(r.find(' ', r.find(' ') + 1) + 1);
      if (body.find("probe") == std::string::npos) out.push_back(body);
    }
    return out;
  }

 private:
  std::mutex mu_;
  int failFirst_;                      // guarded by mu_
  std::vector<std::string> requests_;  // guarded by mu_
  std::unique_ptr<http::Server> server_;
};

class RulesTest : public BrokerEdgeFixture {
 protected:
  void startRuleEdge() { startEdge("edge-1", {"--mqtt-server", broker_->url()}); }

  void apply(const std::string& yaml) {
    auto r =
        edgectl({"apply", "-f", writeFile("rules" + std::to_string(++files_) + ".yaml", yaml)});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  // A request to the router's REST entry with the admin's credentials (or none).
  Result<http::HttpResponse> router(const std::string& method, const std::string& path,
                                    const std::string& body = "", bool authenticated = true) {
    http::ClientOptions o = adminOptions();
    if (!authenticated) {
      o.clientCertPem.clear();
      o.clientKeyPem.clear();
    }
    http::HttpClient c("https://127.0.0.1:" + std::to_string(routerPort_), o);
    return c.request(method, path, body, body.empty() ? "" : "application/json");
  }

  Json ruleStatus(const std::string& name) {
    auto r = edgectl({"get", "rule", name, "-o", "json"});
    if (r.exitCode != 0) return Json();
    Json j = Json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("status", Json::object()) : Json();
  }

  // Payloads received on `topic` by a mosquitto_sub, in order.
  static std::vector<std::string> payloads(Process* sub, const std::string& topic) {
    std::vector<std::string> out;
    std::istringstream in(sub->log());
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(topic + " ", 0) == 0) out.push_back(line.substr(topic.size() + 1));
    }
    return out;
  }

  int files_ = 0;
};

constexpr const char* kEndpoints = R"(apiVersion: rules.kubeedge.io/v1
kind: RuleEndpoint
metadata:
  name: my-rest
spec:
  ruleEndpointType: rest
  properties: {}
---
apiVersion: rules.kubeedge.io/v1
kind: RuleEndpoint
metadata:
  name: my-eventbus
spec:
  ruleEndpointType: eventbus
  properties: {}
)";

// rest -> eventbus: a POST to /NODE/NAMESPACE/PATH is published on the edge's broker (200 once
// the broker took it); while the node is away it is kept (202) and published, in order, when
// the node is back. Counts reach the Rule's status. Bad requests get clear errors.
TEST_F(RulesTest, RestToEventbusPublishesOnTheEdgeBrokerAndKeepsMessagesWhileTheNodeIsAway) {
  startRuleEdge();
  apply(std::string(kEndpoints) + R"(---
apiVersion: rules.kubeedge.io/v1
kind: Rule
metadata:
  name: rest-to-edge
spec:
  source: my-rest
  sourceResource: {"path": "/test"}
  target: my-eventbus
  targetResource: {"topic": "test"}
)");
  auto sub = broker_->subscribe("test", "sub.log");
  ASSERT_NE(sub, nullptr);
  Process* s = sub.get();
  subs_.push_back(std::move(sub));

  // The first POSTs may come before the router's table has the rule, or before the subscriber
  // has subscribed (a QoS 1 message published before that is not its to get): probe until the
  // subscriber has seen one.
  ASSERT_TRUE(eventually([&] {
    auto r = router("POST", "/edge-1/default/test", R"({"message":"probe"})");
    return r.isOk() && r->status == 200 && !payloads(s, "test").empty();
  })) << router("POST", "/edge-1/default/test", "{}")->body
      << s->log();
  auto r = router("POST", "/edge-1/default/test/sub/path", R"({"message":"123"})");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Json::parse(r->body).value("status", ""), "Delivered") << r->body;
  ASSERT_TRUE(eventually([&] { return payloads(s, "test").back() == R"({"message":"123"})"; }))
      << s->log();

  // Authentication, matching and methods.
  auto anonymous = router("POST", "/edge-1/default/test", "{}", false);
  ASSERT_TRUE(anonymous.isOk());
  EXPECT_EQ(anonymous->status, 401);
  auto noRule = router("POST", "/edge-1/default/nothing", "{}");
  ASSERT_TRUE(noRule.isOk());
  EXPECT_EQ(noRule->status, 404);
  EXPECT_NE(noRule->body.find("no Rule in namespace default"), std::string::npos) << noRule->body;
  auto noNode = router("POST", "/edge-9/default/test", "{}");
  ASSERT_TRUE(noNode.isOk());
  EXPECT_EQ(noNode->status, 404);
  EXPECT_NE(noNode->body.find("edge-9"), std::string::npos) << noNode->body;
  auto get = router("GET", "/edge-1/default/test");
  ASSERT_TRUE(get.isOk());
  EXPECT_EQ(get->status, 405);

  // The node goes away: messages are kept, then published in order when it is back.
  ASSERT_EQ(edges_["edge-1"].proc->stop(SIGTERM), 0);
  ASSERT_TRUE(eventually([&] {
    auto st = router("POST", "/edge-1/default/test", R"({"n":1})");
    return st.isOk() && st->status == 202;
  }));
  for (int n = 2; n <= 3; ++n) {
    auto q = router("POST", "/edge-1/default/test", R"({"n":)" + std::to_string(n) + "}");
    ASSERT_TRUE(q.isOk());
    EXPECT_EQ(q->status, 202) << q->body;
    EXPECT_EQ(Json::parse(q->body).value("status", ""), "Queued") << q->body;
  }
  // cloudcore restarts too: the queue is on disk.
  restartCloud();
  startRuleEdge();
  ASSERT_TRUE(eventually(
      [&] { return payloads(s, "test").size() >= 5 && payloads(s, "test").back() == R"({"n":3})"; },
      std::chrono::seconds(30)))
      << s->log();
  auto all = payloads(s, "test");
  // At least once: the first queued message may have been published twice (the node went away
  // with its answer in flight); order is kept.
  std::vector<std::string> tail(all.end() - 3, all.end());
  EXPECT_EQ(tail, (std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})"}));
  ASSERT_TRUE(eventually([&] {
    return ruleStatus("rest-to-edge").value("successMessages", 0) >= 5;
  })) << ruleStatus("rest-to-edge").dump();
}

// eventbus -> rest: what an edge app publishes on {namespace}/{topic} is POSTed to the rule's
// URL; a failing target is retried (failures counted, the error in the status), and messages
// published while the cloud is down arrive, in order, after it returns.
TEST_F(RulesTest, EventbusToRestPostsEdgeMessagesToTheCloudAppRetryingAndAcrossOutages) {
  Receiver app(/*failFirst=*/2);
  startRuleEdge();
  apply(std::string(kEndpoints) + R"(---
apiVersion: rules.kubeedge.io/v1
kind: Rule
metadata:
  name: edge-to-rest
spec:
  source: my-eventbus
  sourceResource: {"topic": "up", "node_name": "edge-1"}
  target: my-rest
  targetResource: {"resource": "http://127.0.0.1:)" +
        std::to_string(app.port()) + R"(/hello"}
)");
  // The edge subscribes once the rule reaches it: probe until the app gets something.
  ASSERT_TRUE(eventually(
      [&] {
        broker_->publish("default/up", R"({"probe":true})");
        return !app.requests().empty();
      },
      std::chrono::seconds(30)));
  // The first two POSTs failed (503) and were retried.
  ASSERT_TRUE(eventually([&] {
    for (const auto& r : app.requests()) {
      if (r.rfind("POST /hello ", 0) != 0) return false;
    }
    return app.requests().size() >= 3;
  })) << app.requests().size();
  ASSERT_TRUE(eventually([&] {
    Json st = ruleStatus("edge-to-rest");
    return st.value("failMessages", 0) >= 2 && st.value("successMessages", 0) >= 1;
  })) << ruleStatus("edge-to-rest").dump();
  Json st = ruleStatus("edge-to-rest");
  ASSERT_TRUE(st["errors"].is_array() && !st["errors"].empty()) << st.dump();
  EXPECT_NE(st["errors"].back().get<std::string>().find("HTTP 503"), std::string::npos)
      << st.dump();

  ASSERT_EQ(broker_->publish("default/up", R"({"edgemsg":"msgtocloud"})").exitCode, 0);
  ASSERT_TRUE(eventually([&] {
    auto b = app.bodies();
    return !b.empty() && b.back() == R"({"edgemsg":"msgtocloud"})";
  }));

  // The cloud goes away; the edge keeps what its apps publish and delivers it in order.
  cloud_.reset();
  for (int n = 1; n <= 3; ++n) {
    ASSERT_EQ(broker_->publish("default/up", R"({"n":)" + std::to_string(n) + "}").exitCode, 0);
  }
  restartCloud();
  ASSERT_TRUE(eventually(
      [&] {
        auto b = app.bodies();
        return b.size() >= 4 && b.back() == R"({"n":3})";
      },
      std::chrono::seconds(30)));
  auto b = app.bodies();
  EXPECT_EQ(std::vector<std::string>(b.end() - 3, b.end()),
            (std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})"}));
  // What the rule carried is also kept in the cloud as its time series (edgectl data).
  auto data = edgectl({"data", "rule/edge-to-rest", "--property", "default/up", "-o", "json"});
  ASSERT_EQ(data.exitCode, 0) << data.err;
  std::vector<std::string> values;
  for (const auto& item : Json::parse(data.out).value("items", Json::array())) {
    values.push_back(item.value("value", ""));
  }
  ASSERT_GE(values.size(), 4u) << data.out;
  EXPECT_EQ(std::vector<std::string>(values.end() - 4, values.end()),
            (std::vector<std::string>{R"({"edgemsg":"msgtocloud"})", R"({"n":1})", R"({"n":2})",
                                      R"({"n":3})"}));
  // A topic no rule takes goes nowhere.
  const size_t before = app.requests().size();
  ASSERT_EQ(broker_->publish("default/other", "x").exitCode, 0);
  ASSERT_EQ(broker_->publish("default/up", R"({"last":true})").exitCode, 0);
  ASSERT_TRUE(eventually([&] { return app.bodies().back() == R"({"last":true})"; }));
  EXPECT_EQ(app.requests().size(), before + 1);
}

// KubeEdge's upload topic: what is published under $hw/events/upload/ on a node's broker is
// kept in the cloud as the node's time series (edgectl data node/NAME), across a cloud outage.
TEST_F(RulesTest, UploadsAreKeptAsTheNodesTimeSeries) {
  startRuleEdge();
  auto values = [&] {
    auto r = edgectl({"data", "node/edge-1", "-o", "json"});
    std::vector<std::string> out;
    if (r.exitCode != 0) return out;
    for (const auto& item : Json::parse(r.out).value("items", Json::array())) {
      out.push_back(item.value("property", "") + " " + item.value("value", ""));
    }
    return out;
  };
  // The edge subscribes when it connects to the broker: probe until an upload arrives.
  ASSERT_TRUE(eventually([&] {
    broker_->publish("$hw/events/upload/probe", "probe");
    return !values().empty();
  }));
  cloud_.reset();
  ASSERT_EQ(broker_->publish("$hw/events/upload/thermo-1", R"({"temperature":"21.5"})").exitCode,
            0);
  restartCloud();
  ASSERT_TRUE(eventually(
      [&] {
        auto v = values();
        return !v.empty() && v.back() == R"($hw/events/upload/thermo-1 {"temperature":"21.5"})";
      },
      std::chrono::seconds(30)))
      << edgectl({"data", "node/edge-1"}).out;
}

// rest -> servicebus: a request to the router reaches an HTTP service on the node
// (127.0.0.1:service_port + targetResource.path + the rest of the path and the query) and its
// answer comes back; with the node away the caller gets 503 at once.
TEST_F(RulesTest, RestToServicebusCallsTheServiceOnTheNodeAndReturnsItsAnswer) {
  Receiver service;
  startRuleEdge();
  apply(R"(apiVersion: rules.kubeedge.io/v1
kind: RuleEndpoint
metadata:
  name: my-rest
spec:
  ruleEndpointType: rest
---
apiVersion: rules.kubeedge.io/v1
kind: RuleEndpoint
metadata:
  name: my-servicebus
spec:
  ruleEndpointType: servicebus
  properties: {"service_port": ")" +
        std::to_string(service.port()) + R"("}
---
apiVersion: rules.kubeedge.io/v1
kind: Rule
metadata:
  name: rest-to-service
spec:
  source: my-rest
  sourceResource: {"path": "/source"}
  target: my-servicebus
  targetResource: {"path": "/target"}
)");
  Result<http::HttpResponse> r = unavailableError("not sent");
  ASSERT_TRUE(eventually([&] {
    r = router("GET", "/edge-1/default/source/item?x=1");
    return r.isOk() && r->status == 200;
  })) << (r.isOk() ? r->body : r.status().message());
  Json answer = Json::parse(r->body, nullptr, false);
  EXPECT_EQ(answer.value("method", ""), "GET");
  EXPECT_EQ(answer.value("target", ""), "/target/item?x=1");
  EXPECT_EQ(r->header("X-Served-By"), "edge-app");

  auto post = router("POST", "/edge-1/default/source", R"({"message":"123"})");
  ASSERT_TRUE(post.isOk());
  EXPECT_EQ(post->status, 200) << post->body;
  answer = Json::parse(post->body, nullptr, false);
  EXPECT_EQ(answer.value("target", ""), "/target");
  EXPECT_EQ(answer.value("body", ""), R"({"message":"123"})");
  // The caller's credentials never reach the service.
  for (const auto& req : service.requests()) EXPECT_EQ(req.find("BEGIN"), std::string::npos);

  ASSERT_TRUE(eventually([&] {
    return ruleStatus("rest-to-service").value("successMessages", 0) >= 2;
  })) << ruleStatus("rest-to-service").dump();

  ASSERT_EQ(edges_["edge-1"].proc->stop(SIGTERM), 0);
  ASSERT_TRUE(eventually([&] {
    auto away = router("GET", "/edge-1/default/source");
    return away.isOk() && away->status == 503;
  }));
}

}  // namespace
}  // namespace ep::testing
