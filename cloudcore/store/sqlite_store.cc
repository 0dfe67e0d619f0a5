#include "cloudcore/store/sqlite_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>

#include "common/sqlite/sqlite.h"

namespace ep::store {

namespace {

using sqlite::exec;
using sqlite::Stmt;

std::string keyString(const std::string& resource, const std::string& ns, const std::string& name) {
  return ns.empty() ? resource + " \"" + name + "\"" : resource + " \"" + ns + "/" + name + "\"";
}

// Continue tokens: "<revision>/<namespace>/<name>" hex-encoded so they are opaque and URL-safe.
std::string encodeContinue(int64_t rev, const std::string& ns, const std::string& name) {
  std::string raw = std::to_string(rev) + "/" + ns + "/" + name;
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool decodeContinue(const std::string& token, int64_t& rev, std::string& ns, std::string& name) {
  if (token.size() % 2 != 0) return false;
  std::string raw;
  for (size_t i = 0; i < token.size(); i += 2) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = hex(token[i]), lo = hex(token[i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw.push_back(static_cast<char>(hi * 16 + lo));
  }
  auto a = raw.find('/');
  if (a == std::string::npos) return false;
  auto b = raw.find('/', a + 1);
  if (b == std::string::npos) return false;
  try {
    rev = std::stoll(raw.substr(0, a));
  } catch (...) {
    return false;
  }
  ns = raw.substr(a + 1, b - a - 1);
  name = raw.substr(b + 1);
  return true;
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS objects(
  resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  value BLOB NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL,
  PRIMARY KEY(resource, namespace, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  rev INTEGER PRIMARY KEY, type INTEGER NOT NULL,
  resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  value BLOB NOT NULL, prev_value BLOB, create_rev INTEGER NOT NULL, ts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('revision', 0), ('compacted', 0), ('schema', 1);
)sql";

}  // namespace

// One queued write and the promise its caller waits on.
struct PendingWrite {
  enum class Kind { kCreate, kUpdate, kDelete, kCompact, kProbe } kind;
  std::string resource, ns, name, value;
  int64_t expectedRevision = 0;
  std::promise<Result<Object>> done;
};

// A checked-out read connection; returned to the pool on destruction.
class SqliteStore::ReadConn {
 public:
  ReadConn(SqliteStore* store, sqlite3* db) : store_(store), db_(db) {}
  ReadConn(ReadConn&& o) noexcept : store_(o.store_), db_(o.db_) { o.db_ = nullptr; }
  ~ReadConn() {
    if (db_) {
      std::lock_guard lock(store_->readMu_);
      store_->idleReaders_.push_back(db_);
    }
  }
  sqlite3* get() const { return db_; }

 private:
  SqliteStore* store_;
  sqlite3* db_;
};

// Watch implementation; see the hub description in the header. Lock order: hubMu_, then mu_.
class SqliteWatch final : public Watch {
 public:
  SqliteWatch(SqliteStore* store, WatchOptions options, int64_t from, int64_t target, size_t buffer)
      : store_(store),
        options_(std::move(options)),
        lastRevision_(from),
        target_(target),
        catchingUp_(from < target),
        buffer_(buffer) {}

  ~SqliteWatch() override {
    {
      std::lock_guard lock(mu_);
      notify_ = nullptr;  // the owner is going away: no callbacks from here on
    }
    stop();
    store_->unregisterWatch(this);
  }

  bool matches(const Object& o) const {
    return (options_.resource.empty() || options_.resource == o.resource) &&
           (options_.namespace_.empty() || options_.namespace_ == o.namespace_);
  }

  // Called by the publisher with hubMu_ held. Returns true if the consumer should be notified.
  bool push(const Event& e) {
    std::lock_guard lock(mu_);
    if (done_ || overflow_) return false;
    if (live_.size() >= buffer_) {
      overflow_ = true;
      live_.clear();
      return true;
    }
    live_.push_back(e);
    return live_.size() == 1;
  }

  void notify() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      fn = notify_;
    }
    if (fn) fn();
  }

  std::vector<Event> poll(size_t max) override {
    std::vector<Event> out;
    if (max == 0) return out;
    bool overflow;
    {
      std::lock_guard lock(mu_);
      if (done_) return out;
      overflow = overflow_;
    }
    if (overflow) {
      // Re-anchor: everything after the hub's published revision will arrive live again.
      std::lock_guard hub(store_->hubMu_);
      std::lock_guard lock(mu_);
      overflow_ = false;
      live_.clear();
      catchingUp_ = true;
      target_ = store_->publishedRevision_;
    }
    int64_t from, to;
    bool catchingUp;
    {
      std::lock_guard lock(mu_);
      catchingUp = catchingUp_;
      from = lastRevision_;
      to = target_;
    }
    if (catchingUp) {
      auto history = store_->readHistory(options_.resource, options_.namespace_, from, to, max);
      std::lock_guard lock(mu_);
      if (!history.isOk()) {
        finishLocked(history.status());
        return out;
      }
      out = std::move(history.value());
      if (!out.empty()) lastRevision_ = out.back().object.modRevision;
      if (out.size() < max) {
        catchingUp_ = false;
        lastRevision_ = std::max(lastRevision_, target_);
      } else {
        return out;
      }
    }
    std::lock_guard lock(mu_);
    while (out.size() < max && !live_.empty()) {
      Event& e = live_.front();
      if (e.object.modRevision > lastRevision_) {
        lastRevision_ = e.object.modRevision;
        out.push_back(std::move(e));
      }
      live_.pop_front();
    }
    return out;
  }

  void setNotify(std::function<void()> notify) override {
    bool pending;
    {
      std::lock_guard lock(mu_);
      notify_ = std::move(notify);
      pending = !live_.empty() || catchingUp_ || overflow_ || done_;
    }
    if (pending) this->notify();
  }

  bool done() const override {
    std::lock_guard lock(mu_);
    return done_;
  }
  Status error() const override {
    std::lock_guard lock(mu_);
    return error_;
  }
  void stop() override { finish(Status::ok()); }

  void finish(Status why) {
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      finishLocked(std::move(why));
    }
    notify();
  }

 private:
  void finishLocked(Status why) {
    done_ = true;
    error_ = std::move(why);
    live_.clear();
  }

  SqliteStore* const store_;
  const WatchOptions options_;
  mutable std::mutex mu_;
  int64_t lastRevision_;          // guarded by mu_: highest revision delivered or skipped
  int64_t target_;                // guarded by mu_: history up to here is read from disk
  bool catchingUp_;               // guarded by mu_
  bool overflow_ = false;         // guarded by mu_
  bool done_ = false;             // guarded by mu_
  Status error_;                  // guarded by mu_
  std::deque<Event> live_;        // guarded by mu_
  std::function<void()> notify_;  // guarded by mu_
  const size_t buffer_;
};

SqliteStore::SqliteStore(SqliteStoreOptions options, Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

SqliteStore::~SqliteStore() {
  stop();
}

Status SqliteStore::start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dataDir, ec);
  if (ec)
    return unavailableError("dataDir: cannot create " + options_.dataDir + ": " + ec.message());
  std::string lockPath = options_.dataDir + "/store.lock";
  lockFd_ = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lockFd_ < 0 || ::flock(lockFd_, LOCK_EX | LOCK_NB) != 0) {
    if (lockFd_ >= 0) ::close(lockFd_);
    lockFd_ = -1;
    return unavailableError("dataDir: " + options_.dataDir +
                            " is in use by another process (lock " + lockPath + ")");
  }
  std::string path = options_.dataDir + "/store.db";
  auto db = sqlite::openDatabase(path, /*readOnly=*/false);
  if (!db) return unavailableError("cannot open store " + db.status().message());
  writeDb_ = *db;
  // WAL lets readers run beside the single writer; synchronous=FULL fsyncs the WAL on every
  // commit, which is what makes an acknowledged write survive power loss (NORMAL would not).
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                             "PRAGMA foreign_keys=OFF", "PRAGMA wal_autocheckpoint=4000"}) {
    if (auto s = exec(writeDb_, pragma); !s.isOk()) return s;
  }
  if (auto s = exec(writeDb_, kSchema); !s.isOk()) return s;
  {
    Stmt q(writeDb_, "SELECT key, value FROM meta");
    while (q.step() == SQLITE_ROW) {
      std::string key = q.text(0);
      if (key == "revision") revision_ = q.int64(1);
      if (key == "compacted") compacted_ = q.int64(1);
    }
  }
  {
    std::lock_guard lock(hubMu_);
    publishedRevision_ = revision_;
  }
  {
    std::lock_guard lock(queueMu_);
    stopping_ = false;
  }
  writer_ = std::thread([this] { writerLoop(); });
  if (options_.compactionInterval.count() > 0) {
    compactor_ = std::thread([this] { compactorLoop(); });
  }
  spdlog::info("store: sqlite {} at revision {} (compacted {})", path, revision_.load(),
               compacted_.load());
  return Status::ok();
}

void SqliteStore::stop() {
  {
    std::lock_guard lock(queueMu_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  queueCv_.notify_all();
  compactorCv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (compactor_.joinable()) compactor_.join();
  std::vector<SqliteWatch*> watches;
  {
    std::lock_guard lock(hubMu_);
    watches = watches_;
  }
  for (auto* w : watches) w->finish(unavailableError("store is shutting down"));
  {
    std::lock_guard lock(readMu_);
    for (auto* db : allReaders_) sqlite3_close(db);
    allReaders_.clear();
    idleReaders_.clear();
  }
  if (writeDb_) {
    sqlite3_close(writeDb_);
    writeDb_ = nullptr;
  }
  if (lockFd_ >= 0) {
    ::close(lockFd_);
    lockFd_ = -1;
  }
}

SqliteStore::ReadConn SqliteStore::acquireRead() {
  {
    std::lock_guard lock(readMu_);
    if (!idleReaders_.empty()) {
      sqlite3* db = idleReaders_.back();
      idleReaders_.pop_back();
      return ReadConn(this, db);
    }
  }
  auto db = sqlite::openDatabase(options_.dataDir + "/store.db", /*readOnly=*/true);
  if (!db) return ReadConn(this, nullptr);
  std::lock_guard lock(readMu_);
  allReaders_.push_back(*db);
  return ReadConn(this, *db);
}

Result<Object> SqliteStore::get(const std::string& resource, const std::string& ns,
                                const std::string& name) {
  auto conn = acquireRead();
  if (!conn.get()) return unavailableError("store: no read connection");
  Stmt q(conn.get(),
         "SELECT value, create_rev, mod_rev FROM objects WHERE resource=? AND namespace=? AND "
         "name=?");
  q.bind(1, resource).bind(2, ns).bind(3, name);
  int rc = q.step();
  if (rc == SQLITE_ROW) {
    return Object{resource, ns, name, q.text(0), q.int64(1), q.int64(2)};
  }
  if (rc == SQLITE_DONE) return notFoundError(keyString(resource, ns, name) + " not found");
  return unavailableError("store: read failed: " + q.error());
}

Result<ListResult> SqliteStore::list(const ListOptions& options) {
  ListResult result;
  std::string startNs, startName;
  bool hasStart = false;
  int64_t tokenRev = 0;
  if (!options.continueToken.empty()) {
    if (!decodeContinue(options.continueToken, tokenRev, startNs, startName)) {
      return badRequestError("continue: invalid continue token");
    }
    if (tokenRev < compacted_.load()) {
      return Status(Code::kExpired,
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter.");
    }
    hasStart = true;
  }
  auto conn = acquireRead();
  if (!conn.get()) return unavailableError("store: no read connection");
  // One read transaction so the revision and the rows are one snapshot.
  sqlite::Transaction txn(conn.get(), "store");  // read-only: ends (rolls back) on return
  if (!txn.ok()) return unavailableError(txn.status().message());
  {
    Stmt q(conn.get(), "SELECT value FROM meta WHERE key='revision'");
    if (q.step() == SQLITE_ROW) result.revision = q.int64(0);
  }
  std::string sql =
      "SELECT namespace, name, value, create_rev, mod_rev FROM objects WHERE resource=?1";
  if (!options.namespace_.empty()) sql += " AND namespace=?2";
  if (hasStart) sql += " AND (namespace, name) > (?3, ?4)";
  sql += " ORDER BY namespace, name";
  Stmt q(conn.get(), sql.c_str());
  if (!q.ok()) return internalError("store: " + q.error());
  q.bind(1, options.resource);
  if (!options.namespace_.empty()) q.bind(2, options.namespace_);
  if (hasStart) q.bind(3, startNs).bind(4, startName);
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    Object o{options.resource, q.text(0), q.text(1), q.text(2), q.int64(3), q.int64(4)};
    if (options.predicate && !options.predicate(o)) continue;
    if (options.limit > 0 && static_cast<int64_t>(result.items.size()) == options.limit) {
      const Object& last = result.items.back();
      result.continueToken =
          encodeContinue(hasStart ? tokenRev : result.revision, last.namespace_, last.name);
      break;
    }
    result.items.push_back(std::move(o));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return unavailableError("store: list failed: " + q.error());
  }
  if (hasStart) result.revision = tokenRev;
  return result;
}

Result<Object> SqliteStore::submit(std::unique_ptr<PendingWrite> write) {
  auto future = write->done.get_future();
  {
    std::lock_guard lock(queueMu_);
    if (stopping_ || !writeDb_) return unavailableError("store is not running");
    queue_.push_back(std::move(write));
  }
  queueCv_.notify_one();
  return future.get();
}

Result<Object> SqliteStore::create(const std::string& resource, const std::string& ns,
                                   const std::string& name, std::string value) {
  auto w = std::make_unique<PendingWrite>();
  w->kind = PendingWrite::Kind::kCreate;
  w->resource = resource;
  w->ns = ns;
  w->name = name;
  w->value = std::move(value);
  return submit(std::move(w));
}

Result<Object> SqliteStore::update(const std::string& resource, const std::string& ns,
                                   const std::string& name, std::string value,
                                   int64_t expectedRevision) {
  auto w = std::make_unique<PendingWrite>();
  w->kind = PendingWrite::Kind::kUpdate;
  w->resource = resource;
  w->ns = ns;
  w->name = name;
  w->value = std::move(value);
  w->expectedRevision = expectedRevision;
  return submit(std::move(w));
}

Result<Object> SqliteStore::remove(const std::string& resource, const std::string& ns,
                                   const std::string& name, int64_t expectedRevision) {
  auto w = std::make_unique<PendingWrite>();
  w->kind = PendingWrite::Kind::kDelete;
  w->resource = resource;
  w->ns = ns;
  w->name = name;
  w->expectedRevision = expectedRevision;
  return submit(std::move(w));
}

Status SqliteStore::compact(int64_t revision) {
  auto w = std::make_unique<PendingWrite>();
  w->kind = PendingWrite::Kind::kCompact;
  w->expectedRevision = revision;
  auto r = submit(std::move(w));
  return r.isOk() ? Status::ok() : r.status();
}

Status SqliteStore::probeWrite() {
  auto w = std::make_unique<PendingWrite>();
  w->kind = PendingWrite::Kind::kProbe;
  auto r = submit(std::move(w));
  return r.isOk() ? Status::ok() : r.status();
}

Status SqliteStore::compactOnce() {
  int64_t cutoff =
      clock_.nowMillis() -
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.historyWindow).count();
  int64_t rev = 0;
  {
    auto conn = acquireRead();
    if (!conn.get()) return unavailableError("store: no read connection");
    Stmt q(conn.get(), "SELECT max(rev) FROM events WHERE ts < ?");
    q.bind(1, cutoff);
    if (q.step() == SQLITE_ROW && !q.isNull(0)) rev = q.int64(0);
  }
  if (rev <= compacted_.load()) return Status::ok();
  return compact(rev);
}

void SqliteStore::compactorLoop() {
  std::unique_lock lock(queueMu_);
  while (!stopping_) {
    compactorCv_.wait_for(lock, options_.compactionInterval);
    if (stopping_) break;
    lock.unlock();
    if (auto s = compactOnce(); !s.isOk()) spdlog::warn("store: compaction: {}", s.toString());
    lock.lock();
  }
}

void SqliteStore::writerLoop() {
  std::vector<std::unique_ptr<PendingWrite>> batch;
  for (;;) {
    {
      std::unique_lock lock(queueMu_);
      queueCv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) break;
      while (!queue_.empty() && batch.size() < options_.maxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    commitBatch(batch);
    batch.clear();
  }
  // Whatever was queued after stop() began is refused, never silently dropped.
  std::lock_guard lock(queueMu_);
  for (auto& w : queue_) w->done.set_value(unavailableError("store is shutting down"));
  queue_.clear();
}

void SqliteStore::commitBatch(std::vector<std::unique_ptr<PendingWrite>>& batch) {
  std::vector<Result<Object>> results;
  std::vector<Event> events;
  results.reserve(batch.size());
  int64_t rev = revision_.load();
  const int64_t startRev = rev;
  int64_t newCompacted = compacted_.load();
  const int64_t now = clock_.nowMillis();

  auto failAll = [&](const Status& s) {
    (void)exec(writeDb_, "ROLLBACK");  // the batch fails with `s` either way
    for (auto& w : batch) w->done.set_value(s);
  };
  if (auto s = exec(writeDb_, "BEGIN IMMEDIATE"); !s.isOk()) {
    failAll(unavailableError(s.message()));
    return;
  }
  Stmt sel(writeDb_,
           "SELECT value, create_rev, mod_rev FROM objects WHERE resource=? AND namespace=? AND "
           "name=?");
  Stmt upsert(writeDb_,
              "INSERT OR REPLACE INTO objects(resource, namespace, name, value, create_rev, "
              "mod_rev) VALUES (?,?,?,?,?,?)");
  Stmt del(writeDb_, "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?");
  Stmt ev(writeDb_,
          "INSERT INTO events(rev, type, resource, namespace, name, value, prev_value, "
          "create_rev, ts) VALUES (?,?,?,?,?,?,?,?,?)");
  Stmt compactEvents(writeDb_, "DELETE FROM events WHERE rev <= ?");
  Stmt probe(writeDb_, "INSERT OR REPLACE INTO meta(key, value) VALUES('write_probe', ?)");
  std::string dbError;

  for (auto& w : batch) {
    if (!dbError.empty()) break;
    if (w->kind == PendingWrite::Kind::kProbe) {
      probe.bind(1, now);
      if (probe.step() != SQLITE_DONE) dbError = probe.error();
      probe.reset();
      results.emplace_back(Object{});
      continue;
    }
    if (w->kind == PendingWrite::Kind::kCompact) {
      int64_t target = std::min(w->expectedRevision, rev);
      if (target <= newCompacted) {
        results.emplace_back(Object{});
        continue;
      }
      compactEvents.bind(1, target);
      if (compactEvents.step() != SQLITE_DONE) dbError = compactEvents.error();
      compactEvents.reset();
      newCompacted = target;
      results.emplace_back(Object{});
      continue;
    }
    sel.bind(1, w->resource).bind(2, w->ns).bind(3, w->name);
    int rc = sel.step();
    bool exists = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      dbError = sel.error();
      sel.reset();
      break;
    }
    Object current;
    if (exists)
      current = Object{w->resource, w->ns, w->name, sel.text(0), sel.int64(1), sel.int64(2)};
    sel.reset();
    const std::string key = keyString(w->resource, w->ns, w->name);

    if (w->kind == PendingWrite::Kind::kCreate && exists) {
      results.emplace_back(Status(Code::kAlreadyExists, key + " already exists"));
      continue;
    }
    if (w->kind != PendingWrite::Kind::kCreate) {
      if (!exists) {
        results.emplace_back(notFoundError(key + " not found"));
        continue;
      }
      if (w->expectedRevision != 0 && w->expectedRevision != current.modRevision) {
        results.emplace_back(
            Status(Code::kConflict,
                   "the object has been modified; please apply your changes to the "
                   "latest version and try again (" +
                       key + " is at revision " + std::to_string(current.modRevision) + ", not " +
                       std::to_string(w->expectedRevision) + ")"));
        continue;
      }
    }
    ++rev;
    Event e;
    e.prevValue = exists ? current.value : std::string();
    if (w->kind == PendingWrite::Kind::kDelete) {
      del.bind(1, w->resource).bind(2, w->ns).bind(3, w->name);
      if (del.step() != SQLITE_DONE) dbError = del.error();
      del.reset();
      e.type = EventType::kDeleted;
      e.object = current;
      e.object.modRevision = rev;
    } else {
      e.type = exists ? EventType::kModified : EventType::kAdded;
      e.object = Object{
          w->resource, w->ns, w->name, std::move(w->value), exists ? current.createRevision : rev,
          rev};
      upsert.bind(1, w->resource)
          .bind(2, w->ns)
          .bind(3, w->name)
          .bindBlob(4, e.object.value)
          .bind(5, e.object.createRevision)
          .bind(6, rev);
      if (upsert.step() != SQLITE_DONE) dbError = upsert.error();
      upsert.reset();
    }
    ev.bind(1, rev)
        .bind(2, static_cast<int64_t>(e.type))
        .bind(3, w->resource)
        .bind(4, w->ns)
        .bind(5, w->name)
        .bindBlob(6, e.object.value);
    if (exists) {
      ev.bindBlob(7, e.prevValue);
    } else {
      ev.bindNull(7);
    }
    ev.bind(8, e.object.createRevision).bind(9, now);
    if (ev.step() != SQLITE_DONE) dbError = ev.error();
    ev.reset();
    results.emplace_back(e.object);
    events.push_back(std::move(e));
  }
  if (dbError.empty()) {
    static const std::string kRevisionKey = "revision", kCompactedKey = "compacted";
    Stmt meta(writeDb_, "UPDATE meta SET value=? WHERE key=?");
    meta.bind(1, rev).bind(2, kRevisionKey);
    if (meta.step() != SQLITE_DONE) dbError = meta.error();
    meta.reset();
    meta.bind(1, newCompacted).bind(2, kCompactedKey);
    if (dbError.empty() && meta.step() != SQLITE_DONE) dbError = meta.error();
  }
  if (dbError.empty()) {
    if (auto s = exec(writeDb_, "COMMIT"); !s.isOk()) dbError = s.message();
  }
  if (!dbError.empty()) {
    spdlog::error("store: batch of {} writes failed: {}", batch.size(), dbError);
    failAll(unavailableError("store write failed: " + dbError));
    return;
  }
  revision_ = rev;
  compacted_ = newCompacted;
  for (size_t i = 0; i < batch.size(); ++i) batch[i]->done.set_value(std::move(results[i]));
  if (rev != startRev) publish(events, rev);
}

void SqliteStore::publish(const std::vector<Event>& events, int64_t lastRevision) {
  std::vector<SqliteWatch*> toNotify;
  {
    std::lock_guard lock(hubMu_);
    for (auto* w : watches_) {
      bool notify = false;
      for (const auto& e : events) {
        if (w->matches(e.object) && w->push(e)) notify = true;
      }
      if (notify) toNotify.push_back(w);
    }
    publishedRevision_ = lastRevision;
    // Notify while holding hubMu_ so a watch cannot be destroyed concurrently; callbacks only
    // post work and take no store lock.
    for (auto* w : toNotify) w->notify();
  }
}

Result<std::unique_ptr<Watch>> SqliteStore::watch(const WatchOptions& options) {
  std::lock_guard lock(hubMu_);
  {
    std::lock_guard q(queueMu_);
    if (stopping_ || !writeDb_) return unavailableError("store is not running");
  }
  int64_t from = options.fromRevision == 0 ? publishedRevision_ : options.fromRevision;
  if (from < compacted_.load()) {
    return Status(Code::kExpired, "too old resource version: " + std::to_string(from) + " (" +
                                      std::to_string(compacted_.load()) + ")");
  }
  // `from` may be above publishedRevision_ (a list read a batch not yet published): live
  // events at or below `from` are skipped by poll().
  auto w = std::make_unique<SqliteWatch>(this, options, from, publishedRevision_,
                                         options_.watchBufferEvents);
  watches_.push_back(w.get());
  return std::unique_ptr<Watch>(std::move(w));
}

void SqliteStore::unregisterWatch(SqliteWatch* watch) {
  std::lock_guard lock(hubMu_);
  watches_.erase(std::remove(watches_.begin(), watches_.end(), watch), watches_.end());
}

Result<std::vector<Event>> SqliteStore::readHistory(const std::string& resource,
                                                    const std::string& ns, int64_t from, int64_t to,
                                                    size_t max) {
  std::vector<Event> out;
  auto conn = acquireRead();
  if (!conn.get()) return unavailableError("store: no read connection");
  sqlite::Transaction txn(conn.get(), "store");  // read-only: ends (rolls back) on return
  if (!txn.ok()) return unavailableError(txn.status().message());
  {
    Stmt q(conn.get(), "SELECT value FROM meta WHERE key='compacted'");
    if (q.step() == SQLITE_ROW && from < q.int64(0)) {
      return Status(Code::kExpired, "too old resource version: " + std::to_string(from) + " (" +
                                        std::to_string(q.int64(0)) + ")");
    }
  }
  std::string sql =
      "SELECT rev, type, resource, namespace, name, value, prev_value, create_rev FROM events "
      "WHERE rev > ?1 AND rev <= ?2";
  if (!resource.empty()) sql += " AND resource = ?3";
  if (!ns.empty()) sql += " AND namespace = ?4";
  sql += " ORDER BY rev LIMIT ?5";
  Stmt q(conn.get(), sql.c_str());
  q.bind(1, from).bind(2, to);
  if (!resource.empty()) q.bind(3, resource);
  if (!ns.empty()) q.bind(4, ns);
  q.bind(5, static_cast<int64_t>(max));
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    Event e;
    e.type = static_cast<EventType>(q.int64(1));
    e.object = Object{q.text(2), q.text(3), q.text(4), q.text(5), q.int64(7), q.int64(0)};
    e.prevValue = q.text(6);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return unavailableError("store: history read failed: " + q.error());
  return out;
}

int64_t SqliteStore::currentRevision() {
  return revision_.load();
}
int64_t SqliteStore::compactedRevision() {
  return compacted_.load();
}

}  // namespace ep::store
