#pragma once

// Reading manifests for `apply -f` and `delete -f`. Not thread-safe only in that it reads the
// given istream.

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace ep::edgectl {

// One object from a manifest source.
struct ManifestDoc {
  std::string source;  // file path, or "STDIN"
  size_t index = 0;    // 0-based document index within the source (after List expansion)
  nlohmann::json object;
};

struct ManifestSet {
  std::vector<ManifestDoc> docs;
  // One line per unreadable path or unparsable source, without the "error: " prefix, e.g.
  // `error parsing app.yaml: document 2: line 7, column 3: duplicate key "name"`.
  std::vector<std::string> errors;
};

// Expands -f arguments: "-" is standard input (read once), a directory contributes its *.yaml,
// *.yml and *.json files sorted by name (recursing into subdirectories when `recursive`), a file
// is itself. Unknown paths are errors (`the path "x" does not exist`).
std::vector<std::string> expandManifestPaths(const std::vector<std::string>& args, bool recursive,
                                             std::vector<std::string>& errors);

// Splits one source's text into documents; the error names the source and document index.
Result<std::vector<ManifestDoc>> splitManifest(const std::string& source, std::string_view text);

// Reads and splits every -f argument. `in` backs "-".
ManifestSet readManifests(const std::vector<std::string>& args, bool recursive, std::istream& in);

// Checks that a document is an object with apiVersion, kind and metadata.name; the error text is
// kubectl-like ("apiVersion not set", "resource name may not be empty", ...).
Status checkManifestObject(const nlohmann::json& object);

}  // namespace ep::edgectl
