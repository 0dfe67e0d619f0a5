// The Store contract (cloudcore/store/store.h) checked on both implementations: SqliteStore in a
// temp dir, and EtcdStore against a real etcd started for each test. Revisions are counted from the
// store's revision when the test began: etcd's revision is cluster-wide. Implementation-specific
// cases live in sqlite_store_test.cc and etcd_store_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <thread>

#include "cloudcore/store/etcd_store.h"
#include "cloudcore/store/sqlite_store.h"
#include "tests/testing/etcd.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

namespace ep::store {
namespace {

enum class Backend { kSqlite, kEtcd };

class StoreContractTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kEtcd) {
      if (auto why = testing::EtcdCluster::skipReason(); !why.empty()) GTEST_SKIP() << why;
      etcd_ = std::make_unique<testing::EtcdCluster>(dir_.path());
      ASSERT_TRUE(etcd_->start()) << etcd_->log(0);
    }
    open();
    base_ = store_->currentRevision();
  }
  void TearDown() override {
    if (store_) store_->stop();
  }
  void open() {
    if (GetParam() == Backend::kSqlite) {
      SqliteStoreOptions o;
      o.dataDir = dir_.path() + "/sqlite";
      o.compactionInterval = std::chrono::seconds(0);
      o.watchBufferEvents = bufferEvents_;
      store_ = std::make_unique<SqliteStore>(o, clock_);
    } else {
      EtcdStoreOptions o;
      o.endpoints = etcd_->endpoints();
      o.prefix = "/contract";
      o.compactionInterval = std::chrono::seconds(0);
      o.watchBufferEvents = bufferEvents_;
      store_ = std::make_unique<EtcdStore>(o, clock_);
    }
    ASSERT_TRUE(store_->start().isOk());
  }
  void reopen() {
    store_->stop();
    store_.reset();
    open();
  }
  // The revision of the n-th write of this test.
  int64_t rev(int64_t n) const { return base_ + n; }

  // Polls until `n` events arrived, the watch ended or 10 s passed.
  static std::vector<Event> drain(Watch& w, size_t n) {
    std::vector<Event> got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.size() < n && std::chrono::steady_clock::now() < deadline && !w.done()) {
      auto more = w.poll(n - got.size());
      if (more.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      for (auto& e : more) got.push_back(std::move(e));
    }
    return got;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  size_t bufferEvents_ = 1024;
  std::unique_ptr<testing::EtcdCluster> etcd_;
  std::unique_ptr<Store> store_;
  int64_t base_ = 0;
};

TEST_P(StoreContractTest, CreateGetUpdateDelete) {
  auto c = store_->create("pods", "default", "a", "{\"v\":1}");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->modRevision, rev(1));
  EXPECT_EQ(c->createRevision, rev(1));

  auto dup = store_->create("pods", "default", "a", "{}");
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);

  auto g = store_->get("pods", "default", "a");
  ASSERT_TRUE(g.isOk());
  EXPECT_EQ(g->value, "{\"v\":1}");
  EXPECT_EQ(g->modRevision, rev(1));
  EXPECT_EQ(store_->get("pods", "other", "a").status().code(), Code::kNotFound);

  auto u = store_->update("pods", "default", "a", "{\"v\":2}", rev(1));
  ASSERT_TRUE(u.isOk());
  EXPECT_EQ(u->modRevision, rev(2));
  EXPECT_EQ(u->createRevision, rev(1));

  auto stale = store_->update("pods", "default", "a", "{\"v\":3}", rev(1));
  EXPECT_EQ(stale.status().code(), Code::kConflict);
  EXPECT_EQ(store_->get("pods", "default", "a")->value, "{\"v\":2}");
  EXPECT_EQ(store_->update("pods", "default", "none", "x", 0).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->remove("pods", "default", "a", rev(1)).status().code(), Code::kConflict);

  auto d = store_->remove("pods", "default", "a", 0);
  ASSERT_TRUE(d.isOk());
  EXPECT_EQ(d->modRevision, rev(3));
  EXPECT_EQ(d->value, "{\"v\":2}");
  EXPECT_EQ(store_->get("pods", "default", "a").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->remove("pods", "default", "a", 0).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->currentRevision(), rev(3));

  // Created again after the delete: a new object.
  auto again = store_->create("pods", "default", "a", "{}");
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->createRevision, rev(4));
}

TEST_P(StoreContractTest, ClusterScopedAndNamespacedKeysAreApart) {
  ASSERT_TRUE(store_->create("nodes", "", "n1", "1").isOk());
  ASSERT_TRUE(store_->create("pods", "n1", "n1", "2").isOk());
  EXPECT_EQ(store_->get("nodes", "", "n1")->value, "1");
  EXPECT_EQ(store_->get("nodes", "n1", "").status().code(), Code::kNotFound);
  auto nodes = store_->list({.resource = "nodes"});
  ASSERT_TRUE(nodes.isOk());
  ASSERT_EQ(nodes->items.size(), 1u);
  EXPECT_EQ(nodes->items[0].namespace_, "");
  EXPECT_EQ(nodes->items[0].name, "n1");
}

TEST_P(StoreContractTest, ListFiltersAndPaginates) {
  for (const char* ns : {"a", "b"}) {
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(store_->create("pods", ns, "p" + std::to_string(i), std::to_string(i)).isOk());
    }
  }
  ASSERT_TRUE(store_->create("configmaps", "a", "x", "{}").isOk());

  auto r = store_->list({.resource = "pods"});
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->items.size(), 10u);
  EXPECT_EQ(r->revision, rev(11));

  EXPECT_EQ(store_->list({.resource = "pods", .namespace_ = "b"})->items.size(), 5u);

  ListOptions even{.resource = "pods"};
  even.predicate = [](const Object& o) { return std::stoi(o.value) % 2 == 0; };
  EXPECT_EQ(store_->list(even)->items.size(), 6u);

  // Pages of 4, each a consistent part of one list.
  ListOptions page{.resource = "pods", .limit = 4};
  std::vector<std::string> names;
  int pages = 0;
  for (;;) {
    auto p = store_->list(page);
    ASSERT_TRUE(p.isOk());
    ++pages;
    EXPECT_EQ(p->revision, rev(11));
    for (auto& o : p->items) names.push_back(o.namespace_ + "/" + o.name);
    if (p->continueToken.empty()) break;
    page.continueToken = p->continueToken;
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names.front(), "a/p0");
  EXPECT_EQ(names.back(), "b/p4");
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 10u);

  ListOptions evenPages{.resource = "pods", .limit = 2, .predicate = even.predicate};
  size_t evens = 0;
  for (;;) {
    auto p = store_->list(evenPages);
    ASSERT_TRUE(p.isOk());
    evens += p->items.size();
    if (p->continueToken.empty()) break;
    evenPages.continueToken = p->continueToken;
  }
  EXPECT_EQ(evens, 6u);

  ListOptions bad{.resource = "pods", .continueToken = "zz"};
  EXPECT_EQ(store_->list(bad).status().code(), Code::kBadRequest);
}

TEST_P(StoreContractTest, WatchDeliversLiveEventsInOrder) {
  auto w = store_->watch({.resource = "pods"});
  ASSERT_TRUE(w.isOk());
  std::atomic<int> notified{0};
  (*w)->setNotify([&] { ++notified; });
  ASSERT_TRUE(store_->create("pods", "ns", "a", "1").isOk());
  ASSERT_TRUE(store_->create("configmaps", "ns", "ignored", "1").isOk());
  ASSERT_TRUE(store_->update("pods", "ns", "a", "2", 0).isOk());
  ASSERT_TRUE(store_->remove("pods", "ns", "a", 0).isOk());
  auto events = drain(**w, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, EventType::kAdded);
  EXPECT_EQ(events[0].object.modRevision, rev(1));
  EXPECT_EQ(events[0].prevValue, "");
  EXPECT_EQ(events[1].type, EventType::kModified);
  EXPECT_EQ(events[1].prevValue, "1");
  EXPECT_EQ(events[1].object.value, "2");
  EXPECT_EQ(events[1].object.createRevision, rev(1));
  EXPECT_EQ(events[2].type, EventType::kDeleted);
  EXPECT_EQ(events[2].object.value, "2");
  EXPECT_EQ(events[2].prevValue, "2");
  EXPECT_EQ(events[2].object.modRevision, rev(4));
  EXPECT_GT(notified.load(), 0);
  // Nothing else came for them: the next event is the next write.
  ASSERT_TRUE(store_->create("pods", "ns", "sentinel", "1").isOk());
  auto next = drain(**w, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].object.name, "sentinel");
  EXPECT_FALSE((*w)->done());
  (*w)->stop();
  EXPECT_TRUE((*w)->done());
}

// progressRevision() (what watch BOOKMARKs carry) never runs ahead of what poll() handed out,
// and covers what it did hand out. SQLite also moves it past writes the watch does not match;
// etcd does when its progress notifications come (every 10 min by default).
TEST_P(StoreContractTest, ProgressRevisionCoversWhatPollHandedOutAndNoMore) {
  auto w = store_->watch({.resource = "pods"});
  ASSERT_TRUE(w.isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "a", "1").isOk());
  EXPECT_LT((*w)->progressRevision(), rev(1));  // not polled yet
  auto got = drain(**w, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_GE((*w)->progressRevision(), rev(1));
  ASSERT_TRUE(store_->create("configmaps", "ns", "c", "1").isOk());
  if (GetParam() == Backend::kSqlite) {
    EXPECT_TRUE(testing::eventually([&] { return (*w)->progressRevision() >= rev(2); }))
        << (*w)->progressRevision();
  }
  ASSERT_TRUE(store_->create("pods", "ns", "b", "1").isOk());
  EXPECT_LT((*w)->progressRevision(), rev(3));
  ASSERT_EQ(drain(**w, 1).size(), 1u);
  EXPECT_GE((*w)->progressRevision(), rev(3));
}

TEST_P(StoreContractTest, WatchOfEveryResourceAndOfOneNamespace) {
  auto all = store_->watch({});
  ASSERT_TRUE(all.isOk());
  auto ns = store_->watch({.resource = "configmaps", .namespace_ = "b"});
  ASSERT_TRUE(ns.isOk());
  ASSERT_TRUE(store_->create("pods", "a", "p", "1").isOk());
  ASSERT_TRUE(store_->create("configmaps", "a", "c", "1").isOk());
  ASSERT_TRUE(store_->create("configmaps", "b", "c", "1").isOk());
  ASSERT_TRUE(store_->create("nodes", "", "n", "1").isOk());
  auto everything = drain(**all, 4);
  ASSERT_EQ(everything.size(), 4u);
  EXPECT_EQ(everything[0].object.resource, "pods");
  EXPECT_EQ(everything[3].object.resource, "nodes");
  EXPECT_EQ(everything[3].object.namespace_, "");
  auto inB = drain(**ns, 1);
  ASSERT_EQ(inB.size(), 1u);
  EXPECT_EQ(inB[0].object.namespace_, "b");
  EXPECT_EQ(inB[0].object.modRevision, rev(3));
}

TEST_P(StoreContractTest, WatchFromRevisionReplaysHistoryThenLive) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store_->create("pods", "ns", "p" + std::to_string(i), "x").isOk());
  }
  auto w = store_->watch({.resource = "pods", .fromRevision = rev(5)});
  ASSERT_TRUE(w.isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "live", "x").isOk());
  auto events = drain(**w, 16);
  ASSERT_EQ(events.size(), 16u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].object.modRevision, rev(6 + static_cast<int64_t>(i)));
  }
  EXPECT_EQ(events.back().object.name, "live");
  // From the current revision: nothing old, the next write.
  auto now = store_->watch({.resource = "pods", .fromRevision = rev(21)});
  ASSERT_TRUE(now.isOk());
  ASSERT_TRUE(store_->update("pods", "ns", "live", "y", 0).isOk());
  auto next = drain(**now, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].object.modRevision, rev(22));
}

TEST_P(StoreContractTest, SlowWatchCatchesUpWithoutGaps) {
  bufferEvents_ = 8;
  reopen();
  base_ = store_->currentRevision();
  auto w = store_->watch({.resource = "pods"});
  ASSERT_TRUE(w.isOk());
  // 200 writes overflow the 8-event buffer many times over while nobody polls.
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(
            store_->create("pods", "ns", "p" + std::to_string(t) + "-" + std::to_string(i), "x")
                .isOk());
      }
    });
  }
  for (auto& t : writers) t.join();
  auto got = drain(**w, 200);
  ASSERT_EQ(got.size(), 200u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].object.modRevision, rev(static_cast<int64_t>(i) + 1));
  }
}

TEST_P(StoreContractTest, CompactedRevisionIsExpired) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store_->create("pods", "ns", std::to_string(i), "x").isOk());
  }
  ASSERT_TRUE(store_->compact(rev(6)).isOk());
  EXPECT_EQ(store_->compactedRevision(), rev(6));
  EXPECT_EQ(store_->watch({.resource = "pods", .fromRevision = rev(3)}).status().code(),
            Code::kExpired);
  auto ok = store_->watch({.resource = "pods", .fromRevision = rev(6)});
  ASSERT_TRUE(ok.isOk());
  auto events = drain(**ok, 4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].object.modRevision, rev(7));
  // Objects themselves are not affected by compaction.
  EXPECT_EQ(store_->list({.resource = "pods"})->items.size(), 10u);
}

TEST_P(StoreContractTest, ContinueTokenFromCompactedRevisionIsExpired) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store_->create("pods", "ns", std::to_string(i), "x").isOk());
  }
  auto first = store_->list({.resource = "pods", .limit = 2});
  ASSERT_TRUE(first.isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "z", "x").isOk());
  ASSERT_TRUE(store_->compact(rev(11)).isOk());
  auto next = store_->list({.resource = "pods", .limit = 2, .continueToken = first->continueToken});
  EXPECT_EQ(next.status().code(), Code::kExpired);
}

TEST_P(StoreContractTest, UnsafeDeleteCarriesTheTombstoneAndRefusesReadableOrChangedObjects) {
  auto c = store_->create("secrets", "ns", "s", "sealed");
  ASSERT_TRUE(c.isOk());
  auto w = store_->watch({.resource = "secrets", .fromRevision = rev(1)});
  ASSERT_TRUE(w.isOk());
  // The zero form removes only rows damaged on disk: an intact one is refused.
  EXPECT_EQ(store_->removeUnsafe("secrets", "ns", "s", "tomb", 0).status().code(), Code::kConflict);
  EXPECT_EQ(store_->removeUnsafe("secrets", "ns", "s", "tomb", rev(1) + 100).status().code(),
            Code::kConflict);
  EXPECT_EQ(store_->removeUnsafe("secrets", "ns", "none", "tomb", 7).status().code(),
            Code::kNotFound);
  auto d = store_->removeUnsafe("secrets", "ns", "s", "tomb", rev(1));
  ASSERT_TRUE(d.isOk()) << d.status().toString();
  EXPECT_EQ(d->value, "tomb");
  EXPECT_EQ(store_->get("secrets", "ns", "s").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->list({.resource = "secrets"})->items.empty());
  auto events = drain(**w, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::kDeleted);
  EXPECT_EQ(events[0].object.value, "tomb");
  EXPECT_EQ(events[0].prevValue, "");
  EXPECT_EQ(events[0].object.modRevision, d->modRevision);
  // Nothing else arrives for it, and the name can be used again.
  ASSERT_TRUE(store_->create("secrets", "ns", "s", "new").isOk());
  auto created = drain(**w, 1);
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].type, EventType::kAdded);
  EXPECT_EQ(created[0].object.value, "new");
}

TEST_P(StoreContractTest, DataAndRevisionSurviveReopen) {
  ASSERT_TRUE(store_->create("pods", "ns", "a", "x").isOk());
  ASSERT_TRUE(store_->update("pods", "ns", "a", "y", 0).isOk());
  reopen();
  EXPECT_EQ(store_->currentRevision(), rev(2));
  EXPECT_EQ(store_->get("pods", "ns", "a")->value, "y");
  EXPECT_EQ(store_->create("pods", "ns", "b", "x")->modRevision, rev(3));
}

TEST_P(StoreContractTest, StopEndsWatchesAsUnavailable) {
  auto w = store_->watch({.resource = "pods"});
  ASSERT_TRUE(w.isOk());
  store_->stop();
  ASSERT_TRUE(testing::eventually([&] { return (*w)->done(); }));
  EXPECT_EQ((*w)->error().code(), Code::kUnavailable);
}

TEST_P(StoreContractTest, ConcurrentWritersNeverFail) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto name = std::to_string(t) + "-" + std::to_string(i);
        if (!store_->create("pods", "ns", name, "x").isOk()) ++failures;
        if (!store_->update("pods", "ns", name, "y", 0).isOk()) ++failures;
        if (!store_->update("pods", "ns", "shared", name, 0).isOk() &&
            !store_->create("pods", "ns", "shared", name).isOk()) {
          // Another thread created it between the two calls: the next update wins.
          if (!store_->update("pods", "ns", "shared", name, 0).isOk()) ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store_->currentRevision(), rev(8 * 50 * 3));
}

TEST_P(StoreContractTest, WriteProbeChangesNothing) {
  ASSERT_TRUE(store_->create("configmaps", "default", "a", "{}").isOk());
  const int64_t before = store_->currentRevision();
  ASSERT_TRUE(store_->probeWrite().isOk());
  EXPECT_EQ(store_->currentRevision(), before);
}

// Built twice (tests/cloudcore/CMakeLists.txt): the SQLite instance is a hermetic unit test,
// the etcd one starts a real etcd.
#ifdef EP_STORE_CONTRACT_ETCD
constexpr Backend kBackend = Backend::kEtcd;
#else
constexpr Backend kBackend = Backend::kSqlite;
#endif
INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest, ::testing::Values(kBackend),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Etcd";
                         });

}  // namespace
}  // namespace ep::store
