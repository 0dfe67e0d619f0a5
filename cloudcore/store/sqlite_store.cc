#include "cloudcore/store/sqlite_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <optional>
#include <set>

#include "cloudcore/store/store_keys.h"
#include "common/sqlite/sqlite.h"
#include "common/thread_annotations.h"

namespace ep::store {

namespace {

using sqlite::exec;
using sqlite::Stmt;

// Every object and history row carries a checksum over all of its columns (WordChecksum):
// a row changed on disk is detected by the read that finds it (docs/store.md, "Damaged data").
// Rows written before schema 2 are checksummed once at start (addChecksums).
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS objects(
  resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  value BLOB NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, checksum INTEGER,
  PRIMARY KEY(resource, namespace, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  rev INTEGER PRIMARY KEY, type INTEGER NOT NULL,
  resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  value BLOB NOT NULL, prev_value BLOB, create_rev INTEGER NOT NULL, ts INTEGER NOT NULL,
  checksum INTEGER);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('revision', 0), ('compacted', 0), ('schema', 2);
)sql";

int64_t objectChecksum(std::string_view resource, std::string_view ns, std::string_view name,
                       std::string_view value, int64_t createRev, int64_t modRev) {
  return sqlite::WordChecksum()
      .add(resource)
      .add(ns)
      .add(name)
      .add(value)
      .add(createRev)
      .add(modRev)
      .value();
}

// prevValue: nullopt for a NULL column (an ADDED event).
int64_t eventChecksum(int64_t rev, int64_t type, std::string_view resource, std::string_view ns,
                      std::string_view name, std::string_view value,
                      std::optional<std::string_view> prevValue, int64_t createRev, int64_t ts) {
  sqlite::WordChecksum c;
  c.add(rev).add(type).add(resource).add(ns).add(name).add(value);
  c.add(int64_t{prevValue ? 1 : 0});
  if (prevValue) c.add(*prevValue);
  return c.add(createRev).add(ts).value();
}

// Columns of the SELECTs below, in this order.
constexpr const char* kObjectColumns = "namespace, name, value, create_rev, mod_rev, checksum";
// One object by its key (a point read, and the writer's read before each write).
constexpr const char* kSelectObjectByKey =
    "SELECT namespace, name, value, create_rev, mod_rev, checksum FROM objects WHERE "
    "resource=? AND namespace=? AND name=?";
constexpr const char* kEventColumns =
    "rev, type, resource, namespace, name, value, prev_value, create_rev, ts, checksum";

bool objectRowIntact(const Stmt& q, std::string_view resource) {
  return !q.isNull(5) && objectChecksum(resource, q.view(0), q.view(1), q.view(2), q.int64(3),
                                        q.int64(4)) == q.int64(5);
}

bool eventRowIntact(const Stmt& q) {
  std::optional<std::string_view> prev;
  if (!q.isNull(6)) prev = q.view(6);
  return !q.isNull(9) && eventChecksum(q.int64(0), q.int64(1), q.view(2), q.view(3), q.view(4),
                                       q.view(5), prev, q.int64(7), q.int64(8)) == q.int64(9);
}

// What a client is told (the data dir is in the log only).
Status damagedObject(const std::string& key) {
  return internalError("store: " + key +
                       " is damaged on disk (checksum mismatch); it is not served. See "
                       "docs/store.md, \"Damaged data\"");
}

// What an operator is told when the database itself is damaged.
Status damagedDatabase(const std::string& path, const std::string& detail) {
  return internalError(
      "store: " + path + " is damaged on disk (" + detail +
      "); cloudcore does not serve from a damaged store. With cloudcore stopped, keep a copy of "
      "the data dir, then restore store.db from a backup, or salvage what is readable: "
      "`sqlite3 store.db .dump | sqlite3 recovered.db`, replace store.db with recovered.db "
      "(remove store.db-wal and store.db-shm) and start cloudcore with --verify. See "
      "docs/store.md, \"Damaged data\"");
}

bool looksCorrupt(const std::string& message) {
  return message.find("malformed") != std::string::npos ||
         message.find("not a database") != std::string::npos ||
         message.find("corrupt") != std::string::npos;
}

}  // namespace

// One queued write and the promise its caller waits on.
struct PendingWrite {
  enum class Kind { kCreate, kUpdate, kDelete, kDeleteUnsafe, kCompact, kProbe } kind;
  std::string resource, ns, name, value;
  int64_t expectedRevision = 0;
  std::promise<Result<Object>> done;
};

// A checked-out read connection; returned to the pool on destruction.
class SqliteStore::ReadConn {
 public:
  ReadConn(SqliteStore* store, Reader* reader) : store_(store), reader_(reader) {}
  ReadConn(ReadConn&& o) noexcept : store_(o.store_), reader_(o.reader_) { o.reader_ = nullptr; }
  ~ReadConn() {
    if (!reader_) return;
    MutexLock lock(store_->readMu_);
    if (!store_->readersClosed_) {
      store_->idleReaders_.push_back(reader_);
      return;
    }
    // stop() ran while this read did: the reader is closed here, after its last use.
    auto& all = store_->allReaders_;
    all.erase(
        std::remove_if(all.begin(), all.end(), [&](const auto& r) { return r.get() == reader_; }),
        all.end());
  }
  sqlite3* get() const { return reader_ ? reader_->db : nullptr; }
  Reader& reader() const { return *reader_; }

 private:
  SqliteStore* store_;
  Reader* reader_;
};

SqliteStore::Reader::~Reader() {
  getObject.reset();
  if (db) sqlite3_close(db);
}

struct SqliteStore::WriterStatements {
  explicit WriterStatements(sqlite3* db)
      : sel(db, kSelectObjectByKey),
        upsert(db,
               "INSERT OR REPLACE INTO objects(resource, namespace, name, value, create_rev, "
               "mod_rev, checksum) VALUES (?,?,?,?,?,?,?)"),
        del(db, "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?"),
        ev(db,
           "INSERT INTO events(rev, type, resource, namespace, name, value, prev_value, "
           "create_rev, ts, checksum) VALUES (?,?,?,?,?,?,?,?,?,?)"),
        compactEvents(db, "DELETE FROM events WHERE rev <= ?"),
        probe(db, "INSERT OR REPLACE INTO meta(key, value) VALUES('write_probe', ?)"),
        meta(db, "UPDATE meta SET value=? WHERE key=?") {}
  bool ok() const {
    return sel.ok() && upsert.ok() && del.ok() && ev.ok() && compactEvents.ok() && probe.ok() &&
           meta.ok();
  }
  // Each is reset after every step, so none holds a transaction open between batches.
  Stmt sel, upsert, del, ev, compactEvents, probe, meta;
};

namespace {

// Resets a cached statement when the scope ends (its read snapshot ends with it).
class ResetOnExit {
 public:
  explicit ResetOnExit(Stmt& s) : s_(s) {}
  ~ResetOnExit() { s_.reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Stmt& s_;
};

}  // namespace

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
      MutexLock lock(mu_);
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
    MutexLock lock(mu_);
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
      MutexLock lock(mu_);
      fn = notify_;
    }
    if (fn) fn();
  }

  std::vector<Event> poll(size_t max) override {
    std::vector<Event> out;
    if (max == 0) return out;
    bool overflow;
    {
      MutexLock lock(mu_);
      if (done_) return out;
      overflow = overflow_;
    }
    if (overflow) {
      // Re-anchor: everything after the hub's published revision will arrive live again.
      MutexLock hub(store_->hubMu_);
      MutexLock lock(mu_);
      overflow_ = false;
      live_.clear();
      catchingUp_ = true;
      target_ = store_->publishedRevision_;
    }
    int64_t from, to;
    bool catchingUp;
    {
      MutexLock lock(mu_);
      catchingUp = catchingUp_;
      from = lastRevision_;
      to = target_;
    }
    if (catchingUp) {
      auto history = store_->readHistory(options_.resource, options_.namespace_, from, to, max);
      bool ended = false;
      {
        MutexLock lock(mu_);
        if (!history.isOk()) {
          finishLocked(history.status());
          ended = true;
        } else {
          out = std::move(history->events);
          lastRevision_ = std::max(lastRevision_, history->scannedTo);
          if (!history->end.isOk()) {
            // Damaged or missing history: what came before it is delivered, then the watch
            // ends (410) instead of skipping the event.
            finishLocked(history->end);
            ended = true;
          } else if (history->scannedTo < to) {
            return out;  // more history next time
          } else {
            catchingUp_ = false;
            lastRevision_ = std::max(lastRevision_, target_);
          }
        }
      }
      if (ended) {
        notify();  // a consumer that stops at a short batch polls again and sees done()
        return out;
      }
    }
    MutexLock lock(mu_);
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
      MutexLock lock(mu_);
      notify_ = std::move(notify);
      pending = !live_.empty() || catchingUp_ || overflow_ || done_;
    }
    if (pending) this->notify();
  }

  bool done() const override {
    MutexLock lock(mu_);
    return done_;
  }
  Status error() const override {
    MutexLock lock(mu_);
    return error_;
  }
  void stop() override { finish(Status::ok()); }

  // Caught up with nothing buffered: the publisher has pushed every event up to its published
  // revision (under hubMu_, taken first here too), so the watch is complete through it.
  int64_t progressRevision() const override {
    MutexLock hub(store_->hubMu_);
    MutexLock lock(mu_);
    if (done_ || catchingUp_ || overflow_ || !live_.empty()) return lastRevision_;
    return std::max(lastRevision_, store_->publishedRevision_);
  }

  void finish(Status why) {
    {
      MutexLock lock(mu_);
      if (done_) return;
      finishLocked(std::move(why));
    }
    notify();
  }

 private:
  void finishLocked(Status why) EP_REQUIRES(mu_) {
    done_ = true;
    error_ = std::move(why);
    live_.clear();
  }

  SqliteStore* const store_;
  const WatchOptions options_;
  mutable Mutex mu_;
  int64_t lastRevision_ EP_GUARDED_BY(mu_);  // highest revision delivered or skipped
  int64_t target_ EP_GUARDED_BY(mu_);        // history up to here is read from disk
  bool catchingUp_ EP_GUARDED_BY(mu_);
  bool overflow_ EP_GUARDED_BY(mu_) = false;
  bool done_ EP_GUARDED_BY(mu_) = false;
  Status error_ EP_GUARDED_BY(mu_);
  std::deque<Event> live_ EP_GUARDED_BY(mu_);
  std::function<void()> notify_ EP_GUARDED_BY(mu_);
  const size_t buffer_;
};

SqliteStore::SqliteStore(SqliteStoreOptions options, Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

SqliteStore::~SqliteStore() {
  stop();
}

Status SqliteStore::start() {
  {
    MutexLock lock(readMu_);
    readersClosed_ = false;
  }
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
  if (auto s = openChecked(path); !s.isOk()) {
    if (writeDb_) sqlite3_close(writeDb_);
    writeDb_ = nullptr;
    ::close(lockFd_);
    lockFd_ = -1;
    return s;
  }
  {
    MutexLock lock(hubMu_);
    publishedRevision_ = revision_;
  }
  {
    MutexLock lock(queueMu_);
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

Status SqliteStore::openChecked(const std::string& path) {
  auto db = sqlite::openDatabase(path, /*readOnly=*/false);
  if (!db) return unavailableError("cannot open store " + db.status().message());
  writeDb_ = *db;
  // Any step failing with SQLite's corruption errors is reported as a damaged database.
  auto checked = [&path](Status s) {
    return !s.isOk() && looksCorrupt(s.message()) ? damagedDatabase(path, s.message()) : s;
  };
  // WAL lets readers run beside the single writer; synchronous=FULL fsyncs the WAL on every
  // commit, which is what makes an acknowledged write survive power loss (NORMAL would not).
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                             "PRAGMA foreign_keys=OFF", "PRAGMA wal_autocheckpoint=4000"}) {
    if (auto s = exec(writeDb_, pragma); !s.isOk()) return checked(s);
  }
  {
    // Pages damaged at rest. quick_check reads every page and checks the b-trees (O(size),
    // about a second per GiB); integrity_check (--verify) also checks that indexes match.
    Stmt q(writeDb_, options_.verify ? "PRAGMA integrity_check(10)" : "PRAGMA quick_check(10)");
    if (!q.ok()) return checked(internalError(q.error()));
    std::string problems;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      std::string line = q.text(0);
      if (line == "ok") continue;
      std::replace(line.begin(), line.end(), '\n', ' ');  // one line in the log
      problems += (problems.empty() ? "" : "; ") + line;
    }
    if (rc != SQLITE_DONE) problems += (problems.empty() ? "" : "; ") + q.error();
    if (!problems.empty()) {
      return damagedDatabase(path,
                             (options_.verify ? "integrity_check: " : "quick_check: ") + problems);
    }
  }
  if (auto s = exec(writeDb_, kSchema); !s.isOk()) return checked(s);
  if (auto s = addChecksums(); !s.isOk()) return checked(s);
  {
    Stmt q(writeDb_, "SELECT key, value FROM meta");
    while (q.step() == SQLITE_ROW) {
      std::string key = q.text(0);
      if (key == "revision") revision_ = q.int64(1);
      if (key == "compacted") compacted_ = q.int64(1);
    }
  }
  if (options_.verify) return checked(verifyRows(path));
  return Status::ok();
}

Status SqliteStore::addChecksums() {
  // Rows without a checksum: every row of a store from before schema 2, and rows an older
  // cloudcore wrote after a downgrade. They are checksummed now, in one transaction (a crash
  // leaves them as they were and the next start does it again). A damaged checksum column that
  // reads as NULL is taken for one of those: the rest of its row is as intact as before.
  for (const char* table : {"objects", "events"}) {
    Stmt probe(writeDb_, (std::string("SELECT checksum FROM ") + table + " LIMIT 0").c_str());
    if (probe.ok()) continue;
    if (auto s =
            exec(writeDb_,
                 (std::string("ALTER TABLE ") + table + " ADD COLUMN checksum INTEGER").c_str());
        !s.isOk()) {
      return s;
    }
  }
  sqlite::Transaction txn(writeDb_, "store: adding checksums");
  if (!txn.ok()) return txn.status();
  size_t objects = 0, events = 0;
  {
    Stmt q(writeDb_, (std::string("SELECT ") + kObjectColumns +
                      ", resource FROM objects WHERE checksum IS NULL")
                         .c_str());
    Stmt u(writeDb_, "UPDATE objects SET checksum=? WHERE resource=? AND namespace=? AND name=?");
    std::vector<std::tuple<std::string, std::string, std::string, int64_t>> rows;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      rows.emplace_back(
          q.text(6), q.text(0), q.text(1),
          objectChecksum(q.view(6), q.view(0), q.view(1), q.view(2), q.int64(3), q.int64(4)));
    }
    if (rc != SQLITE_DONE) return internalError("store: adding checksums: " + q.error());
    for (const auto& [resource, ns, name, sum] : rows) {
      u.bind(1, sum).bind(2, resource).bind(3, ns).bind(4, name);
      if (u.step() != SQLITE_DONE) return internalError("store: adding checksums: " + u.error());
      u.reset();
    }
    objects = rows.size();
  }
  {
    Stmt q(
        writeDb_,
        (std::string("SELECT ") + kEventColumns + " FROM events WHERE checksum IS NULL").c_str());
    Stmt u(writeDb_, "UPDATE events SET checksum=? WHERE rev=?");
    std::vector<std::pair<int64_t, int64_t>> rows;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      std::optional<std::string_view> prev;
      if (!q.isNull(6)) prev = q.view(6);
      rows.emplace_back(q.int64(0),
                        eventChecksum(q.int64(0), q.int64(1), q.view(2), q.view(3), q.view(4),
                                      q.view(5), prev, q.int64(7), q.int64(8)));
    }
    if (rc != SQLITE_DONE) return internalError("store: adding checksums: " + q.error());
    for (const auto& [rev, sum] : rows) {
      u.bind(1, sum).bind(2, rev);
      if (u.step() != SQLITE_DONE) return internalError("store: adding checksums: " + u.error());
      u.reset();
    }
    events = rows.size();
  }
  if (auto s = exec(writeDb_, "INSERT OR REPLACE INTO meta(key, value) VALUES('schema', 2)");
      !s.isOk()) {
    return s;
  }
  if (auto s = txn.commit(); !s.isOk()) return s;
  if (objects + events > 0) {
    spdlog::info("store: checksummed {} objects and {} history events written without checksums",
                 objects, events);
  }
  return Status::ok();
}

Status SqliteStore::verifyRows(const std::string& path) {
  // Objects: a damaged row is rewritten from its newest history event when that event is
  // intact (the event of a write holds the value it wrote); otherwise it stays and is named.
  std::vector<std::tuple<std::string, std::string, std::string>> damaged;
  std::set<Key> present;  // every object row's key
  size_t objects = 0;
  {
    Stmt q(writeDb_, (std::string("SELECT ") + kObjectColumns + ", resource FROM objects").c_str());
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      ++objects;
      present.insert(Key{q.text(6), q.text(0), q.text(1)});
      if (!objectRowIntact(q, q.view(6))) damaged.emplace_back(q.text(6), q.text(0), q.text(1));
    }
    if (rc != SQLITE_DONE) return internalError("store: verifying objects: " + q.error());
  }
  // History: checksums, and one row per revision from the compacted one to the current one.
  int64_t lastBadRev = 0;
  size_t events = 0, badEvents = 0;
  std::map<Key, std::pair<int64_t, int64_t>> newest;  // key -> (rev, type) of its newest event
  {
    Stmt q(writeDb_,
           (std::string("SELECT ") + kEventColumns + " FROM events WHERE rev > ? ORDER BY rev")
               .c_str());
    q.bind(1, compacted_.load());
    int64_t expect = compacted_.load() + 1;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      ++events;
      const int64_t rev = q.int64(0);
      if (rev != expect || !eventRowIntact(q)) {
        ++badEvents;
        lastBadRev = rev;
      } else {
        newest[Key{q.text(2), q.text(3), q.text(4)}] = {rev, q.int64(1)};
      }
      expect = rev + 1;
    }
    if (rc != SQLITE_DONE) return internalError("store: verifying history: " + q.error());
    if (expect <= revision_.load()) {
      ++badEvents;
      lastBadRev = revision_.load();
    }
  }
  // Rows missing altogether (a salvage that lost them): the key's newest event, when it comes
  // after all damaged history and is not a delete, says the object exists and holds its value.
  std::vector<int64_t> missing;  // revisions of the events that restore them
  for (const auto& [key, ev] : newest) {
    if (ev.first > lastBadRev && ev.second != static_cast<int64_t>(EventType::kDeleted) &&
        !present.count(key)) {
      missing.push_back(ev.first);
    }
  }
  size_t repaired = 0;
  std::vector<std::string> lost;
  if (!damaged.empty() || badEvents > 0 || !missing.empty()) {
    sqlite::Transaction txn(writeDb_, "store: repairing");
    if (!txn.ok()) return txn.status();
    Stmt newest(writeDb_, (std::string("SELECT ") + kEventColumns +
                           " FROM events WHERE resource=? AND namespace=? AND name=? "
                           "ORDER BY rev DESC LIMIT 1")
                              .c_str());
    Stmt put(writeDb_,
             "UPDATE objects SET value=?, create_rev=?, mod_rev=?, checksum=? WHERE resource=? "
             "AND namespace=? AND name=?");
    for (const auto& [resource, ns, name] : damaged) {
      const std::string key = keyString(resource, ns, name);
      newest.bind(1, resource).bind(2, ns).bind(3, name);
      const bool usable = newest.step() == SQLITE_ROW && eventRowIntact(newest) &&
                          newest.int64(0) > lastBadRev &&
                          newest.int64(1) != static_cast<int64_t>(EventType::kDeleted);
      if (usable) {
        const std::string value = newest.text(5);
        const int64_t createRev = newest.int64(7), modRev = newest.int64(0);
        put.bindBlob(1, value)
            .bind(2, createRev)
            .bind(3, modRev)
            .bind(4, objectChecksum(resource, ns, name, value, createRev, modRev))
            .bind(5, resource)
            .bind(6, ns)
            .bind(7, name);
        if (put.step() != SQLITE_DONE) return internalError("store: repairing: " + put.error());
        put.reset();
        ++repaired;
        spdlog::warn("store: {} was damaged on disk; restored from its history at revision {}", key,
                     modRev);
      } else {
        lost.push_back(key);
      }
      newest.reset();
    }
    if (!missing.empty()) {
      Stmt ev(writeDb_,
              (std::string("SELECT ") + kEventColumns + " FROM events WHERE rev=?").c_str());
      Stmt add(writeDb_,
               "INSERT INTO objects(resource, namespace, name, value, create_rev, mod_rev, "
               "checksum) VALUES (?,?,?,?,?,?,?)");
      for (int64_t rev : missing) {
        ev.bind(1, rev);
        if (ev.step() != SQLITE_ROW || !eventRowIntact(ev)) {
          return internalError("store: repairing: history at revision " + std::to_string(rev) +
                               " changed while verifying");
        }
        const std::string resource = ev.text(2), ns = ev.text(3), name = ev.text(4),
                          value = ev.text(5);
        const int64_t createRev = ev.int64(7);
        ev.reset();
        add.bind(1, resource)
            .bind(2, ns)
            .bind(3, name)
            .bindBlob(4, value)
            .bind(5, createRev)
            .bind(6, rev)
            .bind(7, objectChecksum(resource, ns, name, value, createRev, rev));
        if (add.step() != SQLITE_DONE) return internalError("store: repairing: " + add.error());
        add.reset();
        ++repaired;
        spdlog::warn(
            "store: {} was missing from the objects; restored from its history at "
            "revision {}",
            keyString(resource, ns, name), rev);
      }
    }
    if (badEvents > 0) {
      // History cannot be repaired: drop it through the last damaged revision, as compaction
      // would. Watches from before it get 410 and relist, which is what a client must do.
      Stmt drop(writeDb_, "DELETE FROM events WHERE rev <= ?");
      drop.bind(1, lastBadRev);
      if (drop.step() != SQLITE_DONE) return internalError("store: repairing: " + drop.error());
      Stmt meta(writeDb_, "UPDATE meta SET value=? WHERE key='compacted'");
      meta.bind(1, lastBadRev);
      if (meta.step() != SQLITE_DONE) return internalError("store: repairing: " + meta.error());
      compacted_ = lastBadRev;
      spdlog::warn(
          "store: {} history events were damaged on disk; history compacted through revision {} "
          "(watches from before it relist)",
          badEvents, lastBadRev);
    }
    if (auto s = txn.commit(); !s.isOk()) return s;
  }
  spdlog::info(
      "store: verified {}: {} objects ({} repaired), {} history events ({} damaged or missing)",
      path, objects, repaired, events, badEvents);
  if (lost.empty()) return Status::ok();
  std::string names;
  for (size_t i = 0; i < lost.size() && i < 10; ++i) names += (i ? ", " : "") + lost[i];
  if (lost.size() > 10) names += ", ...";
  return internalError(
      "store: " + std::to_string(lost.size()) + " objects in " + path +
      " are damaged on disk and their history cannot restore them: " + names +
      ". Restore store.db from a backup, or start cloudcore without --verify (damaged objects "
      "are never served) and delete each with DELETE ...?"
      "ignoreStoreReadErrorWithClusterBreakingPotential=true. See docs/store.md, \"Damaged "
      "data\"");
}

void SqliteStore::noteDamaged(const std::string& what) {
  ++damagedReads_;
  MutexLock lock(damagedMu_);
  if (std::find(damagedLogged_.begin(), damagedLogged_.end(), what) != damagedLogged_.end()) {
    return;
  }
  if (damagedLogged_.size() >= 1000) return;  // counted in store_damaged_reads_total
  damagedLogged_.push_back(what);
  spdlog::error("store: {} ({}/store.db); not served. docs/store.md, \"Damaged data\"", what,
                options_.dataDir);
}

void SqliteStore::stop() {
  {
    MutexLock lock(queueMu_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  queueCv_.notify_all();
  compactorCv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (compactor_.joinable()) compactor_.join();
  std::vector<SqliteWatch*> watches;
  {
    MutexLock lock(hubMu_);
    watches = watches_;
  }
  for (auto* w : watches) w->finish(unavailableError("store is shutting down"));
  {
    MutexLock lock(readMu_);
    readersClosed_ = true;
    // Idle readers are closed now (statements finalized first); one in use by a read still
    // running is closed when that read returns it.
    for (Reader* idle : idleReaders_) {
      allReaders_.erase(std::remove_if(allReaders_.begin(), allReaders_.end(),
                                       [&](const auto& r) { return r.get() == idle; }),
                        allReaders_.end());
    }
    idleReaders_.clear();
  }
  writerStatements_.reset();  // the writer thread is joined
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
    MutexLock lock(readMu_);
    if (readersClosed_) return ReadConn(this, nullptr);  // stopped
    if (!idleReaders_.empty()) {
      Reader* reader = idleReaders_.back();
      idleReaders_.pop_back();
      return ReadConn(this, reader);
    }
  }
  auto db = sqlite::openDatabase(options_.dataDir + "/store.db", /*readOnly=*/true);
  if (!db) return ReadConn(this, nullptr);
  auto reader = std::make_unique<Reader>();
  reader->db = *db;
  Reader* r = reader.get();
  MutexLock lock(readMu_);
  allReaders_.push_back(std::move(reader));
  return ReadConn(this, r);
}

Result<Object> SqliteStore::get(const std::string& resource, const std::string& ns,
                                const std::string& name) {
  auto conn = acquireRead();
  if (!conn.get()) return unavailableError("store: no read connection");
  auto& cached = conn.reader().getObject;
  if (!cached || !cached->ok()) {
    cached = std::make_unique<Stmt>(conn.get(), kSelectObjectByKey);
  }
  Stmt& q = *cached;
  ResetOnExit resetOnExit(q);
  q.bind(1, resource).bind(2, ns).bind(3, name);
  int rc = q.step();
  if (rc == SQLITE_ROW) {
    if (!objectRowIntact(q, resource)) {
      const std::string key = keyString(resource, ns, name);
      noteDamaged(key + " is damaged on disk (checksum mismatch)");
      return damagedObject(key);
    }
    return Object{resource, ns, name, q.text(2), q.int64(3), q.int64(4)};
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
      return continueExpired();
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
  std::string sql = std::string("SELECT ") + kObjectColumns + " FROM objects WHERE resource=?1";
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
    if (!objectRowIntact(q, options.resource)) {
      const std::string key = keyString(options.resource, q.text(0), q.text(1));
      noteDamaged(key + " is damaged on disk (checksum mismatch)");
      if (!options.skipDamaged) return damagedObject(key);
      // The API's LIST: one bad row does not break it; it is left out, counted and named.
      result.damaged.push_back(Key{options.resource, q.text(0), q.text(1)});
      continue;
    }
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
    MutexLock lock(queueMu_);
    if (stopping_ || !writeDb_) return unavailableError("store is not running");
    queue_.push_back(std::move(write));
  }
  queueCv_.notify_one();
  return future.get();
}

namespace {

std::unique_ptr<PendingWrite> keyWrite(PendingWrite::Kind kind, const std::string& resource,
                                       const std::string& ns, const std::string& name,
                                       std::string value, int64_t expectedRevision) {
  auto w = std::make_unique<PendingWrite>();
  w->kind = kind;
  w->resource = resource;
  w->ns = ns;
  w->name = name;
  w->value = std::move(value);
  w->expectedRevision = expectedRevision;
  return w;
}

}  // namespace

Result<Object> SqliteStore::create(const std::string& resource, const std::string& ns,
                                   const std::string& name, std::string value) {
  return submit(keyWrite(PendingWrite::Kind::kCreate, resource, ns, name, std::move(value), 0));
}

Result<Object> SqliteStore::update(const std::string& resource, const std::string& ns,
                                   const std::string& name, std::string value,
                                   int64_t expectedRevision) {
  return submit(keyWrite(PendingWrite::Kind::kUpdate, resource, ns, name, std::move(value),
                         expectedRevision));
}

Result<Object> SqliteStore::remove(const std::string& resource, const std::string& ns,
                                   const std::string& name, int64_t expectedRevision) {
  return submit(keyWrite(PendingWrite::Kind::kDelete, resource, ns, name, {}, expectedRevision));
}

Result<Object> SqliteStore::removeUnsafe(const std::string& resource, const std::string& ns,
                                         const std::string& name, std::string tombstone,
                                         int64_t expectedRevision) {
  return submit(keyWrite(PendingWrite::Kind::kDeleteUnsafe, resource, ns, name,
                         std::move(tombstone), expectedRevision));
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
  MutexLock lock(queueMu_);
  while (!stopping_) {
    lock.waitFor(compactorCv_, options_.compactionInterval);
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
      MutexLock lock(queueMu_);
      while (!stopping_ && queue_.empty()) lock.wait(queueCv_);
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
  MutexLock lock(queueMu_);
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
  if (!writerStatements_ || !writerStatements_->ok()) {
    writerStatements_ = std::make_unique<WriterStatements>(writeDb_);
  }
  WriterStatements& st = *writerStatements_;
  Stmt& sel = st.sel;
  Stmt& upsert = st.upsert;
  Stmt& del = st.del;
  Stmt& ev = st.ev;
  Stmt& compactEvents = st.compactEvents;
  Stmt& probe = st.probe;
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
    const bool damaged = exists && !objectRowIntact(sel, w->resource);
    if (exists && !damaged) {
      current = Object{w->resource, w->ns, w->name, sel.text(2), sel.int64(3), sel.int64(4)};
    }
    sel.reset();
    const std::string key = keyString(w->resource, w->ns, w->name);
    const bool deleteUnsafe = w->kind == PendingWrite::Kind::kDeleteUnsafe;
    if (damaged && !deleteUnsafe && w->kind != PendingWrite::Kind::kCreate) {
      noteDamaged(key + " is damaged on disk (checksum mismatch)");
      results.emplace_back(damagedObject(key));
      continue;
    }

    if (w->kind == PendingWrite::Kind::kCreate && exists) {
      results.emplace_back(Status(Code::kAlreadyExists, key + " already exists"));
      continue;
    }
    if (w->kind != PendingWrite::Kind::kCreate) {
      if (!exists) {
        results.emplace_back(notFoundError(key + " not found"));
        continue;
      }
      if (deleteUnsafe &&
          (w->expectedRevision == 0 ? !damaged
                                    : damaged || w->expectedRevision != current.modRevision)) {
        // Only what the caller could not read goes this way: not an intact row (0), nor a row
        // rewritten since the caller's failed read.
        results.emplace_back(Status(
            Code::kConflict, key + (w->expectedRevision == 0
                                        ? " is not damaged on disk; delete it normally"
                                        : " changed since it could not be read; read it again")));
        continue;
      }
      if (!deleteUnsafe && w->expectedRevision != 0 && w->expectedRevision != current.modRevision) {
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
    if (w->kind == PendingWrite::Kind::kDelete || deleteUnsafe) {
      del.bind(1, w->resource).bind(2, w->ns).bind(3, w->name);
      if (del.step() != SQLITE_DONE) dbError = del.error();
      del.reset();
      e.type = EventType::kDeleted;
      e.object = current;
      e.object.modRevision = rev;
      if (deleteUnsafe) {
        // Nothing of the row is trusted (damaged, or unreadable above the store): the event
        // carries the caller's tombstone.
        e.object = Object{w->resource, w->ns, w->name, std::move(w->value), rev, rev};
        e.prevValue.clear();
        spdlog::warn("store: {} deleted unread at revision {}", key, rev);
      }
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
          .bind(6, rev)
          .bind(7, objectChecksum(w->resource, w->ns, w->name, e.object.value,
                                  e.object.createRevision, rev));
      if (upsert.step() != SQLITE_DONE) dbError = upsert.error();
      upsert.reset();
    }
    ev.bind(1, rev)
        .bind(2, static_cast<int64_t>(e.type))
        .bind(3, w->resource)
        .bind(4, w->ns)
        .bind(5, w->name)
        .bindBlob(6, e.object.value);
    const bool hasPrev = exists && !deleteUnsafe;
    if (hasPrev) {
      ev.bindBlob(7, e.prevValue);
    } else {
      ev.bindNull(7);
    }
    ev.bind(8, e.object.createRevision).bind(9, now);
    ev.bind(10, eventChecksum(rev, static_cast<int64_t>(e.type), w->resource, w->ns, w->name,
                              e.object.value,
                              hasPrev ? std::optional<std::string_view>(e.prevValue) : std::nullopt,
                              e.object.createRevision, now));
    if (ev.step() != SQLITE_DONE) dbError = ev.error();
    ev.reset();
    results.emplace_back(e.object);
    events.push_back(std::move(e));
  }
  if (dbError.empty()) {
    static const std::string kRevisionKey = "revision", kCompactedKey = "compacted";
    Stmt& meta = st.meta;
    meta.bind(1, rev).bind(2, kRevisionKey);
    if (meta.step() != SQLITE_DONE) dbError = meta.error();
    meta.reset();
    meta.bind(1, newCompacted).bind(2, kCompactedKey);
    if (dbError.empty() && meta.step() != SQLITE_DONE) dbError = meta.error();
    meta.reset();
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
  // Published before the writers hear back: a watch opened before a write has its events by
  // the time the write returns (what a caller that writes and then polls relies on).
  if (rev != startRev) publish(events, rev);
  for (size_t i = 0; i < batch.size(); ++i) batch[i]->done.set_value(std::move(results[i]));
}

void SqliteStore::publish(const std::vector<Event>& events, int64_t lastRevision) {
  std::vector<SqliteWatch*> toNotify;
  {
    MutexLock lock(hubMu_);
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
  MutexLock lock(hubMu_);
  {
    MutexLock q(queueMu_);
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
  MutexLock lock(hubMu_);
  watches_.erase(std::remove(watches_.begin(), watches_.end(), watch), watches_.end());
}

Result<SqliteStore::HistoryRead> SqliteStore::readHistory(const std::string& resource,
                                                          const std::string& ns, int64_t from,
                                                          int64_t to, size_t max) {
  HistoryRead read;
  read.scannedTo = from;
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
  // Every row of the range is read and checked, not only the watched keys': a row damaged in
  // its key columns would otherwise not match the filter and be skipped without a trace. Rows
  // come one per revision, so a missing one is a gap. Either ends the watch (410: relist)
  // rather than delivering history with a hole in it.
  Stmt q(conn.get(), (std::string("SELECT ") + kEventColumns +
                      " FROM events WHERE rev > ?1 AND rev <= ?2 ORDER BY rev")
                         .c_str());
  q.bind(1, from).bind(2, to);
  int64_t expect = from + 1;
  auto stopAt = [&](int64_t bad, const std::string& what) -> Result<HistoryRead> {
    noteDamaged("the watch history at revision " + std::to_string(bad) + what);
    read.scannedTo = bad - 1;
    read.end = Status(Code::kExpired, "the watch history at revision " + std::to_string(bad) +
                                          what + "; list again and watch from the list's revision");
    return std::move(read);
  };
  int rc = SQLITE_ROW;
  while (read.events.size() < max && (rc = q.step()) == SQLITE_ROW) {
    const int64_t rev = q.int64(0);
    if (rev != expect) return stopAt(expect, " is missing on disk");
    if (!eventRowIntact(q)) return stopAt(rev, " is damaged on disk (checksum mismatch)");
    ++expect;
    if ((!resource.empty() && q.view(2) != resource) || (!ns.empty() && q.view(3) != ns)) {
      continue;
    }
    Event e;
    e.type = static_cast<EventType>(q.int64(1));
    e.object = Object{q.text(2), q.text(3), q.text(4), q.text(5), q.int64(7), rev};
    e.prevValue = q.text(6);
    read.events.push_back(std::move(e));
  }
  if (read.events.size() < max) {
    if (rc != SQLITE_DONE) return unavailableError("store: history read failed: " + q.error());
    if (expect <= to) return stopAt(expect, " is missing on disk");
  }
  read.scannedTo = expect - 1;
  return read;
}

Result<std::vector<std::string>> SqliteStore::resources() {
  auto conn = acquireRead();
  if (!conn.get()) return unavailableError("store: no read connection");
  Stmt q(conn.get(), "SELECT DISTINCT resource FROM objects ORDER BY resource");
  std::vector<std::string> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(q.text(0));
  if (rc != SQLITE_DONE) return unavailableError("store: read failed: " + q.error());
  return out;
}

int64_t SqliteStore::currentRevision() {
  return revision_.load();
}
int64_t SqliteStore::compactedRevision() {
  return compacted_.load();
}

}  // namespace ep::store
