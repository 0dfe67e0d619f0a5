#include "cloudcore/cloudhub/cloudhub.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cloudcore/cloudhub/metrics.h"
#include "cloudcore/cloudhub/node_leases.h"
#include "cloudcore/cloudhub/node_state_store.h"
#include "cloudcore/cloudhub/tunnel_server.h"
#include "cloudcore/controllers/node_controller.h"
#include "cloudcore/registry/registry.h"
#include "cloudcore/store/sqlite_store.h"
#include "common/api/kinds.h"
#include "common/tunnel_features.h"
#include "tests/cloudcore/cloudhub/test_edge.h"
#include "tests/testing/eventually.h"
#include "tests/testing/store_fixture.h"

namespace ep::cloudhub {
namespace {

using nlohmann::json;
using testing::TestEdge;
namespace pb = edgeplane::tunnel::v1;
using namespace std::chrono_literals;

const api::KindInfo& kind(const char* apiVersion, const char* k) {
  return *api::findByApiVersionKind(apiVersion, k);
}

// (op, resource, namespace/name) of every change of a Sync, sorted.
std::set<std::string> changeSet(const pb::Sync& sync) {
  std::set<std::string> out;
  for (const auto& c : sync.changes()) {
    out.insert(std::string(c.op() == pb::Change::OP_PUT ? "PUT " : "DELETE ") + c.resource() + " " +
               c.namespace_() + "/" + c.name());
  }
  return out;
}

class CloudHubTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.start().isOk()); }
  void TearDown() override {
    edges_.clear();
    if (hub_) hub_->stop();
    hub_.reset();
    env_.stop();
  }

  void startHub(bool manual = false, size_t queueLimit = 1024, uint16_t port = 0,
                ResourceMetricsSink* resourceMetrics = nullptr) {
    CloudHubOptions o;
    o.resourceMetrics = resourceMetrics;
    o.host = "127.0.0.1";
    o.port = port;
    o.dataDir = env_.dir.path();
    o.manualRegistration = manual;
    o.sendQueueLimit = queueLimit;
    o.flushInterval = 50ms;
    o.helloTimeout = 1500ms;
    o.clock = &env_.clock;
    hub_ = std::make_unique<CloudHub>(o, *env_.registry);
    ASSERT_TRUE(hub_->start().isOk());
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(hub_->port()); }

  TestEdge& edge(bool startReading = true) {
    edges_.push_back(std::make_unique<TestEdge>(target(), startReading));
    return *edges_.back();
  }
  // Connects `node` and returns its edge after the HelloReply and the initial Sync.
  TestEdge& connect(const std::string& node, std::vector<pb::CachedObject> inventory = {},
                    pb::Sync* initial = nullptr) {
    TestEdge& e = edge();
    EXPECT_TRUE(e.hello(node, std::move(inventory)));
    auto reply = e.next();
    EXPECT_TRUE(reply && reply->has_hello_reply() && reply->hello_reply().accepted());
    auto sync = e.next();
    EXPECT_TRUE(sync && sync->has_sync() && sync->sync().initial());
    if (initial && sync) *initial = sync->sync();
    return e;
  }

  json createConfigMap(const std::string& name, const std::string& value = "v") {
    json cm = {{"metadata", {{"name", name}}}, {"data", {{"k", value}}}};
    auto r = env_.registry->create(kind("v1", "ConfigMap"), "default", cm);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : json();
  }
  json updateConfigMap(const std::string& name, const std::string& value) {
    auto cur = env_.registry->get(kind("v1", "ConfigMap"), "default", name);
    EXPECT_TRUE(cur.isOk());
    json next = *cur;
    next["data"]["k"] = value;
    auto r = env_.registry->update(kind("v1", "ConfigMap"), "default", name, next);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : json();
  }
  json createPod(const std::string& name, const std::string& node,
                 const std::string& configMap = "") {
    json pod = {{"metadata", {{"name", name}}},
                {"spec", {{"containers", {{{"name", "c"}, {"image", "busybox:1.36"}}}}}}};
    if (!node.empty()) pod["spec"]["nodeName"] = node;
    if (!configMap.empty()) {
      pod["spec"]["volumes"] = {{{"name", "cfg"}, {"configMap", {{"name", configMap}}}}};
    }
    auto r = env_.registry->create(kind("v1", "Pod"), "default", pod);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : json();
  }
  void bindPod(const std::string& name, const std::string& node) {
    auto cur = env_.registry->get(kind("v1", "Pod"), "default", name);
    ASSERT_TRUE(cur.isOk());
    json next = *cur;
    next["spec"]["nodeName"] = node;
    auto r = env_.registry->update(kind("v1", "Pod"), "default", name, next);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  void deletePod(const std::string& name) {
    auto r = env_.registry->remove(kind("v1", "Pod"), "default", name);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  void createNode(const std::string& name) {
    json node = {{"metadata", {{"name", name}, {"labels", {{"team", "ops"}}}}}};
    auto r = env_.registry->create(kind("v1", "Node"), "", node);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  static pb::CachedObject cached(const std::string& resource, const std::string& name,
                                 int64_t revision) {
    pb::CachedObject c;
    c.set_resource(resource);
    c.set_namespace_("default");
    c.set_name(name);
    c.set_revision(revision);
    return c;
  }
  // A NODE_STATUS payload: Ready=True with a heartbeat at `heartbeatMillis`.
  static std::string readyNodeStatus(const std::string& node, int64_t heartbeatMillis) {
    json n = {{"apiVersion", "v1"},
              {"kind", "Node"},
              {"metadata", {{"name", node}}},
              {"status",
               {{"conditions",
                 {{{"type", "Ready"},
                   {"status", "True"},
                   {"reason", "EdgeReady"},
                   {"lastHeartbeatTime", formatRfc3339(heartbeatMillis)}}}}}}};
    return n.dump();
  }
  // The status of a Node's Ready condition, or "" without one.
  static std::string readyOf(const json& node) {
    if (!node.contains("status") || !node["status"].contains("conditions")) return "";
    for (const auto& c : node["status"]["conditions"]) {
      if (c.value("type", "") == "Ready") return c.value("status", "");
    }
    return "";
  }
  static int64_t rv(const json& obj) {
    return std::stoll(obj["metadata"]["resourceVersion"].get<std::string>());
  }

  ep::testing::StoreFixture env_;
  std::unique_ptr<CloudHub> hub_;
  std::vector<std::unique_ptr<TestEdge>> edges_;
};

TEST_F(CloudHubTest, RefusesBadHellosWhileAnotherNodeKeepsWorking) {
  createNode("known");
  startHub(/*manual=*/true);
  TestEdge& good = connect("known");

  struct Case {
    std::function<void(TestEdge&)> send;
    grpc::StatusCode code;
    std::string reason;
  };
  std::vector<Case> cases = {
      {[](TestEdge& e) { e.ack(5); }, grpc::StatusCode::INVALID_ARGUMENT,
       "first_message_not_hello"},
      {[](TestEdge& e) { e.hello("known", {}, 2); }, grpc::StatusCode::FAILED_PRECONDITION,
       "protocol_version"},
      {[](TestEdge& e) { e.hello("Not_A_Name!"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "invalid_node_name"},
      {[](TestEdge& e) { e.hello("stranger"); }, grpc::StatusCode::PERMISSION_DENIED,
       "unknown_node"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason);
    TestEdge& bad = edge();
    c.send(bad);
    auto reply = bad.next();
    ASSERT_TRUE(reply && reply->has_hello_reply());
    EXPECT_FALSE(reply->hello_reply().accepted());
    EXPECT_FALSE(reply->hello_reply().reason().empty());
    auto status = bad.done();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), c.code) << status->error_message();
    EXPECT_EQ(hub_->metrics().refused(c.reason), 1u);
  }

  // The accepted node still gets its changes.
  createConfigMap("cfg");
  createPod("p", "known", "cfg");
  auto sync = good.nextOf(pb::CloudMessage::kSync);
  ASSERT_TRUE(sync);
  EXPECT_EQ(changeSet(sync->sync()),
            (std::set<std::string>{"PUT configmaps default/cfg", "PUT pods default/p"}));
  EXPECT_EQ(hub_->connectedNodes(), 1u);
}

TEST_F(CloudHubTest, StreamWithoutHelloIsEndedAfterTheTimeout) {
  startHub();
  TestEdge& silent = edge();
  auto status = silent.done(5s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status->error_message();
  EXPECT_EQ(hub_->metrics().refused("hello_timeout"), 1u);
  connect("still-fine");
}

TEST_F(CloudHubTest, InitialSyncIsTheExactDifferenceWithTheInventory) {
  json cm1 = createConfigMap("cm1");
  json cm2 = createConfigMap("cm2");
  json p1 = createPod("p1", "edge-a", "cm1");
  json p2 = createPod("p2", "edge-a", "cm2");
  createPod("other", "edge-b", "cm1");
  startHub();

  // Up to date: p1, cm1. Stale: cm2 (old revision). Not needed anymore: gone-pod. Missing: p2.
  pb::Sync initial;
  connect("edge-a",
          {cached("pods", "p1", rv(p1)), cached("configmaps", "cm1", rv(cm1)),
           cached("configmaps", "cm2", rv(cm2) - 1), cached("pods", "gone-pod", 1)},
          &initial);
  EXPECT_EQ(initial.changes_size(), 3);
  EXPECT_EQ(changeSet(initial),
            (std::set<std::string>{"PUT configmaps default/cm2", "PUT pods default/p2",
                                   "DELETE pods default/gone-pod"}));
  EXPECT_EQ(initial.revision(), env_.store->currentRevision());
  for (const auto& c : initial.changes()) {
    if (c.op() != pb::Change::OP_PUT) continue;
    json v = json::parse(c.value());
    EXPECT_EQ(v["metadata"]["resourceVersion"], std::to_string(c.revision()));
  }

  // An edge with everything gets an empty initial Sync.
  pb::Sync none;
  connect("edge-b", {}, &none);
  EXPECT_EQ(changeSet(none),
            (std::set<std::string>{"PUT configmaps default/cm1", "PUT pods default/other"}));
}

TEST_F(CloudHubTest, LiveBindSendsPodAndConfigMapOnlyToThatNode) {
  createConfigMap("cfg");
  createPod("web", "", "cfg");
  startHub();
  TestEdge& a = connect("edge-a");
  TestEdge& b = connect("edge-b");

  bindPod("web", "edge-a");
  auto sync = a.nextOf(pb::CloudMessage::kSync);
  ASSERT_TRUE(sync);
  EXPECT_FALSE(sync->sync().initial());
  EXPECT_EQ(changeSet(sync->sync()),
            (std::set<std::string>{"PUT configmaps default/cfg", "PUT pods default/web"}));
  EXPECT_EQ(sync->sync().revision(), env_.store->currentRevision());
  EXPECT_FALSE(b.next(300ms)) << "edge-b must get nothing";

  // Acks are recorded and exposed.
  ASSERT_TRUE(a.ack(sync->sync().revision()));
  for (int i = 0; i < 100 && hub_->nodeState().ackedRevision("edge-a") == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(hub_->nodeState().ackedRevision("edge-a"), sync->sync().revision());
  EXPECT_NE(hub_->metricsText().find("edgeplane_cloudhub_acked_revision{node=\"edge-a\"} " +
                                     std::to_string(sync->sync().revision())),
            std::string::npos);
}

TEST_F(CloudHubTest, ConfigMapUpdateReachesOnlyReferencingNodes) {
  createConfigMap("shared");
  createConfigMap("lonely");
  createPod("pa", "edge-a", "shared");
  createPod("pb", "edge-b", "shared");
  createPod("pc", "edge-c", "lonely");
  startHub();
  TestEdge& a = connect("edge-a");
  TestEdge& b = connect("edge-b");
  TestEdge& c = connect("edge-c");

  updateConfigMap("shared", "v2");
  for (TestEdge* e : {&a, &b}) {
    auto sync = e->nextOf(pb::CloudMessage::kSync);
    ASSERT_TRUE(sync);
    EXPECT_EQ(changeSet(sync->sync()), (std::set<std::string>{"PUT configmaps default/shared"}));
    EXPECT_EQ(json::parse(sync->sync().changes(0).value())["data"]["k"], "v2");
  }
  EXPECT_FALSE(c.next(300ms));
  // An unreferenced ConfigMap goes nowhere.
  createConfigMap("unused");
  EXPECT_FALSE(a.next(200ms));
  EXPECT_FALSE(c.next(100ms));
}

TEST_F(CloudHubTest, DeleteAndMoveSendDeletes) {
  createConfigMap("cfg");
  createPod("p1", "edge-a", "cfg");
  createPod("p2", "edge-a", "cfg");
  startHub();
  TestEdge& a = connect("edge-a");
  TestEdge& b = connect("edge-b");

  deletePod("p1");  // cfg still needed by p2
  auto s1 = a.nextOf(pb::CloudMessage::kSync);
  ASSERT_TRUE(s1);
  EXPECT_EQ(changeSet(s1->sync()), (std::set<std::string>{"DELETE pods default/p1"}));

  // "Move" p2 to edge-b (nodeName is set once, so: delete, recreate there).
  deletePod("p2");
  auto s2 = a.nextOf(pb::CloudMessage::kSync);
  ASSERT_TRUE(s2);
  EXPECT_EQ(changeSet(s2->sync()),
            (std::set<std::string>{"DELETE pods default/p2", "DELETE configmaps default/cfg"}));
  createPod("p2", "edge-b", "cfg");
  auto s3 = b.nextOf(pb::CloudMessage::kSync);
  ASSERT_TRUE(s3);
  EXPECT_EQ(changeSet(s3->sync()),
            (std::set<std::string>{"PUT pods default/p2", "PUT configmaps default/cfg"}));
  EXPECT_FALSE(a.next(200ms));

  // Deleting a referenced ConfigMap deletes it on the node; the pod stays.
  auto r = env_.registry->remove(kind("v1", "ConfigMap"), "default", "cfg");
  ASSERT_TRUE(r.isOk());
  auto s4 = b.nextOf(pb::CloudMessage::kSync);
  ASSERT_TRUE(s4);
  EXPECT_EQ(changeSet(s4->sync()), (std::set<std::string>{"DELETE configmaps default/cfg"}));
  EXPECT_GE(s4->sync().changes(0).revision(), rv(*r));
}

TEST_F(CloudHubTest, SecondStreamReplacesTheFirst) {
  createPod("p", "edge-a");
  startHub();
  TestEdge& first = connect("edge-a");
  pb::Sync initial;
  TestEdge& second = connect("edge-a", {}, &initial);
  EXPECT_EQ(initial.changes_size(), 1);
  auto status = first.done();
  ASSERT_TRUE(status.has_value());
  EXPECT_FALSE(status->ok());
  EXPECT_EQ(hub_->connectedNodes(), 1u);

  createPod("q", "edge-a");
  auto sync = second.nextOf(pb::CloudMessage::kSync);
  ASSERT_TRUE(sync);
  EXPECT_EQ(changeSet(sync->sync()), (std::set<std::string>{"PUT pods default/q"}));
}

// Keeps what the hub hands over; thread-safe (the hub calls it on its reaction threads).
class RecordingMetricsSink final : public ResourceMetricsSink {
 public:
  void onResourceMetrics(const std::string& node, const pb::ResourceMetrics& m) override {
    MutexLock lock(mu_);
    got_.emplace_back(node, m.timestamp_ms());
  }
  std::vector<std::pair<std::string, int64_t>> got() const {
    MutexLock lock(mu_);
    return got_;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::pair<std::string, int64_t>> got_ EP_GUARDED_BY(mu_);
};

TEST_F(CloudHubTest, ResourceMetricsReachTheSinkWithTheStreamsNode) {
  RecordingMetricsSink sink;
  startHub(false, 1024, 0, &sink);
  TestEdge& e = edge();
  ASSERT_TRUE(e.hello("edge-a"));
  auto reply = e.next();
  ASSERT_TRUE(reply && reply->has_hello_reply() && reply->hello_reply().accepted());
  // The cloud says it takes them: an edge sends them to no other.
  const auto& features = reply->hello_reply().features();
  EXPECT_EQ(std::vector<std::string>(features.begin(), features.end()),
            (std::vector<std::string>{kFeatureResourceMetrics, kFeatureNodeLease}));
  ASSERT_TRUE(e.nextOf(pb::CloudMessage::kSync));
  pb::EdgeMessage m;
  m.mutable_resource_metrics()->set_timestamp_ms(1234);
  ASSERT_TRUE(e.send(m));
  ASSERT_TRUE(ep::testing::eventually([&] { return !sink.got().empty(); }));
  EXPECT_EQ(sink.got().front(), std::make_pair(std::string("edge-a"), int64_t{1234}));
  // The stream carries on.
  createPod("p", "edge-a");
  EXPECT_TRUE(e.nextOf(pb::CloudMessage::kSync));
}

TEST_F(CloudHubTest, WithoutAMetricsSinkTheCloudListsNoMetricsFeature) {
  startHub();
  TestEdge& e = edge();
  ASSERT_TRUE(e.hello("edge-a"));
  auto reply = e.next();
  ASSERT_TRUE(reply && reply->has_hello_reply() && reply->hello_reply().accepted());
  ASSERT_EQ(reply->hello_reply().features_size(), 1);
  EXPECT_EQ(reply->hello_reply().features(0), kFeatureNodeLease);
}

// A LeaseRenewal renews the node's Lease in kube-node-lease (with the cloud's clock) and leaves
// the Node alone; the stream carries on.
TEST_F(CloudHubTest, LeaseRenewalsRenewTheNodesLease) {
  startHub();
  TestEdge& e = connect("edge-a");
  ASSERT_TRUE(
      e.report(1, pb::REPORT_KIND_NODE_STATUS, readyNodeStatus("edge-a", env_.clock.nowMillis())));
  ASSERT_TRUE(e.nextOf(pb::CloudMessage::kReportAck));
  const auto& leaseKind = kind("coordination.k8s.io/v1", "Lease");
  auto renewTime = [&] {
    auto l = env_.registry->get(leaseKind, "kube-node-lease", "edge-a");
    return l.isOk() ? (*l)["spec"].value("renewTime", "") : std::string();
  };
  ASSERT_TRUE(ep::testing::eventually([&] { return !renewTime().empty(); }));
  const std::string nodeVersion =
      (*env_.registry->get(kind("v1", "Node"), "", "edge-a"))["metadata"]["resourceVersion"];
  env_.clock.advance(10s);
  pb::EdgeMessage m;
  m.mutable_lease_renewal()->set_timestamp_ms(1);  // the edge's clock is never used
  ASSERT_TRUE(e.send(m));
  const std::string want = formatRfc3339Micro(env_.clock.nowMillis());
  ASSERT_TRUE(ep::testing::eventually([&] { return renewTime() == want; })) << renewTime();
  EXPECT_EQ((*env_.registry->get(kind("v1", "Node"), "", "edge-a"))["metadata"]["resourceVersion"],
            nodeVersion);
  createPod("p", "edge-a");
  EXPECT_TRUE(e.nextOf(pb::CloudMessage::kSync));
}

TEST_F(CloudHubTest, NodeStatusRegistersNodeAndReportsAreDeduplicated) {
  startHub();
  TestEdge& e = connect("edge-a");
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", "edge-a"}, {"labels", {{"arch", "arm64"}}}}},
               {"status",
                {{"conditions",
                  {{{"type", "Ready"},
                    {"status", "True"},
                    {"lastHeartbeatTime", formatRfc3339(env_.clock.nowMillis())}}}}}}};
  ASSERT_TRUE(e.report(1, pb::REPORT_KIND_NODE_STATUS, node.dump()));
  auto ack = e.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->report_ack().sequence(), 1u);
  auto got = env_.registry->get(kind("v1", "Node"), "", "edge-a");
  ASSERT_TRUE(got.isOk());
  EXPECT_EQ((*got)["status"]["conditions"][0]["status"], "True");
  EXPECT_EQ((*got)["metadata"]["labels"]["arch"], "arm64");

  // An operator adds a label; the next status keeps it.
  json withLabel = *got;
  withLabel["metadata"]["labels"]["owner"] = "me";
  ASSERT_TRUE(env_.registry->update(kind("v1", "Node"), "", "edge-a", withLabel).isOk());
  node["status"]["conditions"][0]["reason"] = "second";
  ASSERT_TRUE(e.report(2, pb::REPORT_KIND_NODE_STATUS, node.dump()));
  ack = e.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->report_ack().sequence(), 2u);
  // The same sequence again: acknowledged, not applied.
  node["status"]["conditions"][0]["reason"] = "duplicate";
  ASSERT_TRUE(e.report(2, pb::REPORT_KIND_NODE_STATUS, node.dump()));
  ack = e.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->report_ack().sequence(), 2u);
  got = env_.registry->get(kind("v1", "Node"), "", "edge-a");
  ASSERT_TRUE(got.isOk());
  EXPECT_EQ((*got)["status"]["conditions"][0]["reason"], "second");
  EXPECT_EQ((*got)["metadata"]["labels"]["owner"], "me");
  EXPECT_EQ(hub_->metrics().reportsApplied(), 2u);
  EXPECT_EQ(hub_->metrics().reportsDuplicate(), 1u);

  // Invalid payloads are acknowledged (so they leave the outbox) and counted.
  ASSERT_TRUE(e.report(3, pb::REPORT_KIND_NODE_STATUS, "{not json"));
  ack = e.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->report_ack().sequence(), 3u);
  EXPECT_EQ(hub_->metrics().reportsRejected(), 1u);
  EXPECT_EQ(hub_->nodeState().persistedReportSequence("edge-a"), 3u);

  // A reconnect learns the last applied sequence.
  TestEdge& again = edge();
  ASSERT_TRUE(again.hello("edge-a"));
  auto reply = again.next();
  ASSERT_TRUE(reply && reply->has_hello_reply());
  EXPECT_EQ(reply->hello_reply().last_report_sequence(), 3u);
}

// A node's reports of different objects are applied concurrently, of one object in order: after
// a burst of interleaved reports the Node's status is its last one, every Event exists, and the
// acknowledged sequence is the last (a refused report in between does not hold it back).
TEST_F(CloudHubTest, ReportsOfOneObjectApplyInOrderWhileOthersRunConcurrently) {
  startHub();
  TestEdge& e = connect("edge-a");
  auto nodeStatus = [](int i) {
    return json{
        {"apiVersion", "v1"},
        {"kind", "Node"},
        {"metadata", {{"name", "edge-a"}}},
        {"status",
         {{"conditions",
           {{{"type", "Ready"}, {"status", "True"}, {"reason", "r" + std::to_string(i)}}}}}}}
        .dump();
  };
  ASSERT_TRUE(e.report(1, pb::REPORT_KIND_NODE_STATUS, nodeStatus(1)));
  ASSERT_TRUE(e.nextOf(pb::CloudMessage::kReportAck));
  uint64_t seq = 1;
  for (int i = 2; i <= 150; ++i) {
    ASSERT_TRUE(e.report(++seq, pb::REPORT_KIND_NODE_STATUS, nodeStatus(i)));
    json ev = {{"apiVersion", "v1"},
               {"kind", "Event"},
               {"metadata", {{"name", "edge-a.e" + std::to_string(i)}, {"namespace", "default"}}},
               {"involvedObject", {{"kind", "Node"}, {"name", "edge-a"}, {"apiVersion", "v1"}}},
               {"reason", "Tick"},
               {"message", "tick"},
               {"type", "Normal"},
               {"source", {{"component", "edgecore"}, {"host", "edge-a"}}}};
    ASSERT_TRUE(e.report(++seq, pb::REPORT_KIND_EVENT, ev.dump(), "default",
                         "edge-a.e" + std::to_string(i)));
    if (i == 75) {
      ASSERT_TRUE(e.report(++seq, pb::REPORT_KIND_NODE_STATUS, "{broken"));
    }
  }
  uint64_t acked = 0;
  while (acked < seq) {
    auto ack = e.nextOf(pb::CloudMessage::kReportAck, std::chrono::seconds(10));
    ASSERT_TRUE(ack) << "acknowledged up to " << acked << " of " << seq;
    EXPECT_GE(ack->report_ack().sequence(), acked);  // never backwards
    acked = ack->report_ack().sequence();
  }
  auto got = env_.registry->get(kind("v1", "Node"), "", "edge-a");
  ASSERT_TRUE(got.isOk());
  EXPECT_EQ((*got)["status"]["conditions"][0]["reason"], "r150");
  for (int i = 2; i <= 150; ++i) {
    EXPECT_TRUE(
        env_.registry->get(kind("v1", "Event"), "default", "edge-a.e" + std::to_string(i)).isOk())
        << i;
  }
  EXPECT_EQ(hub_->metrics().reportsApplied(), 1u + 149u * 2u);
  EXPECT_EQ(hub_->metrics().reportsRejected(), 1u);
}

TEST_F(CloudHubTest, AcknowledgedSequenceAndRevisionSurviveRestart) {
  createPod("p", "edge-a");
  startHub();
  pb::Sync initial;
  TestEdge& e = connect("edge-a", {}, &initial);
  ASSERT_TRUE(e.ack(initial.revision()));
  ASSERT_TRUE(e.report(7, pb::REPORT_KIND_EVENT, "{}"));
  auto ack = e.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->report_ack().sequence(), 7u);
  edges_.clear();
  hub_->stop();
  hub_.reset();

  startHub();
  EXPECT_EQ(hub_->nodeState().persistedReportSequence("edge-a"), 7u);
  EXPECT_EQ(hub_->nodeState().ackedRevision("edge-a"), initial.revision());
  TestEdge& again = edge();
  ASSERT_TRUE(again.hello("edge-a"));
  auto reply = again.next();
  ASSERT_TRUE(reply && reply->has_hello_reply());
  EXPECT_EQ(reply->hello_reply().last_report_sequence(), 7u);
  ASSERT_TRUE(again.report(7, pb::REPORT_KIND_EVENT, "{}"));
  ack = again.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->report_ack().sequence(), 7u);
  EXPECT_EQ(hub_->metrics().reportsApplied(), 0u);
  EXPECT_EQ(hub_->metrics().reportsDuplicate(), 1u);
}

TEST_F(CloudHubTest, ManualRegistrationDoesNotCreateNodes) {
  createNode("known");
  startHub(/*manual=*/true);
  TestEdge& e = connect("known");
  json node = {{"metadata", {{"name", "known"}}}, {"status", {{"capacity", {{"pods", "110"}}}}}};
  ASSERT_TRUE(e.report(1, pb::REPORT_KIND_NODE_STATUS, node.dump()));
  auto ack = e.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  auto got = env_.registry->get(kind("v1", "Node"), "", "known");
  ASSERT_TRUE(got.isOk());
  EXPECT_EQ((*got)["status"]["capacity"]["pods"], "110");
  EXPECT_EQ((*got)["metadata"]["labels"]["team"], "ops");
  // A status naming another node is refused (and acknowledged).
  node["metadata"]["name"] = "other";
  ASSERT_TRUE(e.report(2, pb::REPORT_KIND_NODE_STATUS, node.dump()));
  ack = e.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->report_ack().sequence(), 2u);
  EXPECT_FALSE(env_.registry->get(kind("v1", "Node"), "", "other").isOk());
  EXPECT_EQ(hub_->metrics().reportsRejected(), 1u);
}

TEST_F(CloudHubTest, PodStatusOnlyForPodsBoundToTheNode) {
  createPod("mine", "edge-a");
  createPod("theirs", "edge-b");
  startHub();
  TestEdge& e = connect("edge-a");
  json status = {{"phase", "Running"}};
  ASSERT_TRUE(e.report(1, pb::REPORT_KIND_POD_STATUS, status.dump(), "default", "mine"));
  ASSERT_TRUE(e.report(2, pb::REPORT_KIND_POD_STATUS, status.dump(), "default", "theirs"));
  auto ack = e.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  if (ack->report_ack().sequence() < 2) {
    ack = e.nextOf(pb::CloudMessage::kReportAck);
    ASSERT_TRUE(ack);
  }
  EXPECT_EQ(ack->report_ack().sequence(), 2u);
  EXPECT_EQ((*env_.registry->get(kind("v1", "Pod"), "default", "mine"))["status"]["phase"],
            "Running");
  EXPECT_EQ((*env_.registry->get(kind("v1", "Pod"), "default", "theirs"))["status"]["phase"],
            "Pending");
  EXPECT_EQ(hub_->metrics().reportsRejected(), 1u);
}

TEST_F(CloudHubTest, QueueOverflowDisconnectsOnlyTheSlowNode) {
  startHub(false, /*queueLimit=*/4);
  TestEdge& fast = connect("fast");
  TestEdge& slow = edge(/*startReading=*/false);
  ASSERT_TRUE(slow.hello("slow"));
  std::string big(64 * 1024, 'x');
  createConfigMap("big", big);
  createPod("pf", "fast", "big");
  createPod("ps", "slow", "big");
  int updates = 0;
  for (int i = 0; i < 40 && hub_->connectedNodes() == 2; ++i) {
    updateConfigMap("big", big + std::to_string(i));
    ++updates;
    std::this_thread::sleep_for(20ms);
  }
  for (int i = 0; i < 200 && hub_->connectedNodes() == 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(hub_->connectedNodes(), 1u) << "the slow node must be disconnected";
  slow.startReader();
  auto status = slow.done(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_FALSE(status->ok());
  // The fast node got every update.
  std::string last;
  for (int got = 0; got < updates + 1;) {
    auto m = fast.nextOf(pb::CloudMessage::kSync);
    ASSERT_TRUE(m) << "after " << got << " syncs";
    for (const auto& c : m->sync().changes()) {
      if (c.resource() == "configmaps") last = json::parse(c.value())["data"]["k"];
    }
    ++got;
  }
  EXPECT_EQ(last, big + std::to_string(updates - 1));
}

TEST_F(CloudHubTest, OversizedMessageIsRefusedAndOthersKeepWorking) {
  startHub();
  TestEdge& big = connect("edge-big");
  TestEdge& other = connect("edge-other");

  // Over the cloud's 4 MiB receive limit (docs/tunnel.md, "Transport settings"). The result of
  // the write is not asserted: the cloud may end the stream while it is still being sent.
  big.report(1, pb::REPORT_KIND_EVENT, std::string(5 * 1024 * 1024, 'x'));
  auto status = big.done(10s);
  ASSERT_TRUE(status.has_value()) << "the stream carrying the oversized message must end";
  EXPECT_EQ(status->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status->error_message();
  for (int i = 0; i < 500 && hub_->connectedNodes() != 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(hub_->connectedNodes(), 1u) << "only the sender of the oversized message is gone";
  EXPECT_EQ(hub_->metrics().reportsApplied(), 0u) << "the oversized report is not applied";
  EXPECT_EQ(hub_->nodeState().persistedReportSequence("edge-big"), 0u);

  // The other node, connected all along, still gets its changes and its ReportAcks.
  createPod("after", "edge-other");
  auto sync = other.nextOf(pb::CloudMessage::kSync);
  ASSERT_TRUE(sync);
  EXPECT_EQ(changeSet(sync->sync()), (std::set<std::string>{"PUT pods default/after"}));
  ASSERT_TRUE(other.report(1, pb::REPORT_KIND_DATA, R"({"devices":[]})"));
  auto ack = other.nextOf(pb::CloudMessage::kReportAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->report_ack().sequence(), 1u);
  EXPECT_EQ(hub_->metrics().reportsApplied(), 1u);

  // The server still accepts new streams, including the refused node's reconnect.
  connect("edge-big");
  EXPECT_EQ(hub_->connectedNodes(), 2u);
}

TEST_F(CloudHubTest, HundredNodesReconnectingAtOnceDoNotFlap) {
  constexpr int kNodes = 100;
  const api::KindInfo& nodeKind = kind("v1", "Node");
  auto name = [](int i) { return "edge-" + std::to_string(i); };
  controllers::NodeController controller(*env_.registry, env_.clock,
                                         controllers::NodeControllerOptions{.gracePeriod = 40s});
  startHub();
  const uint16_t port = hub_->port();

  // Registration: every node reports Ready=True (sequence 1) and stays connected.
  std::vector<TestEdge*> first;
  for (int i = 0; i < kNodes; ++i) {
    TestEdge& e = connect(name(i));
    ASSERT_TRUE(
        e.report(1, pb::REPORT_KIND_NODE_STATUS, readyNodeStatus(name(i), env_.clock.nowMillis())));
    first.push_back(&e);
  }
  for (int i = 0; i < kNodes; ++i) {
    auto ack = first[i]->nextOf(pb::CloudMessage::kReportAck, 10s);
    ASSERT_TRUE(ack) << name(i);
    EXPECT_EQ(ack->report_ack().sequence(), 1u) << name(i);
  }
  ASSERT_EQ(hub_->connectedNodes(), static_cast<size_t>(kNodes));

  // From here on, every Node event must carry Ready=True, and so must every Node after each
  // reconcile.
  auto watch =
      env_.registry->watch(nodeKind, "", {}, std::to_string(env_.store->currentRevision()));
  ASSERT_TRUE(watch.isOk()) << watch.status().toString();
  size_t modified = 0;
  auto drainWatch = [&] {
    for (int round = 0; round < 100; ++round) {
      auto events = (*watch)->poll(256);
      if (events.empty()) break;
      for (const auto& ev : events) {
        ASSERT_NE(ev.type, "ERROR") << ev.object->dump();
        EXPECT_EQ(readyOf(*ev.object), "True")
            << ev.type << " " << (*ev.object)["metadata"]["name"];
        if (ev.type == "MODIFIED") ++modified;
      }
    }
    ASSERT_FALSE((*watch)->done());
  };
  auto reconcileAndCheck = [&](const char* when) {
    SCOPED_TRACE(when);
    auto marked = controller.reconcileOnce();
    ASSERT_TRUE(marked.isOk()) << marked.status().toString();
    EXPECT_EQ(*marked, 0);
    auto list = env_.registry->list(nodeKind, "", {});
    ASSERT_TRUE(list.isOk());
    ASSERT_EQ(list->items.size(), static_cast<size_t>(kNodes));
    for (const auto& n : list->items) {
      EXPECT_EQ(readyOf(n), "True") << n["metadata"]["name"];
    }
    drainWatch();
  };

  env_.clock.advance(30s);  // heartbeats 30 s old: within the 40 s grace period
  reconcileAndCheck("before the restart");

  // Restart cloudhub on the same port: every stream ends.
  hub_->stop();
  hub_.reset();
  for (int i = 0; i < kNodes; ++i) {
    auto s = first[i]->done(10s);
    ASSERT_TRUE(s.has_value()) << name(i);
    EXPECT_FALSE(s->ok()) << name(i);
  }
  startHub(false, 1024, port);
  ASSERT_EQ(hub_->port(), port);

  // The storm: all nodes reconnect at once and re-send their status with a fresh heartbeat
  // (the next outbox sequence), while the node controller keeps running.
  const int64_t heartbeat = env_.clock.nowMillis();
  const std::string addr = target();
  std::vector<std::unique_ptr<TestEdge>> second(kNodes);
  std::vector<char> sent(kNodes, 0);
  std::vector<std::thread> dialers;
  constexpr int kDialers = 10;
  for (int t = 0; t < kDialers; ++t) {
    dialers.emplace_back([&, t] {
      for (int i = t; i < kNodes; i += kDialers) {
        second[i] = std::make_unique<TestEdge>(addr);
        sent[i] =
            second[i]->hello(name(i)) &&
            second[i]->report(2, pb::REPORT_KIND_NODE_STATUS, readyNodeStatus(name(i), heartbeat));
      }
    });
  }
  for (int round = 0; round < 20; ++round) {
    reconcileAndCheck("during the storm");
    std::this_thread::sleep_for(5ms);
  }
  for (auto& d : dialers) d.join();
  for (int i = 0; i < kNodes; ++i) {
    SCOPED_TRACE(name(i));
    ASSERT_TRUE(sent[i]);
    auto reply = second[i]->next(10s);
    ASSERT_TRUE(reply && reply->has_hello_reply());
    EXPECT_TRUE(reply->hello_reply().accepted());
    EXPECT_EQ(reply->hello_reply().last_report_sequence(), 1u);
    auto ack = second[i]->nextOf(pb::CloudMessage::kReportAck, 10s);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->report_ack().sequence(), 2u);
    if (i % 10 == 0) reconcileAndCheck("while the acks arrive");
  }
  reconcileAndCheck("after the storm");
  // Every re-sent status renewed its node's Lease; being the same status as before, it did not
  // write the Node.
  ASSERT_NE(hub_->nodeLeases(), nullptr);
  hub_->nodeLeases()->drain();
  const api::KindInfo& leaseKind = kind("coordination.k8s.io/v1", "Lease");
  for (int i = 0; i < kNodes; ++i) {
    auto lease = env_.registry->get(leaseKind, "kube-node-lease", name(i));
    ASSERT_TRUE(lease.isOk()) << name(i);
    EXPECT_EQ((*lease)["spec"]["renewTime"], formatRfc3339Micro(heartbeat)) << name(i);
  }
  drainWatch();
  EXPECT_EQ(modified, 0u) << "an unchanged status renews the Lease and leaves the Node alone";

  // 65 s after the first heartbeats, 35 s after the re-sent ones: only a lost re-sent status
  // would make a node stale now.
  env_.clock.advance(35s);
  reconcileAndCheck("past the first heartbeats' grace period");
  EXPECT_EQ(hub_->connectedNodes(), static_cast<size_t>(kNodes));
}

}  // namespace
}  // namespace ep::cloudhub
