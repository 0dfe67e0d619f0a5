#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/testing/temp_dir.h"

namespace ep {
namespace {

// Issue 14: a failure repeated in a loop (accept out of descriptors) wrote millions of identical
// lines. Identical consecutive lines are counted instead, and the count is written.
TEST(LogTest, RepeatedLinesAreCountedNotWritten) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/stderr.log";
  std::fflush(stderr);
  const int saved = ::dup(2);
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  ::dup2(::fileno(f), 2);
  ASSERT_TRUE(setupLogging("info", "logtest").isOk());
  for (int i = 0; i < 10000; ++i) spdlog::warn("accept failed: Too many open files");
  spdlog::info("recovered");
  spdlog::default_logger()->flush();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(f);
  spdlog::drop_all();

  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string out = text.str();
  size_t lines = 0;
  for (char c : out) lines += c == '\n';
  EXPECT_EQ(lines, 3u) << out;  // the first, the count, the next different line
  EXPECT_NE(out.find("accept failed: Too many open files"), std::string::npos) << out;
  EXPECT_NE(out.find("Skipped 9999 duplicate messages"), std::string::npos) << out;
  EXPECT_NE(out.find("recovered"), std::string::npos) << out;
}

}  // namespace
}  // namespace ep
