#include "cloudcore/cloudhub/report_applier.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cloudcore/devicedata/device_data_store.h"
#include "common/api/kinds.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/temp_dir.h"

namespace ep::cloudhub {
namespace {

using Json = nlohmann::json;

class ReportApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    applier_ = std::make_unique<ReportApplier>(*env_.registry, true);
    Json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "web"}, {"namespace", "default"}}},
                {"spec",
                 {{"nodeName", "edge-1"},
                  {"containers", {{{"name", "c"}, {"image", "reg.local/app:1"}}}}}}};
    ASSERT_TRUE(env_.registry->create(podKind(), "default", pod).isOk());
  }
  void TearDown() override { env_.stop(); }

  static const api::KindInfo& podKind() { return *api::findByApiVersionKind("v1", "Pod"); }
  static const api::KindInfo& eventKind() { return *api::findByApiVersionKind("v1", "Event"); }

  static Json event(const std::string& podName, int count) {
    return {{"apiVersion", "v1"},
            {"kind", "Event"},
            {"metadata", {{"name", podName + ".abc"}, {"namespace", "default"}}},
            {"involvedObject",
             {{"kind", "Pod"}, {"name", podName}, {"namespace", "default"}, {"apiVersion", "v1"}}},
            {"reason", "BackOff"},
            {"message", "Back-off restarting failed container"},
            {"type", "Warning"},
            {"count", count},
            {"source", {{"component", "edged"}, {"host", "edge-1"}}}};
  }
  ReportResult apply(const std::string& node, const Json& ev) {
    ReportInput in;
    in.sequence = ++seq_;
    in.kind = static_cast<int>(ReportKind::kEvent);
    in.namespace_ = "default";
    in.name = ev["metadata"]["name"];
    in.payload = ev.dump();
    return applier_->apply(node, in);
  }

  testing::StoreFixture env_;
  std::unique_ptr<ReportApplier> applier_;
  uint64_t seq_ = 0;
};

// The edge reports every condition with a fresh lastTransitionTime on each heartbeat; the
// time must move only when the condition's status changes (issue 12).
TEST_F(ReportApplierTest, NodeConditionsKeepTheirTransitionTimeWhileUnchanged) {
  auto report = [&](const std::string& ready, const std::string& at) {
    Json node = {{"metadata", {{"name", "edge-1"}}},
                 {"status",
                  {{"conditions",
                    {{{"type", "Ready"},
                      {"status", ready},
                      {"lastHeartbeatTime", at},
                      {"lastTransitionTime", at}}}}}}};
    ReportInput in;
    in.sequence = ++seq_;
    in.kind = static_cast<int>(ReportKind::kNodeStatus);
    in.name = "edge-1";
    in.payload = node.dump();
    return applier_->apply("edge-1", in);
  };
  auto ready = [&] {
    auto n = env_.registry->get(*api::findByApiVersionKind("v1", "Node"), "", "edge-1");
    EXPECT_TRUE(n.isOk());
    return n.isOk() ? (*n)["status"]["conditions"][0] : Json();
  };
  ASSERT_EQ(report("True", "2026-01-01T00:00:00Z").outcome, ReportOutcome::kApplied);
  ASSERT_EQ(report("True", "2026-01-01T00:00:10Z").outcome, ReportOutcome::kApplied);
  EXPECT_EQ(ready()["lastTransitionTime"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(ready()["lastHeartbeatTime"], "2026-01-01T00:00:10Z");
  ASSERT_EQ(report("False", "2026-01-01T00:00:20Z").outcome, ReportOutcome::kApplied);
  EXPECT_EQ(ready()["lastTransitionTime"], "2026-01-01T00:00:20Z");
}

TEST_F(ReportApplierTest, EventsAreUpsertedByName) {
  ASSERT_EQ(apply("edge-1", event("web", 1)).outcome, ReportOutcome::kApplied);
  ASSERT_EQ(apply("edge-1", event("web", 4)).outcome, ReportOutcome::kApplied);
  auto stored = env_.registry->get(eventKind(), "default", "web.abc");
  ASSERT_TRUE(stored.isOk());
  EXPECT_EQ((*stored)["count"], 4);
  EXPECT_EQ((*stored)["involvedObject"]["name"], "web");
}

TEST_F(ReportApplierTest, EventsAboutAnotherNodesPodAreRejected) {
  auto r = apply("edge-2", event("web", 1));
  EXPECT_EQ(r.outcome, ReportOutcome::kRejected);
  EXPECT_NE(r.detail.find("not bound to this node"), std::string::npos) << r.detail;
  Json other = event("x", 1);
  other["involvedObject"] = {{"kind", "Node"}, {"name", "edge-9"}};
  EXPECT_EQ(apply("edge-1", other).outcome, ReportOutcome::kRejected);
  ReportInput garbage{99, static_cast<int>(ReportKind::kEvent), "default", "e", "not json"};
  EXPECT_EQ(applier_->apply("edge-1", garbage).outcome, ReportOutcome::kRejected);
}

// Graceful deletion: a pod on a node that runs pods stays (Terminating) until that node reports
// it terminated; other updates, status ones included, do not remove it early.
TEST_F(ReportApplierTest, GracefulPodDeletionWaitsForTheNode) {
  const auto& nodeKind = *api::findByApiVersionKind("v1", "Node");
  Json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "edge-1"}}}};
  ASSERT_TRUE(env_.registry->create(nodeKind, "", node).isOk());
  Json status = {{"status", {{"nodeInfo", {{"containerRuntimeVersion", "containerd://1.6.20"}}}}}};
  ASSERT_TRUE(
      env_.registry->update(nodeKind, "", "edge-1", status, registry::Subresource::kStatus).isOk());

  auto deleting = env_.registry->remove(podKind(), "default", "web");
  ASSERT_TRUE(deleting.isOk());
  EXPECT_FALSE((*deleting)["metadata"].value("deletionTimestamp", "").empty());
  EXPECT_EQ((*deleting)["metadata"]["deletionGracePeriodSeconds"], 30);
  auto podReport = [&](const std::string& phase) {
    ReportInput in{++seq_, static_cast<int>(ReportKind::kPodStatus), "default", "web",
                   Json{{"phase", phase}}.dump()};
    return applier_->apply("edge-1", in);
  };
  ASSERT_EQ(podReport("Running").outcome, ReportOutcome::kApplied);
  auto still = env_.registry->get(podKind(), "default", "web");
  ASSERT_TRUE(still.isOk()) << "a status update must not finish a graceful deletion";
  EXPECT_EQ((*still)["status"]["phase"], "Running");
  // Deleting again while terminating changes nothing.
  ASSERT_TRUE(env_.registry->remove(podKind(), "default", "web").isOk());
  ASSERT_TRUE(env_.registry->get(podKind(), "default", "web").isOk());

  ASSERT_EQ(podReport("Failed").outcome, ReportOutcome::kApplied);
  auto gone = env_.registry->get(podKind(), "default", "web");
  ASSERT_FALSE(gone.isOk());
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
}

TEST_F(ReportApplierTest, PodsOfNodesWithoutRuntimeOrForcedGoAtOnce) {
  // edge-1 does not exist (or runs no pods): nothing would confirm, so no grace period.
  ASSERT_TRUE(env_.registry->remove(podKind(), "default", "web").isOk());
  EXPECT_FALSE(env_.registry->get(podKind(), "default", "web").isOk());

  const auto& nodeKind = *api::findByApiVersionKind("v1", "Node");
  Json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "edge-1"}}}};
  ASSERT_TRUE(env_.registry->create(nodeKind, "", node).isOk());
  Json status = {{"status", {{"nodeInfo", {{"containerRuntimeVersion", "containerd://1.6.20"}}}}}};
  ASSERT_TRUE(
      env_.registry->update(nodeKind, "", "edge-1", status, registry::Subresource::kStatus).isOk());
  Json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "web2"}, {"namespace", "default"}}},
      {"spec",
       {{"nodeName", "edge-1"}, {"containers", {{{"name", "c"}, {"image", "reg.local/app:1"}}}}}}};
  ASSERT_TRUE(env_.registry->create(podKind(), "default", pod).isOk());
  registry::DeleteOptions force;
  force.gracePeriodSeconds = 0;
  ASSERT_TRUE(env_.registry->remove(podKind(), "default", "web2", force).isOk());
  EXPECT_FALSE(env_.registry->get(podKind(), "default", "web2").isOk());
}

// The edge's device twin writes the Device's status; only the device's own node may.
TEST_F(ReportApplierTest, DeviceTwinReportsReplaceTheStatusOfTheNodesOwnDevice) {
  const auto& deviceKind = *api::findByApiVersionKind("devices.kubeedge.io/v1beta1", "Device");
  Json device = {{"apiVersion", "devices.kubeedge.io/v1beta1"},
                 {"kind", "Device"},
                 {"metadata", {{"name", "thermo-1"}, {"namespace", "default"}}},
                 {"spec", {{"nodeName", "edge-1"}, {"deviceModelRef", {{"name", "thermometer"}}}}}};
  ASSERT_TRUE(env_.registry->create(deviceKind, "default", device).isOk());
  auto report = [&](const std::string& node, const std::string& payload,
                    const std::string& name = "thermo-1") {
    ReportInput in{++seq_, static_cast<int>(ReportKind::kDeviceTwin), "default", name, payload};
    return applier_->apply(node, in);
  };
  const std::string status =
      R"({"twins":[{"propertyName":"temperature","reported":{"value":"21.5",
          "metadata":{"timestamp":"1700000000000","type":"float"}}}],
          "state":"online","lastOnlineTime":"2026-12-04T10:00:00Z"})";
  ASSERT_EQ(report("edge-1", status).outcome, ReportOutcome::kApplied);
  auto stored = env_.registry->get(deviceKind, "default", "thermo-1");
  ASSERT_TRUE(stored.isOk());
  EXPECT_EQ((*stored)["status"]["twins"][0]["reported"]["value"], "21.5");
  EXPECT_EQ((*stored)["status"]["state"], "online");
  EXPECT_EQ((*stored)["spec"]["nodeName"], "edge-1");  // spec untouched

  auto other = report("edge-2", R"({"state":"offline"})");
  EXPECT_EQ(other.outcome, ReportOutcome::kRejected);
  EXPECT_NE(other.detail.find("bound to \"edge-1\""), std::string::npos) << other.detail;
  EXPECT_EQ(report("edge-1", "{}", "ghost").outcome, ReportOutcome::kRejected);
  for (const char* bad : {"not json", R"({"twins":{}})", R"({"twins":[{"propertyName":1}]})",
                          R"({"twins":[{"propertyName":"t","reported":{"value":5}}]})",
                          R"({"twins":[{"propertyName":"t","reported":{"metadata":{"a":1}}}]})",
                          R"({"state":3})", R"({"phase":"x"})"}) {
    EXPECT_EQ(report("edge-1", bad).outcome, ReportOutcome::kRejected) << bad;
  }
  stored = env_.registry->get(deviceKind, "default", "thermo-1");
  EXPECT_EQ((*stored)["status"]["state"], "online");
}

// Device data reports: samples of the node's own devices, for properties their spec lists, are
// kept; a malformed report is refused whole; applying one twice keeps one copy.
TEST_F(ReportApplierTest, DeviceDataOfTheNodesOwnDevicesIsKept) {
  const auto& deviceKind = *api::findByApiVersionKind("devices.kubeedge.io/v1beta1", "Device");
  for (const auto& [name, node] : {std::pair{"thermo-1", "edge-1"}, {"thermo-2", "edge-2"}}) {
    Json device = {{"apiVersion", "devices.kubeedge.io/v1beta1"},
                   {"kind", "Device"},
                   {"metadata", {{"name", name}, {"namespace", "default"}}},
                   {"spec",
                    {{"nodeName", node},
                     {"deviceModelRef", {{"name", "thermometer"}}},
                     {"properties", {{{"name", "temperature"}, {"reportToCloud", true}}}}}}};
    ASSERT_TRUE(env_.registry->create(deviceKind, "default", device).isOk());
  }
  testing::TempDir dir;
  FakeClock clock;
  devicedata::SqliteDeviceDataStore data({.path = dir.path() + "/devicedata.db"}, clock);
  ASSERT_TRUE(data.start().isOk());
  ReportApplier applier(*env_.registry, true, &data);
  auto report = [&](uint64_t seq, const std::string& payload) {
    return applier.apply("edge-1", {seq, static_cast<int>(ReportKind::kData), "", "", payload});
  };
  const int64_t t = clock.nowMillis();
  const std::string ts = std::to_string(t);
  const std::string good = R"({"devices":[
      {"namespace":"default","name":"thermo-1","samples":[
        {"property":"temperature","timestamp":)" +
                           ts + R"(,"value":"21.5"},
        {"property":"pressure","timestamp":)" +
                           ts + R"(,"value":"1"}]},
      {"namespace":"default","name":"thermo-2","samples":[
        {"property":"temperature","timestamp":)" +
                           ts + R"(,"value":"5"}]},
      {"namespace":"default","name":"ghost","samples":[
        {"property":"temperature","timestamp":)" +
                           ts + R"(,"value":"5"}]}]})";
  ASSERT_EQ(report(1, good).outcome, ReportOutcome::kApplied);
  ASSERT_EQ(report(1, good).outcome, ReportOutcome::kApplied);  // a duplicate delivery
  auto got = data.query({.ns = "default", .device = "thermo-1"});
  ASSERT_TRUE(got.isOk());
  ASSERT_EQ(got->size(), 1u);  // pressure is not a property of the device
  EXPECT_EQ((*got)[0].value, "21.5");
  EXPECT_EQ((*got)[0].timestamp, t);
  // Another node's device and an unknown device got nothing.
  EXPECT_TRUE(data.query({.ns = "default", .device = "thermo-2"})->empty());
  EXPECT_TRUE(data.query({.ns = "default", .device = "ghost"})->empty());

  for (const std::string& bad :
       {std::string("not json"), std::string(R"({"devices":{}})"),
        std::string(R"({"devices":[{"namespace":"default","name":"thermo-1"}]})"),
        std::string(R"({"devices":[{"namespace":"default","name":"thermo-1","samples":[)"
                    R"({"property":"temperature","timestamp":"x","value":"1"}]}]})"),
        std::string(R"({"devices":[{"namespace":"default","name":"thermo-1","samples":[)"
                    R"({"property":"temperature","timestamp":1,"value":2}]}]})")}) {
    auto r = report(2, bad);
    EXPECT_EQ(r.outcome, ReportOutcome::kRejected) << bad;
  }
  auto r = report(3, R"({"devices":[{"namespace":"default","name":"thermo-1","samples":[)"
                     R"({"property":"temperature","timestamp":1,"value":2}]}]})");
  EXPECT_NE(r.detail.find("devices[0].samples[0].value"), std::string::npos) << r.detail;
  EXPECT_EQ(data.query({.ns = "default", .device = "thermo-1"})->size(), 1u);
}

}  // namespace
}  // namespace ep::cloudhub
