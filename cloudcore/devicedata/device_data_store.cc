#include "cloudcore/devicedata/device_data_store.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "common/api/names.h"
#include "common/sqlite/sqlite.h"
#include "common/thread_annotations.h"

namespace ep::devicedata {
namespace {

constexpr size_t kMaxSamplesPerAppend = 65536;
constexpr size_t kSweepChunk = 256;  // series per sweep transaction (appends wait at most that)

Status unavailable(sqlite3* db, const std::string& what) {
  return unavailableError("devicedata.db: " + what + ": " + (db ? sqlite3_errmsg(db) : "not open"));
}

// Over what identifies and makes up a stored sample: a row changed on disk (value, timestamp,
// or moved to another series) no longer matches.
int64_t checksum(int64_t series, int64_t ts, int64_t origin, const std::string& value) {
  return sqlite::RowChecksum()
      .add(series)
      .add(ts)
      .add(origin)
      .add(value.data(), value.size())
      .value();
}

}  // namespace

std::string checkSamples(const DeviceSamples& d) {
  // A Device's name, or "rules/NAME" (a Rule's messages) or "nodes/NAME" (a node's uploads,
  // namespace "").
  std::string_view name = d.device;
  const bool node = name.rfind("nodes/", 0) == 0;
  if (node || name.rfind("rules/", 0) == 0) name.remove_prefix(6);
  if (!(node && d.ns.empty())) {
    if (auto bad = api::checkDns1123Label(d.ns); !bad.empty()) return "namespace: " + bad.front();
  }
  if (auto bad = api::checkDns1123Subdomain(name); !bad.empty()) {
    return "name: " + bad.front();
  }
  if (d.samples.empty()) return "samples: must not be empty";
  for (size_t i = 0; i < d.samples.size(); ++i) {
    const Sample& s = d.samples[i];
    const std::string at = "samples[" + std::to_string(i) + "]";
    if (s.property.empty() || s.property.size() > 253) {
      return at + ".property: must be 1..253 bytes";
    }
    if (s.value.size() > kMaxValueBytes) {
      return at + ".value: longer than " + std::to_string(kMaxValueBytes) + " bytes";
    }
    if (s.timestamp <= 0) return at + ".timestamp: must be milliseconds since the epoch";
    if (s.index > 0xffff) return at + ": more than 65,536 samples in one report";
  }
  return "";
}

SqliteDeviceDataStore::SqliteDeviceDataStore(SqliteDeviceDataOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

SqliteDeviceDataStore::~SqliteDeviceDataStore() {
  stop();
}

Status SqliteDeviceDataStore::start() {
  MutexLock lock(mu_);
  if (db_ != nullptr) return Status::ok();
  auto db = sqlite::openDurableDatabase(
      options_.path, "devicedata.db",
      {"CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, "
       "device TEXT NOT NULL, property TEXT NOT NULL, UNIQUE(namespace, device, property))",
       "CREATE TABLE IF NOT EXISTS samples (series INTEGER NOT NULL, ts INTEGER NOT NULL, "
       "origin INTEGER NOT NULL, value TEXT NOT NULL, checksum INTEGER NOT NULL, "
       "PRIMARY KEY (series, ts, origin)) WITHOUT ROWID"});
  if (!db) return db.status();
  db_ = *db;
  stopping_ = false;
  if (!sweeper_.joinable()) sweeper_ = std::thread([this] { sweepLoop(); });
  return Status::ok();
}

void SqliteDeviceDataStore::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  MutexLock lock(mu_);
  if (db_ != nullptr) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

Result<int64_t> SqliteDeviceDataStore::seriesLocked(const std::string& ns,
                                                    const std::string& device,
                                                    const std::string& property, bool create) {
  sqlite::Stmt find(db_,
                    "SELECT id FROM series WHERE namespace = ? AND device = ? AND property = ?");
  if (!find.ok()) return unavailable(db_, "series");
  find.bind(1, ns).bind(2, device).bind(3, property);
  if (find.step() == SQLITE_ROW) return find.int64(0);
  if (!create) return notFoundError("no series");
  sqlite::Stmt add(db_, "INSERT INTO series (namespace, device, property) VALUES (?, ?, ?)");
  if (!add.ok()) return unavailable(db_, "series");
  add.bind(1, ns).bind(2, device).bind(3, property);
  if (add.step() != SQLITE_DONE) return unavailable(db_, "series");
  return sqlite3_last_insert_rowid(db_);
}

Status SqliteDeviceDataStore::append(uint64_t origin, const std::vector<DeviceSamples>& batch) {
  size_t total = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (auto bad = checkSamples(batch[i]); !bad.empty()) {
      return invalidError("devices[" + std::to_string(i) + "]." + bad);
    }
    total += batch[i].samples.size();
  }
  if (total > kMaxSamplesPerAppend) {
    return invalidError("more than " + std::to_string(kMaxSamplesPerAppend) +
                        " samples in one report");
  }
  if (origin >= (uint64_t{1} << 46)) return invalidError("report sequence out of range");
  MutexLock lock(mu_);
  if (db_ == nullptr) return unavailableError("devicedata.db: not open");
  sqlite::Transaction txn(db_, "devicedata.db");
  if (!txn.ok()) return unavailableError(txn.status().message());
  sqlite::Stmt insert(db_,
                      "INSERT OR IGNORE INTO samples (series, ts, origin, value, checksum) "
                      "VALUES (?, ?, ?, ?, ?)");
  if (!insert.ok()) return unavailable(db_, "insert");
  std::map<std::string, int64_t> ids;  // property -> series, per device
  for (const auto& d : batch) {
    ids.clear();
    for (const auto& s : d.samples) {
      auto it = ids.find(s.property);
      if (it == ids.end()) {
        auto id = seriesLocked(d.ns, d.device, s.property, /*create=*/true);
        if (!id) return id.status();
        it = ids.emplace(s.property, *id).first;
      }
      const int64_t o = static_cast<int64_t>(origin << 16) + s.index;
      insert.reset();
      insert.bind(1, it->second).bind(2, s.timestamp).bind(3, o).bind(4, s.value);
      insert.bind(5, checksum(it->second, s.timestamp, o, s.value));
      if (insert.step() != SQLITE_DONE) return unavailable(db_, "insert");
    }
  }
  if (auto s = txn.commit(); !s.isOk()) return unavailableError(s.message());
  return Status::ok();
}

Result<std::vector<Sample>> SqliteDeviceDataStore::query(const Query& q) {
  if (q.limit == 0 || q.limit > kMaxQueryLimit) {
    return invalidError("limit: must be 1.." + std::to_string(kMaxQueryLimit));
  }
  MutexLock lock(mu_);
  if (db_ == nullptr) return unavailableError("devicedata.db: not open");
  sqlite::Stmt select(db_,
                      "SELECT s.property, x.ts, x.origin, x.value, x.checksum, x.series "
                      "FROM samples x JOIN series s ON s.id = x.series "
                      "WHERE s.namespace = ? AND s.device = ? AND (? = '' OR s.property = ?) "
                      "AND x.ts >= ? ORDER BY x.ts DESC, x.origin DESC LIMIT ?");
  if (!select.ok()) return unavailable(db_, "query");
  select.bind(1, q.ns).bind(2, q.device).bind(3, q.property).bind(4, q.property);
  select.bind(5, q.sinceMillis).bind(6, static_cast<int64_t>(q.limit));
  std::vector<Sample> out;
  int rc;
  while ((rc = select.step()) == SQLITE_ROW) {
    Sample s{select.text(0), select.int64(1), select.text(3)};
    if (checksum(select.int64(5), s.timestamp, select.int64(2), s.value) != select.int64(4)) {
      ++corrupt_;
      spdlog::error(
          "devicedata: a stored sample of {}/{} property {} at {} fails its checksum; "
          "skipped",
          q.ns, q.device, s.property, s.timestamp);
      continue;
    }
    out.push_back(std::move(s));
  }
  if (rc != SQLITE_DONE) return unavailable(db_, "query");
  std::reverse(out.begin(), out.end());
  return out;
}

uint64_t SqliteDeviceDataStore::corruptSamples() const {
  MutexLock lock(mu_);
  return corrupt_;
}

Result<uint64_t> SqliteDeviceDataStore::sweepNow() {
  const int64_t cutoff = clock_.nowMillis() - options_.maxAge.count();
  uint64_t removed = 0;
  int64_t after = 0;  // series ids are swept in chunks, the lock released between them
  while (true) {
    MutexLock lock(mu_);
    if (db_ == nullptr) return unavailableError("devicedata.db: not open");
    std::vector<int64_t> ids;
    {
      sqlite::Stmt list(db_, "SELECT id FROM series WHERE id > ? ORDER BY id LIMIT ?");
      if (!list.ok()) return unavailable(db_, "sweep");
      list.bind(1, after).bind(2, static_cast<int64_t>(kSweepChunk));
      while (list.step() == SQLITE_ROW) ids.push_back(list.int64(0));
    }
    if (ids.empty()) break;
    after = ids.back();
    sqlite::Transaction txn(db_, "devicedata.db");
    if (!txn.ok()) return unavailableError(txn.status().message());
    sqlite::Stmt old(db_, "DELETE FROM samples WHERE series = ? AND ts < ?");
    sqlite::Stmt nth(db_,
                     "SELECT ts, origin FROM samples WHERE series = ? "
                     "ORDER BY ts DESC, origin DESC LIMIT 1 OFFSET ?");
    sqlite::Stmt trim(
        db_, "DELETE FROM samples WHERE series = ? AND (ts < ? OR (ts = ? AND origin <= ?))");
    sqlite::Stmt empty(db_,
                       "DELETE FROM series WHERE id = ? AND NOT EXISTS "
                       "(SELECT 1 FROM samples WHERE series = ?)");
    if (!old.ok() || !nth.ok() || !trim.ok() || !empty.ok()) return unavailable(db_, "sweep");
    for (int64_t id : ids) {
      old.reset();
      old.bind(1, id).bind(2, cutoff);
      if (old.step() != SQLITE_DONE) return unavailable(db_, "sweep");
      removed += static_cast<uint64_t>(sqlite3_changes(db_));
      nth.reset();
      nth.bind(1, id).bind(2, static_cast<int64_t>(options_.maxSamplesPerProperty));
      int rc = nth.step();
      if (rc == SQLITE_ROW) {
        const int64_t ts = nth.int64(0), origin = nth.int64(1);
        trim.reset();
        trim.bind(1, id).bind(2, ts).bind(3, ts).bind(4, origin);
        if (trim.step() != SQLITE_DONE) return unavailable(db_, "sweep");
        removed += static_cast<uint64_t>(sqlite3_changes(db_));
      } else if (rc != SQLITE_DONE) {
        return unavailable(db_, "sweep");
      }
      empty.reset();
      empty.bind(1, id).bind(2, id);
      if (empty.step() != SQLITE_DONE) return unavailable(db_, "sweep");
    }
    if (auto s = txn.commit(); !s.isOk()) return unavailableError(s.message());
  }
  return removed;
}

void SqliteDeviceDataStore::sweepLoop() {
  MutexLock lock(mu_);
  while (!stopping_) {
    lock.waitFor(cv_, options_.sweepInterval, [this]() EP_REQUIRES(mu_) { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    auto removed = sweepNow();
    if (!removed) {
      spdlog::warn("devicedata: retention sweep: {}", removed.status().toString());
    } else if (*removed > 0) {
      spdlog::debug("devicedata: retention removed {} samples", *removed);
    }
    lock.lock();
  }
}

}  // namespace ep::devicedata
