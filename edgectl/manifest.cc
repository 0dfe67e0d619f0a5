#include "edgectl/manifest.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "common/yaml/yaml.h"

namespace ep::edgectl {
namespace {

namespace fs = std::filesystem;

bool isManifestFile(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

void collectDir(const fs::path& dir, bool recursive, std::vector<std::string>& out) {
  std::vector<fs::path> entries;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  for (const auto& p : entries) {
    std::error_code sec;
    if (fs::is_directory(p, sec)) {
      if (recursive) collectDir(p, recursive, out);
    } else if (isManifestFile(p)) {
      out.push_back(p.string());
    }
  }
}

}  // namespace

std::vector<std::string> expandManifestPaths(const std::vector<std::string>& args, bool recursive,
                                             std::vector<std::string>& errors) {
  std::vector<std::string> out;
  for (const auto& arg : args) {
    if (arg == "-") {
      out.push_back(arg);
      continue;
    }
    std::error_code ec;
    auto status = fs::status(arg, ec);
    if (ec || !fs::exists(status)) {
      errors.push_back("the path \"" + arg + "\" does not exist");
    } else if (fs::is_directory(status)) {
      collectDir(arg, recursive, out);
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

Result<std::vector<ManifestDoc>> splitManifest(const std::string& source, std::string_view text) {
  auto docs = yaml::parseYamlDocuments(text);
  if (!docs) return invalidError("error parsing " + source + ": " + docs.status().message());
  std::vector<ManifestDoc> out;
  out.reserve(docs->size());
  for (size_t i = 0; i < docs->size(); ++i) {
    out.push_back(ManifestDoc{source, i, std::move((*docs)[i])});
  }
  return out;
}

ManifestSet readManifests(const std::vector<std::string>& args, bool recursive, std::istream& in) {
  ManifestSet set;
  bool stdinRead = false;
  for (const auto& path : expandManifestPaths(args, recursive, set.errors)) {
    std::string text;
    std::string source = path;
    if (path == "-") {
      if (stdinRead) continue;
      stdinRead = true;
      source = "STDIN";
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      std::ifstream f(path, std::ios::binary);
      if (!f) {
        set.errors.push_back("cannot read " + path);
        continue;
      }
      std::ostringstream ss;
      ss << f.rdbuf();
      text = ss.str();
    }
    auto docs = splitManifest(source, text);
    if (!docs) {
      set.errors.push_back(docs.status().message());
      continue;
    }
    for (auto& d : *docs) set.docs.push_back(std::move(d));
  }
  return set;
}

Status checkManifestObject(const nlohmann::json& object) {
  if (!object.is_object()) return invalidError("document is not a YAML/JSON object");
  auto str = [&](const char* key) -> std::string {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (str("apiVersion").empty()) return invalidError("apiVersion not set");
  if (str("kind").empty()) return invalidError("kind not set");
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object() || !md->contains("name") ||
      !(*md)["name"].is_string() || (*md)["name"].get<std::string>().empty()) {
    return invalidError("resource name may not be empty");
  }
  if (auto ns = md->find("namespace"); ns != md->end() && !ns->is_string()) {
    return invalidError("metadata.namespace must be a string");
  }
  return Status::ok();
}

}  // namespace ep::edgectl
