#include "cloudcore/router/message_queue.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "common/sqlite/sqlite.h"
#include "common/thread_annotations.h"

namespace ep::router {

namespace {

// Over every stored field: a row changed on disk no longer matches.
int64_t checksum(const QueuedMessage& m, const std::string& body) {
  return sqlite::RowChecksum()
      .add(m.id)
      .add(static_cast<int64_t>(m.direction))
      .add(m.node)
      .add(m.ruleNamespace)
      .add(m.ruleName)
      .add(m.target)
      .add(m.createdMillis)
      .add(body)
      .value();
}

Status dbError(sqlite3* db, const std::string& what) {
  return unavailableError("router.db: " + what + ": " + (db ? sqlite3_errmsg(db) : "not open"));
}

}  // namespace

MessageQueue::MessageQueue(MessageQueueOptions options) : options_(std::move(options)) {}

MessageQueue::~MessageQueue() {
  close();
}

Status MessageQueue::checkOpenLocked() const {
  return db_ == nullptr ? unavailableError("router.db: not open") : Status::ok();
}

Result<std::vector<QueuedMessage>> MessageQueue::open(size_t* corrupt) {
  MutexLock lock(mu_);
  if (db_ == nullptr) {
    auto db = sqlite::openDurableDatabase(
        options_.path, "router.db",
        {"CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, direction INTEGER NOT "
         "NULL, node TEXT NOT NULL, rule_namespace TEXT NOT NULL, rule_name TEXT NOT NULL, "
         "target TEXT NOT NULL, created INTEGER NOT NULL, attempts INTEGER NOT NULL, "
         "next_attempt INTEGER NOT NULL, body BLOB NOT NULL, checksum INTEGER NOT NULL)"});
    if (!db) return db.status();
    db_ = *db;
  }
  std::vector<QueuedMessage> out;
  std::vector<int64_t> bad;
  {
    sqlite::Stmt q(db_,
                   "SELECT id, direction, node, rule_namespace, rule_name, target, created, "
                   "attempts, next_attempt, body, checksum FROM messages ORDER BY id");
    if (!q.ok()) return dbError(db_, "load");
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      QueuedMessage m;
      m.id = q.int64(0);
      int64_t dir = q.int64(1);
      m.direction = static_cast<Direction>(dir);
      m.node = q.text(2);
      m.ruleNamespace = q.text(3);
      m.ruleName = q.text(4);
      m.target = q.text(5);
      m.createdMillis = q.int64(6);
      m.attempts = q.int64(7);
      m.nextAttemptMillis = q.int64(8);
      std::string body = q.text(9);
      m.bytes = body.size();
      if ((dir != 1 && dir != 2) || checksum(m, body) != q.int64(10)) {
        bad.push_back(m.id);
        continue;
      }
      out.push_back(std::move(m));
    }
    if (rc != SQLITE_DONE) return dbError(db_, "load");
  }
  for (int64_t id : bad) {
    spdlog::error("router: queued message {} in {} fails its checksum; removed, not delivered", id,
                  options_.path);
    sqlite::Stmt d(db_, "DELETE FROM messages WHERE id = ?");
    d.bind(1, id);
    if (!d.ok() || d.step() != SQLITE_DONE) return dbError(db_, "delete a corrupt message");
  }
  if (corrupt != nullptr) *corrupt = bad.size();
  count_ = out.size();
  bytes_ = 0;
  for (const auto& m : out) bytes_ += m.bytes;
  return out;
}

void MessageQueue::close() {
  MutexLock lock(mu_);
  if (db_ != nullptr) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

Status MessageQueue::push(QueuedMessage& m, const std::string& body) {
  MutexLock lock(mu_);
  if (auto s = checkOpenLocked(); !s.isOk()) return s;
  if (count_ >= options_.maxMessages || bytes_ + body.size() > options_.maxBytes) {
    return unavailableError("router queue is full (" + std::to_string(count_) + " messages, " +
                            std::to_string(bytes_) + " bytes); try again later");
  }
  // The id is chosen before the insert so that the checksum can cover it.
  sqlite::Stmt next(db_, "SELECT COALESCE(MAX(id), 0) + 1 FROM messages");
  if (!next.ok() || next.step() != SQLITE_ROW) return dbError(db_, "next id");
  m.id = std::max<int64_t>(next.int64(0), m.id + 1);
  m.bytes = body.size();
  sqlite::Stmt ins(
      db_,
      "INSERT INTO messages (id, direction, node, rule_namespace, rule_name, target, "
      "created, attempts, next_attempt, body, checksum) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  const int64_t sum = checksum(m, body);
  ins.bind(1, m.id)
      .bind(2, static_cast<int64_t>(m.direction))
      .bind(3, m.node)
      .bind(4, m.ruleNamespace)
      .bind(5, m.ruleName)
      .bind(6, m.target)
      .bind(7, m.createdMillis)
      .bind(8, m.attempts)
      .bind(9, m.nextAttemptMillis)
      .bindBlob(10, body)
      .bind(11, sum);
  if (!ins.ok() || ins.step() != SQLITE_DONE) return dbError(db_, "insert");
  ++count_;
  bytes_ += body.size();
  return Status::ok();
}

Result<std::string> MessageQueue::body(int64_t id) {
  MutexLock lock(mu_);
  if (auto s = checkOpenLocked(); !s.isOk()) return s;
  sqlite::Stmt q(db_,
                 "SELECT direction, node, rule_namespace, rule_name, target, created, body, "
                 "checksum FROM messages WHERE id = ?");
  q.bind(1, id);
  if (!q.ok()) return dbError(db_, "read");
  int rc = q.step();
  if (rc == SQLITE_DONE) return notFoundError("queued message " + std::to_string(id) + " is gone");
  if (rc != SQLITE_ROW) return dbError(db_, "read");
  QueuedMessage m;
  m.id = id;
  m.direction = static_cast<Direction>(q.int64(0));
  m.node = q.text(1);
  m.ruleNamespace = q.text(2);
  m.ruleName = q.text(3);
  m.target = q.text(4);
  m.createdMillis = q.int64(5);
  std::string body = q.text(6);
  if (checksum(m, body) != q.int64(7)) {
    q.reset();
    sqlite::Stmt d(db_, "DELETE FROM messages WHERE id = ?");
    d.bind(1, id);
    if (d.ok() && d.step() == SQLITE_DONE && sqlite3_changes(db_) > 0) {
      --count_;
      bytes_ -= std::min<uint64_t>(bytes_, body.size());
    }
    return internalError("queued message " + std::to_string(id) +
                         " fails its checksum in router.db; removed");
  }
  return body;
}

Status MessageQueue::remove(int64_t id) {
  MutexLock lock(mu_);
  if (auto s = checkOpenLocked(); !s.isOk()) return s;
  sqlite::Stmt size(db_, "SELECT length(body) FROM messages WHERE id = ?");
  size.bind(1, id);
  if (!size.ok()) return dbError(db_, "delete");
  int rc = size.step();
  if (rc == SQLITE_DONE) return Status::ok();
  if (rc != SQLITE_ROW) return dbError(db_, "delete");
  const uint64_t n = static_cast<uint64_t>(size.int64(0));
  size.reset();
  sqlite::Stmt d(db_, "DELETE FROM messages WHERE id = ?");
  d.bind(1, id);
  if (!d.ok() || d.step() != SQLITE_DONE) return dbError(db_, "delete");
  --count_;
  bytes_ -= std::min(bytes_, n);
  return Status::ok();
}

Status MessageQueue::reschedule(int64_t id, int64_t attempts, int64_t nextAttemptMillis) {
  MutexLock lock(mu_);
  if (auto s = checkOpenLocked(); !s.isOk()) return s;
  sqlite::Stmt u(db_, "UPDATE messages SET attempts = ?, next_attempt = ? WHERE id = ?");
  u.bind(1, attempts).bind(2, nextAttemptMillis).bind(3, id);
  if (!u.ok() || u.step() != SQLITE_DONE) return dbError(db_, "update");
  return Status::ok();
}

size_t MessageQueue::size() const {
  MutexLock lock(mu_);
  return count_;
}

uint64_t MessageQueue::bytes() const {
  MutexLock lock(mu_);
  return bytes_;
}

}  // namespace ep::router
