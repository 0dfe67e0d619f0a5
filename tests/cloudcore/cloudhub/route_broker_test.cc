#include "cloudcore/cloudhub/route_broker.h"

#include <gtest/gtest.h>

#include "proto/tunnel.pb.h"

namespace ep::cloudhub {
namespace {

namespace pb = edgeplane::tunnel::v1;

class RecordingSink final : public SyncSink {
 public:
  bool send(CloudMessagePtr message) override {
    if (closed) return false;
    sent.push_back(std::move(message));
    return true;
  }
  void close(const std::string&) override { closed = true; }
  std::vector<CloudMessagePtr> sent;
  bool closed = false;
};

pb::RouteResult result(uint64_t id, const std::string& error = "") {
  pb::RouteResult r;
  r.set_id(id);
  r.set_error(error);
  r.set_status(201);
  r.set_body("made");
  return r;
}

TEST(RouteBrokerTest, RequestsGoToTheNodesSessionAndResultsComeBack) {
  RouteBroker broker;
  std::vector<std::pair<std::string, bool>> changes;
  broker.setConnectionListener([&](const std::string& n, bool c) { changes.emplace_back(n, c); });
  RouteRequest req{.ruleNamespace = "default", .ruleName = "r", .topic = "t", .body = "hello"};
  EXPECT_EQ(broker.send("edge-1", req, [](RouteReply) {}).status().code(), Code::kUnavailable);

  auto sink = std::make_shared<RecordingSink>();
  broker.attach("edge-1", sink);
  EXPECT_TRUE(broker.connected("edge-1"));
  std::vector<RouteReply> replies;
  auto id = broker.send("edge-1", req, [&](RouteReply r) { replies.push_back(std::move(r)); });
  ASSERT_TRUE(id.isOk());
  ASSERT_EQ(sink->sent.size(), 1u);
  const auto& d = sink->sent[0]->route_deliver();
  EXPECT_EQ(d.id(), *id);
  EXPECT_EQ(d.topic(), "t");
  EXPECT_EQ(d.body(), "hello");
  EXPECT_EQ(d.rule_name(), "r");

  RecordingSink stranger;
  broker.onResult(&stranger, result(*id));  // another session's answer is ignored
  EXPECT_TRUE(replies.empty());
  broker.onResult(sink.get(), result(*id));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].status.isOk());
  EXPECT_EQ(replies[0].httpStatus, 201);
  EXPECT_EQ(replies[0].body, "made");
  broker.onResult(sink.get(), result(*id));  // only once
  EXPECT_EQ(replies.size(), 1u);
  EXPECT_EQ(broker.pending(), 0u);
  EXPECT_EQ(changes, (std::vector<std::pair<std::string, bool>>{{"edge-1", true}}));
}

TEST(RouteBrokerTest, ADisconnectFailsPendingRequestsAndForgottenOnesNeverCallBack) {
  RouteBroker broker(RouteBrokerOptions{.maxPendingPerNode = 2});
  auto sink = std::make_shared<RecordingSink>();
  broker.attach("edge-1", sink);
  std::vector<Status> outcomes;
  auto record = [&](RouteReply r) { outcomes.push_back(r.status); };
  auto a = broker.send("edge-1", {}, record);
  auto b = broker.send("edge-1", {}, record);
  ASSERT_TRUE(a.isOk() && b.isOk());
  auto c = broker.send("edge-1", {}, record);
  EXPECT_EQ(c.status().code(), Code::kUnavailable);  // the per-node limit
  EXPECT_TRUE(broker.forget(*a));
  EXPECT_FALSE(broker.forget(*a));
  broker.onResult(sink.get(), result(*a));
  EXPECT_TRUE(outcomes.empty());
  broker.detach("edge-1", sink.get());
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].code(), Code::kUnavailable);
  EXPECT_NE(outcomes[0].message().find("disconnected"), std::string::npos);
  EXPECT_FALSE(broker.connected("edge-1"));
  // An edge error is the reply's status.
  broker.attach("edge-1", sink);
  auto d = broker.send("edge-1", {}, record);
  ASSERT_TRUE(d.isOk());
  broker.onResult(sink.get(), result(*d, "broker down"));
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[1].message(), "broker down");
}

}  // namespace
}  // namespace ep::cloudhub
