// Parsers of an image's index, manifest and config (common/oci/image.h): what is taken from
// them, and malformed documents refused naming the field.
#include "common/oci/image.h"

#include <gtest/gtest.h>

namespace ep::oci {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(OciImage, ParsesAnIndexsPlatforms) {
  auto r = parseImageIndex(R"({"schemaVersion": 2, "manifests": [
      {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" +
                           kDigest +
                           R"(", "size": 10,
       "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
      {"digest": ")" + kDigest +
                           R"(", "size": 5}]})");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].architecture, "arm");
  EXPECT_EQ((*r)[0].variant, "v7");
  EXPECT_EQ((*r)[0].size, 10u);
  EXPECT_EQ((*r)[1].os, "");
  EXPECT_EQ(
      parseImageIndex(R"({"manifests": [{"digest": "md5:x", "size": 1}]})").status().message(),
      "index: manifests[0].digest: \"md5:x\" is not a sha256 digest");
  EXPECT_EQ(parseImageIndex("[]").status().message(), "index: not a JSON object");
  EXPECT_EQ(parseImageIndex("{}").status().message(), "index: manifests: must be a list");
  EXPECT_TRUE(isImageIndex("application/vnd.docker.distribution.manifest.list.v2+json"));
  EXPECT_FALSE(isImageIndex("application/vnd.oci.image.manifest.v1+json"));
}

TEST(OciImage, ParsesAManifestAndAConfig) {
  auto m = parseImageManifest(R"({"config": {"digest": ")" + kDigest +
                              R"(", "size": 3}, "layers": [{"mediaType":
      "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ")" +
                              kDigest + R"(", "size": 99}]})");
  ASSERT_TRUE(m.isOk()) << m.status().toString();
  EXPECT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].size, 99u);
  EXPECT_TRUE(isTarLayer(m->layers[0].mediaType));
  EXPECT_FALSE(isTarLayer("application/vnd.oci.image.layer.v1.tar+zstd"));
  EXPECT_EQ(parseImageManifest(R"({"config": {"digest": ")" + kDigest +
                               R"(", "size": -1}, "layers": []})")
                .status()
                .message(),
            "manifest: config.size: must be a byte count");
  EXPECT_EQ(parseImageManifest(R"({"layers": []})").status().message(),
            "manifest: config: required");
  EXPECT_EQ(parseImageManifest(R"({"mediaType": "application/vnd.oci.image.index.v1+json"})")
                .status()
                .message(),
            "manifest: an image index where an image manifest was expected");

  auto c = parseImageConfig(R"({"os": "linux", "architecture": "arm64",
      "config": {"Entrypoint": ["/usr/bin/edgecore"], "Cmd": null}})");
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->architecture, "arm64");
  EXPECT_EQ(c->entrypoint, std::vector<std::string>{"/usr/bin/edgecore"});
  EXPECT_TRUE(c->cmd.empty());
  EXPECT_EQ(parseImageConfig(R"({"config": {"Entrypoint": "/bin/sh"}})").status().message(),
            "image config: config.Entrypoint: must be a list of strings");
}

}  // namespace
}  // namespace ep::oci
