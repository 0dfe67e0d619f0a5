// Damage at rest (issue 14): bytes of store.db changed while cloudcore was stopped are detected
// by the read that meets them, never served; a damaged database is refused at start; --verify
// repairs what the history allows.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "cloudcore/store/sqlite_store.h"
#include "tests/testing/temp_dir.h"

namespace ep::store {
namespace {

namespace fs = std::filesystem;

using ep::testing::TempDir;

class StoreDamageTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (store_) store_->stop();
  }
  Status open(bool verify = false) {
    SqliteStoreOptions o;
    o.dataDir = dir_.path();
    o.compactionInterval = std::chrono::seconds(0);
    o.verify = verify;
    store_ = std::make_unique<SqliteStore>(o, clock_);
    return store_->start();
  }
  void close() {
    store_->stop();
    store_.reset();
  }
  // Runs SQL on store.db directly, as a disk changing bytes would: checksums are not updated.
  void tamper(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.path() + "/store.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  // Polls until the watch ended or `max` events arrived (each poll returns what is there).
  static std::vector<Event> drainUntilDone(Watch& w, size_t max) {
    std::vector<Event> got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!w.done() && got.size() < max && std::chrono::steady_clock::now() < deadline) {
      auto more = w.poll(50);
      if (more.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      for (auto& e : more) got.push_back(std::move(e));
    }
    return got;
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(StoreDamageTest, DamagedObjectIsNeverServedAndListSkipsIt) {
  ASSERT_TRUE(open().isOk());
  for (const char* n : {"a", "b", "c"}) {
    ASSERT_TRUE(store_->create("pods", "ns", n, std::string(R"({"name":")") + n + "\"}").isOk());
  }
  close();
  tamper("UPDATE objects SET value='{\"name\":\"X\"}' WHERE name='b'");
  ASSERT_TRUE(open().isOk());  // the quick check looks at pages, not row contents

  auto got = store_->get("pods", "ns", "b");
  ASSERT_FALSE(got.isOk());
  EXPECT_TRUE(isDamaged(got.status())) << got.status().toString();
  EXPECT_NE(got.status().message().find("pods \"ns/b\""), std::string::npos);

  // A list fails by default (internal readers must not take it for deleted) ...
  auto strict = store_->list({.resource = "pods"});
  EXPECT_TRUE(isDamaged(strict.status())) << strict.status().toString();
  // ... and leaves it out when asked to (the API's LIST), naming it.
  auto list = store_->list({.resource = "pods", .skipDamaged = true});
  ASSERT_TRUE(list.isOk()) << list.status().toString();
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[0].name, "a");
  EXPECT_EQ(list->items[1].name, "c");
  ASSERT_EQ(list->damaged.size(), 1u);
  EXPECT_EQ(list->damaged[0], (Key{"pods", "ns", "b"}));
  EXPECT_EQ(store_->damagedReads(), 3u);
  EXPECT_EQ(got.status().message().find(dir_.path()), std::string::npos)
      << "clients are not told where the data dir is";

  // Writes through a damaged row are refused (they would compare against unread data) ...
  auto upd = store_->update("pods", "ns", "b", "{}", 0);
  EXPECT_TRUE(isDamaged(upd.status())) << upd.status().toString();
  auto del = store_->remove("pods", "ns", "b", 0);
  EXPECT_TRUE(isDamaged(del.status())) << del.status().toString();
  EXPECT_EQ(store_->create("pods", "ns", "b", "{}").status().code(), Code::kAlreadyExists);

  // ... except the unsafe delete, whose DELETED event carries the tombstone, nothing damaged.
  // It takes only what cannot be read: an intact row, or one rewritten since, is a conflict.
  EXPECT_EQ(store_->removeUnsafe("pods", "ns", "a", "{}", 0).status().code(), Code::kConflict);
  EXPECT_EQ(store_->removeUnsafe("pods", "ns", "a", "{}", 99).status().code(), Code::kConflict);
  EXPECT_EQ(store_->removeUnsafe("pods", "ns", "b", "{}", 2).status().code(), Code::kConflict);
  {
    // (The watch must go before the store does: close() below.)
    auto w = store_->watch({.resource = "pods"});
    ASSERT_TRUE(w.isOk());
    auto gone = store_->removeUnsafe("pods", "ns", "b", R"({"tomb":true})", 0);
    ASSERT_TRUE(gone.isOk()) << gone.status().toString();
    auto events = drainUntilDone(**w, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, EventType::kDeleted);
    EXPECT_EQ(events[0].object.value, R"({"tomb":true})");
    EXPECT_EQ(events[0].prevValue, "");
  }
  EXPECT_EQ(store_->get("pods", "ns", "b").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->removeUnsafe("pods", "ns", "b", "{}", 0).status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->create("pods", "ns", "b", "{}").isOk());

  // The unsafe delete's history row is checksummed like any other.
  close();
  ASSERT_TRUE(open(/*verify=*/true).isOk());
  auto history = store_->readHistory("pods", "", 0, store_->currentRevision(), 100);
  ASSERT_TRUE(history.isOk()) << history.status().toString();
  EXPECT_TRUE(history->end.isOk());
  EXPECT_EQ(history->events.size(), 5u);
}

// An intact row that the layers above cannot read (undecryptable, not decodable) goes with
// its revision.
TEST_F(StoreDamageTest, UnsafeDeleteOfAnIntactRowNeedsItsRevision) {
  ASSERT_TRUE(open().isOk());
  auto a = store_->create("secrets", "ns", "a", "not json");
  ASSERT_TRUE(a.isOk());
  auto gone = store_->removeUnsafe("secrets", "ns", "a", "{}", a->modRevision);
  ASSERT_TRUE(gone.isOk()) << gone.status().toString();
  EXPECT_EQ(store_->get("secrets", "ns", "a").status().code(), Code::kNotFound);
}

TEST_F(StoreDamageTest, ChangedKeyAndRevisionColumnsAreDetectedToo) {
  ASSERT_TRUE(open().isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "a", "{}").isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "b", "{}").isOk());
  close();
  tamper("UPDATE objects SET name='z' WHERE name='a'; UPDATE objects SET mod_rev=7 WHERE name='b'");
  ASSERT_TRUE(open().isOk());
  EXPECT_TRUE(isDamaged(store_->get("pods", "ns", "z").status()));
  EXPECT_TRUE(isDamaged(store_->get("pods", "ns", "b").status()));
}

// Rows an older cloudcore wrote after a downgrade have no checksum: they are checksummed at
// the next start, not taken for damaged.
TEST_F(StoreDamageTest, RowsWithoutChecksumAreChecksummedAtStart) {
  ASSERT_TRUE(open().isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "a", "{}").isOk());
  close();
  tamper("UPDATE objects SET checksum=NULL; UPDATE events SET checksum=NULL");
  ASSERT_TRUE(open(/*verify=*/true).isOk());
  EXPECT_TRUE(store_->get("pods", "ns", "a").isOk());
}

// A watch from revision 1 over 400 events whose 200th history row was changed on disk used to
// deliver the other 398 events and no error. It must end with kExpired (410: relist) at the damage,
// having delivered every revision before it and nothing after it.
TEST_F(StoreDamageTest, WatchEndsWithExpiredAtADamagedHistoryRow) {
  ASSERT_TRUE(open().isOk());
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(store_->create("pods", "ns", "p" + std::to_string(i), "{}").isOk());
  }
  close();
  // The key column: a filtered read would not even see the row.
  tamper("UPDATE events SET resource='podz' WHERE rev=200");
  ASSERT_TRUE(open().isOk());
  auto w = store_->watch({.resource = "pods", .fromRevision = 1});
  ASSERT_TRUE(w.isOk());
  auto events = drainUntilDone(**w, 1000);
  ASSERT_TRUE((*w)->done());
  EXPECT_EQ((*w)->error().code(), Code::kExpired) << (*w)->error().toString();
  EXPECT_NE((*w)->error().message().find("revision 200"), std::string::npos);
  ASSERT_EQ(events.size(), 198u);  // revisions 2..199
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].object.modRevision, static_cast<int64_t>(i + 2));
  }
  EXPECT_GE(store_->damagedReads(), 1u);
}

TEST_F(StoreDamageTest, WatchEndsWithExpiredAtAMissingHistoryRow) {
  ASSERT_TRUE(open().isOk());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store_->create("configmaps", "ns", "c" + std::to_string(i), "{}").isOk());
  }
  close();
  tamper("DELETE FROM events WHERE rev=20");  // the last one: a gap at the end of the range
  ASSERT_TRUE(open().isOk());
  auto w = store_->watch({.resource = "configmaps", .fromRevision = 10});
  ASSERT_TRUE(w.isOk());
  auto events = drainUntilDone(**w, 1000);
  EXPECT_EQ(events.size(), 9u);  // 11..19
  ASSERT_TRUE((*w)->done());
  EXPECT_EQ((*w)->error().code(), Code::kExpired);
  EXPECT_NE((*w)->error().message().find("revision 20 is missing"), std::string::npos)
      << (*w)->error().message();
}

TEST_F(StoreDamageTest, DamagedPageRefusesToStartNamingTheFileAndWhatToDo) {
  ASSERT_TRUE(open().isOk());
  const std::string big(3000, 'x');
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(store_->create("pods", "ns", "p" + std::to_string(i), big).isOk());
  }
  close();  // the last connection checkpoints the WAL into store.db
  const std::string path = dir_.path() + "/store.db";
  ASSERT_FALSE(fs::exists(path + "-wal") && fs::file_size(path + "-wal") > 0);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 40);  // a page in the middle of a b-tree
    std::string garbage(4096, '\xa5');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  Status s = open();
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find(path + " is damaged on disk (quick_check: "), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("restore store.db from a backup"), std::string::npos);
  EXPECT_NE(s.message().find(".dump"), std::string::npos);
  // The data dir is not left locked: a fixed store can be opened by the next start.
  store_.reset();
  fs::remove(path);
  EXPECT_TRUE(open().isOk());
}

TEST_F(StoreDamageTest, NotADatabaseIsReportedAsDamaged) {
  ASSERT_TRUE(open().isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "a", "{}").isOk());
  close();
  {
    std::fstream f(dir_.path() + "/store.db", std::ios::in | std::ios::out | std::ios::binary);
    f.write("garbage garbage garbage", 23);  // over the header
  }
  Status s = open();
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("is damaged on disk"), std::string::npos) << s.message();
  store_.reset();
}

TEST_F(StoreDamageTest, VerifyRestoresADamagedObjectFromItsHistory) {
  ASSERT_TRUE(open().isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "a", "v1").isOk());
  ASSERT_TRUE(store_->update("pods", "ns", "a", "v2", 0).isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "b", "b1").isOk());
  close();
  tamper("UPDATE objects SET value='vX' WHERE name='a'");
  ASSERT_TRUE(open(/*verify=*/true).isOk());
  auto a = store_->get("pods", "ns", "a");
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_EQ(a->value, "v2");
  EXPECT_EQ(a->modRevision, 2);
  EXPECT_EQ(a->createRevision, 1);
}

TEST_F(StoreDamageTest, VerifyRefusesWhatHistoryCannotRestoreAndPlainStartSkipsIt) {
  ASSERT_TRUE(open().isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "a", "v1").isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "b", "b1").isOk());
  ASSERT_TRUE(store_->compact(store_->currentRevision()).isOk());
  close();
  tamper("UPDATE objects SET value='vX' WHERE name='a'");
  Status s = open(/*verify=*/true);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("1 objects in " + dir_.path() + "/store.db are damaged"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("pods \"ns/a\""), std::string::npos);
  EXPECT_NE(s.message().find("ignoreStoreReadErrorWithClusterBreakingPotential"),
            std::string::npos);
  store_.reset();
  ASSERT_TRUE(open().isOk());
  EXPECT_TRUE(isDamaged(store_->get("pods", "ns", "a").status()));
  EXPECT_TRUE(store_->get("pods", "ns", "b").isOk());
}

// A consumer that polls again only when notified (as ControllerLoop does after a short batch)
// still learns that the watch ended.
TEST_F(StoreDamageTest, WatchEndingAtDamageNotifiesItsConsumer) {
  ASSERT_TRUE(open().isOk());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store_->create("pods", "ns", "p" + std::to_string(i), "{}").isOk());
  }
  close();
  tamper("UPDATE events SET value='x' WHERE rev=6");
  ASSERT_TRUE(open().isOk());
  auto w = store_->watch({.resource = "pods", .fromRevision = 2});
  ASSERT_TRUE(w.isOk());
  std::mutex mu;
  std::condition_variable cv;
  int notified = 0;
  (*w)->setNotify([&] {
    std::lock_guard lock(mu);
    ++notified;
    cv.notify_all();
  });
  size_t delivered = 0;
  for (int polls = 0; polls < 10 && !(*w)->done(); ++polls) {
    int seen;
    {
      std::unique_lock lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return notified > 0; }));
      seen = notified;
    }
    auto batch = (*w)->poll(100);
    delivered += batch.size();
    if ((*w)->done()) break;
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return notified > seen; }))
        << "a short batch and no notify: the consumer would wait forever";
  }
  EXPECT_EQ(delivered, 3u);  // revisions 3..5
  ASSERT_TRUE((*w)->done());
  EXPECT_EQ((*w)->error().code(), Code::kExpired);
}

TEST_F(StoreDamageTest, VerifyRestoresMissingObjectRowsFromHistory) {
  ASSERT_TRUE(open().isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "a", "v1").isOk());
  ASSERT_TRUE(store_->update("pods", "ns", "a", "v2", 0).isOk());
  ASSERT_TRUE(store_->create("pods", "ns", "gone", "g").isOk());
  ASSERT_TRUE(store_->remove("pods", "ns", "gone", 0).isOk());
  close();
  tamper("DELETE FROM objects WHERE name='a'");
  ASSERT_TRUE(open(/*verify=*/true).isOk());
  auto a = store_->get("pods", "ns", "a");
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_EQ(a->value, "v2");
  EXPECT_EQ(a->modRevision, 2);
  EXPECT_EQ(store_->get("pods", "ns", "gone").status().code(), Code::kNotFound);
}

TEST_F(StoreDamageTest, VerifyDropsDamagedHistorySoWatchesRelist) {
  ASSERT_TRUE(open().isOk());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store_->create("pods", "ns", "p" + std::to_string(i), "{}").isOk());
  }
  close();
  tamper("UPDATE events SET value='x' WHERE rev=4");
  ASSERT_TRUE(open(/*verify=*/true).isOk());
  EXPECT_EQ(store_->compactedRevision(), 4);
  EXPECT_EQ(store_->watch({.resource = "pods", .fromRevision = 3}).status().code(), Code::kExpired);
  auto w = store_->watch({.resource = "pods", .fromRevision = 4});
  ASSERT_TRUE(w.isOk());
  EXPECT_EQ(drainUntilDone(**w, 6).size(), 6u);
  for (int i = 0; i < 10; ++i) {  // objects are untouched
    EXPECT_TRUE(store_->get("pods", "ns", "p" + std::to_string(i)).isOk());
  }
}

// Stores written before checksums (schema 1) are checksummed once at start and then read.
TEST_F(StoreDamageTest, StoreFromBeforeChecksumsIsMigrated) {
  tamper(R"sql(
CREATE TABLE objects(resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  value BLOB NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL,
  PRIMARY KEY(resource, namespace, name)) WITHOUT ROWID;
CREATE TABLE events(rev INTEGER PRIMARY KEY, type INTEGER NOT NULL, resource TEXT NOT NULL,
  namespace TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, prev_value BLOB,
  create_rev INTEGER NOT NULL, ts INTEGER NOT NULL);
CREATE INDEX events_ts ON events(ts);
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta VALUES ('revision', 2), ('compacted', 0), ('schema', 1);
INSERT INTO objects VALUES ('pods', 'ns', 'a', 'v2', 1, 2);
INSERT INTO events VALUES (1, 0, 'pods', 'ns', 'a', 'v1', NULL, 1, 5);
INSERT INTO events VALUES (2, 1, 'pods', 'ns', 'a', 'v2', 'v1', 1, 6);
)sql");
  ASSERT_TRUE(open(/*verify=*/true).isOk());
  auto a = store_->get("pods", "ns", "a");
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_EQ(a->value, "v2");
  auto history = store_->readHistory("pods", "ns", 0, 2, 10);
  ASSERT_TRUE(history.isOk()) << history.status().toString();
  ASSERT_EQ(history->events.size(), 2u);
  EXPECT_EQ(history->events[1].prevValue, "v1");
  ASSERT_TRUE(store_->update("pods", "ns", "a", "v3", 2).isOk());
  close();
  ASSERT_TRUE(open(/*verify=*/true).isOk());
  EXPECT_EQ(store_->get("pods", "ns", "a")->value, "v3");
}

}  // namespace
}  // namespace ep::store
