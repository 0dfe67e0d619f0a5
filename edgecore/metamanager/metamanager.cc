#include "edgecore/metamanager/metamanager.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string_view>
#include <tuple>

#include "common/sqlite/sqlite.h"
#include "common/thread_annotations.h"

namespace ep::edgecore::metamanager {

namespace tv1 = edgeplane::tunnel::v1;

namespace {

using sqlite::Stmt;

Status sqlError(sqlite3* db, const std::string& what) {
  return internalError("edge cache: " + what + ": " + (db ? sqlite3_errmsg(db) : "not open"));
}

// Parses a stored value; a corrupt row becomes an empty object rather than a crash.
nlohmann::json parseStored(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

}  // namespace

int64_t objectChecksum(const std::string& resource, const std::string& ns, const std::string& name,
                       int64_t revision, const std::string& value) {
  uint64_t h = 1469598103934665603ull;
  auto feed = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h *= 1099511628211ull;  // the separator (a zero byte)
  };
  feed(resource);
  feed(ns);
  feed(name);
  feed(std::to_string(revision));
  feed(value);
  return static_cast<int64_t>(h);
}

bool isStatusKind(ReportKind kind) {
  return kind == tv1::REPORT_KIND_NODE_STATUS || kind == tv1::REPORT_KIND_POD_STATUS ||
         kind == tv1::REPORT_KIND_DEVICE_TWIN || kind == tv1::REPORT_KIND_MODEL_STATUS;
}

// ---- Subscription ----

std::vector<CacheEvent> Subscription::poll(size_t max) {
  MutexLock lock(mu_);
  std::vector<CacheEvent> out;
  while (!queue_.empty() && out.size() < max) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return out;
}

bool Subscription::done() const {
  MutexLock lock(mu_);
  return done_ && queue_.empty();
}

bool Subscription::overflowed() const {
  MutexLock lock(mu_);
  return overflowed_;
}

void Subscription::setNotify(std::function<void()> notify) {
  bool wakeNow;
  {
    MutexLock lock(mu_);
    notify_ = std::move(notify);
    wakeNow = !queue_.empty() || done_;
  }
  if (wakeNow) wake();
}

void Subscription::stop() {
  end();
}

bool Subscription::matches(const CacheEvent& e) const {
  return e.resource == resource_ && (ns_.empty() || e.ns == ns_);
}

void Subscription::push(const CacheEvent& e) {
  {
    MutexLock lock(mu_);
    if (done_) return;
    if (queue_.size() >= maxQueue_) {
      // The consumer is too slow: end the watch so the client relists.
      overflowed_ = true;
      done_ = true;
      queue_.clear();
    } else {
      queue_.push_back(e);
    }
  }
  wake();
}

void Subscription::end() {
  {
    MutexLock lock(mu_);
    if (done_) return;
    done_ = true;
  }
  wake();
}

void Subscription::wake() {
  std::function<void()> n;
  {
    MutexLock lock(mu_);
    n = notify_;
  }
  if (n) n();
}

// ---- MetaManager ----

MetaManager::MetaManager(MetaManagerOptions options) : options_(std::move(options)) {}

MetaManager::~MetaManager() {
  stop();
}

Status MetaManager::execLocked(const char* sql) {
  return sqlite::exec(db_, sql, "edge cache");
}

Status MetaManager::start() {
  MutexLock lock(mu_);
  if (db_) return Status::ok();
  std::error_code ec;
  std::filesystem::create_directories(options_.dataDir, ec);
  if (ec) {
    return unavailableError("data dir " + options_.dataDir + ": " + ec.message());
  }
  const std::string path = (std::filesystem::path(options_.dataDir) / "edge.db").string();
  Status opened = openLocked(path);
  if (opened.isOk()) {
    // Pages damaged at rest: SQLite's quick check (structure, not contents: those are checked by
    // the per-object checksums on read).
    std::string verdict;
    {
      Stmt check(db_, "PRAGMA quick_check(1)");
      if (check.ok() && check.step() == SQLITE_ROW) verdict = check.text(0);
    }
    if (verdict.empty()) {
      opened = sqlError(db_, "quick_check");
      sqlite3_close(db_);
      db_ = nullptr;
    } else if (verdict != "ok") {
      sqlite3_close(db_);
      db_ = nullptr;
      return rebuildLocked(path, "quick_check: " + verdict);
    }
  }
  if (opened.isOk()) return Status::ok();
  // Only damage is repaired by rebuilding; anything else (locked by another process, a full
  // disk, permissions) is an error to report, the database left as it is.
  if (isCorruption(opened.message())) return rebuildLocked(path, opened.message());
  return opened;
}

bool MetaManager::isCorruption(const std::string& message) {
  return message.find("malformed") != std::string::npos ||
         message.find("not a database") != std::string::npos ||
         message.find("corrupt") != std::string::npos;
}

Status MetaManager::openLocked(const std::string& path) {
  // db_ is only used under mu_, so the connection needs no mutex of its own.
  auto db = sqlite::openDatabase(path, /*readOnly=*/false, std::chrono::seconds(10));
  if (!db) return internalError("edge cache: open " + db.status().message());
  db_ = *db;
  // Every statement below is finalized before this runs (they live in inner scopes).
  auto fail = [this](Status s) EP_REQUIRES(mu_) {
    sqlite3_close(db_);
    db_ = nullptr;
    return s;
  };
  static const char* kSetup[] = {
      "PRAGMA journal_mode=WAL",
      "PRAGMA synchronous=FULL",
      "CREATE TABLE IF NOT EXISTS objects(resource TEXT NOT NULL, namespace TEXT NOT NULL, "
      "name TEXT NOT NULL, revision INTEGER NOT NULL, value BLOB NOT NULL, "
      "checksum INTEGER, PRIMARY KEY(resource, namespace, name))",
      "CREATE TABLE IF NOT EXISTS meta(id INTEGER PRIMARY KEY CHECK(id = 1), "
      "last_applied_revision INTEGER NOT NULL, next_sequence INTEGER NOT NULL, "
      "dropped_data INTEGER NOT NULL)",
      "INSERT OR IGNORE INTO meta(id, last_applied_revision, next_sequence, dropped_data) "
      "VALUES(1, 0, 1, 0)",
      "CREATE TABLE IF NOT EXISTS outbox(sequence INTEGER PRIMARY KEY, kind INTEGER NOT NULL, "
      "namespace TEXT NOT NULL, name TEXT NOT NULL, payload BLOB NOT NULL, "
      "bytes INTEGER NOT NULL)",
      "CREATE INDEX IF NOT EXISTS outbox_object ON outbox(kind, namespace, name)",
      // State edge modules own (the device twin), written with their reports in one commit.
      "CREATE TABLE IF NOT EXISTS local_state(scope TEXT NOT NULL, key TEXT NOT NULL, "
      "value BLOB NOT NULL, PRIMARY KEY(scope, key))",
  };
  for (const char* sql : kSetup) {
    if (auto s = execLocked(sql); !s.isOk()) return fail(s);
  }
  // Caches created before drop counts travelled with their Report have no `carried` column.
  bool haveCarried = false, haveChecksum = false;
  {
    Stmt probe(db_, "SELECT carried FROM outbox LIMIT 0");
    haveCarried = probe.ok();
  }
  if (!haveCarried) {
    if (auto s = execLocked("ALTER TABLE outbox ADD COLUMN carried INTEGER NOT NULL DEFAULT 0");
        !s.isOk()) {
      return fail(s);
    }
  }
  // Caches created before objects carried checksums: add the column, and checksum every row
  // (1,000 rows per transaction: bounded memory and WAL growth).
  {
    Stmt probe(db_, "SELECT checksum FROM objects LIMIT 0");
    haveChecksum = probe.ok();
  }
  if (!haveChecksum) {
    if (auto s = execLocked("ALTER TABLE objects ADD COLUMN checksum INTEGER"); !s.isOk()) {
      return fail(s);
    }
  }
  for (uint64_t migrated = 0;;) {
    std::vector<std::tuple<std::string, std::string, std::string, int64_t, std::string>> rows;
    Status batch;
    {
      Stmt q(db_,
             "SELECT resource, namespace, name, revision, value FROM objects "
             "WHERE checksum IS NULL LIMIT 1000");
      if (!q.ok()) {
        batch = sqlError(db_, "prepare");
      } else {
        int rc;
        while ((rc = q.step()) == SQLITE_ROW) {
          rows.emplace_back(q.text(0), q.text(1), q.text(2), q.int64(3), q.text(4));
        }
        if (rc != SQLITE_DONE) batch = sqlError(db_, "read objects");
      }
    }
    if (batch.isOk() && !rows.empty()) {
      sqlite::Transaction txn(db_, "edge cache");
      {
        Stmt u(db_, "UPDATE objects SET checksum=? WHERE resource=? AND namespace=? AND name=?");
        if (!txn.ok() || !u.ok()) {
          batch = sqlError(db_, "prepare");
        } else {
          for (const auto& [r, n, nm, rev, v] : rows) {
            u.reset();
            u.bind(1, objectChecksum(r, n, nm, rev, v)).bind(2, r).bind(3, n).bind(4, nm);
            if (u.step() != SQLITE_DONE) {
              batch = sqlError(db_, "write checksum");
              break;
            }
          }
        }
      }
      if (batch.isOk() && !txn.commit().isOk()) batch = sqlError(db_, "commit");
    }  // the transaction (rolled back unless committed) ends before any close
    if (!batch.isOk()) return fail(batch);
    if (rows.empty()) {
      if (migrated > 0) {
        spdlog::info("edge cache: checksummed {} objects cached before checksums", migrated);
      }
      break;
    }
    migrated += rows.size();
  }
  Status counters;
  {
    Stmt m(db_, "SELECT last_applied_revision, next_sequence, dropped_data FROM meta WHERE id = 1");
    if (!m.ok() || m.step() != SQLITE_ROW) {
      counters = sqlError(db_, "read meta");
    } else {
      lastApplied_ = m.int64(0);
      nextSequence_ = static_cast<uint64_t>(m.int64(1));
      dropped_ = static_cast<uint64_t>(m.int64(2));
    }
  }
  if (counters.isOk()) {
    Stmt o(db_, "SELECT count(*), coalesce(sum(bytes), 0) FROM outbox");
    if (!o.ok() || o.step() != SQLITE_ROW) {
      counters = sqlError(db_, "read outbox");
    } else {
      entries_ = static_cast<uint64_t>(o.int64(0));
      bytes_ = static_cast<uint64_t>(o.int64(1));
    }
  }
  if (!counters.isOk()) return fail(counters);
  return Status::ok();
}

Status MetaManager::rebuildLocked(const std::string& path, const std::string& why) {
  if (db_) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
  std::string aside = path + ".damaged-" +
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
  for (int n = 1; std::filesystem::exists(aside); ++n) {
    aside = aside.substr(0, aside.rfind('.')) + ".damaged-" + std::to_string(n);
  }
  spdlog::error(
      "edge cache: {} is damaged ({}); moved aside to {} and rebuilt: the cloud sends "
      "everything again, readable outbox entries and module state are kept",
      path, why, aside);
  std::error_code ec;
  std::filesystem::rename(path, aside, ec);
  if (ec) return internalError("edge cache: moving damaged " + path + " aside: " + ec.message());
  for (const char* suffix : {"-wal", "-shm"}) {
    std::filesystem::rename(path + suffix, aside + suffix, ec);  // may not exist
  }
  if (auto s = openLocked(path); !s.isOk()) return s;
  integrity_.rebuiltFrom = aside;
  // Salvage what still reads back, row by row (a damaged row is skipped, not the rest): the
  // outbox with its sequences and carried drop counts, the counters, and module state (the
  // device twin), which the cloud cannot send again.
  sqlite3* old = nullptr;
  if (sqlite3_open_v2(aside.c_str(), &old, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    uint64_t maxSeq = 0, oldNext = 0, oldDropped = 0;
    {
      Stmt m(old, "SELECT next_sequence, dropped_data FROM meta WHERE id = 1");
      if (m.ok() && m.step() == SQLITE_ROW) {
        oldNext = static_cast<uint64_t>(m.int64(0));
        oldDropped = static_cast<uint64_t>(m.int64(1));
      }
    }
    sqlite::Transaction txn(db_, "edge cache");
    {
      Stmt q(old,
             "SELECT sequence, kind, namespace, name, payload, bytes, carried FROM outbox "
             "ORDER BY sequence");
      Stmt ins(db_,
               "INSERT OR IGNORE INTO outbox(sequence, kind, namespace, name, payload, bytes, "
               "carried) VALUES(?, ?, ?, ?, ?, ?, ?)");
      if (txn.ok() && q.ok() && ins.ok()) {
        while (q.step() == SQLITE_ROW) {
          ins.reset();
          const std::string ns = q.text(2), name = q.text(3), payload = q.text(4);
          ins.bind(1, q.int64(0)).bind(2, q.int64(1)).bind(3, ns).bind(4, name);
          ins.bindBlob(5, payload).bind(6, q.int64(5)).bind(7, q.int64(6));
          if (ins.step() == SQLITE_DONE) {
            ++integrity_.outboxSalvaged;
            maxSeq = std::max<uint64_t>(maxSeq, static_cast<uint64_t>(q.int64(0)));
          }
        }
      }
      Stmt lq(old, "SELECT scope, key, value FROM local_state");
      Stmt lins(db_, "INSERT OR IGNORE INTO local_state(scope, key, value) VALUES(?, ?, ?)");
      if (txn.ok() && lq.ok() && lins.ok()) {
        while (lq.step() == SQLITE_ROW) {
          lins.reset();
          const std::string scope = lq.text(0), key = lq.text(1), value = lq.text(2);
          lins.bind(1, scope).bind(2, key).bindBlob(3, value);
          (void)lins.step();
        }
      }
    }  // statements on `old` finalized before it closes
    // Sequences never go backwards: the cloud would take new reports for duplicates.
    nextSequence_ = std::max({nextSequence_, oldNext, maxSeq + 1});
    dropped_ = oldDropped;
    bool ok = txn.ok();
    if (ok) {
      Stmt meta(db_, "UPDATE meta SET next_sequence = ?, dropped_data = ? WHERE id = 1");
      ok = meta.ok();
      if (ok) {
        meta.bind(1, static_cast<int64_t>(nextSequence_)).bind(2, static_cast<int64_t>(dropped_));
        ok = meta.step() == SQLITE_DONE;
      }
    }
    if (ok && !txn.commit().isOk()) ok = false;
    if (!ok) spdlog::error("edge cache: salvaging {}: {}", aside, sqlite3_errmsg(db_));
    sqlite3_close(old);
    Stmt o(db_, "SELECT count(*), coalesce(sum(bytes), 0) FROM outbox");
    if (o.ok() && o.step() == SQLITE_ROW) {
      entries_ = static_cast<uint64_t>(o.int64(0));
      bytes_ = static_cast<uint64_t>(o.int64(1));
    }
  } else if (old != nullptr) {
    sqlite3_close(old);
  }
  return Status::ok();
}

void MetaManager::damagedLocked(const std::string& resource, const std::string& ns,
                                const std::string& name) {
  ++integrity_.damagedObjects;
  Stmt del(db_, "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?");
  if (!del.ok()) return;
  del.bind(1, resource).bind(2, ns).bind(3, name);
  if (del.step() != SQLITE_DONE || sqlite3_changes(db_) == 0) {
    // Still there: every read keeps skipping it (never served); no reconnect storm.
    spdlog::error("edge cache: {} {}/{} is damaged on disk and cannot be removed: {}", resource, ns,
                  name, sqlite3_errmsg(db_));
    return;
  }
  spdlog::error(
      "edge cache: {} {}/{} was damaged on disk (checksum mismatch); removed and asked "
      "of the cloud again",
      resource, ns, name);
  // Watchers (the local API, edged) stop seeing it until the cloud sends it again.
  CacheEvent e{"DELETED",    resource,
               ns,           name,
               lastApplied_, nlohmann::json{{"metadata", {{"name", name}, {"namespace", ns}}}}};
  publishLocked({e});
  repairDue_ = true;
}

void MetaManager::notifyRepair() {
  bool due = false;
  {
    MutexLock lock(mu_);
    due = repairDue_;
    repairDue_ = false;
  }
  if (due && repairNotify_) repairNotify_();
}

CacheStats MetaManager::stats() {
  CacheStats s;
  s.lastAppliedRevision = lastAppliedRevision();
  s.objects = objectCount();
  s.integrity = integrity();
  s.outboxEntries = outboxEntries();
  s.outboxBytes = outboxBytes();
  s.outboxDropped = droppedCount();
  s.lastSequence = lastSequence();
  return s;
}

MetaManager::Integrity MetaManager::integrity() {
  MutexLock lock(mu_);
  return integrity_;
}

void MetaManager::stop() {
  MutexLock lock(mu_);
  for (auto& w : subscribers_) {
    if (auto s = w.lock()) s->end();
  }
  subscribers_.clear();
  if (db_) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

Status MetaManager::applySync(const tv1::Sync& sync) {
  // Validate everything first so a bad change refuses the whole Sync.
  std::vector<nlohmann::json> values(static_cast<size_t>(sync.changes_size()));
  for (int i = 0; i < sync.changes_size(); ++i) {
    const auto& c = sync.changes(i);
    const std::string where = "changes[" + std::to_string(i) + "]";
    if (c.resource().empty()) return invalidError(where + ".resource: must not be empty");
    if (c.name().empty()) return invalidError(where + ".name: must not be empty");
    if (c.op() == tv1::Change::OP_PUT) {
      auto v = nlohmann::json::parse(c.value(), nullptr, false);
      if (v.is_discarded() || !v.is_object()) {
        return invalidError(where + ".value: not a JSON object");
      }
      values[static_cast<size_t>(i)] = std::move(v);
    } else if (c.op() != tv1::Change::OP_DELETE) {
      return invalidError(where + ".op: unknown operation " + std::to_string(c.op()));
    }
  }

  MutexLock lock(mu_);
  if (!db_) return unavailableError("edge cache is not open");
  std::vector<CacheEvent> events;
  {
    sqlite::Transaction txn(db_, "edge cache");  // rolls back unless committed
    if (!txn.ok()) return sqlError(db_, "begin");
    Stmt sel(db_,
             "SELECT revision, value, checksum FROM objects WHERE resource=? AND namespace=? AND "
             "name=?");
    Stmt put(db_,
             "INSERT OR REPLACE INTO objects(resource, namespace, name, revision, value, "
             "checksum) VALUES(?, ?, ?, ?, ?, ?)");
    Stmt del(db_, "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?");
    if (!sel.ok() || !put.ok() || !del.ok()) return sqlError(db_, "prepare");
    // The cloud's store revision went back: its store was moved (cloudcore --migrate-store-to)
    // or restored from a backup, so the first Sync after Hello is below what this cache
    // applied. The cached revisions are the old store's and order nothing against the new
    // one's: they become 0 in this transaction, so each version the cloud sends replaces its
    // copy, in this Sync or, after a crash, in the next (docs/tunnel.md, "Revisions").
    const bool rewound = sync.initial() && sync.revision() < lastApplied_;
    if (rewound) {
      auto n = rebaseRevisionsLocked();
      if (!n) return n.status();
      spdlog::warn(
          "edge cache: the cloud's revision went back from {} to {} (its store was moved "
          "or restored): taking its versions of all {} cached objects",
          lastApplied_, sync.revision(), *n);
    }
    for (int i = 0; i < sync.changes_size(); ++i) {
      const auto& c = sync.changes(i);
      sel.reset();
      sel.bind(1, c.resource()).bind(2, c.namespace_()).bind(3, c.name());
      int rc = sel.step();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlError(db_, "read object");
      bool exists = rc == SQLITE_ROW;
      const int64_t cachedRev = exists ? sel.int64(0) : 0;
      std::string oldValue = exists ? sel.text(1) : std::string();
      // A damaged cached copy is replaced whatever revision it claims.
      const bool damaged = exists && objectChecksum(c.resource(), c.namespace_(), c.name(),
                                                    cachedRev, oldValue) != sel.int64(2);
      sel.reset();  // no statement left mid-row at COMMIT
      CacheEvent e{"", c.resource(), c.namespace_(), c.name(), c.revision(), nullptr};
      if (c.op() == tv1::Change::OP_PUT) {
        if (exists && !damaged && c.revision() <= cachedRev) continue;  // idempotent: not newer
        put.reset();
        put.bind(1, c.resource()).bind(2, c.namespace_()).bind(3, c.name());
        put.bind(4, c.revision()).bindBlob(5, c.value());
        put.bind(6,
                 objectChecksum(c.resource(), c.namespace_(), c.name(), c.revision(), c.value()));
        if (put.step() != SQLITE_DONE) return sqlError(db_, "write object");
        e.type = exists ? "MODIFIED" : "ADDED";
        e.object = std::move(values[static_cast<size_t>(i)]);
      } else {
        if (!exists) continue;
        del.reset();
        del.bind(1, c.resource()).bind(2, c.namespace_()).bind(3, c.name());
        if (del.step() != SQLITE_DONE) return sqlError(db_, "delete object");
        e.type = "DELETED";
        // A damaged copy's bytes are never passed on: the key is all the event needs.
        e.object =
            damaged
                ? nlohmann::json{{"metadata", {{"name", c.name()}, {"namespace", c.namespace_()}}}}
                : parseStored(oldValue);
        if (e.object.is_object() && e.object["metadata"].is_object()) {
          e.object["metadata"]["resourceVersion"] = std::to_string(c.revision());
        }
      }
      events.push_back(std::move(e));
    }
    const int64_t newApplied = rewound ? sync.revision() : std::max(lastApplied_, sync.revision());
    Stmt meta(db_, "UPDATE meta SET last_applied_revision = ? WHERE id = 1");
    if (!meta.ok()) return sqlError(db_, "prepare");
    meta.bind(1, newApplied);
    if (meta.step() != SQLITE_DONE) return sqlError(db_, "write meta");
    if (!txn.commit().isOk()) return sqlError(db_, "commit");
    lastApplied_ = newApplied;
  }
  publishLocked(events);
  return Status::ok();
}

Result<size_t> MetaManager::rebaseRevisionsLocked() {
  // Keys and new checksums only (a cache's values can be large next to an edge's memory).
  std::vector<std::tuple<std::string, std::string, std::string, int64_t>> intact;
  {
    Stmt q(db_, "SELECT resource, namespace, name, revision, value, checksum FROM objects");
    if (!q.ok()) return sqlError(db_, "prepare");
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      std::string r = q.text(0), n = q.text(1), nm = q.text(2), v = q.text(4);
      // A damaged copy keeps its mismatching checksum (re-checksumming would pass its bytes as
      // good): it is replaced whatever its revision, as always.
      if (objectChecksum(r, n, nm, q.int64(3), v) == q.int64(5)) {
        const int64_t rebased = objectChecksum(r, n, nm, 0, v);
        intact.emplace_back(std::move(r), std::move(n), std::move(nm), rebased);
      }
    }
    if (rc != SQLITE_DONE) return sqlError(db_, "read objects");
  }
  Stmt u(db_,
         "UPDATE objects SET revision=0, checksum=? WHERE resource=? AND namespace=? AND name=?");
  if (!u.ok()) return sqlError(db_, "prepare");
  for (const auto& [r, n, nm, checksum] : intact) {
    u.reset();
    u.bind(1, checksum).bind(2, r).bind(3, n).bind(4, nm);
    if (u.step() != SQLITE_DONE) return sqlError(db_, "write object");
  }
  return intact.size();
}

void MetaManager::publishLocked(const std::vector<CacheEvent>& events) {
  if (events.empty()) return;
  std::vector<std::shared_ptr<Subscription>> live;
  auto it = subscribers_.begin();
  while (it != subscribers_.end()) {
    auto s = it->lock();
    if (!s || s->done()) {
      it = subscribers_.erase(it);
    } else {
      live.push_back(std::move(s));
      ++it;
    }
  }
  for (const auto& e : events) {
    for (auto& s : live) {
      if (s->matches(e)) s->push(e);
    }
  }
}

Result<std::vector<InventoryEntry>> MetaManager::inventory() {
  std::vector<InventoryEntry> out;
  {
    MutexLock lock(mu_);
    if (!db_) return unavailableError("edge cache is not open");
    // The first inventory after start checks every object (a damaged one is left out, so the
    // cloud sends it again); later ones, which an offline node builds before every dial, list
    // revisions only: every other read checks what it reads.
    const bool verify = !inventoryVerified_;
    std::vector<InventoryEntry> damaged;
    {
      Stmt q(db_, verify ? "SELECT resource, namespace, name, revision, value, checksum FROM "
                           "objects ORDER BY 1, 2, 3"
                         : "SELECT resource, namespace, name, revision FROM objects "
                           "ORDER BY 1, 2, 3");
      if (!q.ok()) return sqlError(db_, "prepare");
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) {
        InventoryEntry e{q.text(0), q.text(1), q.text(2), q.int64(3)};
        if (verify &&
            objectChecksum(e.resource, e.ns, e.name, e.revision, q.text(4)) != q.int64(5)) {
          damaged.push_back(std::move(e));
          continue;
        }
        out.push_back(std::move(e));
      }
      if (rc != SQLITE_DONE) return sqlError(db_, "read inventory");
    }
    for (const auto& d : damaged) damagedLocked(d.resource, d.ns, d.name);
    inventoryVerified_ = true;
    repairDue_ = false;  // this inventory is the repair
  }
  return out;
}

int64_t MetaManager::lastAppliedRevision() {
  MutexLock lock(mu_);
  return lastApplied_;
}

size_t MetaManager::objectCount() {
  MutexLock lock(mu_);
  if (!db_) return 0;
  Stmt q(db_, "SELECT count(*) FROM objects");
  if (!q.ok() || q.step() != SQLITE_ROW) return 0;
  return static_cast<size_t>(q.int64(0));
}

Result<ObjectRecord> MetaManager::get(const std::string& resource, const std::string& ns,
                                      const std::string& name) {
  Result<ObjectRecord> out = Status(Code::kInternal, "");
  {
    MutexLock lock(mu_);
    if (!db_) return unavailableError("edge cache is not open");
    Stmt q(db_,
           "SELECT revision, value, checksum FROM objects WHERE resource=? AND namespace=? AND "
           "name=?");
    if (!q.ok()) return sqlError(db_, "prepare");
    q.bind(1, resource).bind(2, ns).bind(3, name);
    int rc = q.step();
    if (rc == SQLITE_DONE) return notFoundError(resource + " \"" + name + "\" not found");
    if (rc != SQLITE_ROW) return sqlError(db_, "read object");
    const std::string value = q.text(1);
    if (objectChecksum(resource, ns, name, q.int64(0), value) != q.int64(2)) {
      q.reset();
      damagedLocked(resource, ns, name);
      out = notFoundError(resource + " \"" + name +
                          "\" not found (its cached copy was damaged; the cloud sends it again)");
    } else {
      out = ObjectRecord{q.int64(0), parseStored(value)};
    }
  }
  notifyRepair();
  return out;
}

Result<std::vector<nlohmann::json>> MetaManager::list(const std::string& resource,
                                                      const std::string& ns) {
  std::vector<nlohmann::json> out;
  {
    MutexLock lock(mu_);
    if (!db_) return unavailableError("edge cache is not open");
    std::vector<std::pair<std::string, std::string>> damaged;  // (namespace, name)
    {
      Stmt q(db_,
             "SELECT namespace, name, revision, value, checksum FROM objects WHERE resource=? "
             "AND (?='' OR namespace=?) ORDER BY namespace, name");
      if (!q.ok()) return sqlError(db_, "prepare");
      q.bind(1, resource).bind(2, ns).bind(3, ns);
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) {
        const std::string value = q.text(3);
        if (objectChecksum(resource, q.text(0), q.text(1), q.int64(2), value) != q.int64(4)) {
          damaged.emplace_back(q.text(0), q.text(1));  // one bad row never fails the list
          continue;
        }
        out.push_back(parseStored(value));
      }
      if (rc != SQLITE_DONE) return sqlError(db_, "list objects");
    }
    for (const auto& [n, nm] : damaged) damagedLocked(resource, n, nm);
  }
  notifyRepair();
  return out;
}

std::shared_ptr<Subscription> MetaManager::subscribe(const std::string& resource,
                                                     const std::string& ns,
                                                     std::vector<nlohmann::json>* snapshot,
                                                     int64_t* snapshotRevision) {
  auto sub = std::make_shared<Subscription>(resource, ns, options_.watchQueue);
  {
    MutexLock lock(mu_);
    if (!db_) {
      sub->end();
      return sub;
    }
    if (snapshot) {
      std::vector<std::pair<std::string, std::string>> damaged;
      {
        Stmt q(db_,
               "SELECT namespace, name, revision, value, checksum FROM objects WHERE resource=? "
               "AND (?='' OR namespace=?) ORDER BY namespace, name");
        if (q.ok()) {
          q.bind(1, resource).bind(2, ns).bind(3, ns);
          while (q.step() == SQLITE_ROW) {
            const std::string value = q.text(3);
            if (objectChecksum(resource, q.text(0), q.text(1), q.int64(2), value) != q.int64(4)) {
              damaged.emplace_back(q.text(0), q.text(1));
              continue;
            }
            snapshot->push_back(parseStored(value));
          }
        }
      }
      for (const auto& [n, nm] : damaged) damagedLocked(resource, n, nm);
    }
    if (snapshotRevision) *snapshotRevision = lastApplied_;
    subscribers_.push_back(sub);
  }
  notifyRepair();
  return sub;
}

Status MetaManager::setMetaLocked(const char* column, int64_t value) {
  std::string sql = std::string("UPDATE meta SET ") + column + " = ? WHERE id = 1";
  Stmt u(db_, sql.c_str());
  if (!u.ok()) return sqlError(db_, "prepare");
  u.bind(1, value);
  if (u.step() != SQLITE_DONE) return sqlError(db_, "write meta");
  return Status::ok();
}

Result<uint64_t> MetaManager::appendLocked(ReportKind kind, const std::string& ns,
                                           const std::string& name, const std::string& payload,
                                           OutboxCounters& c) {
  const uint64_t size = payload.size();
  const bool status = isStatusKind(kind);
  if (status) {
    // Coalesce: the pending entry for this object is replaced.
    // An entry carrying a drop count is kept: it may be on its way to the cloud, which must
    // see that count exactly once (it goes only with that sequence, removed only by its ack).
    Stmt old(db_,
             "SELECT sequence, bytes FROM outbox WHERE kind=? AND namespace=? AND name=? AND "
             "carried = 0");
    if (!old.ok()) return sqlError(db_, "prepare");
    old.bind(1, static_cast<int64_t>(kind)).bind(2, ns).bind(3, name);
    std::vector<std::pair<int64_t, int64_t>> rows;
    while (old.step() == SQLITE_ROW) rows.emplace_back(old.int64(0), old.int64(1));
    Stmt del(db_, "DELETE FROM outbox WHERE sequence=?");
    for (auto [s, b] : rows) {
      del.reset();
      del.bind(1, s);
      if (del.step() != SQLITE_DONE) return sqlError(db_, "coalesce");
      c.entries -= 1;
      c.bytes -= static_cast<uint64_t>(b);
    }
  }
  if (c.entries + 1 > options_.maxEntries || c.bytes + size > options_.maxBytes) {
    // Drop the oldest non-status entries until the new one fits.
    Stmt oldest(db_,
                "SELECT sequence, bytes FROM outbox WHERE kind NOT IN (?, ?, ?) "
                "AND carried = 0 ORDER BY sequence LIMIT 64");
    Stmt del(db_, "DELETE FROM outbox WHERE sequence=?");
    if (!oldest.ok() || !del.ok()) return sqlError(db_, "prepare");
    while (c.entries + 1 > options_.maxEntries || c.bytes + size > options_.maxBytes) {
      oldest.reset();
      oldest.bind(1, int64_t{tv1::REPORT_KIND_NODE_STATUS})
          .bind(2, int64_t{tv1::REPORT_KIND_POD_STATUS})
          .bind(3, int64_t{tv1::REPORT_KIND_DEVICE_TWIN});
      std::vector<std::pair<int64_t, int64_t>> victims;
      while (oldest.step() == SQLITE_ROW) victims.emplace_back(oldest.int64(0), oldest.int64(1));
      if (victims.empty()) break;
      for (auto [s, b] : victims) {
        if (c.entries + 1 <= options_.maxEntries && c.bytes + size <= options_.maxBytes) break;
        del.reset();
        del.bind(1, s);
        if (del.step() != SQLITE_DONE) return sqlError(db_, "drop");
        c.entries -= 1;
        c.bytes -= static_cast<uint64_t>(b);
        c.dropped += 1;
      }
    }
    if (!status && (c.entries + 1 > options_.maxEntries || c.bytes + size > options_.maxBytes)) {
      c.dropped += 1;
      return uint64_t{0};
    }
  }
  const uint64_t seq = c.nextSequence;
  Stmt ins(db_,
           "INSERT INTO outbox(sequence, kind, namespace, name, payload, bytes) "
           "VALUES(?, ?, ?, ?, ?, ?)");
  if (!ins.ok()) return sqlError(db_, "prepare");
  ins.bind(1, static_cast<int64_t>(seq)).bind(2, static_cast<int64_t>(kind));
  ins.bind(3, ns).bind(4, name).bindBlob(5, payload).bind(6, static_cast<int64_t>(size));
  if (ins.step() != SQLITE_DONE) return sqlError(db_, "append");
  c.nextSequence = seq + 1;
  c.entries += 1;
  c.bytes += size;
  return seq;
}

Status MetaManager::commitCountersLocked(sqlite::Transaction& txn, const OutboxCounters& c) {
  if (c.nextSequence != nextSequence_) {
    if (auto s = setMetaLocked("next_sequence", static_cast<int64_t>(c.nextSequence)); !s.isOk()) {
      return s;
    }
  }
  if (c.dropped != dropped_) {
    if (auto s = setMetaLocked("dropped_data", static_cast<int64_t>(c.dropped)); !s.isOk()) {
      return s;
    }
  }
  if (!txn.commit().isOk()) return sqlError(db_, "commit");
  entries_ = c.entries;
  bytes_ = c.bytes;
  dropped_ = c.dropped;
  nextSequence_ = c.nextSequence;
  return Status::ok();
}

Result<uint64_t> MetaManager::enqueue(ReportKind kind, const std::string& ns,
                                      const std::string& name, const std::string& payload) {
  uint64_t seq = 0;
  {
    MutexLock lock(mu_);
    if (!db_) return unavailableError("edge cache is not open");
    OutboxCounters c{entries_, bytes_, dropped_, nextSequence_};
    sqlite::Transaction txn(db_, "edge cache");  // rolls back unless committed
    if (!txn.ok()) return sqlError(db_, "begin");
    auto appended = appendLocked(kind, ns, name, payload, c);
    if (!appended.isOk()) return appended.status();
    if (auto s = commitCountersLocked(txn, c); !s.isOk()) return s;
    seq = *appended;
    if (seq == 0) {
      return Status(Code::kTooLarge, "outbox full: report " + ns + "/" + name + " dropped");
    }
  }
  if (outboxNotify_) outboxNotify_();
  return seq;
}

Status MetaManager::commitLocal(const std::vector<LocalPut>& puts,
                                const std::vector<LocalReport>& reports) {
  {
    MutexLock lock(mu_);
    if (!db_) return unavailableError("edge cache is not open");
    OutboxCounters c{entries_, bytes_, dropped_, nextSequence_};
    sqlite::Transaction txn(db_, "edge cache");
    if (!txn.ok()) return sqlError(db_, "begin");
    Stmt put(db_, "INSERT OR REPLACE INTO local_state(scope, key, value) VALUES(?, ?, ?)");
    Stmt del(db_, "DELETE FROM local_state WHERE scope=? AND key=?");
    if (!put.ok() || !del.ok()) return sqlError(db_, "prepare");
    for (const auto& p : puts) {
      Stmt& q = p.value ? put : del;
      q.reset();
      q.bind(1, p.scope).bind(2, p.key);
      if (p.value) q.bindBlob(3, *p.value);
      if (q.step() != SQLITE_DONE) return sqlError(db_, "write local state");
    }
    for (const auto& r : reports) {
      auto appended = appendLocked(r.kind, r.ns, r.name, r.payload, c);
      if (!appended.isOk()) return appended.status();
    }
    if (auto s = commitCountersLocked(txn, c); !s.isOk()) return s;
  }
  if (!reports.empty() && outboxNotify_) outboxNotify_();
  return Status::ok();
}

Result<std::vector<std::pair<std::string, std::string>>> MetaManager::listLocal(
    const std::string& scope) {
  MutexLock lock(mu_);
  if (!db_) return unavailableError("edge cache is not open");
  Stmt q(db_, "SELECT key, value FROM local_state WHERE scope=? ORDER BY key");
  if (!q.ok()) return sqlError(db_, "prepare");
  q.bind(1, scope);
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.emplace_back(q.text(0), q.text(1));
  if (rc != SQLITE_DONE) return sqlError(db_, "read local state");
  return out;
}

Result<std::vector<OutboxEntry>> MetaManager::pending(size_t maxCount, uint64_t afterSequence) {
  MutexLock lock(mu_);
  if (!db_) return unavailableError("edge cache is not open");
  Stmt q(db_,
         "SELECT sequence, kind, namespace, name, payload, bytes, carried FROM outbox "
         "WHERE sequence > ? ORDER BY sequence LIMIT ?");
  if (!q.ok()) return sqlError(db_, "prepare");
  q.bind(1, static_cast<int64_t>(afterSequence)).bind(2, static_cast<int64_t>(maxCount));
  std::vector<OutboxEntry> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    OutboxEntry e;
    e.sequence = static_cast<uint64_t>(q.int64(0));
    e.kind = static_cast<ReportKind>(q.int64(1));
    e.ns = q.text(2);
    e.name = q.text(3);
    e.payload = q.text(4);
    e.bytes = static_cast<uint64_t>(q.int64(5));
    e.dropped = static_cast<uint64_t>(q.int64(6));
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return sqlError(db_, "read outbox");
  return out;
}

Status MetaManager::acknowledge(uint64_t sequence) {
  MutexLock lock(mu_);
  if (!db_) return unavailableError("edge cache is not open");
  // Only the acknowledged range is visited (primary-key range), not the whole outbox.
  sqlite::Transaction txn(db_, "edge cache");  // rolls back unless committed
  if (!txn.ok()) return sqlError(db_, "begin");
  Stmt o(db_, "SELECT count(*), coalesce(sum(bytes), 0) FROM outbox WHERE sequence <= ?");
  Stmt d(db_, "DELETE FROM outbox WHERE sequence <= ?");
  if (!o.ok() || !d.ok()) return sqlError(db_, "prepare");
  o.bind(1, static_cast<int64_t>(sequence));
  if (o.step() != SQLITE_ROW) return sqlError(db_, "count acknowledged");
  const auto count = static_cast<uint64_t>(o.int64(0));
  const auto bytes = static_cast<uint64_t>(o.int64(1));
  o.reset();
  if (count == 0) return Status::ok();
  d.bind(1, static_cast<int64_t>(sequence));
  if (d.step() != SQLITE_DONE) return sqlError(db_, "acknowledge");
  if (!txn.commit().isOk()) return sqlError(db_, "commit");
  entries_ -= std::min(entries_, count);
  bytes_ -= std::min(bytes_, bytes);
  return Status::ok();
}

Result<uint64_t> MetaManager::attachDropped(uint64_t sequence) {
  MutexLock lock(mu_);
  if (!db_) return unavailableError("edge cache is not open");
  sqlite::Transaction txn(db_, "edge cache");  // rolls back unless committed
  if (!txn.ok()) return sqlError(db_, "begin");
  Stmt u(db_, "UPDATE outbox SET carried = carried + ? WHERE sequence = ?");
  Stmt q(db_, "SELECT carried FROM outbox WHERE sequence = ?");
  if (!u.ok() || !q.ok()) return sqlError(db_, "prepare");
  if (dropped_ > 0) {
    u.bind(1, static_cast<int64_t>(dropped_)).bind(2, static_cast<int64_t>(sequence));
    if (u.step() != SQLITE_DONE) return sqlError(db_, "attach drop count");
  }
  q.bind(1, static_cast<int64_t>(sequence));
  if (q.step() != SQLITE_ROW) return notFoundError("no outbox entry " + std::to_string(sequence));
  const auto carried = static_cast<uint64_t>(q.int64(0));
  q.reset();
  if (dropped_ > 0) {
    if (auto st = setMetaLocked("dropped_data", 0); !st.isOk()) return st;
  }
  if (!txn.commit().isOk()) return sqlError(db_, "commit");
  dropped_ = 0;
  return carried;
}

uint64_t MetaManager::droppedCount() {
  MutexLock lock(mu_);
  return dropped_;
}

uint64_t MetaManager::lastSequence() {
  MutexLock lock(mu_);
  return nextSequence_ - 1;
}

Status MetaManager::ensureSequenceAbove(uint64_t sequence) {
  MutexLock lock(mu_);
  if (!db_) return unavailableError("edge cache is not open");
  if (nextSequence_ > sequence) return Status::ok();
  if (auto s = setMetaLocked("next_sequence", static_cast<int64_t>(sequence + 1)); !s.isOk()) {
    return s;
  }
  nextSequence_ = sequence + 1;
  return Status::ok();
}

uint64_t MetaManager::outboxEntries() {
  MutexLock lock(mu_);
  return entries_;
}

uint64_t MetaManager::outboxBytes() {
  MutexLock lock(mu_);
  return bytes_;
}

}  // namespace ep::edgecore::metamanager
