#include "common/sqlite/sqlite.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

#include "tests/testing/temp_dir.h"

namespace ep::sqlite {
namespace {

// Text is bound SQLITE_STATIC, so a temporary string must not bind.
template <typename S>
concept CanBindTemporary = requires(S& s) {
  s.bind(1, std::string());
};
static_assert(!CanBindTemporary<Stmt>, "binding an rvalue string must not compile");
template <typename S>
concept CanBindBlobTemporary = requires(S& s) {
  s.bindBlob(1, std::string());
};
static_assert(!CanBindBlobTemporary<Stmt>, "binding an rvalue blob must not compile");

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Db = std::unique_ptr<sqlite3, Closer>;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = openDatabase(dir_.path() + "/t.db", /*readOnly=*/false);
    ASSERT_TRUE(db.isOk()) << db.status().toString();
    db_.reset(*db);
    ASSERT_TRUE(exec(db_.get(), "CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER, b BLOB)").isOk());
  }

  int64_t count() {
    Stmt q(db_.get(), "SELECT count(*) FROM t");
    EXPECT_EQ(q.step(), SQLITE_ROW);
    return q.int64(0);
  }

  testing::TempDir dir_;
  Db db_;
};

TEST_F(SqliteTest, BindStepAndRead) {
  const std::string key = "a", blob = std::string("x\0y", 3);
  Stmt ins(db_.get(), "INSERT INTO t(k, v, b) VALUES(?, ?, ?)");
  ASSERT_TRUE(ins.ok());
  ins.bind(1, key).bind(2, int64_t{42}).bindBlob(3, blob);
  EXPECT_EQ(ins.step(), SQLITE_DONE);
  ins.reset();
  const std::string key2 = "b";
  ins.bind(1, key2).bind(2, int64_t{7}).bindNull(3);
  EXPECT_EQ(ins.step(), SQLITE_DONE);

  Stmt q(db_.get(), "SELECT k, v, b FROM t ORDER BY k");
  ASSERT_EQ(q.step(), SQLITE_ROW);
  EXPECT_EQ(q.text(0), "a");
  EXPECT_EQ(q.int64(1), 42);
  EXPECT_EQ(q.text(2), blob);
  EXPECT_FALSE(q.isNull(2));
  ASSERT_EQ(q.step(), SQLITE_ROW);
  EXPECT_TRUE(q.isNull(2));
  EXPECT_EQ(q.text(2), "");
  EXPECT_EQ(q.step(), SQLITE_DONE);
}

TEST_F(SqliteTest, PrepareFailureIsReported) {
  Stmt bad(db_.get(), "SELECT nope FROM missing");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("missing"), std::string::npos);
}

TEST_F(SqliteTest, ExecErrorNamesContextAndStatement) {
  Status s = exec(db_.get(), "DROP TABLE missing", "edge cache");
  EXPECT_EQ(s.code(), Code::kInternal);
  EXPECT_EQ(s.message().rfind("edge cache: ", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("(in: DROP TABLE missing)"), std::string::npos) << s.message();
}

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  {
    Transaction txn(db_.get());
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(exec(db_.get(), "INSERT INTO t(k) VALUES('gone')").isOk());
  }
  EXPECT_EQ(count(), 0);
  {
    Transaction txn(db_.get());
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(exec(db_.get(), "INSERT INTO t(k) VALUES('kept')").isOk());
    EXPECT_TRUE(txn.commit().isOk());
  }
  EXPECT_EQ(count(), 1);
}

TEST_F(SqliteTest, NestedTransactionFailsToBegin) {
  Transaction outer(db_.get());
  ASSERT_TRUE(outer.ok());
  Transaction inner(db_.get());
  EXPECT_FALSE(inner.ok());
  EXPECT_EQ(inner.status().code(), Code::kInternal);
}

TEST(OpenDatabaseTest, ReadOnlyMissingFileIsUnavailableAndNamesPath) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/absent.db";
  auto db = openDatabase(path, /*readOnly=*/true);
  ASSERT_FALSE(db.isOk());
  EXPECT_EQ(db.status().code(), Code::kUnavailable);
  EXPECT_EQ(db.status().message().rfind(path + ": ", 0), 0u) << db.status().message();
}

TEST(OpenDatabaseTest, ReadOnlyConnectionRefusesWrites) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/ro.db";
  {
    auto rw = openDatabase(path, /*readOnly=*/false);
    ASSERT_TRUE(rw.isOk());
    Db owned(*rw);
    ASSERT_TRUE(exec(owned.get(), "CREATE TABLE t(x)").isOk());
  }
  auto ro = openDatabase(path, /*readOnly=*/true);
  ASSERT_TRUE(ro.isOk());
  Db owned(*ro);
  EXPECT_FALSE(exec(owned.get(), "INSERT INTO t VALUES(1)").isOk());
}

}  // namespace
}  // namespace ep::sqlite

namespace ep::sqlite {
namespace {

// Every single-bit change of a value, and every change of where its fields split, changes the
// checksum the cloud store keeps per row.
TEST(WordChecksumTest, EveryBitFlipAndFieldBoundaryCounts) {
  std::string value(1003, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 131 + 7);
  const int64_t base = WordChecksum().add("pods").add(value).add(int64_t{42}).value();
  for (size_t i = 0; i < value.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string changed = value;
      changed[i] = static_cast<char>(changed[i] ^ (1 << bit));
      ASSERT_NE(WordChecksum().add("pods").add(changed).add(int64_t{42}).value(), base)
          << "byte " << i << " bit " << bit;
    }
  }
  EXPECT_NE(WordChecksum().add("ab").add("c").value(), WordChecksum().add("a").add("bc").value());
  EXPECT_NE(WordChecksum().add("").value(), WordChecksum().value());
  EXPECT_NE(WordChecksum().add("x").value(), WordChecksum().add(std::string("x\0", 2)).value());
}

}  // namespace
}  // namespace ep::sqlite
