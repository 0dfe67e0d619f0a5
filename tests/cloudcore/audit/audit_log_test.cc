#include "cloudcore/audit/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/testing/temp_dir.h"

namespace ep::audit {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(AuditLogTest, WritesLinesWithPrivateMode) {
  testing::TempDir dir;
  AuditLog log({.path = dir.path() + "/sub/audit.log"});
  ASSERT_TRUE(log.start().isOk());
  log.record(R"({"a":1})");
  log.record(R"({"b":2})");
  log.flush();
  EXPECT_EQ(slurp(dir.path() + "/sub/audit.log"), "{\"a\":1}\n{\"b\":2}\n");
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/sub/audit.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  log.stop();
  EXPECT_EQ(log.written(), 2u);
}

TEST(AuditLogTest, RotatesBySizeKeepingBackups) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/audit.log";
  AuditLog log({.path = path, .maxBytes = 100, .maxBackups = 2});
  ASSERT_TRUE(log.start().isOk());
  const std::string line(39, 'x');  // 40 bytes with the newline: two fit in 100
  for (int i = 0; i < 7; ++i) log.record(line);
  log.stop();
  namespace fs = std::filesystem;
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(fs::exists(path + ".1"));
  EXPECT_TRUE(fs::exists(path + ".2"));
  EXPECT_FALSE(fs::exists(path + ".3"));
  EXPECT_LE(fs::file_size(path), 100u);
  EXPECT_EQ(fs::file_size(path + ".1"), 80u);
  EXPECT_EQ(fs::file_size(path), 40u);  // 7 lines: 2 + 2 (+ 2 dropped with .3) + 1
}

TEST(AuditLogTest, FullQueueDropsAndCounts) {
  testing::TempDir dir;
  AuditLog log({.path = dir.path() + "/a.log", .maxQueued = 2});
  // Not started: nothing drains the queue.
  log.record("1");
  log.record("2");
  log.record("3");
  EXPECT_EQ(log.dropped(), 1u);
}

TEST(AuditLogTest, UnwritablePathIsAnError) {
  AuditLog log({.path = "/proc/nonexistent/audit.log"});
  auto s = log.start();
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("/proc/nonexistent/audit.log"), std::string::npos);
}

}  // namespace
}  // namespace ep::audit
