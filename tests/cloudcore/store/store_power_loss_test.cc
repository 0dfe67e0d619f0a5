// Power loss (issue 14): SIGKILL keeps whatever the kernel's page cache holds, so the kill -9
// tests pass even with synchronous=OFF. Here the PowerLossVfs forgets every write that was not
// synced, and every write the store acknowledged must still be there afterwards.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cloudcore/store/sqlite_store.h"
#include "tests/testing/power_loss_vfs.h"
#include "tests/testing/temp_dir.h"

namespace ep::store {
namespace {

using testing::PowerLossVfs;
using testing::TempDir;

// Rows of table t after a power loss in the middle of committing to it with `synchronous`.
int64_t rowsAfterPowerLoss(const std::string& dir, const char* synchronous) {
  PowerLossVfs vfs;
  const std::string path = dir + "/control.db";
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string setup = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") +
                            synchronous + "; CREATE TABLE t(x); INSERT INTO t VALUES (1);";
  EXPECT_EQ(sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  vfs.cutPower();
  sqlite3_close(db);
  vfs.restore();
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  int64_t rows = -1;
  sqlite3_stmt* q = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &q, nullptr) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW) {
    rows = sqlite3_column_int64(q, 0);
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return rows;  // -1: the table itself was lost
}

// The harness can fail: a commit with synchronous=NORMAL (WAL synced only at checkpoints) is
// lost, one with FULL is kept.
TEST(StorePowerLossTest, HarnessLosesWhatWasNeverSynced) {
  TempDir normal, full;
  EXPECT_NE(rowsAfterPowerLoss(normal.path(), "NORMAL"), 1);
  EXPECT_EQ(rowsAfterPowerLoss(full.path(), "FULL"), 1);
}

// Writers run while the power goes, five times over; every acknowledged create is there after
// each restart, with its revision, and the store passes its start-up checks.
TEST(StorePowerLossTest, AcknowledgedWritesSurvivePowerLoss) {
  TempDir dir;
  FakeClock clock;
  PowerLossVfs vfs;
  SqliteStoreOptions o;
  o.dataDir = dir.path();
  o.compactionInterval = std::chrono::seconds(0);
  o.maxBatch = 16;                       // more commits, more points at which the power can go
  std::map<std::string, int64_t> acked;  // name -> revision
  for (int round = 0; round < 5; ++round) {
    auto store = std::make_unique<SqliteStore>(o, clock);
    ASSERT_TRUE(store->start().isOk()) << "round " << round;
    for (const auto& [name, rev] : acked) {
      auto got = store->get("configmaps", "ns", name);
      ASSERT_TRUE(got.isOk()) << name << " (revision " << rev << ") was acknowledged, then "
                              << got.status().toString();
      EXPECT_EQ(got->modRevision, rev);
    }
    std::mutex mu;
    std::atomic<int> written{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          std::string name =
              "r" + std::to_string(round) + "-" + std::to_string(t) + "-" + std::to_string(i);
          auto r = store->create("configmaps", "ns", name, R"({"data":{"k":"v"}})");
          if (!r.isOk()) return;  // the power is gone
          std::lock_guard lock(mu);
          acked[name] = r->modRevision;
          ++written;
        }
      });
    }
    const int target = 200 + 37 * round;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (written.load() < target && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    EXPECT_GE(written.load(), target) << "round " << round << ": the writers stopped early";
    vfs.cutPower();
    for (auto& w : writers) w.join();
    store->stop();
    store.reset();
    vfs.restore();
  }
  EXPECT_GT(vfs.syncs(), 0u);
  o.verify = true;
  auto verified = std::make_unique<SqliteStore>(o, clock);
  ASSERT_TRUE(verified->start().isOk());
  auto list = verified->list({.resource = "configmaps"});
  ASSERT_TRUE(list.isOk());
  EXPECT_GE(list->items.size(), acked.size());
  EXPECT_TRUE(list->damaged.empty());
  verified->stop();
}

}  // namespace
}  // namespace ep::store
