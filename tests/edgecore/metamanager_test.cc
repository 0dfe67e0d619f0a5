#include "edgecore/metamanager/metamanager.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "tests/testing/temp_dir.h"

namespace ep::edgecore::metamanager {
namespace {

namespace tv1 = edgeplane::tunnel::v1;

std::string podJson(const std::string& name, int64_t rv, const std::string& extra = "x") {
  return nlohmann::json{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name}, {"namespace", "default"}, {"resourceVersion", std::to_string(rv)}}},
      {"spec", {{"nodeName", extra}}}}
      .dump();
}

void addPut(tv1::Sync& s, const std::string& name, int64_t rev, const std::string& extra = "x") {
  auto* c = s.add_changes();
  c->set_op(tv1::Change::OP_PUT);
  c->set_resource("pods");
  c->set_namespace_("default");
  c->set_name(name);
  c->set_revision(rev);
  c->set_value(podJson(name, rev, extra));
}

void addDelete(tv1::Sync& s, const std::string& name, int64_t rev) {
  auto* c = s.add_changes();
  c->set_op(tv1::Change::OP_DELETE);
  c->set_resource("pods");
  c->set_namespace_("default");
  c->set_name(name);
  c->set_revision(rev);
}

class MetaManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open(uint64_t maxEntries = 10000, uint64_t maxBytes = 1 << 24) {
    mm_ = std::make_unique<MetaManager>(MetaManagerOptions{dir_.path(), maxEntries, maxBytes, 4});
    ASSERT_TRUE(mm_->start().isOk());
  }
  ep::testing::TempDir dir_;
  std::unique_ptr<MetaManager> mm_;
};

TEST_F(MetaManagerTest, ApplySyncIsIdempotentAndOrdered) {
  tv1::Sync s;
  s.set_revision(10);
  addPut(s, "a", 5, "one");
  addPut(s, "b", 10);
  ASSERT_TRUE(mm_->applySync(s).isOk());
  ASSERT_TRUE(mm_->applySync(s).isOk());  // replay: no change
  EXPECT_EQ(mm_->lastAppliedRevision(), 10);
  EXPECT_EQ(mm_->objectCount(), 2u);

  tv1::Sync older;  // an older revision of "a" must not overwrite the newer cached one
  older.set_revision(11);
  addPut(older, "a", 4, "stale");
  ASSERT_TRUE(mm_->applySync(older).isOk());
  auto a = mm_->get("pods", "default", "a");
  ASSERT_TRUE(a.isOk());
  EXPECT_EQ(a->revision, 5);
  EXPECT_EQ(a->object["spec"]["nodeName"], "one");
  EXPECT_EQ(mm_->lastAppliedRevision(), 11);

  tv1::Sync newer;
  newer.set_revision(12);
  addPut(newer, "a", 12, "two");
  ASSERT_TRUE(mm_->applySync(newer).isOk());
  EXPECT_EQ(mm_->get("pods", "default", "a")->object["spec"]["nodeName"], "two");

  auto inv = mm_->inventory();
  ASSERT_TRUE(inv.isOk());
  ASSERT_EQ(inv->size(), 2u);
  EXPECT_EQ((*inv)[0].name, "a");
  EXPECT_EQ((*inv)[0].revision, 12);
  EXPECT_EQ((*inv)[1].revision, 10);
}

// The cloud's store was replaced (moved to etcd, restored from a backup) and its revisions
// start lower: the first Sync after Hello, below what the cache applied, replaces the cached
// versions although their (old store's) revisions are higher, also for objects it does not
// carry yet, and also across a restart between that Sync and the next.
TEST_F(MetaManagerTest, AnInitialSyncBelowTheAppliedRevisionTakesTheCloudsVersions) {
  tv1::Sync before;
  before.set_revision(500);
  before.set_initial(true);
  addPut(before, "a", 400, "old-a");
  addPut(before, "b", 500, "old-b");
  ASSERT_TRUE(mm_->applySync(before).isOk());

  // Not initial, lower: an out-of-order change, ignored as always.
  tv1::Sync stale;
  stale.set_revision(20);
  addPut(stale, "a", 20, "stale");
  ASSERT_TRUE(mm_->applySync(stale).isOk());
  EXPECT_EQ(mm_->get("pods", "default", "a")->object["spec"]["nodeName"], "old-a");
  EXPECT_EQ(mm_->lastAppliedRevision(), 500);

  tv1::Sync moved;  // the first part of the difference after the move carries only "a"
  moved.set_revision(30);
  moved.set_initial(true);
  addPut(moved, "a", 12, "new-a");
  ASSERT_TRUE(mm_->applySync(moved).isOk());
  EXPECT_EQ(mm_->lastAppliedRevision(), 30);
  auto a = mm_->get("pods", "default", "a");
  ASSERT_TRUE(a.isOk());
  EXPECT_EQ(a->revision, 12);
  EXPECT_EQ(a->object["spec"]["nodeName"], "new-a");
  // "b" is not taken yet: its cached revision says nothing any more.
  EXPECT_EQ(mm_->get("pods", "default", "b")->revision, 0);

  mm_.reset();  // edgecore restarts before the rest of the difference arrived
  open();
  auto inv = mm_->inventory();
  ASSERT_TRUE(inv.isOk());
  ASSERT_EQ(inv->size(), 2u);
  EXPECT_EQ((*inv)[1].name, "b");
  EXPECT_EQ((*inv)[1].revision, 0);  // so the cloud sends it again
  tv1::Sync rest;                    // after the reconnect: not a rewind any more (30 <= 31)
  rest.set_revision(31);
  rest.set_initial(true);
  addPut(rest, "b", 25, "new-b");
  ASSERT_TRUE(mm_->applySync(rest).isOk());
  EXPECT_EQ(mm_->get("pods", "default", "b")->object["spec"]["nodeName"], "new-b");
  EXPECT_EQ(mm_->get("pods", "default", "b")->revision, 25);
  EXPECT_EQ(mm_->lastAppliedRevision(), 31);
}

TEST_F(MetaManagerTest, DeleteAndReopen) {
  tv1::Sync s;
  s.set_revision(3);
  addPut(s, "a", 2);
  addPut(s, "b", 3);
  ASSERT_TRUE(mm_->applySync(s).isOk());
  tv1::Sync d;
  d.set_revision(4);
  addDelete(d, "a", 4);
  addDelete(d, "missing", 4);
  ASSERT_TRUE(mm_->applySync(d).isOk());
  EXPECT_EQ(mm_->get("pods", "default", "a").status().code(), Code::kNotFound);
  mm_.reset();
  open();
  EXPECT_EQ(mm_->lastAppliedRevision(), 4);
  auto l = mm_->list("pods", "");
  ASSERT_TRUE(l.isOk());
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0]["metadata"]["name"], "b");
  EXPECT_TRUE(mm_->list("pods", "other")->empty());
}

TEST_F(MetaManagerTest, BadChangeRefusesWholeSync) {
  tv1::Sync s;
  s.set_revision(7);
  addPut(s, "a", 7);
  auto* bad = s.add_changes();
  bad->set_op(tv1::Change::OP_PUT);
  bad->set_resource("pods");
  bad->set_name("b");
  bad->set_value("{not json");
  auto st = mm_->applySync(s);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("changes[1].value"), std::string::npos) << st.message();
  EXPECT_EQ(mm_->objectCount(), 0u);
  EXPECT_EQ(mm_->lastAppliedRevision(), 0);

  tv1::Sync noName;
  noName.set_revision(8);
  noName.add_changes()->set_resource("pods");
  EXPECT_NE(mm_->applySync(noName).message().find("changes[0].name"), std::string::npos);
}

TEST_F(MetaManagerTest, WatchFanOutAfterCommitAndOverflow) {
  std::vector<nlohmann::json> snap;
  int64_t rev = -1;
  auto sub = mm_->subscribe("pods", "default", &snap, &rev);
  EXPECT_TRUE(snap.empty());
  EXPECT_EQ(rev, 0);
  int wakes = 0;
  sub->setNotify([&] { ++wakes; });
  tv1::Sync s;
  s.set_revision(2);
  addPut(s, "a", 2);
  ASSERT_TRUE(mm_->applySync(s).isOk());
  tv1::Sync d;
  d.set_revision(3);
  addDelete(d, "a", 3);
  ASSERT_TRUE(mm_->applySync(d).isOk());
  auto ev = sub->poll(10);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, "ADDED");
  EXPECT_EQ(ev[1].type, "DELETED");
  EXPECT_EQ(ev[1].object["metadata"]["resourceVersion"], "3");
  EXPECT_GE(wakes, 2);
  // Queue bound is 4 in this fixture: the fifth pending event ends the subscription.
  for (int i = 0; i < 5; ++i) {
    tv1::Sync p;
    p.set_revision(10 + i);
    addPut(p, "p" + std::to_string(i), 10 + i);
    ASSERT_TRUE(mm_->applySync(p).isOk());
  }
  EXPECT_TRUE(sub->overflowed());
  EXPECT_TRUE(sub->done());
}

TEST_F(MetaManagerTest, OutboxCoalescesStatusKinds) {
  auto a1 = mm_->enqueue(tv1::REPORT_KIND_NODE_STATUS, "", "n", "{\"v\":1}");
  auto e1 = mm_->enqueue(tv1::REPORT_KIND_EVENT, "default", "e", "{}");
  auto a2 = mm_->enqueue(tv1::REPORT_KIND_NODE_STATUS, "", "n", "{\"v\":2}");
  auto p1 = mm_->enqueue(tv1::REPORT_KIND_POD_STATUS, "default", "p", "{}");
  ASSERT_TRUE(a1.isOk() && e1.isOk() && a2.isOk() && p1.isOk());
  EXPECT_EQ(*a1, 1u);
  EXPECT_EQ(*a2, 3u);  // new sequence
  auto pend = mm_->pending(10);
  ASSERT_TRUE(pend.isOk());
  ASSERT_EQ(pend->size(), 3u);
  EXPECT_EQ((*pend)[0].sequence, 2u);
  EXPECT_EQ((*pend)[1].sequence, 3u);
  EXPECT_EQ((*pend)[1].payload, "{\"v\":2}");
  EXPECT_EQ((*pend)[2].sequence, 4u);
  EXPECT_EQ(mm_->pending(10, 3)->size(), 1u);
  EXPECT_EQ(mm_->outboxEntries(), 3u);

  ASSERT_TRUE(mm_->acknowledge(3).isOk());
  pend = mm_->pending(10);
  ASSERT_EQ(pend->size(), 1u);
  EXPECT_EQ((*pend)[0].sequence, 4u);
  EXPECT_EQ(mm_->lastSequence(), 4u);
  ASSERT_TRUE(mm_->ensureSequenceAbove(100).isOk());
  EXPECT_EQ(*mm_->enqueue(tv1::REPORT_KIND_EVENT, "", "x", "{}"), 101u);
}

TEST_F(MetaManagerTest, OutboxBoundsDropOldestDataNeverStatus) {
  mm_.reset();
  open(/*maxEntries=*/3, /*maxBytes=*/1000);
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_DATA, "", "d1", "1").isOk());
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_NODE_STATUS, "", "n", "s").isOk());
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_DATA, "", "d2", "2").isOk());
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_DATA, "", "d3", "3").isOk());  // drops d1
  EXPECT_EQ(mm_->droppedCount(), 1u);
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_POD_STATUS, "ns", "p", "p").isOk());  // drops d2
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_POD_STATUS, "ns", "q", "q").isOk());  // drops d3
  // Only status left: a new status still goes in (exceeding the bound), never dropped.
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_POD_STATUS, "ns", "r", "r").isOk());
  EXPECT_EQ(mm_->outboxEntries(), 4u);
  // A data entry that cannot fit is dropped itself.
  auto d = mm_->enqueue(tv1::REPORT_KIND_DATA, "", "d4", "4");
  EXPECT_EQ(d.status().code(), Code::kTooLarge);
  EXPECT_EQ(mm_->droppedCount(), 4u);
  std::set<std::string> names;
  auto all = mm_->pending(100);
  ASSERT_TRUE(all.isOk());
  for (const auto& e : *all) names.insert(e.name);
  EXPECT_EQ(names, (std::set<std::string>{"n", "p", "q", "r"}));
  // Durable counter; attachDropped moves it onto an entry, durably: after a restart the entry
  // still carries it (its Report sends it until acknowledged) and the counter stays 0.
  mm_.reset();
  open(3, 1000);
  EXPECT_EQ(mm_->droppedCount(), 4u);
  const uint64_t first = (*all)[0].sequence;
  auto carried = mm_->attachDropped(first);
  ASSERT_TRUE(carried.isOk()) << carried.status().toString();
  EXPECT_EQ(*carried, 4u);
  EXPECT_EQ(mm_->droppedCount(), 0u);
  EXPECT_EQ(*mm_->attachDropped(first), 4u);  // nothing more to add; the entry keeps its 4
  EXPECT_EQ(mm_->attachDropped(999999).status().code(), Code::kNotFound);
  mm_.reset();
  open(3, 1000);
  EXPECT_EQ(mm_->droppedCount(), 0u);
  auto again = mm_->pending(1);
  ASSERT_TRUE(again.isOk());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].sequence, first);
  EXPECT_EQ((*again)[0].dropped, 4u);
  // An entry carrying a count is not coalesced away by a newer status of the same object.
  ASSERT_TRUE(mm_->enqueue((*again)[0].kind, (*again)[0].ns, (*again)[0].name, "newer").isOk());
  auto both = mm_->pending(100);
  ASSERT_TRUE(both.isOk());
  EXPECT_EQ((*both)[0].sequence, first);
  EXPECT_EQ((*both)[0].dropped, 4u);

  // Byte bound.
  ASSERT_TRUE(mm_->acknowledge(1000).isOk());
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_DATA, "", "big1", std::string(600, 'a')).isOk());
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_DATA, "", "big2", std::string(600, 'b')).isOk());
  EXPECT_EQ(mm_->outboxEntries(), 1u);
  EXPECT_EQ(mm_->outboxBytes(), 600u);
  EXPECT_EQ(mm_->droppedCount(), 1u);
}

// A cache written by an edgecore from before drop counts travelled with their entry (no
// `carried` column) opens, keeps its outbox and counter, and gains the column.
TEST(MetaManagerUpgradeTest, OutboxWithoutCarriedColumnIsMigrated) {
  ep::testing::TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() + "/edge.db").c_str(), &db), SQLITE_OK);
  const char* old =
      "CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK(id = 1), last_applied_revision INTEGER NOT "
      "NULL, next_sequence INTEGER NOT NULL, dropped_data INTEGER NOT NULL);"
      "INSERT INTO meta VALUES(1, 7, 3, 2);"
      "CREATE TABLE outbox(sequence INTEGER PRIMARY KEY, kind INTEGER NOT NULL, namespace TEXT "
      "NOT NULL, name TEXT NOT NULL, payload BLOB NOT NULL, bytes INTEGER NOT NULL);"
      "INSERT INTO outbox VALUES(2, 5, '', 'd', 'x', 1);";
  ASSERT_EQ(sqlite3_exec(db, old, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
  MetaManager mm(MetaManagerOptions{dir.path()});
  ASSERT_TRUE(mm.start().isOk());
  EXPECT_EQ(mm.droppedCount(), 2u);
  auto p = mm.pending(10);
  ASSERT_TRUE(p.isOk()) << p.status().toString();
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].sequence, 2u);
  EXPECT_EQ((*p)[0].dropped, 0u);
  auto carried = mm.attachDropped(2);
  ASSERT_TRUE(carried.isOk()) << carried.status().toString();
  EXPECT_EQ(*carried, 2u);
}

// Every enqueue that returned ok in a child killed with SIGKILL is present after reopening.
TEST_F(MetaManagerTest, DurableThroughSigkill) {
  mm_.reset();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    MetaManager child(MetaManagerOptions{dir_.path()});
    if (!child.start().isOk()) _exit(3);
    for (int i = 0;; ++i) {
      auto r = child.enqueue(tv1::REPORT_KIND_EVENT, "ns", "e" + std::to_string(i), "payload");
      if (!r.isOk()) _exit(4);
      uint64_t seq = *r;
      if (write(fds[1], &seq, sizeof(seq)) != sizeof(seq)) _exit(5);
    }
  }
  close(fds[1]);
  std::vector<uint64_t> acked;
  while (acked.size() < 60) {
    uint64_t seq;
    ASSERT_EQ(read(fds[0], &seq, sizeof(seq)), static_cast<ssize_t>(sizeof(seq)));
    acked.push_back(seq);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  uint64_t seq;
  while (read(fds[0], &seq, sizeof(seq)) == static_cast<ssize_t>(sizeof(seq))) {
    acked.push_back(seq);
  }
  close(fds[0]);
  open();
  auto pend = mm_->pending(1'000'000);
  ASSERT_TRUE(pend.isOk());
  std::set<uint64_t> present;
  for (const auto& e : *pend) present.insert(e.sequence);
  for (uint64_t s : acked) EXPECT_TRUE(present.count(s)) << "lost sequence " << s;
  EXPECT_GE(mm_->lastSequence(), acked.back());
}

TEST_F(MetaManagerTest, CommitLocalWritesStateAndReportsTogether) {
  ASSERT_TRUE(mm_->commitLocal({{"devicetwin", "default/a", std::string("{\"v\":1}")},
                                {"devicetwin", "default/b", std::string("{\"v\":2}")}},
                               {{tv1::REPORT_KIND_DEVICE_TWIN, "default", "a", "{\"s\":1}"},
                                {tv1::REPORT_KIND_DATA, "default", "a", "d1"}})
                  .isOk());
  // Status kinds coalesce as with enqueue; the data entry stays.
  ASSERT_TRUE(mm_->commitLocal({{"devicetwin", "default/b", std::nullopt}},
                               {{tv1::REPORT_KIND_DEVICE_TWIN, "default", "a", "{\"s\":2}"}})
                  .isOk());
  auto local = mm_->listLocal("devicetwin");
  ASSERT_TRUE(local.isOk());
  ASSERT_EQ(local->size(), 1u);
  EXPECT_EQ((*local)[0].first, "default/a");
  EXPECT_EQ((*local)[0].second, "{\"v\":1}");
  EXPECT_TRUE(mm_->listLocal("other")->empty());
  auto pend = mm_->pending(10);
  ASSERT_TRUE(pend.isOk());
  ASSERT_EQ(pend->size(), 2u);
  EXPECT_EQ((*pend)[0].payload, "d1");
  EXPECT_EQ((*pend)[1].payload, "{\"s\":2}");
  EXPECT_EQ(mm_->outboxEntries(), 2u);
  // Durable across a reopen, with the sequence counter.
  const uint64_t last = mm_->lastSequence();
  open();
  EXPECT_EQ(mm_->listLocal("devicetwin")->size(), 1u);
  EXPECT_EQ(mm_->outboxEntries(), 2u);
  EXPECT_EQ(mm_->lastSequence(), last);
}

// Runs one statement on the closed cache's file, behind its back (what damage at rest does).
void tamper(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/edge.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// A cached object whose bytes changed at rest (the checksum no longer matches) is never served:
// GET says not found, LIST leaves it out (the others still listed), the inventory of the next
// Hello lacks it so the cloud sends it again, and the repair callback asks for that Hello. A
// Sync then rewrites it even at the revision the damaged row claims.
TEST_F(MetaManagerTest, DamagedObjectsAreNeverServedAndAreAskedForAgain) {
  tv1::Sync s;
  s.set_revision(5);
  addPut(s, "a", 4);
  addPut(s, "b", 5);
  ASSERT_TRUE(mm_->applySync(s).isOk());
  mm_->stop();
  tamper(dir_.path(),
         "UPDATE objects SET value='{\"kind\":\"Pod\",\"tampered\":1}' "
         "WHERE name='a'");
  mm_ = std::make_unique<MetaManager>(MetaManagerOptions{dir_.path(), 10000, 1 << 24, 4});
  int repairs = 0;
  mm_->setRepairNotify([&] { ++repairs; });
  ASSERT_TRUE(mm_->start().isOk());
  auto watch = mm_->subscribe("pods", "default");

  auto a = mm_->get("pods", "default", "a");
  ASSERT_FALSE(a.isOk());
  EXPECT_EQ(a.status().code(), Code::kNotFound);
  EXPECT_NE(a.status().message().find("damaged"), std::string::npos);
  EXPECT_EQ(repairs, 1);
  EXPECT_EQ(mm_->integrity().damagedObjects, 1u);
  // Watchers see it go (with its key only), until the cloud sends it again.
  auto events = watch->poll(10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "DELETED");
  EXPECT_EQ(events[0].name, "a");
  EXPECT_EQ(events[0].object["metadata"]["name"], "a");
  EXPECT_FALSE(events[0].object.contains("tampered"));
  auto list = mm_->list("pods", "default");
  ASSERT_TRUE(list.isOk());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0]["metadata"]["name"], "b");
  auto inv = mm_->inventory();
  ASSERT_TRUE(inv.isOk());
  ASSERT_EQ(inv->size(), 1u);
  EXPECT_EQ((*inv)[0].name, "b");

  // b damaged too, found by the inventory (each Hello checks every object).
  mm_->stop();
  tamper(dir_.path(), "UPDATE objects SET revision=99 WHERE name='b'");
  mm_ = std::make_unique<MetaManager>(MetaManagerOptions{dir_.path(), 10000, 1 << 24, 4});
  ASSERT_TRUE(mm_->start().isOk());
  inv = mm_->inventory();
  ASSERT_TRUE(inv.isOk());
  EXPECT_TRUE(inv->empty());
  // The cloud resends both at their revisions: stored again, served again.
  tv1::Sync again;
  again.set_revision(5);
  addPut(again, "a", 4);
  addPut(again, "b", 5);
  ASSERT_TRUE(mm_->applySync(again).isOk());
  EXPECT_TRUE(mm_->get("pods", "default", "a").isOk());
  EXPECT_TRUE(mm_->get("pods", "default", "b").isOk());

  // A damaged row a Sync reaches first is replaced even at the revision it claims.
  mm_->stop();
  tamper(dir_.path(), "UPDATE objects SET value='{}' WHERE name='b'");
  mm_ = std::make_unique<MetaManager>(MetaManagerOptions{dir_.path(), 10000, 1 << 24, 4});
  ASSERT_TRUE(mm_->start().isOk());
  tv1::Sync same;
  same.set_revision(5);
  addPut(same, "b", 5);
  ASSERT_TRUE(mm_->applySync(same).isOk());
  auto b = mm_->get("pods", "default", "b");
  ASSERT_TRUE(b.isOk());
  EXPECT_EQ(b->object["metadata"]["name"], "b");
}

// A cache written before objects carried checksums gets them at start and reads as before.
TEST_F(MetaManagerTest, CachesWithoutChecksumsAreMigrated) {
  mm_->stop();
  tamper(dir_.path(), "DROP TABLE objects");
  tamper(dir_.path(),
         "CREATE TABLE objects(resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT "
         "NULL, revision INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY(resource, namespace, "
         "name)); INSERT INTO objects VALUES('pods', 'default', 'old', 3, '" +
             podJson("old", 3) + "')");
  open();
  auto old = mm_->get("pods", "default", "old");
  ASSERT_TRUE(old.isOk()) << old.status().message();
  EXPECT_EQ(old->revision, 3);
  EXPECT_EQ(mm_->integrity().damagedObjects, 0u);
}

// Pages damaged at rest: the database is moved aside and a fresh one started (the cloud then
// sends everything: an empty inventory and revision 0), never served.
TEST_F(MetaManagerTest, ADamagedDatabaseIsMovedAsideAndRebuilt) {
  tv1::Sync s;
  s.set_revision(7);
  for (int i = 0; i < 200; ++i) addPut(s, "p" + std::to_string(i), 7, std::string(200, 'x'));
  ASSERT_TRUE(mm_->applySync(s).isOk());
  ASSERT_TRUE(mm_->enqueue(tv1::REPORT_KIND_NODE_STATUS, "", "edge-1", "{}").isOk());
  mm_->stop();
  {
    FILE* f = std::fopen((dir_.path() + "/edge.db").c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 4096, SEEK_SET);  // page 2 on: b-tree pages
    std::string junk(8192, '\xa5');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  open();
  auto integrity = mm_->integrity();
  EXPECT_NE(integrity.rebuiltFrom.find("/edge.db.damaged-"), std::string::npos);
  EXPECT_TRUE(std::ifstream(integrity.rebuiltFrom).good());
  EXPECT_EQ(mm_->lastAppliedRevision(), 0);
  EXPECT_EQ(mm_->objectCount(), 0u);
  auto inv = mm_->inventory();
  ASSERT_TRUE(inv.isOk());
  EXPECT_TRUE(inv->empty());
  // Usable: a Sync applies, reports queue.
  tv1::Sync fresh;
  fresh.set_revision(8);
  addPut(fresh, "p1", 8);
  ASSERT_TRUE(mm_->applySync(fresh).isOk());
  EXPECT_TRUE(mm_->enqueue(tv1::REPORT_KIND_NODE_STATUS, "", "edge-1", "{}").isOk());
}

}  // namespace
}  // namespace ep::edgecore::metamanager
