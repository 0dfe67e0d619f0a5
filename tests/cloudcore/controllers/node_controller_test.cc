#include "cloudcore/controllers/node_controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>

#include "common/api/kinds.h"
#include "tests/testing/eventually.h"
#include "tests/testing/expiring_store.h"
#include "tests/testing/store_fixture.h"

namespace ep::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Counts the LISTs of each resource; its watches can be ended on demand.
class CountingStore final : public testing::ExpiringStore {
 public:
  using ExpiringStore::ExpiringStore;
  Result<store::ListResult> list(const store::ListOptions& o) override {
    (o.resource == "nodes"                        ? nodeLists
     : o.resource == "leases.coordination.k8s.io" ? leaseLists
                                                  : otherLists)
        .fetch_add(1);
    return inner_.list(o);
  }
  std::atomic<int> nodeLists{0}, leaseLists{0}, otherLists{0};
};

class NodeControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.startStore().isOk());
    counting_ = std::make_unique<CountingStore>(*env_.store);
    ASSERT_TRUE(env_.startRegistry(counting_.get(), /*systemNamespaces=*/false).isOk());
    controller_ = std::make_unique<NodeController>(*env_.registry, env_.clock,
                                                   NodeControllerOptions{.gracePeriod = 40s});
  }
  void TearDown() override { env_.stop(); }

  const api::KindInfo& nodeKind() { return *api::findByApiVersionKind("v1", "Node"); }

  // Writes a heartbeat now: Ready=True plus another condition that must never be touched.
  void heartbeat(const std::string& name) {
    json status = {{"conditions",
                    {{{"type", "Ready"},
                      {"status", "True"},
                      {"reason", "EdgeReady"},
                      {"lastHeartbeatTime", formatRfc3339(env_.clock.nowMillis())}},
                     {{"type", "MemoryPressure"}, {"status", "False"}},
                     {{"type", "NetworkProblem"}, {"status", "True"}}}}};
    auto cur = env_.registry->get(nodeKind(), "", name);
    if (!cur.isOk()) {
      json node = {{"metadata", {{"name", name}}}, {"status", status}};
      ASSERT_TRUE(env_.registry->create(nodeKind(), "", node).isOk());
      return;
    }
    ASSERT_TRUE(
        env_.registry
            ->update(nodeKind(), "", name, {{"status", status}}, registry::Subresource::kStatus)
            .isOk());
  }
  json ready(const std::string& name) {
    auto n = env_.registry->get(nodeKind(), "", name);
    EXPECT_TRUE(n.isOk());
    for (const auto& c : (*n)["status"]["conditions"]) {
      if (c["type"] == "Ready") return c;
    }
    return json();
  }

  // A node Lease in kube-node-lease held by `name`, owned by the Node of uid `ownerUid` (none
  // when empty).
  static json nodeLease(const std::string& name, const std::string& ownerUid) {
    json l = {{"metadata", {{"name", name}, {"namespace", "kube-node-lease"}}},
              {"spec", {{"holderIdentity", name}}}};
    if (!ownerUid.empty()) {
      l["metadata"]["ownerReferences"] = {
          {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", name}, {"uid", ownerUid}}};
    }
    return l;
  }

  ep::testing::StoreFixture env_;
  std::unique_ptr<CountingStore> counting_;  // the registry's view of env_.store
  std::unique_ptr<NodeController> controller_;
};

TEST_F(NodeControllerTest, MarksStaleNodesUnknownAndLeavesLiveOnesAlone) {
  heartbeat("stale");
  heartbeat("live");
  env_.clock.advance(30s);
  heartbeat("live");
  int64_t rvBefore = env_.store->currentRevision();
  auto r = controller_->reconcileOnce();
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(env_.store->currentRevision(), rvBefore) << "nothing written within the grace period";

  env_.clock.advance(15s);  // stale: 45s without heartbeat, live: 15s
  r = controller_->reconcileOnce();
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, 1);
  json c = ready("stale");
  EXPECT_EQ(c["status"], "Unknown");
  EXPECT_EQ(c["reason"], "NodeStatusUnknown");
  EXPECT_EQ(c["message"], "edgecore stopped posting node status");
  EXPECT_EQ(ready("live")["status"], "True");
  // The pressure conditions too, as Kubernetes' node lifecycle controller does; other types
  // stay as posted.
  auto stale = env_.registry->get(nodeKind(), "", "stale");
  EXPECT_EQ((*stale)["status"]["conditions"][1]["status"], "Unknown");
  EXPECT_EQ((*stale)["status"]["conditions"][1]["reason"], "NodeStatusUnknown");
  EXPECT_EQ((*stale)["status"]["conditions"][2]["status"], "True");

  // Already Unknown: not written again.
  rvBefore = env_.store->currentRevision();
  r = controller_->reconcileOnce();
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(env_.store->currentRevision(), rvBefore);

  // The next heartbeat brings it back; it stays True within the grace period.
  heartbeat("stale");
  EXPECT_EQ(ready("stale")["status"], "True");
  env_.clock.advance(20s);
  r = controller_->reconcileOnce();
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(ready("stale")["status"], "True");
}

TEST_F(NodeControllerTest, NodeWithoutHeartbeatCountsFromCreation) {
  ASSERT_TRUE(env_.registry->create(nodeKind(), "", {{"metadata", {{"name", "silent"}}}}).isOk());
  EXPECT_EQ(*controller_->reconcileOnce(), 0);
  env_.clock.advance(41s);
  EXPECT_EQ(*controller_->reconcileOnce(), 1);
  EXPECT_EQ(ready("silent")["status"], "Unknown");
}

TEST_F(NodeControllerTest, StartStop) {
  ASSERT_TRUE(controller_->start().isOk());
  controller_->stop();
}

const api::KindInfo& leaseKind() {
  return *api::findByApiVersionKind("coordination.k8s.io/v1", "Lease");
}

// Most heartbeats renew the node's Lease and leave the Node alone: a node whose Lease is fresh
// is alive however old its Ready heartbeat; once both are older than the grace period it is
// Unknown.
TEST_F(NodeControllerTest, ARenewedLeaseKeepsANodeAlive) {
  ASSERT_TRUE(env_.registry->ensureSystemNamespaces().isOk());
  heartbeat("edge-1");
  auto node = env_.registry->get(nodeKind(), "", "edge-1");
  ASSERT_TRUE(node.isOk());
  auto renew = [&] {
    json lease = nodeLease("edge-1", (*node)["metadata"]["uid"]);
    lease["spec"]["leaseDurationSeconds"] = 40;
    lease["spec"]["renewTime"] = formatRfc3339Micro(env_.clock.nowMillis());
    auto cur = env_.registry->get(leaseKind(), "kube-node-lease", "edge-1");
    if (cur.isOk()) lease["metadata"]["resourceVersion"] = (*cur)["metadata"]["resourceVersion"];
    auto r = cur.isOk() ? env_.registry->update(leaseKind(), "kube-node-lease", "edge-1", lease)
                        : env_.registry->create(leaseKind(), "kube-node-lease", lease);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  };
  for (int i = 0; i < 30; ++i) {  // 5 minutes of renewals every 10 s
    env_.clock.advance(10s);
    renew();
    auto r = controller_->reconcileOnce();
    ASSERT_TRUE(r.isOk());
    ASSERT_EQ(*r, 0) << "after " << (i + 1) * 10 << " s";
  }
  EXPECT_EQ(ready("edge-1")["status"], "True");
  env_.clock.advance(39s);
  auto r = controller_->reconcileOnce();
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, 0);
  env_.clock.advance(2s);
  r = controller_->reconcileOnce();
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(ready("edge-1")["status"], "Unknown");
}

// A node's Lease goes with its Node (its ownerReference); other Leases there stay.
TEST_F(NodeControllerTest, LeasesOfDeletedNodesAreDeleted) {
  ASSERT_TRUE(env_.registry->ensureSystemNamespaces().isOk());
  heartbeat("edge-1");
  heartbeat("edge-2");
  auto lease = [&](const std::string& name, const std::string& ownerUid) {
    ASSERT_TRUE(
        env_.registry->create(leaseKind(), "kube-node-lease", nodeLease(name, ownerUid)).isOk());
  };
  auto uidOf = [&](const std::string& name) {
    auto n = env_.registry->get(nodeKind(), "", name);
    return n.isOk() ? (*n)["metadata"]["uid"].get<std::string>() : std::string();
  };
  lease("edge-1", uidOf("edge-1"));
  lease("edge-2", uidOf("edge-2"));
  lease("gone", "0a1b2c3d-0000-4000-8000-000000000000");
  lease("not-a-nodes", "");
  ASSERT_TRUE(env_.registry->remove(nodeKind(), "", "edge-2").isOk());
  heartbeat("edge-2");  // the same name again: another Node (another uid)
  ASSERT_TRUE(controller_->reconcileOnce().isOk());
  EXPECT_TRUE(env_.registry->get(leaseKind(), "kube-node-lease", "edge-1").isOk());
  EXPECT_EQ(env_.registry->get(leaseKind(), "kube-node-lease", "edge-2").status().code(),
            Code::kNotFound);
  EXPECT_EQ(env_.registry->get(leaseKind(), "kube-node-lease", "gone").status().code(),
            Code::kNotFound);
  EXPECT_TRUE(env_.registry->get(leaseKind(), "kube-node-lease", "not-a-nodes").isOk());
}

// A pass reads the watches' cache: at 10,000 nodes, listing every Node and Lease each pass was
// most of an idle cloudcore's CPU. Only the initial lists of the two watches are LISTs.
TEST_F(NodeControllerTest, PassesReadTheWatchesNotLists) {
  ASSERT_TRUE(env_.registry->ensureSystemNamespaces().isOk());
  heartbeat("edge-1");
  heartbeat("edge-2");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(*controller_->reconcileOnce(), 0);
  EXPECT_EQ(counting_->nodeLists.load(), 1);
  EXPECT_EQ(counting_->leaseLists.load(), 1);
  // What changed since is seen all the same: a node created after the initial list, and one
  // that stops heartbeating while the other goes on.
  ASSERT_TRUE(env_.registry->create(nodeKind(), "", {{"metadata", {{"name", "late"}}}}).isOk());
  env_.clock.advance(30s);
  heartbeat("edge-1");
  env_.clock.advance(11s);
  EXPECT_EQ(*controller_->reconcileOnce(), 2);  // edge-2 and late
  EXPECT_EQ(ready("edge-1")["status"], "True");
  EXPECT_EQ(ready("edge-2")["status"], "Unknown");
  EXPECT_EQ(ready("late")["status"], "Unknown");
  EXPECT_EQ(counting_->nodeLists.load(), 1);
  EXPECT_EQ(counting_->leaseLists.load(), 1);
}

// A watch that ends (its history compacted) is opened again from a new list, and what happened
// while it was gone counts: a deleted node's Lease is collected, a stale node marked.
TEST_F(NodeControllerTest, AnEndedWatchIsListedAgain) {
  ASSERT_TRUE(env_.registry->ensureSystemNamespaces().isOk());
  heartbeat("edge-1");
  heartbeat("edge-2");
  auto node = env_.registry->get(nodeKind(), "", "edge-2");
  ASSERT_TRUE(node.isOk());
  ASSERT_TRUE(
      env_.registry
          ->create(leaseKind(), "kube-node-lease", nodeLease("edge-2", (*node)["metadata"]["uid"]))
          .isOk());
  ASSERT_EQ(*controller_->reconcileOnce(), 0);
  counting_->expireWatches();
  ASSERT_TRUE(env_.registry->remove(nodeKind(), "", "edge-2").isOk());
  env_.clock.advance(41s);
  EXPECT_EQ(*controller_->reconcileOnce(), 1);  // edge-1
  EXPECT_EQ(ready("edge-1")["status"], "Unknown");
  EXPECT_EQ(env_.registry->get(leaseKind(), "kube-node-lease", "edge-2").status().code(),
            Code::kNotFound);
  EXPECT_EQ(counting_->nodeLists.load(), 2);
  EXPECT_EQ(counting_->leaseLists.load(), 2);
}

// The controller's own thread: started, it marks a stale node on its own within an interval.
TEST_F(NodeControllerTest, TheThreadMarksStaleNodes) {
  controller_ = std::make_unique<NodeController>(
      *env_.registry, env_.clock,
      NodeControllerOptions{.gracePeriod = 40s, .interval = 20ms, .drainGap = 1ms});
  heartbeat("edge-1");
  ASSERT_TRUE(controller_->start().isOk());
  env_.clock.advance(41s);
  EXPECT_TRUE(testing::eventually([&] { return ready("edge-1")["status"] == "Unknown"; }));
  controller_->stop();
}

}  // namespace
}  // namespace ep::controllers
