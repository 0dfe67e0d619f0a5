#include "edgectl/model.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <ostream>
#include <set>
#include <thread>

#include "common/api/kinds.h"
#include "common/api/models.h"
#include "common/api/object_util.h"
#include "common/clock.h"
#include "common/digest/sha256.h"
#include "edgectl/paths.h"
#include "edgectl/printer.h"

namespace ep::edgectl {
namespace {

using Json = nlohmann::json;

const api::KindInfo& modelKind() {
  return *api::findByApiVersionKind("sedna.io/v1alpha1", "Model");
}

int fail(Context& ctx, const std::string& message) {
  *ctx.err << "error: " << message << "\n";
  return 1;
}

Result<std::string> readAt(const std::string& path, uint64_t offset, size_t n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return internalError(path + ": " + std::strerror(errno));
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

std::string uploadPath(const api::KindInfo& kind, const std::string& ns, const std::string& name,
                       const std::string& digest, std::optional<uint64_t> offset, bool complete) {
  std::vector<std::pair<std::string, std::string>> q = {{"digest", digest}};
  if (offset) q.emplace_back("offset", std::to_string(*offset));
  if (complete) q.emplace_back("complete", "true");
  return resourcePath(kind, ns, name) + "/upload" + buildQuery(q);
}

// Where the cloud's upload stands: {offset, complete}.
Result<std::pair<uint64_t, bool>> uploadState(ApiTransport& api, const std::string& path) {
  auto r = api.call("GET", path);
  if (!r.isOk()) return r.status();
  if (!r->ok()) return Status(Code::kInvalid, serverErrorLine(*r));
  const Json& b = r->body;
  if (!b.is_object() || !b.contains("offset") || !b["offset"].is_number_unsigned()) {
    return internalError("unexpected answer to the upload query: " + r->raw.substr(0, 200));
  }
  return std::make_pair(b["offset"].get<uint64_t>(), b.value("complete", false));
}

}  // namespace

Status uploadBlob(Context& ctx, const api::KindInfo& kind, const std::string& ns,
                  const std::string& name, const std::string& file, const std::string& digest,
                  uint64_t size, uint64_t chunkBytes, int retries, uint64_t* bytesSent) {
  const std::string statePath = uploadPath(kind, ns, name, digest, std::nullopt, false);
  int failures = 0;
  auto backoff = [&](const Status& why) -> Status {
    if (++failures > retries) return why;
    auto delay = std::chrono::milliseconds(std::min(250 << std::min(failures, 5), 5000));
    *ctx.err << "warning: " << why.message() << "; resuming in " << delay.count() << " ms\n";
    std::this_thread::sleep_for(delay);
    return {};
  };
  for (;;) {
    auto state = uploadState(*ctx.api, statePath);
    if (!state.isOk()) {
      if (state.status().code() == Code::kInvalid) return state.status();
      if (auto s = backoff(state.status()); !s.isOk()) return s;
      continue;
    }
    auto [offset, complete] = *state;
    if (complete) return {};
    if (offset > size) {
      return internalError("the cloud holds " + std::to_string(offset) + " bytes of an upload of " +
                           std::to_string(size));
    }
    bool broke = false;
    while (!broke) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(chunkBytes, size - offset));
      auto bytes = readAt(file, offset, n);
      if (!bytes.isOk()) return bytes.status();
      if (bytes->size() != n) return internalError(file + " changed while it was being pushed");
      const bool last = offset + n == size;
      auto r = ctx.api->callRaw("PUT", uploadPath(kind, ns, name, digest, offset, last), *bytes,
                                "application/octet-stream");
      if (!r.isOk()) {
        if (auto s = backoff(r.status()); !s.isOk()) return s;
        broke = true;
        continue;
      }
      if (r->status == 409) {  // the cloud is elsewhere (an earlier request landed after all)
        broke = true;
        continue;
      }
      if (r->status >= 500) {
        if (auto s = backoff(Status(Code::kUnavailable, serverErrorLine(*r))); !s.isOk()) return s;
        broke = true;
        continue;
      }
      if (!r->ok()) return Status(Code::kInvalid, serverErrorLine(*r));
      *bytesSent += n;
      offset += n;
      if (r->body.value("complete", false)) return {};
      if (last) return internalError("the cloud did not complete the upload");
    }
  }
}

namespace {

std::string formatOf(const std::string& file) {
  auto ext = std::filesystem::path(file).extension().string();
  if (ext.size() > 1) ext = ext.substr(1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

// GET the Model; a null Json when it does not exist.
Result<Json> getModel(Context& ctx, const std::string& name) {
  auto r = ctx.api->call("GET", resourcePath(modelKind(), ctx.ns, name));
  if (!r.isOk()) return r.status();
  if (r->status == 404) return Json();
  if (!r->ok()) return Status(Code::kInvalid, serverErrorLine(*r));
  return r->body;
}

// Writes `model` back (PUT, or POST when `create`). 409: a conflict to retry.
Result<int> putModel(Context& ctx, const std::string& name, const Json& model, bool create) {
  auto r = create ? ctx.api->call("POST", resourcePath(modelKind(), ctx.ns), &model)
                  : ctx.api->call("PUT", resourcePath(modelKind(), ctx.ns, name), &model);
  if (!r.isOk()) return r.status();
  if (r->status == 409) return 409;
  if (!r->ok()) return Status(Code::kInvalid, serverErrorLine(*r));
  return r->status;
}

std::string shortDigest(const std::string& digest) {
  return digest.size() > 19 ? digest.substr(0, 19) : digest;
}

std::string humanSize(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1u << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// The nodes a staged rollout names, from --canary-nodes, --selector or --canary.
Result<std::vector<std::string>> rolloutNodes(Context& ctx, const ModelOptions& o,
                                              const std::string& name) {
  std::vector<std::string> nodes;
  if (!o.canaryNodes.empty()) {
    nodes = splitList(o.canaryNodes);
  } else if (!o.selector.empty()) {
    const auto* nodeKind = api::findByApiVersionKind("v1", "Node");
    auto r = ctx.api->call(
        "GET", resourcePath(*nodeKind, "") + buildQuery({{"labelSelector", o.selector}}));
    if (!r.isOk()) return r.status();
    if (!r->ok()) return Status(Code::kInvalid, serverErrorLine(*r));
    for (const auto& n : r->body.value("items", Json::array())) {
      nodes.push_back(api::stringAt(n, "metadata.name"));
    }
  } else {
    const auto* podKind = api::findByApiVersionKind("v1", "Pod");
    auto r = ctx.api->call("GET", resourcePath(*podKind, ctx.ns));
    if (!r.isOk()) return r.status();
    if (!r->ok()) return Status(Code::kInvalid, serverErrorLine(*r));
    std::set<std::string> using_;
    for (const auto& p : r->body.value("items", Json::array())) {
      for (const auto& v : api::modelVolumes(p)) {
        const std::string node = api::stringAt(p, "spec.nodeName");
        if (v.model == name && !node.empty()) using_.insert(node);
      }
    }
    for (const auto& n : using_) {
      if (static_cast<int>(nodes.size()) < o.canary) nodes.push_back(n);
    }
  }
  if (nodes.empty()) return invalidError("the staged rollout selects no node");
  return nodes;
}

}  // namespace

Status validateModelVersionName(const std::string& version) {
  if (version.empty() || version.size() > 128) {
    return invalidError("--version: must be 1 to 128 characters");
  }
  if (!std::isalnum(static_cast<unsigned char>(version[0]))) {
    return invalidError("--version: must start with a letter or digit");
  }
  for (char c : version) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return invalidError("--version: \"" + version +
                          "\" may contain only letters, digits, '.', "
                          "'_' and '-'");
    }
  }
  return {};
}

int runModelPush(Context& ctx, const ModelOptions& o) {
  if (o.args.size() != 2) return fail(ctx, "expected: edgectl model push NAME FILE --version V");
  const std::string& name = o.args[0];
  const std::string& file = o.args[1];
  if (o.version.empty()) return fail(ctx, "--version is required");
  if (auto s = validateModelVersionName(o.version); !s.isOk()) return fail(ctx, s.message());
  const std::string fileName = std::filesystem::path(file).filename().string();
  if (auto s = api::validateModelFileName(fileName); !s.isOk()) {
    return fail(ctx, "FILE: the file name \"" + fileName + "\" " + s.message());
  }
  if (o.chunkBytes == 0) return fail(ctx, "the upload chunk size must be positive");
  const int staged =
      (o.canaryNodes.empty() ? 0 : 1) + (o.selector.empty() ? 0 : 1) + (o.canary > 0 ? 1 : 0);
  if (staged > 1) return fail(ctx, "at most one of --canary, --canary-nodes and --selector");
  if (o.canary < 0) return fail(ctx, "--canary must be a positive number of nodes");
  auto hashed = digest::sha256OfFile(file);
  if (!hashed.isOk()) return fail(ctx, hashed.status().message());
  const auto [digest, size] = *hashed;
  const std::string format = o.format.empty() ? formatOf(fileName) : o.format;

  // Refuse before uploading when the version exists with other bytes: versions are immutable,
  // so a rollback always means the same file.
  auto existing = getModel(ctx, name);
  if (!existing.isOk()) return fail(ctx, existing.status().message());
  if (!existing->is_null()) {
    for (const auto& h : api::modelHistory(*existing)) {
      if (h.version == o.version && h.digest != digest) {
        return fail(ctx, "version " + o.version + " of model " + name +
                             " already exists with another file (" + h.digest +
                             "); push it as a new version");
      }
    }
  }

  uint64_t sent = 0;
  if (auto s = uploadBlob(ctx, modelKind(), ctx.ns, name, file, digest, size, o.chunkBytes,
                          o.retries, &sent);
      !s.isOk()) {
    return fail(ctx, "uploading " + file + ": " + s.message());
  }

  api::ModelVersion v;
  v.version = o.version;
  v.digest = digest;
  v.file = fileName;
  v.url = api::blobUrl(digest, fileName);
  v.format = format;
  v.size = size;
  v.pushedAt = formatRfc3339(ctx.clock ? ctx.clock->nowMillis() : 0);
  std::vector<std::string> canaryNodes;
  if (staged == 1 && (existing->is_null() || api::currentModelVersion(*existing).version.empty() ||
                      api::currentModelVersion(*existing).version == o.version)) {
    return fail(ctx, "a staged rollout needs an earlier version for the other nodes to keep");
  }
  if (staged == 1) {
    auto nodes = rolloutNodes(ctx, o, name);
    if (!nodes.isOk()) return fail(ctx, nodes.status().message());
    canaryNodes = std::move(*nodes);
  }
  for (int attempt = 0;; ++attempt) {
    auto model = getModel(ctx, name);
    if (!model.isOk()) return fail(ctx, model.status().message());
    const bool create = model->is_null();
    Json m = create ? Json{{"apiVersion", "sedna.io/v1alpha1"},
                           {"kind", "Model"},
                           {"metadata", {{"name", name}, {"namespace", ctx.ns}}},
                           {"spec", Json::object()}}
                    : *model;
    const std::string previous = create ? "" : api::currentModelVersion(m).version;
    if (staged == 1 && (previous.empty() || previous == o.version)) {
      return fail(ctx, "a staged rollout needs an earlier version for the other nodes to keep");
    }
    api::setModelVersion(m, v);
    api::setModelRollout(m, staged == 1 ? std::optional<api::ModelRollout>(
                                              api::ModelRollout{o.version, previous, canaryNodes})
                                        : std::nullopt);
    auto put = putModel(ctx, name, m, create);
    if (!put.isOk()) return fail(ctx, put.status().message());
    if (*put != 409) break;
    if (attempt >= 5) return fail(ctx, "model " + name + " keeps changing; try again");
  }
  *ctx.out << "model.sedna.io/" << name << " pushed: version " << o.version << ", " << digest
           << ", " << size << " bytes (" << sent << " uploaded)\n";
  if (!canaryNodes.empty()) {
    std::string list;
    for (const auto& n : canaryNodes) list += (list.empty() ? "" : ",") + n;
    *ctx.out << "staged rollout: only " << list << " get " << o.version
             << " until `edgectl model promote " << name << "`\n";
  }
  return 0;
}

int runModelHistory(Context& ctx, const ModelOptions& o) {
  if (o.args.size() != 1) return fail(ctx, "expected: edgectl model history NAME");
  if (!o.output.empty() && o.output != "json") {
    return fail(ctx, "--output must be json, got \"" + o.output + "\"");
  }
  const std::string& name = o.args[0];
  auto model = getModel(ctx, name);
  if (!model.isOk()) return fail(ctx, model.status().message());
  if (model->is_null()) {
    *ctx.err << "Error from server (NotFound): models.sedna.io \"" << name << "\" not found\n";
    return 1;
  }
  const auto current = api::currentModelVersion(*model);
  auto history = api::modelHistory(*model);
  if (o.output == "json") {
    Json list = Json::array();
    for (const auto& h : history) {
      Json j = api::toJson(h);
      j["current"] = h.version == current.version && h.url == current.url;
      list.push_back(std::move(j));
    }
    *ctx.out << list.dump(4) << "\n";
    return 0;
  }
  // Per version, from the Model's status: nodes that hold it, pods using it.
  std::map<std::string, std::pair<std::string, std::string>> counts;
  if (const Json* versions = api::lookupPath(*model, "status.versions");
      versions && versions->is_array()) {
    for (const auto& v : *versions) {
      if (!v.is_object()) continue;
      counts[v.value("version", "")] = {std::to_string(v.value("nodes", 0)),
                                        std::to_string(v.value("pods", 0))};
    }
  }
  const auto rollout = api::modelRollout(*model);
  TextTable table;
  table.headers = {"VERSION", "CURRENT", "NODES", "PODS", "SIZE", "FORMAT", "DIGEST", "PUSHED"};
  for (const auto& h : history) {
    const bool isCurrent = h.version == current.version && h.url == current.url;
    auto c = counts.count(h.version) ? counts[h.version]
                                     : std::make_pair(std::string("0"), std::string("0"));
    std::string mark = isCurrent ? "*" : "";
    if (isCurrent && rollout && rollout->version == h.version) mark = "* (staged)";
    table.rows.push_back({h.version, mark, c.first, c.second, humanSize(h.size), h.format,
                          shortDigest(h.digest), h.pushedAt});
  }
  if (table.rows.empty()) {
    *ctx.err << "model " << name << " has no pushed versions (spec.url: " << current.url << ")\n";
    return 0;
  }
  TablePrinter printer;
  *ctx.out << printer.print(table, true);
  return 0;
}

int runModelRollback(Context& ctx, const ModelOptions& o) {
  if (o.args.size() != 1)
    return fail(ctx, "expected: edgectl model rollback NAME [--to-version V]");
  const std::string& name = o.args[0];
  std::string target;
  for (int attempt = 0;; ++attempt) {
    auto model = getModel(ctx, name);
    if (!model.isOk()) return fail(ctx, model.status().message());
    if (model->is_null()) {
      *ctx.err << "Error from server (NotFound): models.sedna.io \"" << name << "\" not found\n";
      return 1;
    }
    const auto current = api::currentModelVersion(*model);
    const auto history = api::modelHistory(*model);
    const api::ModelVersion* to = nullptr;
    if (!o.toVersion.empty()) {
      for (const auto& h : history) {
        if (h.version == o.toVersion) to = &h;
      }
      if (to == nullptr) {
        return fail(ctx, "model " + name + " has no version \"" + o.toVersion + "\"");
      }
    } else {
      // The version pushed before the current one (or the newest other one).
      auto it = std::find_if(history.begin(), history.end(), [&](const api::ModelVersion& h) {
        return h.version == current.version;
      });
      for (auto r = std::make_reverse_iterator(it); r != history.rend(); ++r) {
        if (r->version != current.version) {
          to = &*r;
          break;
        }
      }
      if (to == nullptr && it == history.end()) {
        for (auto r = history.rbegin(); r != history.rend() && to == nullptr; ++r) {
          if (r->version != current.version) to = &*r;
        }
      }
      if (to == nullptr) return fail(ctx, "model " + name + " has no earlier version");
    }
    target = to->version;
    if (to->version == current.version && to->url == current.url) {
      *ctx.out << "model.sedna.io/" << name << " is already at version " << target << "\n";
      return 0;
    }
    Json m = *model;
    api::setModelVersion(m, *to, false);
    api::setModelRollout(m, std::nullopt);  // a rollback is for every node
    auto put = putModel(ctx, name, m, false);
    if (!put.isOk()) return fail(ctx, put.status().message());
    if (*put != 409) break;
    if (attempt >= 5) return fail(ctx, "model " + name + " keeps changing; try again");
  }
  *ctx.out << "model.sedna.io/" << name << " rolled back to version " << target << "\n";
  return 0;
}

int runModelPromote(Context& ctx, const ModelOptions& o) {
  if (o.args.size() != 1) return fail(ctx, "expected: edgectl model promote NAME");
  const std::string& name = o.args[0];
  for (int attempt = 0;; ++attempt) {
    auto model = getModel(ctx, name);
    if (!model.isOk()) return fail(ctx, model.status().message());
    if (model->is_null()) {
      *ctx.err << "Error from server (NotFound): models.sedna.io \"" << name << "\" not found\n";
      return 1;
    }
    auto rollout = api::modelRollout(*model);
    if (!rollout) {
      *ctx.out << "model.sedna.io/" << name << " has no staged rollout\n";
      return 0;
    }
    Json m = *model;
    api::setModelRollout(m, std::nullopt);
    auto put = putModel(ctx, name, m, false);
    if (!put.isOk()) return fail(ctx, put.status().message());
    if (*put != 409) {
      *ctx.out << "model.sedna.io/" << name << " version " << rollout->version
               << " promoted to every node\n";
      return 0;
    }
    if (attempt >= 5) return fail(ctx, "model " + name + " keeps changing; try again");
  }
}

}  // namespace ep::edgectl
