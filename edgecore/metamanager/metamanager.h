#pragma once

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/tunnel.pb.h"

namespace ep::sqlite {
class Transaction;
}

namespace ep::edgecore::metamanager {

using ReportKind = edgeplane::tunnel::v1::ReportKind;

// True for the kinds whose outbox entries coalesce per object and are never dropped.
bool isStatusKind(ReportKind kind);

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

// A cache change as seen by local API watchers. `object` is the stored JSON (for DELETED: the
// last cached value with metadata.resourceVersion set to the delete's revision).
struct CacheEvent {
  std::string type;  // "ADDED" | "MODIFIED" | "DELETED"
  std::string resource;
  std::string ns;
  std::string name;
  int64_t revision = 0;
  nlohmann::json object;
};

// A local API watch on one resource (optionally one namespace). Created by
// MetaManager::subscribe. Thread-safe: poll/done/setNotify/stop may be called from any thread.
// The queue is bounded; when a consumer falls behind the subscription ends (done() with
// overflowed() true) so the client relists.
class Subscription {
 public:
  Subscription(std::string resource, std::string ns, size_t maxQueue)
      : resource_(std::move(resource)), ns_(std::move(ns)), maxQueue_(maxQueue) {}

  // Up to `max` queued events, oldest first; never blocks.
  std::vector<CacheEvent> poll(size_t max);
  // True once no more events will come (stopped, overflowed, or the cache closed).
  bool done() const;
  bool overflowed() const;
  // `notify` is called (from the committing thread, without locks held by the caller's code
  // paths that could re-enter) whenever events are queued or the subscription ends.
  void setNotify(std::function<void()> notify);
  // Ends the subscription; MetaManager drops it on its next publish.
  void stop();

  // Used by MetaManager (under its publish lock).
  bool matches(const CacheEvent& e) const;
  void push(const CacheEvent& e);
  void end();

 private:
  void wake();

  const std::string resource_;
  const std::string ns_;  // "" = all namespaces
  const size_t maxQueue_;
  mutable Mutex mu_;
  std::deque<CacheEvent> queue_ EP_GUARDED_BY(mu_);
  bool done_ EP_GUARDED_BY(mu_) = false;
  bool overflowed_ EP_GUARDED_BY(mu_) = false;
  std::function<void()> notify_ EP_GUARDED_BY(mu_);
};

// The read side the local API needs (a seam for tests).
struct ObjectRecord {
  int64_t revision = 0;
  nlohmann::json object;
};

// Outbox writers (nodestatus, later pod status, devices) depend only on this.
class Outbox {
 public:
  virtual ~Outbox() = default;
  // Durably appends a report (committed with synchronous=FULL before returning) and returns its
  // sequence. Status kinds replace the pending entry for the same (kind, ns, name).
  virtual Result<uint64_t> enqueue(ReportKind kind, const std::string& ns, const std::string& name,
                                   const std::string& payload) = 0;
};

// A write to the state an edge module keeps in the cache's database (value empty: delete).
struct LocalPut {
  std::string scope;  // the owning module, e.g. "devicetwin"
  std::string key;
  std::optional<std::string> value;
};

// A report committed together with local state.
struct LocalReport {
  ReportKind kind = edgeplane::tunnel::v1::REPORT_KIND_UNSPECIFIED;
  std::string ns;
  std::string name;
  std::string payload;
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
class MetaManager final : public Outbox {
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
  int64_t lastAppliedRevision();
  Result<ObjectRecord> get(const std::string& resource, const std::string& ns,
                           const std::string& name);
  // ns "" lists every namespace. Ordered by (namespace, name).
  Result<std::vector<nlohmann::json>> list(const std::string& resource, const std::string& ns);
  size_t objectCount();

  // Subscribes to changes of `resource` (in `ns`, or all when ""). When `snapshot` is non-null
  // it receives the current objects (as list() would) atomically with the subscription, and
  // `snapshotRevision` the last applied revision.
  std::shared_ptr<Subscription> subscribe(const std::string& resource, const std::string& ns,
                                          std::vector<nlohmann::json>* snapshot = nullptr,
                                          int64_t* snapshotRevision = nullptr);

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
  struct Integrity {
    uint64_t damagedObjects = 0;  // rows found damaged and removed since start
    std::string rebuiltFrom;      // the damaged database moved aside at start, "" if none
    uint64_t outboxSalvaged = 0;  // outbox rows carried over from it
  };
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
