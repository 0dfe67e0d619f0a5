#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cloudcore/store/store.h"
#include "common/clock.h"
#include "common/thread_annotations.h"

struct sqlite3;

namespace ep::sqlite {
class Stmt;
}

namespace ep::store {

struct SqliteStoreOptions {
  std::string dataDir;  // the database lives in dataDir/store.db (+ -wal, -shm)
  // History older than this is compacted; a watch from before it gets kExpired.
  std::chrono::seconds historyWindow{3600};
  // How often the compactor looks for history to drop. 0 disables the background compactor.
  std::chrono::seconds compactionInterval{60};
  // Most writes committed in one transaction (group commit).
  size_t maxBatch = 512;
  // Live events buffered per watch before it falls back to reading history from disk.
  size_t watchBufferEvents = 1024;
  // Read connections kept open for concurrent readers.
  size_t readConnections = 8;
  // At start, SQLite's full integrity_check and every row's checksum instead of quick_check
  // (cloudcore --verify); damaged rows are repaired where the history allows (docs/store.md).
  bool verify = false;
};

class SqliteWatch;
struct PendingWrite;

// Store on one SQLite database in WAL mode with synchronous=FULL: a write is acknowledged only
// after its transaction (and so the WAL frame) is fsynced, so it survives kill -9 and power
// loss. All writes go through one writer thread that commits queued writes together (group
// commit); readers use their own connections and never wait for writers. See docs/store.md.
//
// Threading: every public method is thread-safe. Write calls block the calling thread until
// their batch commits (call them from a worker pool, not from an event loop). A write's events
// are in every watch opened before it by the time the write returns.
class SqliteStore final : public Store {
 public:
  SqliteStore(SqliteStoreOptions options, Clock& clock);
  ~SqliteStore() override;

  Status start() override;
  void stop() override;

  Result<Object> get(const std::string& resource, const std::string& ns,
                     const std::string& name) override;
  Result<ListResult> list(const ListOptions& options) override;
  Result<Object> create(const std::string& resource, const std::string& ns, const std::string& name,
                        std::string value) override;
  Result<Object> update(const std::string& resource, const std::string& ns, const std::string& name,
                        std::string value, int64_t expectedRevision) override;
  Result<Object> remove(const std::string& resource, const std::string& ns, const std::string& name,
                        int64_t expectedRevision) override;
  Result<Object> removeUnsafe(const std::string& resource, const std::string& ns,
                              const std::string& name, std::string tombstone,
                              int64_t expectedRevision) override;
  Result<std::unique_ptr<Watch>> watch(const WatchOptions& options) override;
  int64_t currentRevision() override;
  int64_t compactedRevision() override;
  Status compact(int64_t revision) override;
  // Commits (and fsyncs) one row of the meta table through the writer thread.
  Status probeWrite() override;

  // Drops history older than the window now (what the background compactor does).
  Status compactOnce();

  // Damaged rows found by reads since start (objects and history; each read counts).
  uint64_t damagedReads() const { return damagedReads_.load(); }

  // What watches catching up from disk read: matching events with from < rev <= to, at most
  // max. `scannedTo` is the revision through which the history was read (to, or less when
  // `max` or damage stopped the read). `end` is kExpired when the next row is damaged or
  // missing on disk: `events` holds what came before it, and nothing after it may be delivered.
  struct HistoryRead {
    std::vector<Event> events;
    int64_t scannedTo = 0;
    Status end;
  };
  // Every resource that has at least one object (cloudcore --migrate-store-to), sorted.
  Result<std::vector<std::string>> resources();

  // Fails with kExpired when `from` is below the compacted revision.
  Result<HistoryRead> readHistory(const std::string& resource, const std::string& ns, int64_t from,
                                  int64_t to, size_t max);

 private:
  friend class SqliteWatch;
  class ReadConn;
  // A pooled read connection and what is prepared on it once: preparing a statement costs
  // more than the point read it runs (a node's heartbeat is a get and an update).
  struct Reader {
    sqlite3* db = nullptr;
    std::unique_ptr<sqlite::Stmt> getObject;  // get(); reset after every use
    ~Reader();                                // finalizes the statements, then closes db
  };
  // commitBatch()'s statements on writeDb_, prepared at its first batch; writer thread only.
  struct WriterStatements;

  Result<Object> submit(std::unique_ptr<PendingWrite> write);
  void writerLoop();
  void compactorLoop();
  void commitBatch(std::vector<std::unique_ptr<PendingWrite>>& batch);
  void publish(const std::vector<Event>& events, int64_t lastRevision);
  void unregisterWatch(SqliteWatch* watch);
  ReadConn acquireRead();
  // Start-time checks (writer connection, before the threads start).
  Status openChecked(const std::string& path);
  Status addChecksums();
  Status verifyRows(const std::string& path);
  // Counts a damaged row and logs it (once per key: a damaged row is read again and again).
  void noteDamaged(const std::string& what);

  const SqliteStoreOptions options_;
  Clock& clock_;
  int lockFd_ = -1;

  // Writer side. writeDb_ is used only by the writer thread after start().
  sqlite3* writeDb_ = nullptr;
  Mutex queueMu_;
  std::condition_variable queueCv_;
  std::deque<std::unique_ptr<PendingWrite>> queue_ EP_GUARDED_BY(queueMu_);
  bool stopping_ EP_GUARDED_BY(queueMu_) = false;
  std::thread writer_;
  std::thread compactor_;
  std::condition_variable compactorCv_;  // waits on queueMu_

  // Revision counters: written by the writer thread, read anywhere.
  std::atomic<int64_t> revision_{0};
  std::atomic<int64_t> compacted_{0};

  std::unique_ptr<WriterStatements> writerStatements_;  // writer thread; dropped by stop()

  // Read connections pool.
  Mutex readMu_;
  std::vector<Reader*> idleReaders_ EP_GUARDED_BY(readMu_);
  std::vector<std::unique_ptr<Reader>> allReaders_ EP_GUARDED_BY(readMu_);
  // Set by stop(): no reader is handed out, and one still in use is closed by its ReadConn.
  bool readersClosed_ EP_GUARDED_BY(readMu_) = false;

  std::atomic<uint64_t> damagedReads_{0};
  Mutex damagedMu_;
  std::vector<std::string> damagedLogged_
      EP_GUARDED_BY(damagedMu_);  // keys already logged (<=1000)

  // Watch hub. Lock order: hubMu_ before SqliteWatch::mu_.
  Mutex hubMu_;
  std::vector<SqliteWatch*> watches_ EP_GUARDED_BY(hubMu_);
  int64_t publishedRevision_ EP_GUARDED_BY(hubMu_) = 0;
};

}  // namespace ep::store
