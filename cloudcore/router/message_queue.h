#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

struct sqlite3;

namespace ep::router {

enum class Direction : int {
  kToEdge = 1,  // rest -> eventbus: publish on the node's broker
  kToRest = 2,  // eventbus -> rest: POST to the rule's URL
};

// What the router keeps in memory of a queued message (the body stays on disk).
struct QueuedMessage {
  int64_t id = 0;  // assigned by push(), increasing: the delivery order
  Direction direction = Direction::kToEdge;
  std::string node;  // kToEdge: where to; kToRest: where it came from
  std::string ruleNamespace;
  std::string ruleName;
  std::string target;  // kToEdge: the topic; kToRest: the URL
  int64_t createdMillis = 0;
  int64_t attempts = 0;
  int64_t nextAttemptMillis = 0;
  uint64_t bytes = 0;  // body size
};

struct MessageQueueOptions {
  std::string path;  // DATA_DIR/router.db
  size_t maxMessages = 10000;
  uint64_t maxBytes = 256ull << 20;
};

// The router's durable queue (SQLite, WAL, synchronous=FULL): a message is on disk before the
// router acknowledges it (to the REST caller or the edge), and leaves only when delivered or
// given up. Every row carries a checksum over its fields and body; a row that fails it is
// removed when loaded and never delivered (docs/rules.md).
//
// Thread-safe (one mutex around the connection); every method blocks on the disk.
class MessageQueue {
 public:
  explicit MessageQueue(MessageQueueOptions options);
  ~MessageQueue();
  MessageQueue(const MessageQueue&) = delete;
  MessageQueue& operator=(const MessageQueue&) = delete;

  // Opens (creating) the database and returns what it holds, oldest first. Corrupt rows are
  // deleted and counted in `corrupt`.
  Result<std::vector<QueuedMessage>> open(size_t* corrupt = nullptr);
  void close();

  // Appends a message; fills `message.id`. kUnavailable "router queue is full" beyond the
  // bounds.
  Status push(QueuedMessage& message, const std::string& body);
  // The body of message `id`, checked: kInternal when it fails its checksum (the row is then
  // deleted), kNotFound when gone.
  Result<std::string> body(int64_t id);
  Status remove(int64_t id);
  Status reschedule(int64_t id, int64_t attempts, int64_t nextAttemptMillis);

  size_t size() const;
  uint64_t bytes() const;

 private:
  Status checkOpenLocked() const EP_REQUIRES(mu_);

  const MessageQueueOptions options_;
  mutable Mutex mu_;
  sqlite3* db_ EP_GUARDED_BY(mu_) = nullptr;
  size_t count_ EP_GUARDED_BY(mu_) = 0;
  uint64_t bytes_ EP_GUARDED_BY(mu_) = 0;
};

}  // namespace ep::router
