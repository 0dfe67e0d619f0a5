#include "common/sqlite/sqlite.h"

#include <sqlite3.h>

#include <cstring>
#include <filesystem>

namespace ep::sqlite {

Stmt::Stmt(sqlite3* db, const char* sql) : db_(db) {
  rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
}

Stmt::~Stmt() {
  sqlite3_finalize(stmt_);
}

bool Stmt::ok() const {
  return rc_ == SQLITE_OK;
}

Stmt& Stmt::bind(int i, const std::string& s) {
  sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  return *this;
}

Stmt& Stmt::bindBlob(int i, const std::string& s) {
  sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  return *this;
}

Stmt& Stmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

Stmt& Stmt::bindNull(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

int Stmt::step() {
  return sqlite3_step(stmt_);
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Stmt::int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string Stmt::text(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

std::string_view Stmt::view(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n))
           : std::string_view();
}

bool Stmt::isNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

std::string Stmt::error() const {
  return sqlite3_errmsg(db_);
}

Status exec(sqlite3* db, const char* sql, std::string_view context) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown sqlite error";
    sqlite3_free(err);
    return internalError(std::string(context) + ": " + msg + " (in: " + sql + ")");
  }
  return Status::ok();
}

Result<sqlite3*> openDatabase(const std::string& path, bool readOnly,
                              std::chrono::milliseconds busyTimeout) {
  sqlite3* db = nullptr;
  int flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return unavailableError(path + ": " + msg);
  }
  sqlite3_busy_timeout(db, static_cast<int>(busyTimeout.count()));
  return db;
}

Transaction::Transaction(sqlite3* db, std::string_view context)
    : db_(db), context_(context), begin_(exec(db, "BEGIN IMMEDIATE", context)) {}

Transaction::~Transaction() {
  if (begin_.isOk() && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status Transaction::commit() {
  Status s = exec(db_, "COMMIT", context_);
  done_ = s.isOk();
  return s;
}

Result<sqlite3*> openDurableDatabase(const std::string& path, const std::string& name,
                                     std::initializer_list<const char*> schema,
                                     std::chrono::milliseconds busyTimeout) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  auto db = openDatabase(path, /*readOnly=*/false, busyTimeout);
  if (!db) return unavailableError(name + ": open " + db.status().message());
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"}) {
    if (auto s = exec(*db, sql, name); !s.isOk()) {
      sqlite3_close(*db);
      return unavailableError(s.message());
    }
  }
  for (const char* sql : schema) {
    if (auto s = exec(*db, sql, name); !s.isOk()) {
      sqlite3_close(*db);
      return unavailableError(s.message());
    }
  }
  return *db;
}

RowChecksum& RowChecksum::add(const void* data, size_t n) {
  const auto* b = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h_ ^= b[i];
    h_ *= 1099511628211ULL;
  }
  return *this;
}

WordChecksum& WordChecksum::add(const void* data, size_t n) {
  const auto* b = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, b + i, 8);
    mix(w);
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, b + i, n - i);
    mix(w ^ (uint64_t{n - i} << 56));  // the tail's length counts
  }
  return *this;
}

WordChecksum& WordChecksum::add(std::string_view s) {
  add(static_cast<int64_t>(s.size()));
  return add(s.data(), s.size());
}

RowChecksum& RowChecksum::add(std::string_view s) {
  add(static_cast<int64_t>(s.size()));
  return add(s.data(), s.size());
}

}  // namespace ep::sqlite
