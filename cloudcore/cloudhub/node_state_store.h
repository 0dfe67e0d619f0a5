#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

struct sqlite3;

namespace ep::cloudhub {

struct NodeStateStoreOptions {
  std::string dataDir;  // the database is dataDir/cloudhub.db (+ -wal, -shm)
  // At most one flush (one fsynced transaction) per interval.
  std::chrono::milliseconds flushInterval{1000};
  // While applied report sequences wait to be persisted (their ReportAck waits for it), at
  // most one flush per this interval instead: a node's reports in flight are bounded, so the
  // report throughput of a node is about (reports in flight) / (this interval).
  std::chrono::milliseconds reportFlushInterval{20};
};

// Per-node tunnel bookkeeping kept by cloudhub in its own SQLite file (WAL, synchronous=FULL):
// table nodes(name, acked_revision, last_report_sequence, checksum). Values live in memory and are
// written in batches by one flush thread, at most once per flushInterval, or once per
// reportFlushInterval while some report sequence waits to be persisted.
//
// Report sequences have two levels: "applied" (in memory, updated when a report was applied)
// and "persisted" (written by a flush). A ReportAck may only cover persisted sequences, so
// an acknowledged report is never re-applied after kill -9. After each flush the
// onPersisted callback runs (on the flush thread) for every node whose persisted sequence
// advanced; it must not block.
//
// Data at rest is checked. A database that fails SQLite's quick_check at start is moved aside
// (cloudhub.db.damaged-EPOCH_MS) and a fresh one started; a row whose checksum (of all its
// columns) does not match, or is missing, starts again from 0. Files from before checksums
// are checksummed once at start (user_version 1 then records that every row has one). Either way
// the nodes lose nothing: the cloud tells each node 0 as its last report sequence, so the node
// resends every report still in its outbox (reports the cloud had applied but not acknowledged may
// be applied twice), and the acknowledged revision never decides what is sent (a Sync follows the
// node's own inventory).
//
// Thread-safety: every method is thread-safe. start()/stop() from one owner thread.
class NodeStateStore {
 public:
  using PersistedFn = std::function<void(const std::string& node, uint64_t sequence)>;

  explicit NodeStateStore(NodeStateStoreOptions options);
  ~NodeStateStore();
  NodeStateStore(const NodeStateStore&) = delete;
  NodeStateStore& operator=(const NodeStateStore&) = delete;

  // Set before start().
  void setOnPersisted(PersistedFn fn) { onPersisted_ = std::move(fn); }

  // Opens (creating if needed) the database, loads every row, starts the flush thread.
  Status start();
  // Flushes what is pending and closes the database.
  void stop();

  void recordAck(const std::string& node, int64_t revision);
  // Report `sequence` of `node` was applied (or refused for good); persisted by the next flush.
  void recordReportApplied(const std::string& node, uint64_t sequence);

  int64_t ackedRevision(const std::string& node) const;
  uint64_t appliedReportSequence(const std::string& node) const;
  uint64_t persistedReportSequence(const std::string& node) const;

  // Writes pending changes now (tests; the flush thread calls it too).
  Status flushNow();

  // Rows found damaged at start (reset to 0), and whether the file was moved aside.
  uint64_t damagedRows() const;
  bool rebuilt() const;

 private:
  struct Row {
    int64_t ackedRevision = 0;
    uint64_t appliedSequence = 0;
    uint64_t persistedSequence = 0;
    bool dirty = false;
  };
  void flushLoop();
  // Marks `row` (the row of `node`) for the next flush.
  void markDirty(const std::string& node, Row& row) EP_REQUIRES(mu_);

  const NodeStateStoreOptions options_;
  PersistedFn onPersisted_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Row> rows_ EP_GUARDED_BY(mu_);
  std::vector<std::string> dirtyNames_ EP_GUARDED_BY(mu_);  // the rows with `dirty` set
  bool reportsDirty_ EP_GUARDED_BY(mu_) = false;            // an applied sequence is not persisted
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  uint64_t damagedRows_ EP_GUARDED_BY(mu_) = 0;
  bool rebuilt_ EP_GUARDED_BY(mu_) = false;

  Mutex dbMu_;  // serializes flushes; taken before mu_, never inside it
  sqlite3* db_ EP_GUARDED_BY(dbMu_) = nullptr;
  std::thread flusher_;
};

}  // namespace ep::cloudhub
