// Finding one file in an image layer (cloudcore/upgrades/layer_file.h): tar and tar+gzip fed in
// pieces of every size, long names, whiteouts, and malformed archives refused with their reason.
#include "cloudcore/upgrades/layer_file.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/cloudcore/upgrades/tar_builder.h"

namespace ep::upgrades::testing {
namespace {

struct Found {
  Status status;
  LayerFileFinder::Outcome outcome = LayerFileFinder::Outcome::kAbsent;
  std::string data;
};

Found find(const std::string& layer, const std::string& path = "/usr/bin/edgecore",
           size_t piece = 4096, uint64_t max = 1 << 20) {
  Found f;
  LayerFileFinder finder(path, max, [&](std::string_view b) -> Status {
    f.data.append(b);
    return {};
  });
  for (size_t i = 0; i < layer.size() && f.status.isOk(); i += piece) {
    f.status = finder.feed(std::string_view(layer).substr(i, piece));
  }
  if (f.status.isOk()) f.status = finder.finish();
  f.outcome = finder.outcome();
  return f;
}

std::string binary(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + (i >> 8));
  return s;
}

TEST(LayerFileFinder, FindsTheFileInTarAndGzipFedInPiecesOfAnySize) {
  const std::string bin = binary(70000);
  const std::string tar = TarBuilder()
                              .add("usr/", "", '5')
                              .add("usr/bin/", "", '5')
                              .add("usr/bin/other", binary(1000))
                              .add("./usr/bin/edgecore", bin)
                              .add("etc/passwd", "root:x:0:0\n")
                              .finish();
  for (const std::string& layer : {tar, gzip(tar)}) {
    for (size_t piece : {size_t{1}, size_t{7}, size_t{511}, size_t{512}, size_t{65536}}) {
      Found f = find(layer, "/usr/bin/edgecore", piece);
      ASSERT_TRUE(f.status.isOk()) << f.status.toString();
      EXPECT_EQ(f.outcome, LayerFileFinder::Outcome::kFound);
      EXPECT_EQ(f.data, bin) << "piece " << piece;
    }
  }
  // Another path is absent; the archive is still read to its end without error.
  Found f = find(gzip(tar), "/usr/local/bin/edgecore");
  EXPECT_TRUE(f.status.isOk());
  EXPECT_EQ(f.outcome, LayerFileFinder::Outcome::kAbsent);
  EXPECT_TRUE(f.data.empty());
}

TEST(LayerFileFinder, ReadsPaxAndGnuLongNamesAndConcatenatedGzipMembers) {
  const std::string longPath = std::string(120, 'd') + "/bin/edgecore";
  Found pax = find(TarBuilder().addPax(longPath, "pax-bytes").finish(), longPath);
  ASSERT_TRUE(pax.status.isOk()) << pax.status.toString();
  EXPECT_EQ(pax.data, "pax-bytes");
  Found gnu = find(gzip(TarBuilder().addGnuLong(longPath, "gnu-bytes").finish()), longPath);
  ASSERT_TRUE(gnu.status.isOk()) << gnu.status.toString();
  EXPECT_EQ(gnu.data, "gnu-bytes");
  // Two gzip members make one archive (as pigz and some tools write).
  const std::string a = TarBuilder().add("x", "1").finish(false);
  const std::string b = TarBuilder().add("usr/bin/edgecore", "two").finish();
  Found both = find(gzip(a) + gzip(b));
  ASSERT_TRUE(both.status.isOk()) << both.status.toString();
  EXPECT_EQ(both.data, "two");
}

TEST(LayerFileFinder, WhiteoutsDeleteTheFileForTheLayersBelow) {
  EXPECT_EQ(find(TarBuilder().add("usr/bin/.wh.edgecore").finish()).outcome,
            LayerFileFinder::Outcome::kDeleted);
  EXPECT_EQ(find(TarBuilder().add("usr/.wh.bin").finish()).outcome,
            LayerFileFinder::Outcome::kDeleted);
  EXPECT_EQ(find(TarBuilder().add("usr/bin/.wh..wh..opq").finish()).outcome,
            LayerFileFinder::Outcome::kDeleted);
  // A whiteout of something else, or an opaque directory holding the file itself: found.
  EXPECT_EQ(find(TarBuilder().add("usr/bin/.wh.edgecore-old").finish()).outcome,
            LayerFileFinder::Outcome::kAbsent);
  EXPECT_EQ(find(TarBuilder().add("usr/bin/.wh..wh..opq").add("usr/bin/edgecore", "new").finish())
                .outcome,
            LayerFileFinder::Outcome::kFound);
}

TEST(LayerFileFinder, AParentThatIsNotADirectoryHidesTheFileBelow) {
  EXPECT_EQ(find(TarBuilder().add("usr/bin", "", '2', "/bin").finish()).outcome,
            LayerFileFinder::Outcome::kDeleted);
  EXPECT_EQ(find(TarBuilder().add("usr", "a file").finish()).outcome,
            LayerFileFinder::Outcome::kDeleted);
  // A directory, or a sibling whose name merely begins the same, hides nothing.
  EXPECT_EQ(find(TarBuilder().add("usr/bin", "", '5').add("usr/bi", "x").finish()).outcome,
            LayerFileFinder::Outcome::kAbsent);
}

TEST(LayerFileFinder, SkipsTheDataOfEntryTypesItDoesNotKnowAndReadsGnuHeaders) {
  // A GNU sparse entry ('S') and an unknown type ('Z') carry data that is not a header.
  std::string junk(1000, 'j');
  std::string sparse = TarBuilder::header("usr/bin/sparse", junk.size(), 'S', "");
  std::string unknown = TarBuilder::header("usr/bin/vendor", junk.size(), 'Z', "");
  Found f = find(TarBuilder()
                     .addRaw(sparse, junk)
                     .addRaw(unknown, junk)
                     .add("usr/bin/edgecore", "after")
                     .finish());
  ASSERT_TRUE(f.status.isOk()) << f.status.toString();
  EXPECT_EQ(f.data, "after");
  // GNU's magic ("ustar  "): bytes 345.. hold times, never a name prefix.
  std::string gnu = TarBuilder::header("usr/bin/edgecore", 3, '0', "");
  std::memcpy(&gnu[257], "ustar  ", 8);
  std::memcpy(&gnu[345], "14567012345", 11);  // an atime
  Found g = find(TarBuilder().addRaw(TarBuilder::resum(gnu), "gnu").finish());
  ASSERT_TRUE(g.status.isOk()) << g.status.toString();
  EXPECT_EQ(g.data, "gnu");
}

TEST(LayerFileFinder, RefusesWhatIsNotARegularFileOrNotAnArchive) {
  Found link = find(TarBuilder().add("usr/bin/edgecore", "", '2', "/opt/edgecore").finish());
  EXPECT_EQ(link.status.code(), Code::kInvalid);
  EXPECT_NE(link.status.message().find("is a symbolic link"), std::string::npos)
      << link.status.message();
  Found twice =
      find(TarBuilder().add("usr/bin/edgecore", "a").add("usr/bin/edgecore", "b").finish());
  EXPECT_NE(twice.status.message().find("appears twice"), std::string::npos);
  Found big = find(TarBuilder().add("usr/bin/edgecore", binary(5000)).finish(), "/usr/bin/edgecore",
                   4096, 4096);
  EXPECT_NE(big.status.message().find("5000 bytes, over the limit of 4096"), std::string::npos)
      << big.status.message();
  Found notTar = find(std::string(2048, 'x'));
  EXPECT_NE(notTar.status.message().find("bad header checksum"), std::string::npos)
      << notTar.status.message();
  const std::string tar = TarBuilder().add("usr/bin/edgecore", binary(3000)).finish(false);
  Found cut = find(tar.substr(0, 1500));
  EXPECT_NE(cut.status.message().find("ends inside entry 1 (usr/bin/edgecore)"), std::string::npos)
      << cut.status.message();
  std::string gz = gzip(tar);
  Found gzCut = find(gz.substr(0, gz.size() / 2));
  EXPECT_EQ(gzCut.status.code(), Code::kInvalid);
  gz[gz.size() / 2] ^= 0x55;
  Found corrupt = find(gz);
  EXPECT_EQ(corrupt.status.code(), Code::kInvalid);
  // A sink's error stops the read and is the finder's.
  LayerFileFinder failing("usr/bin/edgecore", 1 << 20,
                          [](std::string_view) { return Status(Code::kInternal, "disk full"); });
  EXPECT_EQ(failing.feed(tar).message(), "disk full");
  EXPECT_EQ(failing.feed("more").message(), "disk full");
}

}  // namespace
}  // namespace ep::upgrades::testing
