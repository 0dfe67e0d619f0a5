#pragma once

// Parsers of what an OCI registry holds for a container image (OCI image spec, and Docker's
// schema 2 that registries still serve): the index (one manifest per platform), a manifest
// (config and layers) and the config (platform, entrypoint). Used by cloudcore to take edgecore
// binaries out of images (docs/upgrades.md, "From an image"). Pure; thread-safe. Every error
// is kInvalid and names the field ("index: manifests[2].digest: ...").

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ep::oci {

// A content descriptor; the platform fields only for an index's manifests.
struct OciDescriptor {
  std::string mediaType;
  std::string digest;  // "sha256:HEX"
  uint64_t size = 0;
  std::string os;
  std::string architecture;  // GOARCH: amd64, arm64, arm, ...
  std::string variant;       // "v7", ...
};

// Whether a manifest's media type is an index (OCI) or manifest list (Docker).
bool isImageIndex(std::string_view mediaType);

// The manifests an index lists (at most 256), each with a sha256 digest and a size.
Result<std::vector<OciDescriptor>> parseImageIndex(std::string_view body);

struct OciImageManifest {
  OciDescriptor config;
  std::vector<OciDescriptor> layers;  // base first (at most 256)
};
Result<OciImageManifest> parseImageManifest(std::string_view body);

struct OciImageConfig {
  std::string os;
  std::string architecture;
  std::string variant;
  std::vector<std::string> entrypoint;  // config.Entrypoint
  std::vector<std::string> cmd;         // config.Cmd
};
Result<OciImageConfig> parseImageConfig(std::string_view body);

// Whether a layer's media type is one whose bytes are a tar archive, gzip-compressed or not
// (OCI's and Docker's, including the non-distributable variants). zstd layers are not.
bool isTarLayer(std::string_view mediaType);

}  // namespace ep::oci
