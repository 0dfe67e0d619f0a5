// EtcdStore against real etcd members that are killed and started again: what the store
// acknowledged is never lost, watches resume on another member (or the restarted one) without
// gaps or repeats, and an unreachable etcd is a clear error. The shared contract is in
// store_contract_test.cc.
#include "cloudcore/store/etcd_store.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "etcd/rpc.grpc.pb.h"
#include "tests/testing/etcd.h"
#include "tests/testing/eventually.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace ep::store {
namespace {

class EtcdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::EtcdCluster::skipReason(); !why.empty()) GTEST_SKIP() << why;
  }
  std::unique_ptr<EtcdStore> open(
      const testing::EtcdCluster& etcd,
      std::chrono::milliseconds timeout = std::chrono::seconds(10),
      std::chrono::milliseconds watchRetry = std::chrono::milliseconds(100)) {
    EtcdStoreOptions o;
    o.endpoints = etcd.endpoints();
    o.compactionInterval = std::chrono::seconds(0);
    o.requestTimeout = timeout;
    o.watchRetryDelay = watchRetry;
    auto s = std::make_unique<EtcdStore>(o, clock_);
    auto started = s->start();
    EXPECT_TRUE(started.isOk()) << started.toString();
    return started.isOk() ? std::move(s) : nullptr;
  }
  // A raw etcd client, for writes the store itself never makes.
  static std::unique_ptr<etcdserverpb::KV::Stub> rawKv(const testing::EtcdCluster& etcd) {
    return etcdserverpb::KV::NewStub(
        grpc::CreateChannel(etcd.endpoint(0), grpc::InsecureChannelCredentials()));
  }
  static bool rawTxn(etcdserverpb::KV::Stub& kv, const etcdserverpb::TxnRequest& txn) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    etcdserverpb::TxnResponse resp;
    return kv.Txn(&ctx, txn, &resp).ok() && resp.succeeded();
  }
  // Polls until `n` events arrived or `within` passed.
  static std::vector<Event> drain(Watch& w, size_t n,
                                  std::chrono::seconds within = std::chrono::seconds(30)) {
    std::vector<Event> got;
    auto deadline = std::chrono::steady_clock::now() + within;
    while (got.size() < n && std::chrono::steady_clock::now() < deadline && !w.done()) {
      auto more = w.poll(n - got.size());
      if (more.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      for (auto& e : more) got.push_back(std::move(e));
    }
    return got;
  }

  testing::TempDir dir_;
  FakeClock clock_;
};

// Writers create as fast as they can while the only member is killed with SIGKILL: each write
// the store acknowledged is there after etcd starts again on its data, and the writes that
// failed were reported as failures (kUnavailable), not as done.
TEST_F(EtcdStoreTest, AcknowledgedWritesSurviveEtcdKill9) {
  testing::EtcdCluster etcd(dir_.path());
  ASSERT_TRUE(etcd.start()) << etcd.log(0);
  auto store = open(etcd, std::chrono::milliseconds(2000));
  ASSERT_TRUE(store);
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<int> failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string name = std::to_string(t) + "-" + std::to_string(i);
        auto r = store->create("pods", "ns", name, "v");
        if (r.isOk()) {
          std::lock_guard lock(mu);
          acked.insert(name);
        } else {
          EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().toString();
          ++failed;
        }
      }
    });
  }
  ASSERT_TRUE(testing::eventually([&] {
    std::lock_guard lock(mu);
    return acked.size() >= 200;
  }));
  etcd.killMember(0);
  ASSERT_TRUE(testing::eventually([&] { return failed.load() > 0; }));
  stop = true;
  for (auto& t : writers) t.join();
  store->stop();
  store.reset();

  ASSERT_TRUE(etcd.startMember(0)) << etcd.log(0);
  auto again = open(etcd);
  ASSERT_TRUE(again);
  auto all = again->list({.resource = "pods"});
  ASSERT_TRUE(all.isOk()) << all.status().toString();
  std::set<std::string> present;
  for (auto& o : all->items) present.insert(o.name);
  for (const auto& name : acked)
    EXPECT_TRUE(present.count(name)) << "acknowledged " << name << " lost";
  again->stop();
}

// A watch outlives a restart of etcd: it resumes from the first revision it had not delivered,
// so it sees every change once and in order, including those made while it was reconnecting.
TEST_F(EtcdStoreTest, WatchResumesAcrossAnEtcdRestart) {
  testing::EtcdCluster etcd(dir_.path());
  ASSERT_TRUE(etcd.start()) << etcd.log(0);
  // The watch waits 3 s before it opens a new stream: the writes below are all made while it
  // has none, so only a resume from where it was can deliver them.
  auto store = open(etcd, std::chrono::seconds(10), std::chrono::seconds(3));
  ASSERT_TRUE(store);
  auto w = store->watch({.resource = "configmaps"});
  ASSERT_TRUE(w.isOk());
  ASSERT_TRUE(store->create("configmaps", "ns", "before", "1").isOk());
  auto first = drain(**w, 1);
  ASSERT_EQ(first.size(), 1u);

  etcd.killMember(0);
  ASSERT_TRUE(etcd.startMember(0)) << etcd.log(0);
  for (int i = 0; i < 5; ++i) {
    auto r = store->create("configmaps", "ns", "after-" + std::to_string(i), "1");
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  auto rest = drain(**w, 5);
  ASSERT_EQ(rest.size(), 5u) << ((*w)->done() ? (*w)->error().toString() : "still running");
  int64_t last = first[0].object.modRevision;
  for (size_t i = 0; i < rest.size(); ++i) {
    EXPECT_EQ(rest[i].object.name, "after-" + std::to_string(i));
    EXPECT_GT(rest[i].object.modRevision, last);
    last = rest[i].object.modRevision;
  }
  // Nothing was delivered twice: the next event is the next write.
  ASSERT_TRUE(store->create("configmaps", "ns", "sentinel", "1").isOk());
  auto next = drain(**w, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].object.name, "sentinel");
  store->stop();
}

// Three members, each killed in turn under load (and started again before the next): the store
// keeps serving through the other two, every acknowledged write is listed afterwards, and a
// watch delivers each of them exactly once, whichever member its stream was on.
TEST_F(EtcdStoreTest, EachOfThreeMembersKilledInTurnLosesNothing) {
  testing::EtcdCluster etcd(dir_.path(), 3);
  ASSERT_TRUE(etcd.start()) << etcd.log(0) << etcd.log(1) << etcd.log(2);
  auto store = open(etcd, std::chrono::milliseconds(5000));
  ASSERT_TRUE(store);
  auto w = store->watch({.resource = "pods"});
  ASSERT_TRUE(w.isOk());
  std::mutex mu;
  std::set<int64_t> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        auto r = store->create("pods", "ns", std::to_string(t) + "-" + std::to_string(i), "v");
        if (r.isOk()) {
          std::lock_guard lock(mu);
          acked.insert(r->modRevision);
        }
      }
    });
  }
  auto ackedCount = [&] {
    std::lock_guard lock(mu);
    return acked.size();
  };
  for (size_t m = 0; m < etcd.size(); ++m) {
    const size_t before = ackedCount();
    ASSERT_TRUE(testing::eventually([&] { return ackedCount() >= before + 100; },
                                    std::chrono::seconds(30)));
    etcd.killMember(m);
    const size_t atKill = ackedCount();
    // Writes go on through the two members left.
    ASSERT_TRUE(
        testing::eventually([&] { return ackedCount() >= atKill + 100; }, std::chrono::seconds(30)))
        << "member " << m;
    ASSERT_TRUE(etcd.startMember(m)) << etcd.log(m);
  }
  stop = true;
  for (auto& t : writers) t.join();

  auto all = store->list({.resource = "pods"});
  ASSERT_TRUE(all.isOk()) << all.status().toString();
  std::set<int64_t> listed;
  for (auto& o : all->items) listed.insert(o.modRevision);
  for (int64_t r : acked) EXPECT_TRUE(listed.count(r)) << "acknowledged revision " << r << " lost";

  auto events = drain(**w, all->items.size());
  ASSERT_EQ(events.size(), all->items.size())
      << ((*w)->done() ? (*w)->error().toString() : "still running");
  std::set<int64_t> seen;
  int64_t last = 0;
  for (const auto& e : events) {
    EXPECT_GT(e.object.modRevision, last);
    last = e.object.modRevision;
    seen.insert(e.object.modRevision);
  }
  EXPECT_EQ(seen, listed);
  store->stop();
}

// Events of one revision (an etcd transaction that writes several keys, which this store never
// makes but another etcd client may) are all delivered.
TEST_F(EtcdStoreTest, EventsSharingARevisionAreAllDelivered) {
  testing::EtcdCluster etcd(dir_.path());
  ASSERT_TRUE(etcd.start()) << etcd.log(0);
  auto store = open(etcd);
  ASSERT_TRUE(store);
  auto w = store->watch({.resource = "configmaps"});
  ASSERT_TRUE(w.isOk());
  auto kv = rawKv(etcd);
  etcdserverpb::TxnRequest txn;
  for (const char* name : {"a", "b", "c"}) {
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(std::string("/edgeplane/configmaps/ns/") + name);
    put->set_value("{}");
  }
  ASSERT_TRUE(rawTxn(*kv, txn));
  auto events = drain(**w, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].object.modRevision, events[2].object.modRevision);
  EXPECT_EQ(events[2].object.name, "c");
  store->stop();
}

// removeUnsafe's first write landed but its second never did (cloudcore died between them):
// the object reads as gone, and the first read that finds it finishes the deletion, so watches
// see the DELETED event with the tombstone.
TEST_F(EtcdStoreTest, AHalfDoneUnsafeDeleteIsFinishedByTheNextRead) {
  testing::EtcdCluster etcd(dir_.path());
  ASSERT_TRUE(etcd.start()) << etcd.log(0);
  auto store = open(etcd);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->create("secrets", "ns", "s", "sealed").isOk());
  auto w = store->watch({.resource = "secrets"});
  ASSERT_TRUE(w.isOk());
  auto kv = rawKv(etcd);
  etcdserverpb::TxnRequest txn;
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key("/edgeplane/secrets/ns/s");
  static const char kMark[] = "\0edgeplane:unsafe-delete\0";
  put->set_value(std::string(kMark, sizeof kMark - 1) + "tomb");
  ASSERT_TRUE(rawTxn(*kv, txn));

  EXPECT_EQ(store->get("secrets", "ns", "s").status().code(), Code::kNotFound);
  auto events = drain(**w, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::kDeleted);
  EXPECT_EQ(events[0].object.value, "tomb");
  EXPECT_EQ(events[0].prevValue, "");
  ASSERT_TRUE(store->create("secrets", "ns", "s", "new").isOk());
  store->stop();
}

// A watch that was away (its stream broken) while its next revision was compacted ends with
// kExpired (410 to API clients, which relist) instead of skipping what it missed.
TEST_F(EtcdStoreTest, CompactedWhileAwayEndsTheWatchExpired) {
  testing::EtcdCluster etcd(dir_.path());
  ASSERT_TRUE(etcd.start()) << etcd.log(0);
  auto store = open(etcd, std::chrono::seconds(10), std::chrono::seconds(3));
  ASSERT_TRUE(store);
  auto w = store->watch({.resource = "pods"});
  ASSERT_TRUE(w.isOk());
  etcd.killMember(0);
  ASSERT_TRUE(etcd.startMember(0)) << etcd.log(0);
  // While the watch waits to open its next stream: a write, then history compacted past it.
  ASSERT_TRUE(store->create("pods", "ns", "missed", "x").isOk());
  ASSERT_TRUE(store->create("pods", "ns", "after", "x").isOk());
  ASSERT_TRUE(store->compact(store->currentRevision()).isOk());
  ASSERT_TRUE(testing::eventually([&] { return (*w)->done(); }, std::chrono::seconds(20)));
  EXPECT_EQ((*w)->error().code(), Code::kExpired) << (*w)->error().toString();
  store->stop();
}

// A watch destroyed while its stream is broken and a restart is pending: nothing runs into the
// freed watch or store afterwards (ASan and the process surviving tell).
TEST_F(EtcdStoreTest, WatchDestroyedWhileReconnecting) {
  testing::EtcdCluster etcd(dir_.path());
  ASSERT_TRUE(etcd.start()) << etcd.log(0);
  auto store = open(etcd, std::chrono::seconds(10), std::chrono::milliseconds(300));
  ASSERT_TRUE(store);
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < 8; ++i) {
    auto w = store->watch({.resource = "pods"});
    ASSERT_TRUE(w.isOk());
    (*w)->setNotify([] {});
    watches.push_back(std::move(*w));
  }
  etcd.killMember(0);
  // Half go while the streams fail, half after their restarts were scheduled.
  watches.resize(4);
  ASSERT_TRUE(etcd.startMember(0)) << etcd.log(0);
  watches.clear();
  store->stop();
  store.reset();
}

// A revision the store never reached came from another store (the one the cluster was moved
// from): a watch from it is 410 at once, so the client relists instead of waiting for etcd to
// get there. The current revision itself is fine.
TEST_F(EtcdStoreTest, WatchFromARevisionTheStoreNeverReachedIsExpired) {
  testing::EtcdCluster etcd(dir_.path());
  ASSERT_TRUE(etcd.start()) << etcd.log(0);
  auto store = open(etcd);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->create("pods", "ns", "a", "x").isOk());
  const int64_t current = store->currentRevision();
  auto ahead = store->watch({.resource = "pods", .fromRevision = current + 1000});
  EXPECT_EQ(ahead.status().code(), Code::kExpired) << ahead.status().toString();
  auto now = store->watch({.resource = "pods", .fromRevision = current});
  ASSERT_TRUE(now.isOk()) << now.status().toString();
  ASSERT_TRUE(store->create("pods", "ns", "b", "x").isOk());
  auto next = drain(**now, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].object.name, "b");
  store->stop();
}

TEST_F(EtcdStoreTest, UnreachableEtcdFailsStartNamingTheEndpoint) {
  EtcdStoreOptions o;
  o.endpoints = {"127.0.0.1:" + std::to_string(testing::freePort())};
  o.requestTimeout = std::chrono::milliseconds(500);
  EtcdStore store(o, clock_);
  auto s = store.start();
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find(o.endpoints[0]), std::string::npos) << s.message();
  EXPECT_EQ(store.get("pods", "ns", "a").status().code(), Code::kUnavailable);
}

// The background compactor keeps the history window: a revision is compacted once a later
// compaction pass finds it older than the window.
TEST_F(EtcdStoreTest, TimeWindowCompaction) {
  testing::EtcdCluster etcd(dir_.path());
  ASSERT_TRUE(etcd.start()) << etcd.log(0);
  EtcdStoreOptions o;
  o.endpoints = etcd.endpoints();
  o.compactionInterval = std::chrono::seconds(0);
  o.historyWindow = std::chrono::seconds(60);
  EtcdStore store(o, clock_);
  ASSERT_TRUE(store.start().isOk());
  auto old = store.create("pods", "ns", "old", "x");
  ASSERT_TRUE(old.isOk());
  ASSERT_TRUE(store.compactOnce().isOk());  // remembers the revision of "old"
  EXPECT_EQ(store.compactedRevision(), 0);
  clock_.advance(std::chrono::seconds(120));
  ASSERT_TRUE(store.create("pods", "ns", "new", "x").isOk());
  ASSERT_TRUE(store.compactOnce().isOk());
  EXPECT_EQ(store.compactedRevision(), old->modRevision);
  EXPECT_EQ(store.watch({.resource = "pods", .fromRevision = old->modRevision - 1}).status().code(),
            Code::kExpired);
  store.stop();
}

}  // namespace
}  // namespace ep::store
