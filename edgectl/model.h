#pragma once

// edgectl model push|history|rollback: versioned model files for sedna.io/v1alpha1 Models
// (docs/models.md). push uploads the file into cloudcore's blob store through the Model's
// `upload` subresource (resumable: a broken connection resumes from what the cloud has, and
// bytes already stored are not sent again), then points the Model at the new version.

#include <cstdint>
#include <string>
#include <vector>

#include "common/api/kinds.h"
#include "common/status.h"
#include "edgectl/context.h"

namespace ep::edgectl {

struct ModelOptions {
  std::vector<std::string> args;  // push: NAME FILE; history, rollback: NAME
  std::string version;            // push --version (required)
  std::string format;             // push --format (default: the file's extension)
  std::string toVersion;          // rollback --to-version (default: the previous version)
  std::string output;             // history -o: "" (table) | json
  // push: a staged rollout (docs/models.md): only these nodes get the new version until
  // `edgectl model promote`; at most one of the three.
  std::string canaryNodes;  // --canary-nodes a,b
  std::string selector;     // --selector: nodes with these labels
  int canary = 0;           // --canary N: the first N nodes (by name) running pods that use it
  uint64_t chunkBytes = 2u << 20;  // push: bytes per upload request (below cloudcore's body limit)
  int retries = 20;                // push: attempts after a transport error, with backoff
};

// Sends FILE (sha256 `digest`, `size` bytes) through the `upload` subresource of the object
// KIND NS/NAME (models, edgecorereleases), from where the cloud's upload stands to the end, and
// commits it. Transport failures are retried with backoff (at most `retries`), each time asking
// the cloud where it stands first. *bytesSent counts what went over the wire.
Status uploadBlob(Context& ctx, const api::KindInfo& kind, const std::string& ns,
                  const std::string& name, const std::string& file, const std::string& digest,
                  uint64_t size, uint64_t chunkBytes, int retries, uint64_t* bytesSent);

// A version name: 1..128 of [A-Za-z0-9._-], starting with a letter or digit.
Status validateModelVersionName(const std::string& version);

int runModelPush(Context& ctx, const ModelOptions& options);
int runModelHistory(Context& ctx, const ModelOptions& options);
int runModelRollback(Context& ctx, const ModelOptions& options);
// Ends a staged rollout: every node gets the current version.
int runModelPromote(Context& ctx, const ModelOptions& options);

}  // namespace ep::edgectl
