#include "cloudcore/cloudhub/node_leases.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "cloudcore/cloudhub/report_applier.h"
#include "common/api/kinds.h"
#include "tests/testing/forwarding_store.h"
#include "tests/testing/store_fixture.h"

namespace ep::cloudhub {
namespace {

using Json = nlohmann::json;

const api::KindInfo& leaseKind() {
  return *api::findByApiVersionKind("coordination.k8s.io/v1", "Lease");
}
const api::KindInfo& nodeKind() {
  return *api::findByApiVersionKind("v1", "Node");
}

// Runs tasks when asked (runAll), so that a test sees what is queued.
struct ManualExecutor {
  std::deque<std::function<void()>> tasks;
  void runAll() {
    while (!tasks.empty()) {
      auto t = std::move(tasks.front());
      tasks.pop_front();
      t();
    }
  }
};

// Calls `hook` (once) from inside the first update of a node Lease: a renewal arriving while a
// write runs.
class RenewingStore final : public testing::ForwardingStore {
 public:
  RenewingStore(store::Store& inner, std::function<void()> hook)
      : ForwardingStore(inner), hook_(std::move(hook)) {}
  Result<store::Object> update(const std::string& r, const std::string& ns, const std::string& n,
                               std::string v, int64_t rev) override {
    if (r == "leases.coordination.k8s.io" && hook_) std::exchange(hook_, nullptr)();
    return inner_.update(r, ns, n, std::move(v), rev);
  }

 private:
  std::function<void()> hook_;
};

class NodeLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    // To 2026-01-01T00:00:00Z.
    env_.clock.advance(std::chrono::milliseconds(1'767'225'600'000 - env_.clock.nowMillis()));
    leases_ = std::make_unique<NodeLeases>(
        *env_.registry, env_.clock,
        [this](std::function<void()> t) { executor_.tasks.push_back(std::move(t)); },
        std::chrono::seconds(40));
  }
  void TearDown() override {
    executor_.runAll();
    env_.stop();
  }
  Json createNode(const std::string& name) {
    auto n = env_.registry->create(nodeKind(), "",
                                   {{"apiVersion", "v1"},
                                    {"kind", "Node"},
                                    {"metadata", {{"name", name}}},
                                    {"status", Json::object()}});
    EXPECT_TRUE(n.isOk()) << n.status().toString();
    return n.isOk() ? *n : Json();
  }
  Result<Json> lease(const std::string& name) {
    return env_.registry->get(leaseKind(), kNodeLeaseNamespace, name);
  }

  testing::StoreFixture env_;
  ManualExecutor executor_;
  std::unique_ptr<NodeLeases> leases_;
};

TEST_F(NodeLeasesTest, TheFirstRenewalCreatesTheLeaseOwnedByTheNode) {
  Json node = createNode("edge-1");
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  auto l = lease("edge-1");
  ASSERT_TRUE(l.isOk()) << l.status().toString();
  EXPECT_EQ((*l)["spec"]["holderIdentity"], "edge-1");
  EXPECT_EQ((*l)["spec"]["leaseDurationSeconds"], 40);
  EXPECT_EQ((*l)["spec"]["renewTime"], "2026-01-01T00:00:00.000000Z");
  const Json& owner = (*l)["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "Node");
  EXPECT_EQ(owner["name"], "edge-1");
  EXPECT_EQ(owner["uid"], node["metadata"]["uid"]);

  env_.clock.advance(std::chrono::milliseconds(10'250));
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  auto again = lease("edge-1");
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ((*again)["spec"]["renewTime"], "2026-01-01T00:00:10.250000Z");
  EXPECT_EQ((*again)["metadata"]["uid"], (*l)["metadata"]["uid"]);
  EXPECT_EQ(leases_->written(), 2u);
}

TEST_F(NodeLeasesTest, NoLeaseForANodeThatIsNotRegistered) {
  auto r = leases_->renewNow("ghost");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(*r, NodeLeases::Renewal::kNoNode);
  EXPECT_EQ(lease("ghost").status().code(), Code::kNotFound);
}

// A renewal of a Lease that had expired says so (cloudhub then ends the node's stream, so that
// its reconnect brings the full status: the node controller may have marked it Unknown).
TEST_F(NodeLeasesTest, ARenewalAfterTheLeaseExpiredIsLapsed) {
  std::vector<std::string> lapsed;
  leases_ = std::make_unique<NodeLeases>(
      *env_.registry, env_.clock,
      [this](std::function<void()> t) { executor_.tasks.push_back(std::move(t)); },
      std::chrono::seconds(40), [&](const std::string& node) { lapsed.push_back(node); });
  createNode("edge-1");
  auto r = leases_->renewNow("edge-1");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, NodeLeases::Renewal::kRenewed);
  env_.clock.advance(std::chrono::seconds(40));
  r = leases_->renewNow("edge-1");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, NodeLeases::Renewal::kRenewed);  // 40 s: still within its duration
  env_.clock.advance(std::chrono::milliseconds(40'001));
  leases_->renew("edge-1");
  executor_.runAll();
  EXPECT_EQ(lapsed, std::vector<std::string>{"edge-1"});
  EXPECT_EQ(leases_->failed(), 0u);
}

// kube-node-lease deleted: made again by the next renewal, as Kubernetes' apiserver does.
TEST_F(NodeLeasesTest, ADeletedNamespaceIsMadeAgain) {
  createNode("edge-1");
  const auto& nsKind = *api::findByApiVersionKind("v1", "Namespace");
  ASSERT_TRUE(env_.registry->remove(nsKind, "", kNodeLeaseNamespace).isOk());
  // Gone once nothing is left in it (it is empty).
  if (env_.registry->get(nsKind, "", kNodeLeaseNamespace).isOk()) {
    GTEST_SKIP() << "the namespace is still terminating in this registry";
  }
  auto r = leases_->renewNow("edge-1");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(*r, NodeLeases::Renewal::kRenewed);
  EXPECT_TRUE(env_.registry->get(nsKind, "", kNodeLeaseNamespace).isOk());
  EXPECT_TRUE(lease("edge-1").isOk());
}

// What an operator changed in the Lease (a label) stays; the renewal fields are the cloud's.
TEST_F(NodeLeasesTest, ARenewalKeepsTheRestOfTheLease) {
  createNode("edge-1");
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  auto l = lease("edge-1");
  ASSERT_TRUE(l.isOk());
  Json edited = *l;
  edited["metadata"]["labels"]["team"] = "a";
  edited["spec"]["holderIdentity"] = "someone-else";
  ASSERT_TRUE(env_.registry->update(leaseKind(), kNodeLeaseNamespace, "edge-1", edited).isOk());
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  auto after = lease("edge-1");
  ASSERT_TRUE(after.isOk());
  EXPECT_EQ((*after)["metadata"]["labels"]["team"], "a");
  EXPECT_EQ((*after)["spec"]["holderIdentity"], "edge-1");
}

// Renewals that arrive while a write is queued add nothing (the write takes the time it runs);
// one that arrives while it runs makes one more write after it: a node never has more than one
// write in flight, however fast it renews.
TEST_F(NodeLeasesTest, RenewalsCoalesceWhileAWriteIsQueuedOrRunning) {
  createNode("edge-1");
  createNode("edge-2");
  for (int i = 0; i < 5; ++i) leases_->renew("edge-1");
  leases_->renew("edge-2");
  EXPECT_EQ(executor_.tasks.size(), 2u);  // one task per node
  EXPECT_EQ(leases_->coalesced(), 4u);
  executor_.runAll();
  EXPECT_EQ(leases_->written(), 2u);  // one write each
  EXPECT_TRUE(lease("edge-1").isOk());
  EXPECT_TRUE(lease("edge-2").isOk());
  leases_->drain();  // nothing pending: returns

  // A renewal while edge-1's write runs (from inside the store's write): one more write.
  RenewingStore renewing(*env_.store, [&] { leases_->renew("edge-1"); });
  registry::Registry registry(renewing, env_.clock);
  leases_ = std::make_unique<NodeLeases>(
      registry, env_.clock,
      [this](std::function<void()> t) { executor_.tasks.push_back(std::move(t)); },
      std::chrono::seconds(40));
  env_.clock.advance(std::chrono::seconds(10));  // so that the write is not a no-op
  leases_->renew("edge-1");
  EXPECT_EQ(executor_.tasks.size(), 1u);
  executor_.runAll();
  EXPECT_EQ(leases_->written(), 2u);  // the renewal during the first write made a second
  EXPECT_EQ(executor_.tasks.size(), 0u);
  leases_.reset();  // before `registry`, which it uses
}

// Counts the point reads of node Leases.
class CountingStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<store::Object> get(const std::string& r, const std::string& ns,
                            const std::string& n) override {
    if (r == "leases.coordination.k8s.io") leaseGets.fetch_add(1);
    return inner_.get(r, ns, n);
  }
  std::atomic<int> leaseGets{0};
};

// A renewal writes from the Lease as this cloudcore last wrote it: no read of the store per
// heartbeat. A write by anybody else since (here a delete, then an edit) is noticed by the
// compare-and-swap, and the Lease is read (or made) again; a node that disconnected is
// forgotten.
TEST_F(NodeLeasesTest, RenewalsWriteWithoutReadingTheLease) {
  CountingStore counting(*env_.store);
  registry::Registry registry(counting, env_.clock);
  leases_ = std::make_unique<NodeLeases>(
      registry, env_.clock,
      [this](std::function<void()> t) { executor_.tasks.push_back(std::move(t)); },
      std::chrono::seconds(40));
  createNode("edge-1");
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  const int afterCreate = counting.leaseGets.load();
  for (int i = 0; i < 5; ++i) {
    env_.clock.advance(std::chrono::seconds(10));
    auto r = leases_->renewNow("edge-1");
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_EQ(*r, NodeLeases::Renewal::kRenewed);
  }
  EXPECT_EQ(counting.leaseGets.load(), afterCreate);
  auto l = lease("edge-1");
  ASSERT_TRUE(l.isOk());
  EXPECT_EQ((*l)["spec"]["renewTime"], "2026-01-01T00:00:50.000000Z");

  ASSERT_TRUE(env_.registry->remove(leaseKind(), kNodeLeaseNamespace, "edge-1").isOk());
  env_.clock.advance(std::chrono::seconds(10));
  auto r = leases_->renewNow("edge-1");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(*r, NodeLeases::Renewal::kRenewed);
  auto made = lease("edge-1");
  ASSERT_TRUE(made.isOk());
  EXPECT_NE((*made)["metadata"]["uid"], (*l)["metadata"]["uid"]);
  EXPECT_EQ((*made)["spec"]["renewTime"], "2026-01-01T00:01:00.000000Z");

  Json edited = *made;
  edited["metadata"]["labels"]["team"] = "a";
  ASSERT_TRUE(env_.registry->update(leaseKind(), kNodeLeaseNamespace, "edge-1", edited).isOk());
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  auto kept = lease("edge-1");
  ASSERT_TRUE(kept.isOk());
  EXPECT_EQ((*kept)["metadata"]["labels"]["team"], "a");

  int before = counting.leaseGets.load();
  env_.clock.advance(std::chrono::seconds(10));
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  EXPECT_EQ(counting.leaseGets.load(), before);
  leases_->forget("edge-1");
  env_.clock.advance(std::chrono::seconds(10));
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  EXPECT_GT(counting.leaseGets.load(), before);
  EXPECT_EQ(leases_->failed(), 0u);
  leases_.reset();  // before `registry`, which it uses
}

// Registry::updateFrom, what the renewals stand on: a compare-and-swap on the caller's copy,
// never an unconditional write.
TEST_F(NodeLeasesTest, UpdateFromIsACompareAndSwapOnTheCallersCopy) {
  createNode("edge-1");
  ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  auto copy = lease("edge-1");
  ASSERT_TRUE(copy.isOk());
  auto& reg = *env_.registry;
  Json next = *copy;
  next["spec"]["holderIdentity"] = "x";
  auto written = reg.updateFrom(leaseKind(), kNodeLeaseNamespace, "edge-1", *copy, next);
  ASSERT_TRUE(written.isOk()) << written.status().toString();
  EXPECT_EQ((*written)["spec"]["holderIdentity"], "x");
  // The old copy is stale now: a change and an unchanged object alike are conflicts.
  next["spec"]["holderIdentity"] = "y";
  EXPECT_EQ(reg.updateFrom(leaseKind(), kNodeLeaseNamespace, "edge-1", *copy, next).status().code(),
            Code::kConflict);
  EXPECT_EQ(
      reg.updateFrom(leaseKind(), kNodeLeaseNamespace, "edge-1", *copy, *copy).status().code(),
      Code::kConflict);
  // Unchanged against the current copy: nothing written, no error.
  auto same = reg.updateFrom(leaseKind(), kNodeLeaseNamespace, "edge-1", *written, *written);
  ASSERT_TRUE(same.isOk());
  EXPECT_EQ((*same)["metadata"]["resourceVersion"], (*written)["metadata"]["resourceVersion"]);
  // A copy without a real version, or of another object, is refused (revision 0 would make
  // the write unconditional).
  for (const char* rv : {"0", "", "12abc", "-3"}) {
    Json bad = *written;
    bad["metadata"]["resourceVersion"] = rv;
    EXPECT_EQ(reg.updateFrom(leaseKind(), kNodeLeaseNamespace, "edge-1", bad, next).status().code(),
              Code::kBadRequest)
        << rv;
  }
  EXPECT_EQ(reg.updateFrom(leaseKind(), "default", "edge-1", *written, next).status().code(),
            Code::kBadRequest);
  EXPECT_EQ(
      reg.updateFrom(leaseKind(), kNodeLeaseNamespace, "edge-2", *written, next).status().code(),
      Code::kBadRequest);
  auto stored = lease("edge-1");
  ASSERT_TRUE(stored.isOk());
  EXPECT_EQ((*stored)["spec"]["holderIdentity"], "x");
}

// Bursts: renewals gathered for the window go to the executor together, as `parallel` tasks,
// so that the store can commit them together; each node is written once. stop() hands out
// what is due at once (the window here is an hour); a window that ends hands out too.
TEST_F(NodeLeasesTest, RenewalsGoOutInBursts) {
  struct Queue {
    std::mutex mu;  // the burst thread queues tasks
    std::condition_variable queued;
    std::deque<std::function<void()>> tasks;
    size_t size() {
      std::lock_guard l(mu);
      return tasks.size();
    }
    bool waitFor(size_t n) {
      std::unique_lock l(mu);
      return queued.wait_for(l, std::chrono::seconds(10), [&] { return tasks.size() >= n; });
    }
    void runAll() {
      std::unique_lock l(mu);
      while (!tasks.empty()) {
        auto t = std::move(tasks.front());
        tasks.pop_front();
        l.unlock();
        t();
        l.lock();
      }
    }
  };
  auto queue = std::make_shared<Queue>();  // outlives leases_ whatever fails
  auto make = [&](std::chrono::milliseconds window) {
    leases_ = std::make_unique<NodeLeases>(
        *env_.registry, env_.clock,
        [queue](std::function<void()> t) {
          std::lock_guard l(queue->mu);
          queue->tasks.push_back(std::move(t));
          queue->queued.notify_all();
        },
        std::chrono::seconds(40), nullptr, NodeLeases::Batching{.window = window, .parallel = 3});
    leases_->start();
  };
  make(std::chrono::hours(1));
  for (int i = 0; i < 7; ++i) createNode("edge-" + std::to_string(i));
  for (int i = 0; i < 7; ++i) leases_->renew("edge-" + std::to_string(i));
  leases_->renew("edge-0");      // coalesced: its write is queued
  EXPECT_EQ(queue->size(), 0u);  // gathering
  leases_->stop();               // would hang for an hour if it waited the window out
  EXPECT_EQ(queue->size(), 3u);  // 7 nodes in one burst: 3 tasks
  EXPECT_EQ(leases_->bursts(), 1u);
  queue->runAll();
  EXPECT_EQ(leases_->written(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(lease("edge-" + std::to_string(i)).isOk()) << i;
  leases_->drain();
  leases_->renew("edge-1");  // after stop(): to the executor at once
  EXPECT_EQ(queue->size(), 1u);
  queue->runAll();
  leases_->drain();
  EXPECT_EQ(leases_->written(), 8u);

  // A short window hands out on its own; however the renewals fall into bursts, each burst is
  // at most 3 tasks and every node is written.
  make(std::chrono::milliseconds(20));
  for (int i = 0; i < 7; ++i) leases_->renew("edge-" + std::to_string(i));
  ASSERT_TRUE(queue->waitFor(1));
  for (int round = 0; round < 100 && leases_->written() < 7; ++round) {
    queue->waitFor(1);
    queue->runAll();
  }
  EXPECT_EQ(leases_->written(), 7u);
  EXPECT_LE(leases_->bursts(), 7u);
  leases_->stop();
  leases_.reset();
}

class NodeStatusWithLeasesTest : public NodeLeasesTest {
 protected:
  void SetUp() override {
    NodeLeasesTest::SetUp();
    applier_ = std::make_unique<ReportApplier>(*env_.registry, true, nullptr, nullptr,
                                               leases_.get(), env_.clock);
  }
  ReportResult report(const std::string& ready, const std::string& message = "ok") {
    const std::string now = formatRfc3339(env_.clock.nowMillis());
    Json node = {{"metadata", {{"name", "edge-1"}}},
                 {"status",
                  {{"conditions",
                    {{{"type", "Ready"},
                      {"status", ready},
                      {"message", message},
                      {"lastHeartbeatTime", now},
                      {"lastTransitionTime", now}}}}}}};
    ReportInput in;
    in.sequence = ++seq_;
    in.kind = static_cast<int>(ReportKind::kNodeStatus);
    in.name = "edge-1";
    in.payload = node.dump();
    auto r = applier_->apply("edge-1", in);
    executor_.runAll();
    return r;
  }
  std::string nodeVersion() {
    auto n = env_.registry->get(nodeKind(), "", "edge-1");
    EXPECT_TRUE(n.isOk());
    return n.isOk() ? (*n)["metadata"]["resourceVersion"].get<std::string>() : "";
  }
  std::string renewTime() {
    auto l = lease("edge-1");
    return l.isOk() ? (*l)["spec"]["renewTime"].get<std::string>() : "";
  }
  std::unique_ptr<ReportApplier> applier_;
  uint64_t seq_ = 0;
};

// A full status that says what the stored one says is not written again within
// kUnchangedNodeStatusWriteAfter: the Lease is renewed instead. A change, or the stored
// heartbeat getting that old, writes it.
TEST_F(NodeStatusWithLeasesTest, AnUnchangedStatusRenewsTheLeaseInsteadOfWritingTheNode) {
  ASSERT_EQ(report("True").outcome, ReportOutcome::kApplied);  // registers the node
  ASSERT_FALSE(renewTime().empty());
  const std::string v1 = nodeVersion();
  env_.clock.advance(std::chrono::seconds(10));
  ASSERT_EQ(report("True").outcome, ReportOutcome::kApplied);
  EXPECT_EQ(nodeVersion(), v1);
  EXPECT_EQ(renewTime(), "2026-01-01T00:00:10.000000Z");

  env_.clock.advance(std::chrono::seconds(10));
  ASSERT_EQ(report("True", "something new").outcome, ReportOutcome::kApplied);
  const std::string v2 = nodeVersion();
  EXPECT_NE(v2, v1);
  EXPECT_EQ(renewTime(), "2026-01-01T00:00:20.000000Z");

  // Renewals every 10 s meanwhile keep the Lease from expiring (an expired one writes the Node).
  for (auto left = kUnchangedNodeStatusWriteAfter - std::chrono::seconds(1);
       left > std::chrono::seconds(0); left -= std::chrono::seconds(10)) {
    env_.clock.advance(std::min<std::chrono::milliseconds>(left, std::chrono::seconds(10)));
    ASSERT_TRUE(leases_->renewNow("edge-1").isOk());
  }
  ASSERT_EQ(report("True", "something new").outcome, ReportOutcome::kApplied);
  EXPECT_EQ(nodeVersion(), v2);
  env_.clock.advance(std::chrono::seconds(1));
  ASSERT_EQ(report("True", "something new").outcome, ReportOutcome::kApplied);
  EXPECT_NE(nodeVersion(), v2);

  // Marked Unknown by the node controller: the node's next status sets it back.
  auto n = env_.registry->get(nodeKind(), "", "edge-1");
  ASSERT_TRUE(n.isOk());
  Json unknown = *n;
  unknown["status"]["conditions"][0]["status"] = "Unknown";
  ASSERT_TRUE(
      env_.registry->update(nodeKind(), "", "edge-1", unknown, registry::Subresource::kStatus)
          .isOk());
  env_.clock.advance(std::chrono::seconds(10));
  ASSERT_EQ(report("True", "something new").outcome, ReportOutcome::kApplied);
  n = env_.registry->get(nodeKind(), "", "edge-1");
  ASSERT_TRUE(n.isOk());
  EXPECT_EQ((*n)["status"]["conditions"][0]["status"], "True");
}

// The Lease had expired when an unchanged status came (the node controller may be marking the
// node Unknown at that moment): the Node is written as well, so its heartbeat is fresh too.
TEST_F(NodeStatusWithLeasesTest, AnUnchangedStatusAfterTheLeaseExpiredIsWritten) {
  ASSERT_EQ(report("True").outcome, ReportOutcome::kApplied);
  const std::string v1 = nodeVersion();
  env_.clock.advance(std::chrono::seconds(50));  // past the Lease's 40 s
  ASSERT_EQ(report("True").outcome, ReportOutcome::kApplied);
  EXPECT_NE(nodeVersion(), v1);
  EXPECT_EQ(renewTime(), "2026-01-01T00:00:50.000000Z");
}

}  // namespace
}  // namespace ep::cloudhub
