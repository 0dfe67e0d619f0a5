#include "cloudcore/router/message_queue.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "tests/testing/temp_dir.h"

namespace ep::router {
namespace {

QueuedMessage message(const std::string& rule, Direction d = Direction::kToRest) {
  QueuedMessage m;
  m.direction = d;
  m.node = "edge-1";
  m.ruleNamespace = "default";
  m.ruleName = rule;
  m.target = d == Direction::kToRest ? "http://127.0.0.1:1/hook" : "topic";
  m.createdMillis = 1000;
  return m;
}

class MessageQueueTest : public ::testing::Test {
 protected:
  MessageQueueOptions options(size_t maxMessages = 100, uint64_t maxBytes = 1 << 20) {
    return {.path = dir_.path() + "/router.db", .maxMessages = maxMessages, .maxBytes = maxBytes};
  }
  testing::TempDir dir_;
};

TEST_F(MessageQueueTest, MessagesSurviveAReopenInOrderWithTheirSchedule) {
  {
    MessageQueue q(options());
    ASSERT_TRUE(q.open().isOk());
    for (const char* body : {"one", "two", "three"}) {
      auto m = message("r");
      ASSERT_TRUE(q.push(m, body).isOk());
    }
    ASSERT_TRUE(q.remove(2).isOk());
    ASSERT_TRUE(q.reschedule(3, 4, 99999).isOk());
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.bytes(), 8u);
  }
  MessageQueue q(options());
  auto loaded = q.open();
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].id, 1);
  EXPECT_EQ((*loaded)[1].id, 3);
  EXPECT_EQ((*loaded)[1].attempts, 4);
  EXPECT_EQ((*loaded)[1].nextAttemptMillis, 99999);
  EXPECT_EQ(*q.body(3), "three");
  EXPECT_EQ(q.body(2).status().code(), Code::kNotFound);
  // Ids keep increasing after a reopen.
  auto m = message("r");
  ASSERT_TRUE(q.push(m, "four").isOk());
  EXPECT_EQ(m.id, 4);
}

TEST_F(MessageQueueTest, AFullQueueRefusesNewMessages) {
  MessageQueue q(options(2, 10));
  ASSERT_TRUE(q.open().isOk());
  auto a = message("r");
  ASSERT_TRUE(q.push(a, "12345").isOk());
  auto b = message("r");
  Status tooBig = q.push(b, "123456");  // 11 bytes in all
  EXPECT_EQ(tooBig.code(), Code::kUnavailable);
  EXPECT_NE(tooBig.message().find("full"), std::string::npos);
  ASSERT_TRUE(q.push(b, "1").isOk());
  auto c = message("r");
  EXPECT_EQ(q.push(c, "").code(), Code::kUnavailable);  // 2 messages
  EXPECT_EQ(q.size(), 2u);
}

// Data at rest is verified: a row changed on disk is removed, never delivered.
TEST_F(MessageQueueTest, ACorruptedRowIsRemovedAndNeverServed) {
  {
    MessageQueue q(options());
    ASSERT_TRUE(q.open().isOk());
    for (const char* body : {"good", "bad", "later"}) {
      auto m = message("r", Direction::kToEdge);
      ASSERT_TRUE(q.push(m, body).isOk());
    }
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/router.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "UPDATE messages SET body = 'evil' WHERE id = 2", nullptr, nullptr, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE messages SET target = 'other' WHERE id = 3", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  MessageQueue q(options());
  size_t corrupt = 0;
  auto loaded = q.open(&corrupt);
  ASSERT_TRUE(loaded.isOk());
  EXPECT_EQ(corrupt, 2u);
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].id, 1);
  EXPECT_EQ(q.body(2).status().code(), Code::kNotFound);
  EXPECT_EQ(q.size(), 1u);
}

}  // namespace
}  // namespace ep::router
