#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/metamanager/cache.h"
#include "proto/tunnel.pb.h"

// SQLite stays inside metamanager.cc: readers of the cache see only cache.h.
struct sqlite3;
namespace ep::sqlite {
class Transaction;
}

namespace ep::edgecore::metamanager {

// One cached object's identity and revision (the Hello inventory).
struct InventoryEntry {
  std::string resource;
  std::string ns;
  std::string name;
  int64_t revision = 0;
};

// One pending report.
struct OutboxEntry {
  uint64_t sequence = 0;
  ReportKind kind = edgeplane::tunnel::v1::REPORT_KIND_UNSPECIFIED;
  std::string ns;
  std::string name;
  std::string payload;
  uint64_t bytes = 0;
  uint64_t dropped = 0;  // drop count this entry's Report carries (attachDropped)
};

struct MetaManagerOptions {
  std::string dataDir;  // the database is DATA_DIR/edge.db; the directory is created
  uint64_t maxEntries = 10000;
  uint64_t maxBytes = 16 * 1024 * 1024;
  size_t watchQueue = 1024;  // per-subscriber bound
};

// The edge's SQLite cache and outbox.
//
// Thread-safety: every public method may be called from any thread. One mutex (mu_) serializes
// all access to the single SQLite connection and the in-memory outbox counters; subscribers are
// notified while mu_ is held, right after the commit, so events reach each subscriber in commit
// order and a subscribe-with-snapshot sees no gap. Subscription::push never blocks.
// No background threads: callers provide the threads (edgehub's worker applies Syncs).
class MetaManager final : public CacheReader, public Outbox {
 public:
  explicit MetaManager(MetaManagerOptions options);
  ~MetaManager() override;
  MetaManager(const MetaManager&) = delete;
  MetaManager& operator=(const MetaManager&) = delete;

  // Opens (creating if needed) the database. WAL, synchronous=FULL. Data at rest is checked
  // (README.md): SQLite's quick_check runs first, and a database that fails it (or
  // cannot be opened) is moved aside as edge.db.damaged-EPOCH and a fresh one started, keeping
  // the outbox rows that can still be read; the cloud then sends everything again (full relist).
  // Every cached object carries a checksum of its key, revision and value, checked on each read.
  Status start();
  // Ends all subscriptions and closes the database. Idempotent.
  void stop();

  // --- cache (cloud -> edge) ---
  // Applies every change in one transaction together with last_applied_revision =
  // max(current, sync.revision). PUT writes only when the change's revision is newer than the
  // cached one; DELETE removes. Idempotent. A malformed change (empty resource/name, value that
  // is not a JSON object) refuses the whole Sync naming the change (e.g. "changes[2].value: ...")
  // and nothing is applied.
  Status applySync(const edgeplane::tunnel::v1::Sync& sync);
  Result<std::vector<InventoryEntry>> inventory();
  // CacheReader (cache.h).
  int64_t lastAppliedRevision() override;
  Result<ObjectRecord> get(const std::string& resource, const std::string& ns,
                           const std::string& name) override;
  Result<std::vector<nlohmann::json>> list(const std::string& resource,
                                           const std::string& ns) override;
  using CacheReader::subscribe;
  std::shared_ptr<Subscription> subscribe(const std::string& resource, const std::string& ns,
                                          std::vector<nlohmann::json>* snapshot,
                                          int64_t* snapshotRevision) override;
  CacheStats stats() override;
  size_t objectCount();

  // --- outbox (edge -> cloud) ---
  // When full (maxEntries/maxBytes), the oldest non-status entries are dropped and counted; a
  // new non-status entry that still does not fit is dropped (counted) and reported as
  // kTooLarge. Status entries are never dropped and may exceed the bounds. An entry carrying a
  // drop count (attachDropped) is neither dropped nor coalesced away.
  Result<uint64_t> enqueue(ReportKind kind, const std::string& ns, const std::string& name,
                           const std::string& payload) override;
  // Up to maxCount entries with sequence > afterSequence, in sequence order.
  Result<std::vector<OutboxEntry>> pending(size_t maxCount, uint64_t afterSequence = 0);
  // Writes module state and appends reports in ONE transaction (all or nothing), so that state
  // and the reports derived from it never disagree after a crash. Reports follow enqueue's
  // rules (coalescing, bounds; a data report that does not fit is dropped and counted).
  Status commitLocal(const std::vector<LocalPut>& puts, const std::vector<LocalReport>& reports);
  // Every (key, value) of `scope`, ordered by key.
  Result<std::vector<std::pair<std::string, std::string>>> listLocal(const std::string& scope);
  // Deletes every entry with sequence <= `sequence`.
  Status acknowledge(uint64_t sequence);
  // Moves the count of dropped entries onto outbox entry `sequence`, durably and in one
  // transaction, and returns everything that entry now carries. Its Report sends that count in
  // `dropped` (again after a reconnect or restart) until the cloud acknowledges the sequence; the
  // cloud applies each sequence once. kNotFound when the entry is gone.
  Result<uint64_t> attachDropped(uint64_t sequence);
  // Entries dropped and not yet attached to a Report.
  uint64_t droppedCount();
  // Highest sequence assigned so far.
  uint64_t lastSequence();
  // Makes the next sequence > `sequence` (the cloud has applied up to it; e.g. after the edge's
  // database was recreated) so new reports are not mistaken for duplicates.
  Status ensureSequenceAbove(uint64_t sequence);
  uint64_t outboxEntries();
  uint64_t outboxBytes();
  // Called (without mu_ held) after each successful enqueue. Set before start().
  void setOutboxNotify(std::function<void()> notify) { outboxNotify_ = std::move(notify); }

  // --- integrity ---
  // Called (without mu_ held) when a read found an object whose checksum does not match: the
  // row was removed (never served) and the cloud must send it again, which the next Hello's
  // inventory (without it) makes happen: edgehub reconnects. Set before start().
  void setRepairNotify(std::function<void()> notify) { repairNotify_ = std::move(notify); }
  using Integrity = CacheIntegrity;
  Integrity integrity();

 private:
  Status execLocked(const char* sql) EP_REQUIRES(mu_);
  Status setMetaLocked(const char* column, int64_t value) EP_REQUIRES(mu_);
  // The outbox bookkeeping one transaction changes, applied to the mirrors on commit.
  struct OutboxCounters {
    uint64_t entries, bytes, dropped, nextSequence;
  };
  // Appends within an open transaction; returns the sequence, or 0 when a non-status entry was
  // dropped because it did not fit.
  Result<uint64_t> appendLocked(ReportKind kind, const std::string& ns, const std::string& name,
                                const std::string& payload, OutboxCounters& c) EP_REQUIRES(mu_);
  // Persists changed counters, commits, and updates the mirrors.
  Status commitCountersLocked(sqlite::Transaction& txn, const OutboxCounters& c) EP_REQUIRES(mu_);
  void publishLocked(const std::vector<CacheEvent>& events) EP_REQUIRES(mu_);
  // Sets every intact cached object's revision to 0 (inside applySync's transaction), for a
  // cloud whose revision went back; returns how many.
  Result<size_t> rebaseRevisionsLocked() EP_REQUIRES(mu_);
  // Opens and sets up the database at `path` (schema, migrations, checksums of older rows).
  Status openLocked(const std::string& path) EP_REQUIRES(mu_);
  // Moves a database that failed its check aside and starts a fresh one, salvaging its outbox.
  Status rebuildLocked(const std::string& path, const std::string& why) EP_REQUIRES(mu_);
  // A row whose checksum did not match: removed, counted, repair requested.
  void damagedLocked(const std::string& resource, const std::string& ns, const std::string& name)
      EP_REQUIRES(mu_);
  void notifyRepair();
  // Whether an SQLite error message says the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB).
  static bool isCorruption(const std::string& message);

  const MetaManagerOptions options_;
  std::function<void()> outboxNotify_;  // set before start(), then read-only
  std::function<void()> repairNotify_;  // set before start(), then read-only

  Mutex mu_;
  sqlite3* db_ EP_GUARDED_BY(mu_) = nullptr;
  int64_t lastApplied_ EP_GUARDED_BY(mu_) = 0;    // mirror of meta
  uint64_t nextSequence_ EP_GUARDED_BY(mu_) = 1;  // mirror of meta
  uint64_t dropped_ EP_GUARDED_BY(mu_) = 0;       // mirror of meta
  uint64_t entries_ EP_GUARDED_BY(mu_) = 0;       // rows in outbox
  uint64_t bytes_ EP_GUARDED_BY(mu_) = 0;         // sum(outbox.bytes)
  std::vector<std::weak_ptr<Subscription>> subscribers_ EP_GUARDED_BY(mu_);
  Integrity integrity_ EP_GUARDED_BY(mu_);
  bool repairDue_ EP_GUARDED_BY(mu_) = false;
  bool inventoryVerified_ EP_GUARDED_BY(mu_) = false;
};

// The checksum stored with each cached object (FNV-1a 64 over resource, namespace, name,
// revision and value, NUL-separated). Detects damage at rest, not tampering.
int64_t objectChecksum(const std::string& resource, const std::string& ns, const std::string& name,
                       int64_t revision, const std::string& value);

}  // namespace ep::edgecore::metamanager
