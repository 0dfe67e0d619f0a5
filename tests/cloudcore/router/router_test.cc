#include "cloudcore/router/router.h"

#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cloudcore/cloudhub/route_broker.h"
#include "cloudcore/devicedata/device_data_store.h"
#include "common/api/kinds.h"
#include "proto/tunnel.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/store_fixture.h"

namespace ep::router {
namespace {

using Json = nlohmann::json;
namespace pb = edgeplane::tunnel::v1;

// Fails the first `failFirst` POSTs, records the bodies of the rest.
class FakePoster final : public RestPoster {
 public:
  explicit FakePoster(int failFirst) : failFirst_(failFirst) {}
  Status post(const std::string& url, const std::string& body, std::chrono::milliseconds) override {
    std::lock_guard l(mu_);
    if (failFirst_ > 0) {
      --failFirst_;
      return unavailableError("POST " + url + ": HTTP 503");
    }
    bodies_.push_back(body);
    return Status::ok();
  }
  std::vector<std::string> bodies() {
    std::lock_guard l(mu_);
    return bodies_;
  }

 private:
  std::mutex mu_;
  int failFirst_;
  std::vector<std::string> bodies_;
};

// A node session: records RouteDelivers and answers each at once through the broker.
class AnsweringSink final : public cloudhub::SyncSink {
 public:
  explicit AnsweringSink(cloudhub::RouteBroker& broker) : broker_(broker) {}
  bool send(cloudhub::CloudMessagePtr m) override {
    {
      std::lock_guard l(mu_);
      delivered_.push_back(m->route_deliver().body());
    }
    pb::RouteResult r;
    r.set_id(m->route_deliver().id());
    broker_.onResult(this, r);
    return true;
  }
  void close(const std::string&) override {}
  std::vector<std::string> delivered() {
    std::lock_guard l(mu_);
    return delivered_;
  }

 private:
  cloudhub::RouteBroker& broker_;
  std::mutex mu_;
  std::vector<std::string> delivered_;
};

using ep::testing::eventually;

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    create("RuleEndpoint", {{"name", "rest"}}, {{"ruleEndpointType", "rest"}});
    create("RuleEndpoint", {{"name", "bus"}}, {{"ruleEndpointType", "eventbus"}});
    create("Rule", {{"name", "up"}},
           {{"source", "bus"},
            {"sourceResource", {{"topic", "up"}, {"node_name", "edge-1"}}},
            {"target", "rest"},
            {"targetResource", {{"resource", "http://127.0.0.1:1/hook"}}}});
    create("Rule", {{"name", "down"}},
           {{"source", "rest"},
            {"sourceResource", {{"path", "/down"}}},
            {"target", "bus"},
            {"targetResource", {{"topic", "cmd"}}}});
    Json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "edge-1"}}}};
    ASSERT_TRUE(env_.registry->create(*api::findByApiVersionKind("v1", "Node"), "", node).isOk());
  }
  void TearDown() override {
    if (router_) router_->stop();
    router_.reset();
    env_.stop();
  }

  void create(const std::string& kind, Json meta, Json spec) {
    meta["namespace"] = "default";
    Json obj = {
        {"apiVersion", "rules.kubeedge.io/v1"}, {"kind", kind}, {"metadata", meta}, {"spec", spec}};
    auto r = env_.registry->create(*api::findByApiVersionKind("rules.kubeedge.io/v1", kind),
                                   "default", obj);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }

  void startRouter(RestPoster& poster, devicedata::DeviceDataStore* data = nullptr) {
    RouterOptions o;
    o.dataDir = env_.dir.path();
    o.initialBackoff = std::chrono::milliseconds(10);
    o.maxBackoff = std::chrono::milliseconds(20);
    o.statusInterval = std::chrono::milliseconds(20);
    o.deliveryWait = std::chrono::milliseconds(200);
    router_ =
        std::make_unique<Router>(o, *env_.registry, broker_, poster, SystemClock::instance(), data);
    ASSERT_TRUE(router_->start().isOk());
  }

  Json status(const std::string& rule) {
    auto r = env_.registry->get(*api::findByApiVersionKind("rules.kubeedge.io/v1", "Rule"),
                                "default", rule);
    return r.isOk() ? r->value("status", Json::object()) : Json();
  }

  http::ServerResponse post(const std::string& path, const std::string& body) {
    http::ServerRequest req;
    req.method = "POST";
    req.path = path;
    req.target = path;
    req.body = body;
    return router_->handle(req);
  }

  testing::StoreFixture env_;
  cloudhub::RouteBroker broker_;
  std::unique_ptr<Router> router_;
  uint64_t seq_ = 0;
};

TEST_F(RouterTest, EdgeMessagesArePostedInOrderWithRetriesAndCountedInTheRuleStatus) {
  FakePoster poster(/*failFirst=*/2);
  startRouter(poster);
  for (const char* body : {"1", "2", "3"}) {
    ASSERT_TRUE(
        router_->routeFromEdge("edge-1", ++seq_, "default", "up", "default/up", body, 0).isOk());
  }
  ASSERT_TRUE(eventually([&] { return poster.bodies().size() == 3; }));
  EXPECT_EQ(poster.bodies(), (std::vector<std::string>{"1", "2", "3"}));
  ASSERT_TRUE(eventually([&] {
    Json s = status("up");
    return s.value("successMessages", 0) == 3 && s.value("failMessages", 0) == 2;
  })) << status("up").dump();
  Json errors = status("up")["errors"];
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[1].get<std::string>().find("HTTP 503"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return router_->queued() == 0; }));
}

TEST_F(RouterTest, MessagesNoRuleTakesFromThatNodeAndTopicAreRefused) {
  FakePoster poster(0);
  startRouter(poster);
  EXPECT_EQ(router_->routeFromEdge("edge-1", 1, "default", "nope", "default/up", "x", 0).code(),
            Code::kNotFound);
  Status s = router_->routeFromEdge("edge-2", 1, "default", "up", "default/up", "x", 0);
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_NE(s.message().find("node edge-1, not edge-2"), std::string::npos) << s.message();
  EXPECT_EQ(router_->routeFromEdge("edge-1", 1, "default", "up", "default/other", "x", 0).code(),
            Code::kInvalid);
  EXPECT_EQ(router_->routeFromEdge("edge-1", 1, "default", "down", "default/up", "x", 0).code(),
            Code::kInvalid);
  EXPECT_EQ(router_->queued(), 0u);
}

TEST_F(RouterTest, RestMessagesWaitForTheNodeAcrossARouterRestartThenGoInOrder) {
  FakePoster poster(0);
  startRouter(poster);
  auto r = post("/edge-1/default/down", "a");
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_NE(r.body.find("not connected"), std::string::npos) << r.body;
  EXPECT_EQ(post("/edge-1/default/down/x", "b").status, 202);
  EXPECT_EQ(post("/edge-1/default/nothing", "c").status, 404);
  EXPECT_EQ(post("/edge-2/default/down", "d").status, 404);  // no such node
  EXPECT_EQ(post("/edge-1/default/down", std::string(251 * 1024, 'x')).status, 413);
  // The queue is on disk: a new router delivers it.
  router_->stop();
  router_.reset();
  startRouter(poster);
  EXPECT_EQ(router_->queued(), 2u);
  auto sink = std::make_shared<AnsweringSink>(broker_);
  broker_.attach("edge-1", sink);
  ASSERT_TRUE(eventually([&] { return sink->delivered().size() == 2; }));
  EXPECT_EQ(sink->delivered(), (std::vector<std::string>{"a", "b"}));
  r = post("/edge-1/default/down", "e");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body).value("status", ""), "Delivered");
  EXPECT_EQ(sink->delivered().back(), "e");
  ASSERT_TRUE(eventually([&] { return status("down").value("successMessages", 0) == 3; }))
      << status("down").dump();
  broker_.detach("edge-1", sink.get());
}

// What a Rule carried from the edge is kept as its time series: once per delivery (a report
// applied twice adds nothing), binary payloads base64-encoded.
TEST_F(RouterTest, EdgeMessagesAreKeptAsTheRulesTimeSeries) {
  FakePoster poster(0);
  devicedata::SqliteDeviceDataStore data({.path = env_.dir.path() + "/devicedata.db"},
                                         SystemClock::instance());
  ASSERT_TRUE(data.start().isOk());
  startRouter(poster, &data);
  for (int i = 0; i < 2; ++i) {
    Status s = router_->routeFromEdge("edge-1", 7, "default", "up", "default/up", "21.5", 1000);
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  ASSERT_TRUE(router_
                  ->routeFromEdge("edge-1", 8, "default", "up", "default/up",
                                  std::string("\xff\x00", 2), 2000)
                  .isOk());
  auto samples = data.query({.ns = "default", .device = devicedata::ruleSeries("up")});
  ASSERT_TRUE(samples.isOk()) << samples.status().toString();
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].property, "default/up");
  EXPECT_EQ((*samples)[0].timestamp, 1000);
  EXPECT_EQ((*samples)[0].value, "21.5");
  EXPECT_EQ((*samples)[1].value, "base64:/wA=");
  // Uploads ($hw/events/upload/#, no Rule) are the node's series; other topics are refused.
  ASSERT_TRUE(
      router_->routeFromEdge("edge-1", 9, "", "", "$hw/events/upload/d1", "v", 3000).isOk());
  EXPECT_EQ(router_->routeFromEdge("edge-1", 10, "", "", "default/up", "v", 3000).code(),
            Code::kInvalid);
  auto uploads = data.query({.ns = "", .device = devicedata::nodeSeries("edge-1")});
  ASSERT_TRUE(uploads.isOk());
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].property, "$hw/events/upload/d1");

  router_->stop();
  data.stop();
}

TEST_F(RouterTest, AuthorizationSeesRulesProxyInTheNamespaceNamedAfterTheRule) {
  FakePoster poster(0);
  startRouter(poster);
  http::ServerRequest req;
  req.method = "POST";
  req.path = "/edge-1/default/down/x";
  auto a = router_->attributes(req);
  EXPECT_TRUE(a.resourceRequest);
  EXPECT_EQ(a.verb, "create");
  EXPECT_EQ(a.apiGroup, "rules.kubeedge.io");
  EXPECT_EQ(a.resourceWithSubresource(), "rules/proxy");
  EXPECT_EQ(a.ns, "default");
  EXPECT_EQ(a.name, "down");
  req.method = "GET";
  req.path = "/healthz";
  a = router_->attributes(req);
  EXPECT_FALSE(a.resourceRequest);
  EXPECT_EQ(a.verb, "get");
}

}  // namespace
}  // namespace ep::router
