#include "edgecore/router/edge_router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "edgecore/metamanager/metamanager.h"
#include "proto/tunnel.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::router {
namespace {

using Json = nlohmann::json;
namespace tv1 = edgeplane::tunnel::v1;

using ep::testing::eventually;

class FakeBus final : public RouteBus {
 public:
  bool connected() const override { return up; }
  Status publish(std::string topic, std::string payload,
                 std::function<void(Status)> done) override {
    std::lock_guard l(mu);
    published.emplace_back(topic, payload);
    pendingDone.push_back(std::move(done));
    return Status::ok();
  }
  Status setRuleTopics(std::vector<std::string> t) override {
    std::lock_guard l(mu);
    topics = std::move(t);
    return Status::ok();
  }
  void acknowledge(uint64_t generation, uint16_t packetId) override {
    std::lock_guard l(mu);
    acks.emplace_back(generation, packetId);
  }
  std::vector<std::string> currentTopics() {
    std::lock_guard l(mu);
    return topics;
  }
  size_t ackCount() {
    std::lock_guard l(mu);
    return acks.size();
  }
  std::atomic<bool> up{true};
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> published;
  std::vector<std::function<void(Status)>> pendingDone;
  std::vector<std::string> topics;
  std::vector<std::pair<uint64_t, uint16_t>> acks;
};

class FakeCaller final : public ServiceCaller {
 public:
  Result<ServiceAnswer> call(const ServiceCall& c) override {
    std::lock_guard l(mu);
    calls.push_back(c);
    if (c.port == 1) return unavailableError("connection refused");
    return ServiceAnswer{.status = 202, .headers = {{"X-A", "b"}}, .body = "answer:" + c.body};
  }
  std::mutex mu;
  std::vector<ServiceCall> calls;
};

// Collects RouteResults sent back to the cloud.
struct Results {
  std::mutex mu;
  std::vector<tv1::RouteResult> got;
  edgehub::StreamSender sender() {
    return [this](tv1::EdgeMessage&& m) {
      std::lock_guard l(mu);
      got.push_back(m.route_result());
      return true;
    };
  }
  size_t size() {
    std::lock_guard l(mu);
    return got.size();
  }
  tv1::RouteResult at(size_t i) {
    std::lock_guard l(mu);
    return got.at(i);
  }
};

class EdgeRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = std::make_unique<metamanager::MetaManager>(
        metamanager::MetaManagerOptions{.dataDir = dir_.path()});
    ASSERT_TRUE(cache_->start().isOk());
    router_ = std::make_unique<EdgeRouter>(EdgeRouterOptions{.nodeName = "edge-1"}, *cache_,
                                           *cache_, bus_, caller_, SystemClock::instance());
  }
  void TearDown() override {
    router_->stop();
    cache_->stop();
  }

  void put(const std::string& resource, const std::string& name, Json spec) {
    tv1::Sync sync;
    sync.set_revision(++revision_);
    auto* c = sync.add_changes();
    c->set_op(tv1::Change::OP_PUT);
    c->set_resource(resource);
    c->set_namespace_("default");
    c->set_name(name);
    c->set_revision(revision_);
    Json obj = {{"metadata",
                 {{"name", name},
                  {"namespace", "default"},
                  {"resourceVersion", std::to_string(revision_)}}},
                {"spec", spec}};
    c->set_value(obj.dump());
    ASSERT_TRUE(cache_->applySync(sync).isOk());
  }
  void putRules() {
    put("ruleendpoints.rules.kubeedge.io", "rest", {{"ruleEndpointType", "rest"}});
    put("ruleendpoints.rules.kubeedge.io", "bus", {{"ruleEndpointType", "eventbus"}});
    put("rules.rules.kubeedge.io", "up",
        {{"source", "bus"},
         {"sourceResource", {{"topic", "up"}, {"node_name", "edge-1"}}},
         {"target", "rest"},
         {"targetResource", {{"resource", "http://cloud-app/hook"}}}});
    // Another node's rule: not subscribed here.
    put("rules.rules.kubeedge.io", "theirs",
        {{"source", "bus"},
         {"sourceResource", {{"topic", "theirs"}, {"node_name", "edge-2"}}},
         {"target", "rest"},
         {"targetResource", {{"resource", "http://cloud-app/hook"}}}});
  }

  testing::TempDir dir_;
  std::unique_ptr<metamanager::MetaManager> cache_;
  FakeBus bus_;
  FakeCaller caller_;
  std::unique_ptr<EdgeRouter> router_;
  int64_t revision_ = 0;
};

TEST_F(EdgeRouterTest, RuleTopicsFollowTheCacheAndMessagesGoToTheOutboxBeforeTheirAck) {
  ASSERT_TRUE(router_->start().isOk());
  putRules();
  ASSERT_TRUE(
      eventually([&] { return bus_.currentTopics() == std::vector<std::string>{"default/up"}; }));
  router_->onMessage(
      {.topic = "default/up", .payload = "hello", .qos = 1, .packetId = 7, .generation = 3});
  router_->onMessage(
      {.topic = "default/nobody", .payload = "x", .qos = 1, .packetId = 8, .generation = 3});
  ASSERT_TRUE(eventually([&] { return bus_.ackCount() == 2; }));
  auto pending = cache_->pending(10);
  ASSERT_TRUE(pending.isOk());
  ASSERT_EQ(pending->size(), 1u);
  const auto& e = (*pending)[0];
  EXPECT_EQ(e.kind, tv1::REPORT_KIND_ROUTED_MESSAGE);
  EXPECT_EQ(e.ns, "default");
  EXPECT_EQ(e.name, "up");
  tv1::RoutedMessage m;
  ASSERT_TRUE(m.ParseFromString(e.payload));
  EXPECT_EQ(m.topic(), "default/up");
  EXPECT_EQ(m.payload(), "hello");
  EXPECT_GT(m.timestamp_ms(), 0);
  EXPECT_EQ(router_->stats().unrouted, 1u);

  // An upload is a routed message of no Rule.
  router_->onMessage({.topic = "$hw/events/upload/dev-1",
                      .payload = "up",
                      .qos = 1,
                      .packetId = 9,
                      .generation = 3});
  ASSERT_TRUE(eventually([&] { return bus_.ackCount() == 3; }));
  pending = cache_->pending(10);
  ASSERT_TRUE(pending.isOk());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[1].kind, tv1::REPORT_KIND_ROUTED_MESSAGE);
  EXPECT_EQ((*pending)[1].ns, "");
  EXPECT_EQ((*pending)[1].name, "");
  EXPECT_TRUE(EdgeRouter::owns("$hw/events/upload/dev-1"));
  EXPECT_TRUE(EdgeRouter::owns("default/up"));
  EXPECT_FALSE(EdgeRouter::owns("$hw/events/device/dev-1/twin/update"));

  // A restart subscribes again from the cache alone.
  router_->stop();
  ASSERT_TRUE(bus_.setRuleTopics({}).isOk());
  router_ = std::make_unique<EdgeRouter>(EdgeRouterOptions{.nodeName = "edge-1"}, *cache_, *cache_,
                                         bus_, caller_, SystemClock::instance());
  ASSERT_TRUE(router_->start().isOk());
  EXPECT_EQ(bus_.currentTopics(), std::vector<std::string>{"default/up"});
}

TEST_F(EdgeRouterTest, CloudMessagesArePublishedAndAnsweredAfterTheBrokersAck) {
  ASSERT_TRUE(router_->start().isOk());
  Results results;
  tv1::RouteDeliver d;
  d.set_id(5);
  d.set_topic("cmd");
  d.set_body("{\"on\":true}");
  router_->onRouteDeliver(d, results.sender());
  EXPECT_EQ(results.size(), 0u);  // not before the broker acknowledged it
  {
    std::lock_guard l(bus_.mu);
    ASSERT_EQ(bus_.published.size(), 1u);
    EXPECT_EQ(bus_.published[0], (std::pair<std::string, std::string>{"cmd", "{\"on\":true}"}));
    bus_.pendingDone[0](Status::ok());
  }
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results.at(0).id(), 5u);
  EXPECT_EQ(results.at(0).error(), "");

  bus_.up = false;
  d.set_id(6);
  router_->onRouteDeliver(d, results.sender());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_NE(results.at(1).error().find("not connected"), std::string::npos);
  bus_.up = true;
  d.set_id(7);
  d.set_topic("bad/#");
  router_->onRouteDeliver(d, results.sender());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_NE(results.at(2).error().find("wildcards"), std::string::npos);
}

TEST_F(EdgeRouterTest, ServiceCallsReachTheLocalServiceAndReturnItsAnswer) {
  ASSERT_TRUE(router_->start().isOk());
  Results results;
  tv1::RouteDeliver d;
  d.set_id(9);
  d.set_service_port(8080);
  d.set_method("POST");
  d.set_path("/target/x?y=1");
  d.set_body("ping");
  auto* h = d.add_headers();
  h->set_name("content-type");
  h->set_value("text/plain");
  router_->onRouteDeliver(d, results.sender());
  ASSERT_TRUE(eventually([&] { return results.size() == 1; }));
  EXPECT_EQ(results.at(0).id(), 9u);
  EXPECT_EQ(results.at(0).error(), "");
  EXPECT_EQ(results.at(0).status(), 202);
  EXPECT_EQ(results.at(0).body(), "answer:ping");
  {
    std::lock_guard l(caller_.mu);
    ASSERT_EQ(caller_.calls.size(), 1u);
    EXPECT_EQ(caller_.calls[0].path, "/target/x?y=1");
    EXPECT_EQ(caller_.calls[0].method, "POST");
  }
  d.set_id(10);
  d.set_service_port(1);  // refused
  router_->onRouteDeliver(d, results.sender());
  ASSERT_TRUE(eventually([&] { return results.size() == 2; }));
  EXPECT_NE(results.at(1).error().find("connection refused"), std::string::npos);
  tv1::RouteDeliver empty;
  empty.set_id(11);
  router_->onRouteDeliver(empty, results.sender());
  ASSERT_TRUE(eventually([&] { return results.size() == 3; }));
  EXPECT_NE(results.at(2).error().find("neither a topic nor a service port"), std::string::npos);
}

}  // namespace
}  // namespace ep::edgecore::router
