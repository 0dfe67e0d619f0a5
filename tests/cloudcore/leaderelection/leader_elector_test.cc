#include "cloudcore/leaderelection/leader_elector.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cloudcore/controllers/controller_manager.h"
#include "common/api/kinds.h"
#include "tests/testing/forwarding_store.h"
#include "tests/testing/store_fixture.h"

namespace ep::leaderelection {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

const api::KindInfo& leaseKind() {
  return *api::findByApiVersionKind("coordination.k8s.io/v1", "Lease");
}

// The store, or an unreachable one while `down` is set (every read and write kUnavailable).
class SwitchableStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> down{false};

  Result<store::Object> get(const std::string& r, const std::string& ns,
                            const std::string& n) override {
    if (down) return unavailableError("store down");
    return inner_.get(r, ns, n);
  }
  Result<store::ListResult> list(const store::ListOptions& o) override {
    if (down) return unavailableError("store down");
    return inner_.list(o);
  }
  Result<store::Object> create(const std::string& r, const std::string& ns, const std::string& n,
                               std::string v) override {
    if (down) return unavailableError("store down");
    return inner_.create(r, ns, n, std::move(v));
  }
  Result<store::Object> update(const std::string& r, const std::string& ns, const std::string& n,
                               std::string v, int64_t rev) override {
    if (down) return unavailableError("store down");
    return inner_.update(r, ns, n, std::move(v), rev);
  }
  Result<store::Object> remove(const std::string& r, const std::string& ns, const std::string& n,
                               int64_t rev) override {
    if (down) return unavailableError("store down");
    return inner_.remove(r, ns, n, rev);
  }
};

// One replica's elector and what its callbacks saw.
struct Replica {
  int started = 0;
  int stopped = 0;
  Status startResult = Status::ok();
  std::unique_ptr<LeaderElector> elector;

  Replica(registry::Registry& registry, Clock& clock, const std::string& identity) {
    elector = std::make_unique<LeaderElector>(
        registry, clock, LeaderElectionOptions{.identity = identity},
        [this] {
          ++started;
          return startResult;
        },
        [this] { ++stopped; });
  }
};

class LeaderElectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.startStore().isOk());
    view_ = std::make_unique<SwitchableStore>(*env_.store);
    ASSERT_TRUE(env_.startRegistry(view_.get()).isOk());
  }
  void TearDown() override { env_.stop(); }

  Json spec() {
    auto lease = env_.registry->get(leaseKind(), "kube-system", "cloudcore");
    EXPECT_TRUE(lease.isOk()) << lease.status().toString();
    return lease.isOk() ? (*lease)["spec"] : Json();
  }

  testing::StoreFixture env_;
  std::unique_ptr<SwitchableStore> view_;
};

TEST_F(LeaderElectorTest, ALoneReplicaLeadsAtOnceAndRenews) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  ASSERT_TRUE(a.elector->tick().isOk());
  EXPECT_TRUE(a.elector->leading());
  EXPECT_EQ(a.started, 1);
  EXPECT_EQ(a.elector->holder(), "host-a_1");
  Json first = spec();
  EXPECT_EQ(first["holderIdentity"], "host-a_1");
  EXPECT_EQ(first["leaseDurationSeconds"], 10);
  EXPECT_EQ(first["leaseTransitions"], 0);
  EXPECT_EQ(first["acquireTime"], first["renewTime"]);

  env_.clock.advance(2s);
  ASSERT_TRUE(a.elector->tick().isOk());
  Json renewed = spec();
  EXPECT_NE(renewed["renewTime"], first["renewTime"]);
  EXPECT_EQ(renewed["acquireTime"], first["acquireTime"]);
  EXPECT_EQ(a.started, 1) << "a renewal starts nothing";
  EXPECT_EQ(a.stopped, 0);

  // Operators see who leads, as with kube-controller-manager.
  auto events = env_.registry->list(*api::findByApiVersionKind("v1", "Event"), "kube-system", {});
  ASSERT_TRUE(events.isOk());
  ASSERT_EQ(events->items.size(), 1u);
  EXPECT_EQ(events->items[0]["reason"], "LeaderElection");
  EXPECT_EQ(events->items[0]["message"], "host-a_1 became leader");
}

// A dead leader's Lease is taken over once it has not changed for leaseDurationSeconds of the
// candidate's own clock; the old leader, back, sees the new holder and stops its controllers.
TEST_F(LeaderElectorTest, ACandidateTakesOverOnlyAfterTheLeaseWentUnrenewedForItsDuration) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  Replica b(*env_.registry, env_.clock, "host-b_2");
  ASSERT_TRUE(a.elector->tick().isOk());
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_FALSE(b.elector->leading());
  EXPECT_EQ(b.elector->holder(), "host-a_1");

  // A renewing keeps B out however long it lasts.
  for (int i = 0; i < 10; ++i) {
    env_.clock.advance(2s);
    ASSERT_TRUE(a.elector->tick().isOk());
    ASSERT_TRUE(b.elector->tick().isOk());
    ASSERT_FALSE(b.elector->leading()) << "round " << i;
  }
  // A stops renewing (dead). B saw the last renewal at its last attempt: 9 s later it still
  // waits, at 10 s it takes over.
  env_.clock.advance(9s);
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_FALSE(b.elector->leading());
  env_.clock.advance(1s);
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_TRUE(b.elector->leading());
  EXPECT_EQ(b.started, 1);
  EXPECT_EQ(spec()["holderIdentity"], "host-b_2");
  EXPECT_EQ(spec()["leaseTransitions"], 1);

  ASSERT_TRUE(a.elector->tick().isOk());
  EXPECT_FALSE(a.elector->leading());
  EXPECT_EQ(a.stopped, 1);
  EXPECT_EQ(a.elector->holder(), "host-b_2");
  EXPECT_EQ(spec()["holderIdentity"], "host-b_2") << "the old leader writes nothing";
}

// The candidate's expiry follows the holder's stated leaseDurationSeconds, not its own setting.
TEST_F(LeaderElectorTest, TheHoldersLeaseDurationDecides) {
  LeaderElector a(
      *env_.registry, env_.clock,
      {.identity = "host-a_1", .leaseDuration = 30s, .renewDeadline = 20s},
      [] { return Status::ok(); }, [] {});
  Replica b(*env_.registry, env_.clock, "host-b_2");  // 10 s of its own
  ASSERT_TRUE(a.tick().isOk());
  EXPECT_EQ(spec()["leaseDurationSeconds"], 30);
  ASSERT_TRUE(b.elector->tick().isOk());
  env_.clock.advance(20s);
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_FALSE(b.elector->leading());
  env_.clock.advance(10s);
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_TRUE(b.elector->leading());
}

// A leader that cannot reach the store keeps leading until renewDeadline (7 s) has passed since
// its last successful renewal began, then stops its controllers (the watchdog's check, called
// here directly), before any other replica may take over (10 s).
TEST_F(LeaderElectorTest, ALeaderThatCannotRenewStepsDownAfterTheRenewDeadline) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  ASSERT_TRUE(a.elector->tick().isOk());
  view_->down = true;
  env_.clock.advance(2s);
  EXPECT_EQ(a.elector->tick().code(), Code::kUnavailable);
  EXPECT_TRUE(a.elector->leading()) << "one failed renewal is not the end";
  env_.clock.advance(5s);  // 7 s since the last renewal: not beyond the deadline yet
  a.elector->enforceRenewDeadline();
  EXPECT_TRUE(a.elector->leading());
  EXPECT_EQ(a.stopped, 0);
  env_.clock.advance(1s);
  a.elector->enforceRenewDeadline();
  EXPECT_FALSE(a.elector->leading());
  EXPECT_EQ(a.stopped, 1);
  a.elector->enforceRenewDeadline();
  EXPECT_EQ(a.stopped, 1) << "stopped once";

  // The store back: the Lease still names A, unrenewed; A takes it again as its own (same
  // holder, so no transition) and starts a fresh set of controllers.
  view_->down = false;
  env_.clock.advance(2s);
  ASSERT_TRUE(a.elector->tick().isOk());
  EXPECT_TRUE(a.elector->leading());
  EXPECT_EQ(a.started, 2);
  EXPECT_EQ(spec()["leaseTransitions"], 0);
}

// The deadline counts from the start of the renewal, not its end: a renewal that succeeded
// after hanging longer than the deadline leaves the leader already stopped.
TEST_F(LeaderElectorTest, TheClaimCountsFromBeforeTheRenewalWasWritten) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  ASSERT_TRUE(a.elector->tick().isOk());
  env_.clock.advance(2s);
  ASSERT_TRUE(a.elector->tick().isOk());  // renewed at t=2
  env_.clock.advance(5500ms);
  a.elector->enforceRenewDeadline();  // 5.5 s since: leading
  EXPECT_TRUE(a.elector->leading());
  env_.clock.advance(2s);
  a.elector->enforceRenewDeadline();  // 7.5 s since t=2
  EXPECT_FALSE(a.elector->leading());
}

// Controllers whose start outlasted the renew deadline are stopped again at once: nothing renewed
// the Lease while they started, so another replica may hold it by then.
TEST_F(LeaderElectorTest, AStartThatOutlastsTheRenewDeadlineIsUndone) {
  int started = 0, stopped = 0;
  LeaderElector a(
      *env_.registry, env_.clock, {.identity = "host-a_1"},
      [&] {
        ++started;
        env_.clock.advance(8s);  // a slow store under the controllers' first lists
        return Status::ok();
      },
      [&] { ++stopped; });
  EXPECT_FALSE(a.tick().isOk());
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(started, 1);
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(spec()["holderIdentity"], "") << "released";
}

// A Lease deleted under a live leader (kubectl delete) is made again by that leader at its next
// attempt; a follower that saw the leader recently waits out the lease duration first.
TEST_F(LeaderElectorTest, ADeletedLeaseIsNotTakenFromALiveLeader) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  Replica b(*env_.registry, env_.clock, "host-b_2");
  ASSERT_TRUE(a.elector->tick().isOk());
  ASSERT_TRUE(b.elector->tick().isOk());
  ASSERT_TRUE(env_.registry->remove(leaseKind(), "kube-system", "cloudcore").isOk());
  env_.clock.advance(1s);
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_FALSE(b.elector->leading());
  EXPECT_FALSE(env_.registry->get(leaseKind(), "kube-system", "cloudcore").isOk())
      << "the follower made no Lease";
  env_.clock.advance(1s);
  ASSERT_TRUE(a.elector->tick().isOk());
  EXPECT_TRUE(a.elector->leading());
  EXPECT_EQ(a.started, 1) << "the same term goes on";
  EXPECT_EQ(spec()["holderIdentity"], "host-a_1");

  // Deleted again and the leader dead: the follower takes over once the lease duration passed.
  ASSERT_TRUE(env_.registry->remove(leaseKind(), "kube-system", "cloudcore").isOk());
  env_.clock.advance(2s);
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_FALSE(b.elector->leading());
  env_.clock.advance(9s);
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_TRUE(b.elector->leading());
}

// Controllers that fail to start again and again are retried after 2, 4, 8 ... retry periods,
// not every 2 s.
TEST_F(LeaderElectorTest, RepeatedStartFailuresBackOff) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  a.startResult = unavailableError("watch failed");
  EXPECT_FALSE(a.elector->tick().isOk());
  EXPECT_EQ(a.started, 1);
  env_.clock.advance(2s);
  EXPECT_TRUE(a.elector->tick().isOk());
  EXPECT_EQ(a.started, 1) << "waiting 4 s";
  env_.clock.advance(2s);
  EXPECT_FALSE(a.elector->tick().isOk());
  EXPECT_EQ(a.started, 2);
  env_.clock.advance(6s);
  EXPECT_TRUE(a.elector->tick().isOk());
  EXPECT_EQ(a.started, 2) << "waiting 8 s";
  a.startResult = Status::ok();
  env_.clock.advance(2s);
  ASSERT_TRUE(a.elector->tick().isOk());
  EXPECT_EQ(a.started, 3);
  EXPECT_TRUE(a.elector->leading());
}

// The identity's ID decides, not the host name: a replica whose host was renamed (a recreated
// container) still holds the Lease it held.
TEST_F(LeaderElectorTest, ARenamedHostWithTheSameIdIsTheSameHolder) {
  Replica before(*env_.registry, env_.clock, "old-name_0123456789abcdef");
  ASSERT_TRUE(before.elector->tick().isOk());
  Replica after(*env_.registry, env_.clock, "new-name_0123456789abcdef");
  ASSERT_TRUE(after.elector->tick().isOk());
  EXPECT_TRUE(after.elector->leading());
  EXPECT_EQ(spec()["holderIdentity"], "new-name_0123456789abcdef");
  EXPECT_EQ(spec()["leaseTransitions"], 0);
}

// stop() stops the controllers and then releases the Lease, so another replica need not wait
// out the lease duration.
TEST_F(LeaderElectorTest, StopReleasesTheLeaseAndAnotherReplicaLeadsAtItsNextAttempt) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  Replica b(*env_.registry, env_.clock, "host-b_2");
  ASSERT_TRUE(a.elector->tick().isOk());
  ASSERT_TRUE(b.elector->tick().isOk());
  a.elector->stop();
  EXPECT_EQ(a.stopped, 1);
  EXPECT_FALSE(a.elector->leading());
  EXPECT_EQ(spec()["holderIdentity"], "");
  env_.clock.advance(2s);
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_TRUE(b.elector->leading());
  EXPECT_EQ(spec()["leaseTransitions"], 1);
}

// A replica restarted with the identity it had (kept in its data dir) is the holder: it leads at
// its first attempt instead of waiting out its own old Lease.
TEST_F(LeaderElectorTest, ARestartedReplicaWithItsIdentityLeadsAtOnce) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  ASSERT_TRUE(a.elector->tick().isOk());
  // `a` is killed: it never runs again (no renewal, no release) while its successor starts.
  Replica again(*env_.registry, env_.clock, "host-a_1");
  ASSERT_TRUE(again.elector->tick().isOk());
  EXPECT_TRUE(again.elector->leading());
  EXPECT_EQ(spec()["leaseTransitions"], 0);
}

// Controllers that fail to start give the Lease back; the error is the tick's.
TEST_F(LeaderElectorTest, ControllersThatFailToStartReleaseTheLease) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  a.startResult = unavailableError("watch failed");
  EXPECT_EQ(a.elector->tick().message(), "watch failed");
  EXPECT_FALSE(a.elector->leading());
  EXPECT_EQ(spec()["holderIdentity"], "");
  Replica b(*env_.registry, env_.clock, "host-b_2");
  ASSERT_TRUE(b.elector->tick().isOk());
  EXPECT_TRUE(b.elector->leading());
}

// start() makes the first attempt before returning (a lone replica's controllers run when
// cloudcore is up); a start failure there is start()'s error.
TEST_F(LeaderElectorTest, StartLeadsBeforeReturningAndFailsWhenTheControllersDo) {
  Replica a(*env_.registry, env_.clock, "host-a_1");
  ASSERT_TRUE(a.elector->start().isOk());
  EXPECT_TRUE(a.elector->leading());
  a.elector->stop();
  EXPECT_EQ(a.stopped, 1);

  Replica b(*env_.registry, env_.clock, "host-b_2");
  b.startResult = unavailableError("no");
  EXPECT_FALSE(b.elector->start().isOk());
  EXPECT_FALSE(b.elector->leading());
  b.elector->stop();
  EXPECT_EQ(b.stopped, 0);
}

TEST(LeaderElectionIdentityTest, IsKeptInTheDataDirAndCheckedWhenRead) {
  testing::TempDir dir;
  auto first = loadOrCreateIdentity(dir.path());
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  auto again = loadOrCreateIdentity(dir.path());
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(*first, *again);
  EXPECT_NE(first->find('_'), std::string::npos);
  testing::TempDir other;
  EXPECT_NE(*loadOrCreateIdentity(other.path()), *first);

  std::ofstream(dir.path() + "/leader-election-id") << "not hex\n";
  auto bad = loadOrCreateIdentity(dir.path());
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find(dir.path() + "/leader-election-id"), std::string::npos)
      << bad.status().message();
}

// A leadership term's controllers start and stop, and a later term starts them again: the
// ServiceAccount controller of the second term makes the `default` ServiceAccount that was
// deleted between the terms.
TEST_F(LeaderElectorTest, TheControllerManagerStartsStopsAndStartsAgain) {
  const auto& serviceAccount = *api::findByApiVersionKind("v1", "ServiceAccount");
  auto present = [&] {
    for (int i = 0; i < 500; ++i) {
      if (env_.registry->get(serviceAccount, "default", "default").isOk()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  controllers::ControllerManager manager(*env_.registry, env_.clock, {});
  ASSERT_TRUE(manager.start().isOk());
  EXPECT_TRUE(manager.running());
  EXPECT_TRUE(present());
  manager.stop();
  EXPECT_FALSE(manager.running());
  manager.stop();  // idempotent
  ASSERT_TRUE(env_.registry->remove(serviceAccount, "default", "default").isOk());
  ASSERT_TRUE(manager.start().isOk());
  EXPECT_TRUE(manager.running());
  EXPECT_TRUE(present()) << "the second term's controllers run";
  manager.stop();
}

}  // namespace
}  // namespace ep::leaderelection
