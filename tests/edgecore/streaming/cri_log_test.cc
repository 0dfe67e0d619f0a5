#include "edgecore/edged/streaming/cri_log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>

namespace ep::edged::streaming {
namespace {

std::string format(std::string_view input, LogOutputOptions o = {}, size_t split = 0) {
  CriLogFormatter f(o);
  std::string out;
  if (split == 0) {
    f.feed(input, out);
  } else {
    for (size_t i = 0; i < input.size(); i += split) f.feed(input.substr(i, split), out);
  }
  return out;
}

TEST(CriLogLine, ParsesFields) {
  auto e = parseCriLogLine("2026-01-02T03:04:05.123456789Z stderr P hello world ");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->timestamp, "2026-01-02T03:04:05.123456789Z");
  EXPECT_EQ(e->stream, LogStream::kStderr);
  EXPECT_TRUE(e->partial);
  EXPECT_EQ(e->message, "hello world ");
  EXPECT_EQ(e->timeNs % 1'000'000'000, 123456789);
  auto empty = parseCriLogLine("2026-01-02T03:04:05Z stdout F");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->message, "");
  auto tagged = parseCriLogLine("2026-01-02T03:04:05Z stdout F:x msg");
  ASSERT_TRUE(tagged);
  EXPECT_EQ(tagged->message, "msg");
}

TEST(CriLogLine, RejectsMalformed) {
  for (const char* bad : {"", "garbage", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z stdin F x",
                          "2026-01-02T03:04:05Z stdout X x", "2026-13-02T03:04:05Z stdout F x",
                          "2026-01-02 03:04:05Z stdout F x", "2026-01-02T03:04:05 stdout F x",
                          "2026-01-02T03:04:05.Z stdout F x"}) {
    EXPECT_FALSE(parseCriLogLine(bad)) << bad;
  }
}

TEST(Rfc3339Nanos, OffsetsAndFractions) {
  auto utc = parseRfc3339Nanos("1970-01-01T00:00:01.5Z");
  ASSERT_TRUE(utc);
  EXPECT_EQ(*utc, 1'500'000'000);
  auto plus = parseRfc3339Nanos("1970-01-01T01:00:01+01:00");
  ASSERT_TRUE(plus);
  EXPECT_EQ(*plus, 1'000'000'000);
  EXPECT_EQ(*parseRfc3339Nanos("2000-03-01T00:00:00Z"), 951868800LL * 1'000'000'000);
  EXPECT_FALSE(parseRfc3339Nanos("1970-01-01T00:00:01+0100"));
}

const char* kLog =
    "2026-01-02T03:04:05.000000001Z stdout F one\n"
    "2026-01-02T03:04:06.000000000Z stdout P two-\n"
    "2026-01-02T03:04:07.000000000Z stdout P and-\n"
    "2026-01-02T03:04:08.000000000Z stdout F end\n"
    "not a cri line\n"
    "2026-01-02T03:04:09.000000000Z stderr F four\n";

TEST(CriLogFormatter, JoinsPartialLinesAndSkipsMalformed) {
  CriLogFormatter f({});
  std::string out;
  f.feed(kLog, out);
  EXPECT_EQ(out, "one\ntwo-and-end\nfour\n");
  EXPECT_EQ(f.malformedLines(), 1u);
}

TEST(CriLogFormatter, AnySplitGivesTheSameOutput) {
  for (size_t split : {1, 2, 3, 7, 50}) EXPECT_EQ(format(kLog, {}, split), format(kLog)) << split;
}

TEST(CriLogFormatter, IncompleteLastLineWaits) {
  CriLogFormatter f({});
  std::string out;
  f.feed("2026-01-02T03:04:05Z stdout F hal", out);
  EXPECT_EQ(out, "");
  EXPECT_GT(f.pendingBytes(), 0u);
  f.feed("f\n", out);
  EXPECT_EQ(out, "half\n");
}

TEST(CriLogFormatter, TimestampsAtLineStartOnly) {
  LogOutputOptions o;
  o.timestamps = true;
  EXPECT_EQ(format(kLog, o),
            "2026-01-02T03:04:05.000000001Z one\n"
            "2026-01-02T03:04:06.000000000Z two-and-end\n"
            "2026-01-02T03:04:09.000000000Z four\n");
}

TEST(CriLogFormatter, SinceSkipsOlderEntries) {
  LogOutputOptions o;
  o.sinceNs = *parseRfc3339Nanos("2026-01-02T03:04:08Z");
  EXPECT_EQ(format(kLog, o), "end\nfour\n");
}

TEST(CriLogFormatter, LimitBytesCutsExactly) {
  LogOutputOptions o;
  o.limitBytes = 6;
  CriLogFormatter f(o);
  std::string out;
  f.feed(kLog, out);
  EXPECT_EQ(out, "one\ntw");
  EXPECT_TRUE(f.limitReached());
  f.feed(kLog, out);
  EXPECT_EQ(out, "one\ntw");
}

TEST(CriLogFormatter, OutputNeverLongerThanInput) {
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::string in;
    int n = static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k) {
      in += (rng() % 2 ? "2026-01-02T03:04:05Z stdout " : "x ");
      in += (rng() % 2 ? "P " : "F ");
      in += std::string(rng() % 5, 'a' + static_cast<char>(rng() % 26));
      in += (rng() % 4 ? "\n" : "");
    }
    LogOutputOptions o;
    o.timestamps = rng() % 2;
    EXPECT_LE(format(in, o).size(), in.size()) << in;
  }
}

TEST(TailOffset, CountsLinesFromTheEnd) {
  std::string s = "a\nb\nc\n";
  EXPECT_EQ(tailOffset(s, -1), 0u);
  EXPECT_EQ(tailOffset(s, 0), s.size());
  EXPECT_EQ(s.substr(tailOffset(s, 1)), "c\n");
  EXPECT_EQ(s.substr(tailOffset(s, 2)), "b\nc\n");
  EXPECT_EQ(tailOffset(s, 3), 0u);
  EXPECT_EQ(tailOffset(s, 10), 0u);
  EXPECT_EQ(std::string("a\nb").substr(tailOffset("a\nb", 1)), "b");
  EXPECT_EQ(tailOffset("", 3), 0u);
}

TEST(TailOffset, FileMatchesStringAcrossBlocks) {
  std::string content;
  for (int i = 0; i < 30000; ++i) content += "line " + std::to_string(i) + "\n";
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  std::fwrite(content.data(), 1, content.size(), f);
  for (int64_t n : {0, 1, 2, 100, 15000, 29999, 30000, 40000}) {
    auto o = fileTailOffset(f, static_cast<int64_t>(content.size()), n);
    ASSERT_TRUE(o);
    EXPECT_EQ(static_cast<size_t>(*o), tailOffset(content, n)) << n;
  }
  std::fclose(f);
}

}  // namespace
}  // namespace ep::edged::streaming
