#include "cloudcore/cloudhub/node_state_store.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <filesystem>
#include <vector>

namespace ep::cloudhub {
namespace {

Status sqlError(sqlite3* db, const std::string& what) {
  return unavailableError("cloudhub.db: " + what + ": " +
                          (db ? sqlite3_errmsg(db) : "no database"));
}

Status exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    return unavailableError(std::string("cloudhub.db: ") + sql + ": " + m);
  }
  return Status::ok();
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
  std::lock_guard dl(dbMu_);
  if (sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    Status s = sqlError(db_, "open " + path);
    sqlite3_close(db_);
    db_ = nullptr;
    return s;
  }
  sqlite3_busy_timeout(db_, 5000);
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
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT name, acked_revision, last_report_sequence FROM nodes", -1,
                         &st, nullptr) != SQLITE_OK) {
    return sqlError(db_, "load");
  }
  {
    std::lock_guard l(mu_);
    while (sqlite3_step(st) == SQLITE_ROW) {
      auto* name = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      Row& r = rows_[name ? name : ""];
      r.ackedRevision = sqlite3_column_int64(st, 1);
      r.appliedSequence = r.persistedSequence = static_cast<uint64_t>(sqlite3_column_int64(st, 2));
    }
    stopping_ = false;
  }
  sqlite3_finalize(st);
  flusher_ = std::thread([this] { flushLoop(); });
  return Status::ok();
}

void NodeStateStore::stop() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard dl(dbMu_);
  if (db_ != nullptr) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

void NodeStateStore::recordAck(const std::string& node, int64_t revision) {
  {
    std::lock_guard l(mu_);
    Row& r = rows_[node];
    if (revision <= r.ackedRevision) return;
    r.ackedRevision = revision;
    r.dirty = dirty_ = true;
  }
  cv_.notify_all();
}

void NodeStateStore::recordReportApplied(const std::string& node, uint64_t sequence) {
  {
    std::lock_guard l(mu_);
    Row& r = rows_[node];
    if (sequence <= r.appliedSequence) return;
    r.appliedSequence = sequence;
    r.dirty = dirty_ = true;
  }
  cv_.notify_all();
}

int64_t NodeStateStore::ackedRevision(const std::string& node) const {
  std::lock_guard l(mu_);
  auto it = rows_.find(node);
  return it == rows_.end() ? 0 : it->second.ackedRevision;
}

uint64_t NodeStateStore::appliedReportSequence(const std::string& node) const {
  std::lock_guard l(mu_);
  auto it = rows_.find(node);
  return it == rows_.end() ? 0 : it->second.appliedSequence;
}

uint64_t NodeStateStore::persistedReportSequence(const std::string& node) const {
  std::lock_guard l(mu_);
  auto it = rows_.find(node);
  return it == rows_.end() ? 0 : it->second.persistedSequence;
}

Status NodeStateStore::flushNow() {
  std::lock_guard dl(dbMu_);
  struct Pending {
    std::string name;
    int64_t acked;
    uint64_t sequence;
  };
  std::vector<Pending> batch;
  {
    std::lock_guard l(mu_);
    if (!dirty_) return Status::ok();
    for (auto& [name, r] : rows_) {
      if (!r.dirty) continue;
      batch.push_back({name, r.ackedRevision, r.appliedSequence});
      r.dirty = false;
    }
    dirty_ = false;
  }
  auto restoreDirty = [&] {
    std::lock_guard l(mu_);
    for (const auto& p : batch) rows_[p.name].dirty = true;
    dirty_ = true;
  };
  if (db_ == nullptr) {
    restoreDirty();
    return unavailableError("cloudhub.db: not open");
  }
  if (auto s = exec(db_, "BEGIN IMMEDIATE"); !s.isOk()) {
    restoreDirty();
    return s;
  }
  sqlite3_stmt* st = nullptr;
  Status result;
  if (sqlite3_prepare_v2(db_,
                         "INSERT INTO nodes(name, acked_revision, last_report_sequence) "
                         "VALUES(?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET "
                         "acked_revision=excluded.acked_revision, "
                         "last_report_sequence=excluded.last_report_sequence",
                         -1, &st, nullptr) != SQLITE_OK) {
    result = sqlError(db_, "prepare upsert");
  } else {
    for (const auto& p : batch) {
      sqlite3_bind_text(st, 1, p.name.data(), static_cast<int>(p.name.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 2, p.acked);
      sqlite3_bind_int64(st, 3, static_cast<int64_t>(p.sequence));
      if (sqlite3_step(st) != SQLITE_DONE) {
        result = sqlError(db_, "upsert");
        break;
      }
      sqlite3_reset(st);
    }
  }
  sqlite3_finalize(st);
  if (result.isOk()) result = exec(db_, "COMMIT");
  if (!result.isOk()) {
    exec(db_, "ROLLBACK");
    restoreDirty();
    return result;
  }
  std::vector<std::pair<std::string, uint64_t>> advanced;
  {
    std::lock_guard l(mu_);
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
  for (;;) {
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return dirty_ || stopping_; });
      if (!stopping_) {
        // At most one flush per interval: sleep out the rest of it (stop cuts it short).
        cv_.wait_until(l, lastFlush + options_.flushInterval, [&] { return stopping_; });
      }
      if (stopping_ && !dirty_) return;
    }
    lastFlush = std::chrono::steady_clock::now();
    if (auto s = flushNow(); !s.isOk()) {
      spdlog::error("cloudhub: persisting node state failed (will retry): {}", s.message());
    }
    std::lock_guard l(mu_);
    if (stopping_) return;  // that was the final flush
  }
}

}  // namespace ep::cloudhub
