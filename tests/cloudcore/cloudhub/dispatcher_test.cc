#include "cloudcore/cloudhub/dispatcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <thread>

#include "cloudcore/registry/registry.h"
#include "cloudcore/store/sqlite_store.h"
#include "common/api/kinds.h"
#include "proto/tunnel.pb.h"
#include "tests/testing/expiring_store.h"
#include "tests/testing/store_fixture.h"

namespace ep::cloudhub {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace pb = edgeplane::tunnel::v1;

using testing::ExpiringStore;

// Records what the dispatcher sends.
class RecordingSink final : public SyncSink {
 public:
  bool send(CloudMessagePtr m) override {
    std::lock_guard l(mu_);
    messages_.push_back(*m);
    cv_.notify_all();
    return true;
  }
  void close(const std::string& reason) override {
    std::lock_guard l(mu_);
    closed_ = reason;
    cv_.notify_all();
  }
  std::optional<pb::Sync> nextSync(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock l(mu_);
    if (!cv_.wait_for(l, timeout, [&] { return !messages_.empty(); })) return std::nullopt;
    auto m = messages_.front();
    messages_.erase(messages_.begin());
    return m.sync();
  }
  std::string waitClosed(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, timeout, [&] { return !closed_.empty(); });
    return closed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<pb::CloudMessage> messages_;
  std::string closed_;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.startStore().isOk());
    expiring_ = std::make_unique<ExpiringStore>(*env_.store);
    ASSERT_TRUE(env_.startRegistry(expiring_.get()).isOk());
  }
  void TearDown() override { env_.stop(); }

  void create(const char* apiVersion, const char* kind, json obj) {
    auto r = env_.registry->create(*api::findByApiVersionKind(apiVersion, kind), "default", obj);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  void update(const char* apiVersion, const char* kind, json obj) {
    const std::string name = obj["metadata"]["name"];
    auto r =
        env_.registry->update(*api::findByApiVersionKind(apiVersion, kind), "default", name, obj);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }

  ep::testing::StoreFixture env_;
  std::unique_ptr<ExpiringStore> expiring_;  // the registry's view of env_.store
  Metrics metrics_;
};

TEST_F(DispatcherTest, DevicesRulesAndModelsFollowTheirNode) {
  Dispatcher d(*expiring_, metrics_);
  ASSERT_TRUE(d.start().isOk());
  auto sink = std::make_shared<RecordingSink>();
  d.attach("edge-1", sink, {});
  auto initial = sink->nextSync();
  ASSERT_TRUE(initial);
  EXPECT_TRUE(initial->initial());
  EXPECT_EQ(initial->changes_size(), 0);

  create("devices.kubeedge.io/v1beta1", "DeviceModel", {{"metadata", {{"name", "thermo"}}}});
  create("devices.kubeedge.io/v1beta1", "Device",
         {{"metadata", {{"name", "t1"}}},
          {"spec", {{"nodeName", "edge-1"}, {"deviceModelRef", {{"name", "thermo"}}}}}});
  auto s = sink->nextSync();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->changes_size(), 2);
  std::set<std::string> got;
  for (const auto& c : s->changes()) got.insert(c.resource() + "/" + c.name());
  EXPECT_EQ(got, (std::set<std::string>{"devices.devices.kubeedge.io/t1",
                                        "devicemodels.devices.kubeedge.io/thermo"}));
  // Written by an API client (a field manager): nodes get the object without managedFields.
  registry::WriteOptions byClient;
  byClient.fieldManager = "kubectl-create";
  auto model = env_.registry->create(
      *api::findByApiVersionKind("sedna.io/v1alpha1", "Model"), "default",
      {{"metadata", {{"name", "m"}}},
       {"spec", {{"nodeName", "edge-1"}, {"url", "s3://m"}, {"format", "onnx"}}}},
      byClient);
  ASSERT_TRUE(model.isOk()) << model.status().toString();
  ASSERT_FALSE((*model)["metadata"]["managedFields"].empty());
  s = sink->nextSync();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->changes_size(), 1);
  EXPECT_EQ(s->changes(0).resource(), "models.sedna.io");
  json sent = json::parse(s->changes(0).value());
  EXPECT_EQ(sent["spec"]["url"], "s3://m");
  EXPECT_FALSE(sent["metadata"].contains("managedFields")) << sent.dump();
  d.stop();
}

// A pod's model volume pulls the Model, and the Model the Secret its spec.credentialName names
// (two levels of references): the node gets the Secret, and its changes, and loses it when the
// Model stops naming it.
TEST_F(DispatcherTest, AModelsPullSecretFollowsThePodsUsingTheModel) {
  Dispatcher d(*expiring_, metrics_);
  ASSERT_TRUE(d.start().isOk());
  auto sink = std::make_shared<RecordingSink>();
  d.attach("edge-1", sink, {});
  ASSERT_TRUE(sink->nextSync());
  auto names = [](const pb::Sync& s) {
    std::set<std::string> out;
    for (const auto& c : s.changes()) {
      out.insert(std::string(c.op() == pb::Change::OP_DELETE ? "-" : "+") + c.resource() + "/" +
                 c.name());
    }
    return out;
  };
  create("v1", "Secret",
         {{"metadata", {{"name", "pull"}}},
          {"type", "kubernetes.io/dockerconfigjson"},
          {"data", {{".dockerconfigjson", "e30="}}}});
  // A Secret of another type named by a Model is never sent, nor is a pull secret to a node
  // that only the Model itself names (spec.nodeName): writing a Model must not ship Secrets.
  create("v1", "Secret",
         {{"metadata", {{"name", "token"}}}, {"type", "Opaque"}, {"data", {{"k", "dg=="}}}});
  create("sedna.io/v1alpha1", "Model",
         {{"metadata", {{"name", "grab"}}},
          {"spec",
           {{"nodeName", "edge-1"}, {"url", "oci://r.example/m:v1"}, {"credentialName", "pull"}}}});
  auto first = sink->nextSync();
  ASSERT_TRUE(first);
  EXPECT_EQ(names(*first), std::set<std::string>{"+models.sedna.io/grab"});
  create("sedna.io/v1alpha1", "Model",
         {{"metadata", {{"name", "other"}}},
          {"spec", {{"url", "oci://r.example/m:v1"}, {"credentialName", "token"}}}});
  json model = {{"metadata", {{"name", "m"}}},
                {"spec", {{"url", "oci://r.example/m:v1"}, {"credentialName", "pull"}}}};
  create("sedna.io/v1alpha1", "Model", model);
  create("v1", "Pod",
         {{"metadata", {{"name", "p"}}},
          {"spec",
           {{"nodeName", "edge-1"},
            {"containers", {{{"name", "c"}, {"image", "busybox"}}}},
            {"volumes",
             {{{"name", "model"},
               {"csi",
                {{"driver", "models.edgeplane.io"}, {"volumeAttributes", {{"model", "m"}}}}}}}}}}});
  auto s = sink->nextSync();
  ASSERT_TRUE(s);
  EXPECT_EQ(names(*s), (std::set<std::string>{"+pods/p", "+models.sedna.io/m", "+secrets/pull"}));
  // A pod using the Model naming an Opaque Secret: the Model goes, the Secret does not.
  create("v1", "Pod",
         {{"metadata", {{"name", "p2"}}},
          {"spec",
           {{"nodeName", "edge-1"},
            {"containers", {{{"name", "c"}, {"image", "busybox"}}}},
            {"volumes",
             {{{"name", "model"},
               {"csi",
                {{"driver", "models.edgeplane.io"},
                 {"volumeAttributes", {{"model", "other"}}}}}}}}}}});
  s = sink->nextSync();
  ASSERT_TRUE(s);
  EXPECT_EQ(names(*s), (std::set<std::string>{"+pods/p2", "+models.sedna.io/other"}));
  // A change of the Secret reaches the node.
  update("v1", "Secret",
         {{"metadata", {{"name", "pull"}}},
          {"type", "kubernetes.io/dockerconfigjson"},
          {"data", {{".dockerconfigjson", "eyJhdXRocyI6e319"}}}});
  s = sink->nextSync();
  ASSERT_TRUE(s);
  EXPECT_EQ(names(*s), std::set<std::string>{"+secrets/pull"});
  // The Model no longer names it: the node loses it.
  model["spec"].erase("credentialName");
  update("sedna.io/v1alpha1", "Model", model);
  s = sink->nextSync();
  ASSERT_TRUE(s);
  EXPECT_EQ(names(*s), (std::set<std::string>{"+models.sedna.io/m", "-secrets/pull"}));
  d.stop();
}

// A node needing more than maxSyncBytes gets its difference in several Syncs, each within the
// bound, together exactly what it needs (before, one Sync could outgrow the edge's 16 MiB
// receive limit, and the node could then never sync).
TEST_F(DispatcherTest, LargeDifferencesAreSplitIntoBoundedSyncs) {
  json volumes = json::array();
  for (int i = 0; i < 6; ++i) {
    std::string name = "cm-" + std::to_string(i);
    create("v1", "ConfigMap",
           {{"metadata", {{"name", name}}}, {"data", {{"blob", std::string(40 * 1024, 'x')}}}});
    volumes.push_back({{"name", name}, {"configMap", {{"name", name}}}});
  }
  create("v1", "Pod",
         {{"metadata", {{"name", "big"}}},
          {"spec",
           {{"nodeName", "edge-1"},
            {"containers", {{{"name", "c"}, {"image", "busybox"}}}},
            {"volumes", volumes}}}});
  DispatcherOptions o;
  o.maxSyncBytes = 64 * 1024;
  Dispatcher d(*expiring_, metrics_, o);
  ASSERT_TRUE(d.start().isOk());
  auto sink = std::make_shared<RecordingSink>();
  d.attach("edge-1", sink, {});
  std::set<std::string> got;
  int syncs = 0;
  while (got.size() < 7) {
    auto s = sink->nextSync();
    ASSERT_TRUE(s) << "only " << got.size() << " of 7 objects arrived";
    EXPECT_EQ(s->initial(), syncs == 0);
    EXPECT_LE(s->ByteSizeLong(), 2 * 64 * 1024u) << "sync " << syncs;  // one object may overhang
    EXPECT_GE(s->changes_size(), 1);
    for (const auto& c : s->changes())
      EXPECT_TRUE(got.insert(c.resource() + "/" + c.name()).second);
    ++syncs;
  }
  EXPECT_GE(syncs, 3);  // 240 KiB in 64 KiB Syncs (40 KiB objects: one or two per Sync)
  EXPECT_FALSE(sink->nextSync(200ms));
  d.stop();
}

TEST_F(DispatcherTest, ExpiredWatchReloadsAndClosesSessions) {
  create("v1", "Pod",
         {{"metadata", {{"name", "p"}}},
          {"spec", {{"nodeName", "edge-1"}, {"containers", {{{"name", "c"}, {"image", "x"}}}}}}});
  Dispatcher d(*expiring_, metrics_);
  ASSERT_TRUE(d.start().isOk());
  auto sink = std::make_shared<RecordingSink>();
  d.attach("edge-1", sink, {});
  auto initial = sink->nextSync();
  ASSERT_TRUE(initial);
  EXPECT_EQ(initial->changes_size(), 1);

  expiring_->expireWatches();
  create("v1", "Pod",  // wakes the dispatcher, which finds its watch expired
         {{"metadata", {{"name", "q"}}},
          {"spec", {{"nodeName", "edge-1"}, {"containers", {{{"name", "c"}, {"image", "x"}}}}}}});
  EXPECT_NE(sink->waitClosed().find("resync"), std::string::npos);

  // After the reload a reconnect gets the full, current state.
  auto again = std::make_shared<RecordingSink>();
  d.attach("edge-1", again, {});
  auto s = again->nextSync();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->initial());
  // The initial Sync reflects the dispatcher's revision; "q" may follow in its own Sync if its
  // event was not yet delivered when the node attached.
  std::set<std::string> names;
  for (const auto& c : s->changes()) names.insert(c.name());
  if (names.size() < 2) {
    auto next = again->nextSync();
    ASSERT_TRUE(next);
    EXPECT_FALSE(next->initial());
    for (const auto& c : next->changes()) names.insert(c.name());
  }
  EXPECT_EQ(names, (std::set<std::string>{"p", "q"}));
  d.stop();
}

}  // namespace
}  // namespace ep::cloudhub
