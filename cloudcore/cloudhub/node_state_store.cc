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
  auto db = sqlite::openDatabase(path, /*readOnly=*/false, std::chrono::seconds(5));
  if (!db) return unavailableError("cloudhub.db: open " + db.status().message());
  db_ = *db;
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                          "CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, "
                          "acked_revision INTEGER NOT NULL DEFAULT 0, "
                          "last_report_sequence INTEGER NOT NULL DEFAULT 0)"}) {
    if (auto s = exec(db_, sql); !s.isOk()) {
      sqlite3_close(db_);
      db_ = nullptr;
      return s;
    }
  }
  {
    sqlite::Stmt load(db_, "SELECT name, acked_revision, last_report_sequence FROM nodes");
    if (!load.ok()) return sqlError(db_, "load");
    MutexLock l(mu_);
    while (load.step() == SQLITE_ROW) {
      Row& r = rows_[load.text(0)];
      r.ackedRevision = load.int64(1);
      r.appliedSequence = r.persistedSequence = static_cast<uint64_t>(load.int64(2));
    }
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

void NodeStateStore::recordAck(const std::string& node, int64_t revision) {
  {
    MutexLock l(mu_);
    Row& r = rows_[node];
    if (revision <= r.ackedRevision) return;
    r.ackedRevision = revision;
    r.dirty = dirty_ = true;
  }
  cv_.notify_all();
}

void NodeStateStore::recordReportApplied(const std::string& node, uint64_t sequence) {
  {
    MutexLock l(mu_);
    Row& r = rows_[node];
    if (sequence <= r.appliedSequence) return;
    r.appliedSequence = sequence;
    r.dirty = dirty_ = reportsDirty_ = true;
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
    if (!dirty_) return Status::ok();
    for (auto& [name, r] : rows_) {
      if (!r.dirty) continue;
      batch.push_back({name, r.ackedRevision, r.appliedSequence});
      r.dirty = false;
    }
    dirty_ = reportsDirty_ = false;
  }
  auto restoreDirty = [&] {
    MutexLock l(mu_);
    for (const auto& p : batch) {
      Row& r = rows_[p.name];
      r.dirty = true;
      if (r.appliedSequence > r.persistedSequence) reportsDirty_ = true;
    }
    dirty_ = true;
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
                        "INSERT INTO nodes(name, acked_revision, last_report_sequence) "
                        "VALUES(?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET "
                        "acked_revision=excluded.acked_revision, "
                        "last_report_sequence=excluded.last_report_sequence");
    if (!upsert.ok()) {
      result = sqlError(db_, "prepare upsert");
    } else {
      for (const auto& p : batch) {  // batch outlives every step()
        upsert.bind(1, p.name).bind(2, p.acked).bind(3, static_cast<int64_t>(p.sequence));
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

void NodeStateStore::flushLoop() {
  auto lastFlush = std::chrono::steady_clock::now() - options_.flushInterval;
  bool failing = false;  // after a failed flush, retry at the long interval only
  for (;;) {
    {
      MutexLock l(mu_);
      l.wait(cv_, [&]() EP_REQUIRES(mu_) { return dirty_ || stopping_; });
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
      if (stopping_ && !dirty_) return;
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
