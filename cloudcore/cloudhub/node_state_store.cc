#include "cloudcore/cloudhub/node_state_store.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <filesystem>
#include <vector>

#include "common/sqlite/sqlite.h"
#include "common/thread_annotations.h"

namespace ep::cloudhub {
namespace {

Status sqlError(sqlite3* db, const std::string& what) {
  return unavailableError("cloudhub.db: " + what + ": " +
                          (db ? sqlite3_errmsg(db) : "no database"));
}

// Shared helpers report kInternal; a failing cloudhub.db is reported as unavailable.
Status asUnavailable(Status s) {
  return s.isOk() ? s : unavailableError(s.message());
}

Status exec(sqlite3* db, const char* sql) {
  return asUnavailable(sqlite::exec(db, sql, "cloudhub.db"));
}

int64_t rowChecksum(const std::string& name, int64_t acked, int64_t sequence) {
  return sqlite::RowChecksum().add(std::string_view(name)).add(acked).add(sequence).value();
}

// "ok", what SQLite's quick_check found wrong with the file (also "file is not a database"
// and other damage reported while reading it), or an error when the check could not run for
// another reason (a lock held elsewhere, I/O): such a file is not damaged.
Result<std::string> quickCheck(sqlite3* db) {
  auto failed = [db]() -> Result<std::string> {
    const int code = sqlite3_errcode(db) & 0xff;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return std::string(sqlite3_errmsg(db));
    return sqlError(db, "quick_check");
  };
  sqlite::Stmt check(db, "PRAGMA quick_check(1)");
  if (!check.ok()) return failed();
  if (check.step() != SQLITE_ROW) return failed();
  return check.text(0);
}

}  // namespace

NodeStateStore::NodeStateStore(NodeStateStoreOptions options) : options_(std::move(options)) {}

NodeStateStore::~NodeStateStore() {
  stop();
}

Status NodeStateStore::start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dataDir, ec);
  std::string path = (std::filesystem::path(options_.dataDir) / "cloudhub.db").string();
  MutexLock dl(dbMu_);
  bool rebuilt = false;
  for (int attempt = 0;; ++attempt) {
    auto db = sqlite::openDatabase(path, /*readOnly=*/false, std::chrono::seconds(5));
    if (!db) return unavailableError("cloudhub.db: open " + db.status().message());
    db_ = *db;
    auto checked = quickCheck(db_);
    if (checked.isOk() && *checked == "ok") break;
    sqlite3_close(db_);
    db_ = nullptr;
    if (!checked.isOk()) return checked.status();
    const std::string verdict = *checked;
    if (attempt > 0)
      return unavailableError("cloudhub.db: fresh database fails quick_check: " + verdict);
    // Its contents can be rebuilt (the class comment): move it aside and start afresh.
    const std::string aside =
        path + ".damaged-" +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
    spdlog::error(
        "cloudhub: {} is damaged ({}); moved aside as {}, starting a fresh one (every node "
        "resends the reports in its outbox)",
        path, verdict, aside);
    std::filesystem::rename(path, aside, ec);
    if (ec)
      return unavailableError("cloudhub.db: cannot move the damaged file aside: " + ec.message());
    // Its journal goes with it: replayed into the fresh file, it would bring the damage back.
    for (const char* suffix : {"-wal", "-shm"}) {
      std::filesystem::rename(path + suffix, aside + suffix, ec);
      if (ec && ec != std::errc::no_such_file_or_directory) {
        return unavailableError("cloudhub.db: cannot move " + path + suffix +
                                " aside: " + ec.message());
      }
    }
    rebuilt = true;
  }
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                          "CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, "
                          "acked_revision INTEGER NOT NULL DEFAULT 0, "
                          "last_report_sequence INTEGER NOT NULL DEFAULT 0, checksum INTEGER)"}) {
    if (auto s = exec(db_, sql); !s.isOk()) {
      sqlite3_close(db_);
      db_ = nullptr;
      return s;
    }
  }
  // user_version 1: every row has its checksum. Files from before checksums get the column;
  // their rows are checksummed once, at this start, in one transaction (below).
  int64_t version = 0;
  {
    sqlite::Stmt v(db_, "PRAGMA user_version");
    if (!v.ok() || v.step() != SQLITE_ROW) return sqlError(db_, "user_version");
    version = v.int64(0);
  }
  if (version < 1) {
    bool hasChecksum = false;
    sqlite::Stmt columns(db_, "PRAGMA table_info(nodes)");
    while (columns.ok() && columns.step() == SQLITE_ROW) {
      if (columns.text(1) == "checksum") hasChecksum = true;
    }
    if (!hasChecksum) {
      if (auto s = exec(db_, "ALTER TABLE nodes ADD COLUMN checksum INTEGER"); !s.isOk()) {
        sqlite3_close(db_);
        db_ = nullptr;
        return s;
      }
    }
  }
  struct Unsummed {
    std::string name;
    int64_t acked;
    int64_t sequence;
  };
  std::vector<Unsummed> unsummed;
  {
    sqlite::Stmt load(db_,
                      "SELECT name, acked_revision, last_report_sequence, checksum FROM nodes");
    if (!load.ok()) return sqlError(db_, "load");
    MutexLock l(mu_);
    rebuilt_ = rebuilt;
    while (load.step() == SQLITE_ROW) {
      const std::string name = load.text(0);
      const int64_t acked = load.int64(1);
      const int64_t sequence = load.int64(2);
      Row& r = rows_[name];
      if (load.isNull(3) && version < 1) {
        unsummed.push_back({name, acked, sequence});  // written before checksums
      } else if (load.isNull(3) || load.int64(3) != rowChecksum(name, acked, sequence)) {
        ++damagedRows_;
        markDirty(name, r);  // rewritten as 0, intact
        spdlog::error(
            "cloudhub: the row of node {} in cloudhub.db is damaged (checksum mismatch); its "
            "acknowledged revision and report sequence start again from 0 (it resends the "
            "reports in its outbox)",
            name);
        continue;
      }
      r.ackedRevision = acked;
      r.appliedSequence = r.persistedSequence = static_cast<uint64_t>(sequence);
    }
  }
  if (version < 1) {
    sqlite::Transaction txn(db_, "cloudhub.db");
    if (!txn.ok()) return asUnavailable(txn.status());
    sqlite::Stmt update(db_, "UPDATE nodes SET checksum = ?1 WHERE name = ?2");
    if (!update.ok()) return sqlError(db_, "prepare checksum update");
    for (const auto& u : unsummed) {
      update.bind(1, rowChecksum(u.name, u.acked, u.sequence)).bind(2, u.name);
      if (update.step() != SQLITE_DONE) return sqlError(db_, "checksum update");
      update.reset();
    }
    if (auto s = exec(db_, "PRAGMA user_version = 1"); !s.isOk()) return s;
    if (auto s = asUnavailable(txn.commit()); !s.isOk()) return s;
  }
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  flusher_ = std::thread([this] { flushLoop(); });
  return Status::ok();
}

void NodeStateStore::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  MutexLock dl(dbMu_);
  if (db_ != nullptr) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

void NodeStateStore::markDirty(const std::string& node, Row& row) {
  if (!row.dirty) dirtyNames_.push_back(node);
  row.dirty = true;
}

void NodeStateStore::recordAck(const std::string& node, int64_t revision) {
  {
    MutexLock l(mu_);
    Row& r = rows_[node];
    if (revision <= r.ackedRevision) return;
    r.ackedRevision = revision;
    markDirty(node, r);
  }
  cv_.notify_all();
}

void NodeStateStore::recordReportApplied(const std::string& node, uint64_t sequence) {
  {
    MutexLock l(mu_);
    Row& r = rows_[node];
    if (sequence <= r.appliedSequence) return;
    r.appliedSequence = sequence;
    markDirty(node, r);
    reportsDirty_ = true;
  }
  cv_.notify_all();
}

int64_t NodeStateStore::ackedRevision(const std::string& node) const {
  MutexLock l(mu_);
  auto it = rows_.find(node);
  return it == rows_.end() ? 0 : it->second.ackedRevision;
}

uint64_t NodeStateStore::appliedReportSequence(const std::string& node) const {
  MutexLock l(mu_);
  auto it = rows_.find(node);
  return it == rows_.end() ? 0 : it->second.appliedSequence;
}

uint64_t NodeStateStore::persistedReportSequence(const std::string& node) const {
  MutexLock l(mu_);
  auto it = rows_.find(node);
  return it == rows_.end() ? 0 : it->second.persistedSequence;
}

Status NodeStateStore::flushNow() {
  MutexLock dl(dbMu_);
  struct Pending {
    std::string name;
    int64_t acked;
    uint64_t sequence;
  };
  std::vector<Pending> batch;
  {
    MutexLock l(mu_);
    if (dirtyNames_.empty()) return Status::ok();
    // Only the rows changed since the last flush: not a walk over every node's row.
    batch.reserve(dirtyNames_.size());
    for (auto& name : dirtyNames_) {
      Row& r = rows_[name];
      r.dirty = false;
      batch.push_back({std::move(name), r.ackedRevision, r.appliedSequence});
    }
    dirtyNames_.clear();
    reportsDirty_ = false;
  }
  auto restoreDirty = [&] {
    MutexLock l(mu_);
    for (const auto& p : batch) {
      Row& r = rows_[p.name];
      if (!r.dirty) markDirty(p.name, r);
      if (r.appliedSequence > r.persistedSequence) reportsDirty_ = true;
    }
  };
  if (db_ == nullptr) {
    restoreDirty();
    return unavailableError("cloudhub.db: not open");
  }
  Status result;
  {
    sqlite::Transaction txn(db_, "cloudhub.db");  // rolls back unless committed
    if (!txn.ok()) {
      restoreDirty();
      return asUnavailable(txn.status());
    }
    sqlite::Stmt upsert(db_,
                        "INSERT INTO nodes(name, acked_revision, last_report_sequence, checksum) "
                        "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET "
                        "acked_revision=excluded.acked_revision, "
                        "last_report_sequence=excluded.last_report_sequence, "
                        "checksum=excluded.checksum");
    if (!upsert.ok()) {
      result = sqlError(db_, "prepare upsert");
    } else {
      for (const auto& p : batch) {  // batch outlives every step()
        const auto sequence = static_cast<int64_t>(p.sequence);
        upsert.bind(1, p.name).bind(2, p.acked).bind(3, sequence);
        upsert.bind(4, rowChecksum(p.name, p.acked, sequence));
        if (upsert.step() != SQLITE_DONE) {
          result = sqlError(db_, "upsert");
          break;
        }
        upsert.reset();
      }
    }
    if (result.isOk()) result = asUnavailable(txn.commit());
  }
  if (!result.isOk()) {
    restoreDirty();
    return result;
  }
  std::vector<std::pair<std::string, uint64_t>> advanced;
  {
    MutexLock l(mu_);
    for (const auto& p : batch) {
      Row& r = rows_[p.name];
      if (p.sequence > r.persistedSequence) {
        r.persistedSequence = p.sequence;
        advanced.emplace_back(p.name, p.sequence);
      }
    }
  }
  if (onPersisted_) {
    for (const auto& [name, seq] : advanced) onPersisted_(name, seq);
  }
  return Status::ok();
}

uint64_t NodeStateStore::damagedRows() const {
  MutexLock l(mu_);
  return damagedRows_;
}

bool NodeStateStore::rebuilt() const {
  MutexLock l(mu_);
  return rebuilt_;
}

void NodeStateStore::flushLoop() {
  auto lastFlush = std::chrono::steady_clock::now() - options_.flushInterval;
  bool failing = false;  // after a failed flush, retry at the long interval only
  for (;;) {
    {
      MutexLock l(mu_);
      l.wait(cv_, [&]() EP_REQUIRES(mu_) { return !dirtyNames_.empty() || stopping_; });
      // At most one flush per interval: sleep out the rest of it (stop cuts it short). Reports
      // waiting for their acknowledgement shorten the interval (a report applied during the
      // wait wakes it).
      while (!stopping_) {
        const auto interval = reportsDirty_ && !failing
                                  ? std::min(options_.reportFlushInterval, options_.flushInterval)
                                  : options_.flushInterval;
        if (std::chrono::steady_clock::now() >= lastFlush + interval) break;
        const bool wasReports = reportsDirty_;
        l.waitUntil(cv_, lastFlush + interval,
                    [&]() EP_REQUIRES(mu_) { return stopping_ || (!wasReports && reportsDirty_); });
      }
      if (stopping_ && dirtyNames_.empty()) return;
    }
    lastFlush = std::chrono::steady_clock::now();
    auto s = flushNow();
    failing = !s.isOk();
    if (failing) {
      spdlog::error("cloudhub: persisting node state failed (will retry): {}", s.message());
    }
    MutexLock l(mu_);
    if (stopping_) return;  // that was the final flush
  }
}

}  // namespace ep::cloudhub
