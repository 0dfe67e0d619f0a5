#include "cloudcore/cloudhub/node_state_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "tests/testing/temp_dir.h"

namespace ep::cloudhub {
namespace {

using namespace std::chrono_literals;

template <typename F>
bool eventually(F f, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::yield();
  }
  return f();
}

// Applied report sequences are persisted (and so acknowledged to the edge) within the short
// report interval, not the long one: a node's reports in flight are bounded, so the long
// interval would cap its report throughput at (reports in flight) per flush.
TEST(NodeStateStoreTest, ReportSequencesArePersistedWithinTheReportInterval) {
  testing::TempDir dir;
  NodeStateStore store({.dataDir = dir.path(), .flushInterval = 1h, .reportFlushInterval = 20ms});
  std::vector<std::pair<std::string, uint64_t>> persisted;
  std::mutex mu;
  store.setOnPersisted([&](const std::string& node, uint64_t seq) {
    std::lock_guard l(mu);
    persisted.emplace_back(node, seq);
  });
  ASSERT_TRUE(store.start().isOk());
  store.recordAck("edge-1", 5);  // the first flush happens at once; later ones wait an hour
  store.recordAck("edge-1", 6);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    store.recordReportApplied("edge-1", seq * 10);
    ASSERT_TRUE(eventually([&] { return store.persistedReportSequence("edge-1") == seq * 10; }))
        << "sequence " << seq * 10 << " not persisted within 5 s";
  }
  // onPersisted runs on the flush thread right after the sequence is on disk (the acks).
  EXPECT_TRUE(eventually([&] {
    std::lock_guard l(mu);
    return !persisted.empty() && persisted.back() == std::pair<std::string, uint64_t>{"edge-1", 30};
  }));
  store.stop();
  // Everything, the revision included, is on disk after stop.
  NodeStateStore reopened({.dataDir = dir.path()});
  ASSERT_TRUE(reopened.start().isOk());
  EXPECT_EQ(reopened.persistedReportSequence("edge-1"), 30u);
  EXPECT_EQ(reopened.ackedRevision("edge-1"), 6);
  reopened.stop();
}

// A flush writes the rows changed since the last one (kept in a list, not found by walking
// every node's row); rows a failed flush could not write stay for the next.
TEST(NodeStateStoreTest, AFlushWritesTheChangedRowsAndAFailedOneKeepsThem) {
  testing::TempDir dir;
  NodeStateStore store({.dataDir = dir.path(), .flushInterval = 1h, .reportFlushInterval = 1h});
  std::mutex mu;  // onPersisted runs on the flush thread too (its first flush at start)
  std::vector<std::string> persisted;
  store.setOnPersisted([&](const std::string& node, uint64_t) {
    std::lock_guard l(mu);
    persisted.push_back(node);
  });
  auto persistedNow = [&] {
    std::lock_guard l(mu);
    return persisted;
  };
  store.recordAck("edge-1", 7);
  store.recordReportApplied("edge-2", 3);
  EXPECT_FALSE(store.flushNow().isOk());  // not started: nothing can be written
  ASSERT_TRUE(store.start().isOk());
  ASSERT_TRUE(store.flushNow().isOk());
  EXPECT_EQ(store.persistedReportSequence("edge-2"), 3u);
  store.recordReportApplied("edge-3", 1);
  store.recordReportApplied("edge-3", 2);
  ASSERT_TRUE(store.flushNow().isOk());
  EXPECT_EQ(store.persistedReportSequence("edge-3"), 2u);
  const auto before = persistedNow();
  ASSERT_TRUE(store.flushNow().isOk());  // nothing changed: nothing written
  EXPECT_EQ(persistedNow(), before);
  EXPECT_EQ(before.front(), "edge-2");
  EXPECT_EQ(before.back(), "edge-3");
  store.stop();
  NodeStateStore reopened({.dataDir = dir.path()});
  ASSERT_TRUE(reopened.start().isOk());
  EXPECT_EQ(reopened.ackedRevision("edge-1"), 7);
  EXPECT_EQ(reopened.persistedReportSequence("edge-2"), 3u);
  EXPECT_EQ(reopened.persistedReportSequence("edge-3"), 2u);
  reopened.stop();
}

void sql(const std::string& path, const std::string& statement) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// A row changed on disk is never believed: it starts again from 0 (the node then resends its
// outbox) and is written back intact; the other rows keep their values.
TEST(NodeStateStoreTest, ADamagedRowStartsAgainFromZero) {
  testing::TempDir dir;
  {
    NodeStateStore store({.dataDir = dir.path()});
    ASSERT_TRUE(store.start().isOk());
    store.recordAck("edge-1", 7);
    store.recordReportApplied("edge-1", 40);
    store.recordAck("edge-2", 9);
    store.recordReportApplied("edge-2", 50);
    ASSERT_TRUE(store.flushNow().isOk());
    store.stop();
  }
  // A higher sequence would make the cloud drop the node's next reports as duplicates.
  sql(dir.path() + "/cloudhub.db",
      "UPDATE nodes SET last_report_sequence = 9999 WHERE name = 'edge-1'");
  {
    NodeStateStore store({.dataDir = dir.path()});
    ASSERT_TRUE(store.start().isOk());
    EXPECT_EQ(store.damagedRows(), 1u);
    EXPECT_EQ(store.persistedReportSequence("edge-1"), 0u);
    EXPECT_EQ(store.ackedRevision("edge-1"), 0);
    EXPECT_EQ(store.persistedReportSequence("edge-2"), 50u);
    EXPECT_EQ(store.ackedRevision("edge-2"), 9);
    store.stop();
  }
  NodeStateStore reopened({.dataDir = dir.path()});
  ASSERT_TRUE(reopened.start().isOk());
  EXPECT_EQ(reopened.damagedRows(), 0u);  // written back with its checksum
  EXPECT_EQ(reopened.persistedReportSequence("edge-2"), 50u);
  reopened.stop();
}

// Files written before checksums load as they are and get checksums.
TEST(NodeStateStoreTest, RowsFromBeforeChecksumsAreKeptAndChecksummed) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/cloudhub.db";
  sql(path,
      "CREATE TABLE nodes (name TEXT PRIMARY KEY, acked_revision INTEGER NOT NULL DEFAULT 0, "
      "last_report_sequence INTEGER NOT NULL DEFAULT 0);"
      "INSERT INTO nodes VALUES ('edge-1', 12, 34)");
  {
    NodeStateStore store({.dataDir = dir.path()});
    ASSERT_TRUE(store.start().isOk());
    EXPECT_EQ(store.damagedRows(), 0u);
    EXPECT_EQ(store.ackedRevision("edge-1"), 12);
    EXPECT_EQ(store.persistedReportSequence("edge-1"), 34u);
    store.stop();
  }
  sql(path, "UPDATE nodes SET acked_revision = 13 WHERE name = 'edge-1'");  // now detectable
  {
    NodeStateStore reopened({.dataDir = dir.path()});
    ASSERT_TRUE(reopened.start().isOk());
    EXPECT_EQ(reopened.damagedRows(), 1u);
    EXPECT_EQ(reopened.persistedReportSequence("edge-1"), 0u);
    reopened.recordReportApplied("edge-1", 8);
    reopened.stop();
  }
  // Once migrated, a row without a checksum is not believed either.
  sql(path, "UPDATE nodes SET checksum = NULL, last_report_sequence = 500");
  NodeStateStore again({.dataDir = dir.path()});
  ASSERT_TRUE(again.start().isOk());
  EXPECT_EQ(again.damagedRows(), 1u);
  EXPECT_EQ(again.persistedReportSequence("edge-1"), 0u);
  again.stop();
}

// A file SQLite finds damaged is moved aside and a fresh one serves.
TEST(NodeStateStoreTest, ADamagedFileIsMovedAsideAndStartsFresh) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/cloudhub.db";
  std::ofstream(path, std::ios::binary) << std::string(8192, 'x');
  NodeStateStore store({.dataDir = dir.path()});
  ASSERT_TRUE(store.start().isOk());
  EXPECT_TRUE(store.rebuilt());
  EXPECT_EQ(store.persistedReportSequence("edge-1"), 0u);
  store.recordReportApplied("edge-1", 5);
  EXPECT_TRUE(store.flushNow().isOk());
  store.stop();
  bool aside = false;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("cloudhub.db.damaged-", 0) == 0) aside = true;
  }
  EXPECT_TRUE(aside);
  NodeStateStore reopened({.dataDir = dir.path()});
  ASSERT_TRUE(reopened.start().isOk());
  EXPECT_FALSE(reopened.rebuilt());
  EXPECT_EQ(reopened.persistedReportSequence("edge-1"), 5u);
  reopened.stop();
}

}  // namespace
}  // namespace ep::cloudhub
