#pragma once

// Small RAII helpers over the SQLite C API shared by every module that keeps a database
// (cloudcore store, cloudhub node state, edge cache). Callers that compare step() results against
// SQLITE_ROW / SQLITE_DONE include <sqlite3.h> themselves; this header only forward-declares.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ep::sqlite {

// A prepared statement, finalized on destruction. Thread-compatible: use it on one thread at a
// time, and only while its connection is open.
class Stmt {
 public:
  // Prepares sql on db; check ok() before use (a failed prepare leaves error() set on db).
  Stmt(sqlite3* db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const;

  // Text and blobs are bound without copying (SQLITE_STATIC): the string must outlive the last
  // step() that uses it, so binding a temporary is refused at compile time.
  Stmt& bind(int i, std::string&&) = delete;
  Stmt& bindBlob(int i, std::string&&) = delete;
  Stmt& bind(int i, const std::string& s);
  Stmt& bindBlob(int i, const std::string& s);
  Stmt& bind(int i, int64_t v);
  Stmt& bindNull(int i);

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step();
  // Makes the statement runnable again and clears every binding.
  void reset();

  int64_t int64(int col) const;
  // The column's bytes (text or blob); empty for NULL.
  std::string text(int col) const;
  // The same bytes without a copy, valid until the next step(), reset() or destruction.
  std::string_view view(int col) const;
  bool isNull(int col) const;
  // The connection's most recent error message.
  std::string error() const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// Runs one or more statements without results. On failure: kInternal with the message
// "<context>: <sqlite message> (in: <sql>)".
Status exec(sqlite3* db, const char* sql, std::string_view context = "sqlite");

// Opens (read-write: creating) the database at path in multi-thread mode (SQLITE_OPEN_NOMUTEX:
// the caller serializes use of the connection) with the given busy timeout. The caller owns the
// handle and closes it with sqlite3_close. On failure: kUnavailable with the message
// "<path>: <sqlite message>", for the caller to prefix with what the database is.
Result<sqlite3*> openDatabase(const std::string& path, bool readOnly,
                              std::chrono::milliseconds busyTimeout = std::chrono::seconds(10));

// A module's own durable database: creates the parent directory, opens `path` read-write, sets
// WAL and synchronous=FULL (a commit is fsynced), then runs `schema` (CREATE ... IF NOT EXISTS).
// On failure the handle is closed and kUnavailable names `name` ("router.db: ..."). The caller
// owns the handle.
Result<sqlite3*> openDurableDatabase(
    const std::string& path, const std::string& name, std::initializer_list<const char*> schema,
    std::chrono::milliseconds busyTimeout = std::chrono::seconds(5));

// FNV-1a (64-bit) over the fields of a stored row, for the checksums that make a row changed on
// disk detectable. Add the fields in a fixed order; strings are length-prefixed so that field
// boundaries count.
class RowChecksum {
 public:
  RowChecksum& add(const void* data, size_t n);
  RowChecksum& add(int64_t v) { return add(&v, sizeof v); }
  RowChecksum& add(std::string_view s);
  int64_t value() const { return static_cast<int64_t>(h_); }

 private:
  uint64_t h_ = 1469598103934665603ULL;
};

// The same contract as RowChecksum, eight bytes at a time (xor a word, multiply by an odd
// constant: every change confined to one word changes the result), about eight times faster on
// large values: for rows read on every list (the cloud store). Not interchangeable with
// RowChecksum: stored values of one are not values of the other.
class WordChecksum {
 public:
  WordChecksum& add(const void* data, size_t n);
  WordChecksum& add(int64_t v) { return add(&v, sizeof v); }
  WordChecksum& add(std::string_view s);
  int64_t value() const { return static_cast<int64_t>(h_); }

 private:
  void mix(uint64_t word) {
    h_ ^= word;
    h_ *= 0x100000001b3ULL;  // FNV's 64-bit prime
    h_ ^= h_ >> 29;
  }
  uint64_t h_ = 1469598103934665603ULL;
};

// A write transaction (BEGIN IMMEDIATE) that rolls back on destruction unless committed.
// Thread-compatible, like the connection it runs on.
class Transaction {
 public:
  explicit Transaction(sqlite3* db, std::string_view context = "sqlite");
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Whether BEGIN succeeded; status() says why not.
  bool ok() const { return begin_.isOk(); }
  const Status& status() const { return begin_; }
  // COMMIT. On failure the transaction is still rolled back on destruction.
  Status commit();

 private:
  sqlite3* db_;
  std::string context_;
  Status begin_;
  bool done_ = false;
};

}  // namespace ep::sqlite
