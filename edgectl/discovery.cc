#include "edgectl/discovery.h"

#include <algorithm>
#include <ostream>

#include "common/yaml/yaml.h"
#include "edgectl/printer.h"
#include "edgectl/resource_args.h"

#ifndef EP_EDGECTL_VERSION
#define EP_EDGECTL_VERSION "0.0.0"
#endif

namespace ep::edgectl {

using nlohmann::json;

namespace {

struct ResourceRow {
  std::string name, shortNames, apiVersion, group, kind, verbs, categories;
  bool namespaced = false;
};

std::string joined(const json* list) {
  std::string out;
  if (!list || !list->is_array()) return out;
  for (const auto& v : *list) {
    if (!v.is_string()) continue;
    out += (out.empty() ? "" : ",") + v.get<std::string>();
  }
  return out;
}

// Appends the resources of one APIResourceList.
void addResources(const json& list, const std::string& groupVersion, const std::string& group,
                  std::vector<ResourceRow>& rows) {
  const json* resources = jsonAt(list, {"resources"});
  if (!resources || !resources->is_array()) return;
  std::vector<ResourceRow> part;
  for (const auto& r : *resources) {
    std::string name = stringAt(r, {"name"});
    if (name.empty() || name.find('/') != std::string::npos) continue;  // subresources
    ResourceRow row;
    row.name = name;
    row.shortNames = joined(jsonAt(r, {"shortNames"}));
    row.apiVersion = groupVersion;
    row.group = group;
    row.kind = stringAt(r, {"kind"});
    row.namespaced = r.value("namespaced", false);
    std::string verbs = joined(jsonAt(r, {"verbs"}));
    std::replace(verbs.begin(), verbs.end(), ',', ' ');
    row.verbs = "[" + verbs + "]";
    row.categories = joined(jsonAt(r, {"categories"}));
    part.push_back(std::move(row));
  }
  std::sort(part.begin(), part.end(),
            [](const ResourceRow& a, const ResourceRow& b) { return a.name < b.name; });
  for (auto& p : part) rows.push_back(std::move(p));
}

Result<json> getJson(Context& ctx, const std::string& path) {
  auto r = ctx.api->call("GET", path);
  if (!r) return r.status();
  if (!r->ok()) return Status(Code::kInternal, serverErrorLine(*r));
  return r->body;
}

void printFailure(std::ostream& err, const Status& s) {
  const std::string& m = s.message();
  err << (m.rfind("Error from server", 0) == 0 ? "" : "error: ") << m << "\n";
}

}  // namespace

int runApiResources(Context& ctx, const ApiResourcesOptions& options) {
  std::ostream& out = *ctx.out;
  std::ostream& err = *ctx.err;
  if (!options.output.empty() && options.output != "wide" && options.output != "name") {
    err << "error: --output " << options.output << " is not available\n";
    return 1;
  }
  if (!options.namespacedFilter.empty() && options.namespacedFilter != "true" &&
      options.namespacedFilter != "false") {
    err << "error: invalid argument \"" << options.namespacedFilter
        << "\" for \"--namespaced\" flag\n";
    return 1;
  }
  std::vector<ResourceRow> rows;
  auto core = getJson(ctx, "/api/v1");
  if (!core) {
    printFailure(err, core.status());
    return 1;
  }
  addResources(*core, "v1", "", rows);
  auto groups = getJson(ctx, "/apis");
  if (!groups) {
    printFailure(err, groups.status());
    return 1;
  }
  const json* list = jsonAt(*groups, {"groups"});
  if (list && list->is_array()) {
    for (const auto& g : *list) {
      std::string name = stringAt(g, {"name"});
      std::string gv = stringAt(g, {"preferredVersion", "groupVersion"});
      if (gv.empty()) {
        const json* versions = jsonAt(g, {"versions"});
        if (versions && versions->is_array() && !versions->empty()) {
          gv = stringAt((*versions)[0], {"groupVersion"});
        }
      }
      if (gv.empty()) continue;
      auto resources = getJson(ctx, "/apis/" + gv);
      if (!resources) {
        printFailure(err, resources.status());
        return 1;
      }
      addResources(*resources, gv, name, rows);
    }
  }
  TextTable table;
  table.headers = {"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"};
  if (options.output == "wide") {
    table.headers.push_back("VERBS");
    table.headers.push_back("CATEGORIES");
  }
  for (const auto& r : rows) {
    if (options.namespacedFilter == "true" && !r.namespaced) continue;
    if (options.namespacedFilter == "false" && r.namespaced) continue;
    if (options.apiGroupSet && r.group != options.apiGroup) continue;
    if (options.output == "name") {
      out << r.name << (r.group.empty() ? "" : "." + r.group) << "\n";
      continue;
    }
    std::vector<std::string> cells = {r.name, r.shortNames, r.apiVersion,
                                      r.namespaced ? "true" : "false", r.kind};
    if (options.output == "wide") {
      cells.push_back(r.verbs);
      cells.push_back(r.categories);
    }
    table.rows.push_back(std::move(cells));
  }
  if (options.output != "name") {
    TablePrinter printer;
    out << printer.print(table, !options.noHeaders);
  }
  return 0;
}

std::string clientVersion() {
  return std::string("v") + EP_EDGECTL_VERSION;
}

int runVersion(Context& ctx, const VersionOptions& options) {
  std::ostream& out = *ctx.out;
  std::ostream& err = *ctx.err;
  if (!options.output.empty() && options.output != "json" && options.output != "yaml") {
    err << "error: --output must be 'yaml' or 'json'\n";
    return 1;
  }
  json client = {{"gitVersion", clientVersion()}, {"platform", "linux/amd64"}};
  json server;
  Status failure;
  if (!options.clientOnly) {
    auto v = getJson(ctx, "/version");
    if (v) {
      server = *v;
    } else {
      failure = v.status();
    }
  }
  if (options.output.empty()) {
    out << "Client Version: " << clientVersion() << "\n";
    if (!server.is_null()) out << "Server Version: " << stringAt(server, {"gitVersion"}) << "\n";
  } else {
    json doc = {{"clientVersion", client}};
    if (!server.is_null()) doc["serverVersion"] = server;
    out << (options.output == "json" ? doc.dump(2) + "\n" : yaml::toYaml(doc));
  }
  if (!failure.isOk()) {
    printFailure(err, failure);
    return 1;
  }
  return 0;
}

}  // namespace ep::edgectl
