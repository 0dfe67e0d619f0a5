#include "common/spdy/spdy.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace ep::spdy {
namespace {

// Feeds `bytes` one byte at a time (the worst split a WebSocket can make).
std::vector<Frame> readAll(FrameReader& r, const std::string& bytes, Status* status = nullptr) {
  std::vector<Frame> out;
  Status s;
  for (char c : bytes) {
    s = r.feed(std::string_view(&c, 1), out);
    if (!s.isOk()) break;
  }
  if (status != nullptr) *status = s;
  return out;
}

// A control frame header for hand-made frames.
std::string control(uint16_t version, uint16_t type, uint8_t flags, uint32_t length) {
  std::string out;
  const uint32_t first = 0x80000000u | (uint32_t{version} << 16) | type;
  const uint32_t second = (uint32_t{flags} << 24) | length;
  for (uint32_t v : {first, second}) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(char(v >> shift));
  }
  return out;
}

TEST(SpdyTest, TheDictionaryIsSpdy3s) {
  const std::string& d = headerDictionary();
  EXPECT_EQ(d.size(), 1423u);
  // zlib names a preset dictionary by its Adler-32; a peer's stream names this one.
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())),
            0xe3c6a7c2u);
}

TEST(SpdyTest, EveryFrameKindRoundTripsAcrossAnySplit) {
  FrameWriter w;
  FrameReader r;
  std::string bytes;
  bytes += w.synStream(1, {{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}}, false);
  // The second header block continues the first's compression context.
  bytes += w.synStream(3, {{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}}, false);
  bytes += w.synReply(3, {}, false);
  bytes += w.data(3, "hello", false);
  bytes += w.data(3, std::string(40000, 'x'), true);
  bytes += w.rstStream(1, kCancel);
  bytes += w.ping(7);
  bytes += w.goAway(3, 0);
  Status s;
  auto frames = readAll(r, bytes, &s);
  ASSERT_TRUE(s.isOk()) << s.toString();
  ASSERT_EQ(frames.size(), 8u);
  EXPECT_EQ(frames[0].type, FrameType::kSynStream);
  EXPECT_EQ(frames[0].streamId, 1u);
  EXPECT_EQ(headerValue(frames[0].headers, "streamtype"), "error");
  EXPECT_EQ(headerValue(frames[0].headers, "port"), "8080");
  EXPECT_EQ(frames[1].streamId, 3u);
  EXPECT_EQ(headerValue(frames[1].headers, "streamtype"), "data");
  EXPECT_EQ(headerValue(frames[1].headers, "requestid"), "0");
  EXPECT_EQ(frames[2].type, FrameType::kSynReply);
  EXPECT_TRUE(frames[2].headers.empty());
  EXPECT_EQ(frames[3].type, FrameType::kData);
  EXPECT_EQ(frames[3].data, "hello");
  EXPECT_FALSE(frames[3].fin());
  EXPECT_EQ(frames[4].data.size(), 40000u);
  EXPECT_TRUE(frames[4].fin());
  EXPECT_EQ(frames[5].type, FrameType::kRstStream);
  EXPECT_EQ(frames[5].value, kCancel);
  EXPECT_EQ(frames[6].type, FrameType::kPing);
  EXPECT_EQ(frames[6].value, 7u);
  EXPECT_EQ(frames[7].type, FrameType::kGoAway);
  EXPECT_EQ(frames[7].streamId, 3u);
}

TEST(SpdyTest, HeaderNamesAreLowerCasedAndUnknownControlFramesIgnored) {
  FrameWriter w;
  FrameReader r;
  // SETTINGS (type 4) with one entry, then a type nobody defined: both skipped.
  std::string bytes = control(3, 4, 0, 12) + std::string("\0\0\0\1\0\0\0\7\0\0\0\x64", 12) +
                      control(3, 77, 0, 2) + "zz";
  bytes += w.synStream(1, {{"StreamType", "data"}}, true);
  std::vector<Frame> frames;
  ASSERT_TRUE(r.feed(bytes, frames).isOk());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(headerValue(frames[0].headers, "streamtype"), "data");
  EXPECT_TRUE(frames[0].fin());
}

TEST(SpdyTest, ProtocolErrorsAreNamedAndTheSessionStaysBroken) {
  struct Case {
    std::string bytes;
    std::string error;
  };
  std::string bomb;
  {
    // A header block that inflates far beyond its limit.
    FrameWriter w;
    bomb = w.synStream(1, {{"x", std::string(100000, 'a')}}, false);
  }
  std::vector<Case> cases = {
      {control(2, 1, 0, 10) + std::string(10, '\0'), "SPDY version 2 is not supported"},
      {control(3, 3, 0, 4) + std::string(4, '\0'), "RST_STREAM frame of 4 bytes is too short"},
      {control(3, 1, 0, 0x200000), "over the limit of 1048576"},
      {control(3, 1, 0, 14) + std::string("\0\0\0\1\0\0\0\0\0\0garb", 14), "SPDY header block"},
      {std::string("\0\0\0\0\0\0\0\0", 8), "data frame on stream 0"},
      {bomb, "header block is over the limit of 65536 bytes"},
  };
  for (const auto& c : cases) {
    FrameReader r;
    std::vector<Frame> frames;
    Status s = r.feed(c.bytes, frames);
    ASSERT_FALSE(s.isOk()) << c.error;
    EXPECT_EQ(s.code(), Code::kInvalid);
    EXPECT_NE(s.message().find(c.error), std::string::npos) << s.message();
    // Anything after is refused too: the compression context is lost.
    FrameWriter w;
    EXPECT_FALSE(r.feed(w.ping(1), frames).isOk());
  }
}

TEST(SpdyTest, AHeaderBlockCutShortIsAnError) {
  // A valid compressed block whose pair count promises more than it holds.
  FrameWriter w;
  std::string frame = w.synStream(1, {{"a", "b"}}, false);
  FrameReader ok;
  std::vector<Frame> frames;
  ASSERT_TRUE(ok.feed(frame, frames).isOk());

  // Hand-compress "two pairs" with only one in the block.
  z_stream z{};
  ASSERT_EQ(deflateInit(&z, Z_DEFAULT_COMPRESSION), Z_OK);
  const std::string& d = headerDictionary();
  ASSERT_EQ(deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(d.data()),
                                 static_cast<uInt>(d.size())),
            Z_OK);
  std::string block("\0\0\0\2\0\0\0\1a\0\0\0\1b", 14);
  std::string out(256, '\0');
  z.next_in = reinterpret_cast<Bytef*>(block.data());
  z.avail_in = static_cast<uInt>(block.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  ASSERT_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  std::string bytes = control(3, 1, 0, static_cast<uint32_t>(10 + out.size())) +
                      std::string("\0\0\0\1\0\0\0\0\0\0", 10) + out;
  FrameReader r;
  Status s = r.feed(bytes, frames);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("pair 2 of 2 is cut short"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ep::spdy
