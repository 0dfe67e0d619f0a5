#include "edgectl/top.h"

#include <algorithm>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>

#include "common/api/object_util.h"
#include "common/api/quantity.h"
#include "edgectl/paths.h"
#include "edgectl/printer.h"

namespace ep::edgectl {

using Json = nlohmann::json;

namespace {

constexpr const char* kMetricsBase = "/apis/metrics.k8s.io/v1beta1";

struct Row {
  std::vector<std::string> cells;
  int64_t cpuMilli = 0;
  int64_t memoryBytes = 0;
};

int64_t milliOf(const Json& usage, const char* key) {
  if (!usage.is_object() || !usage.contains(key)) return 0;
  auto v = api::quantityOf(usage[key], true);
  return v.isOk() ? *v : 0;
}

// CPU in nanocores, as the metrics API reports it ("1500000n"); other forms through milli.
// A pod's usage is summed in nanocores and rounded up once, as kubectl top does, not as the
// sum of its containers' rounded figures.
int64_t nanoOf(const Json& usage, const char* key) {
  if (!usage.is_object() || !usage.contains(key)) return 0;
  const Json& v = usage[key];
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.size() > 1 && s.size() <= 19 && s.back() == 'n' &&
        std::all_of(s.begin(), s.end() - 1, [](char c) { return c >= '0' && c <= '9'; })) {
      return std::stoll(s.substr(0, s.size() - 1));
    }
  }
  return milliOf(usage, key) * 1'000'000;
}

int64_t milliFromNano(int64_t nano) {
  return (nano + 999'999) / 1'000'000;
}

int64_t bytesOf(const Json& usage, const char* key) {
  if (!usage.is_object() || !usage.contains(key)) return 0;
  auto v = api::quantityOf(usage[key], false);
  return v.isOk() ? *v : 0;
}

std::string cpuText(int64_t milli) {
  return std::to_string(milli) + "m";
}
std::string memoryText(int64_t bytes) {
  return std::to_string(bytes / (1024 * 1024)) + "Mi";
}

// kubectl's layout for top: every cell ends with a tab, columns at least 6 wide, 3 apart.
// `unsorted` rows follow the sorted ones in the same columns (nodes without metrics).
void print(Context& ctx, const std::vector<std::string>& headers, std::vector<Row> rows,
           const TopOptions& o, const std::vector<Row>& unsorted = {}) {
  if (o.sortBy == "cpu") {
    std::stable_sort(rows.begin(), rows.end(),
                     [](const Row& a, const Row& b) { return a.cpuMilli > b.cpuMilli; });
  } else if (o.sortBy == "memory") {
    std::stable_sort(rows.begin(), rows.end(),
                     [](const Row& a, const Row& b) { return a.memoryBytes > b.memoryBytes; });
  }
  std::string text;
  auto line = [&](const std::vector<std::string>& cells) {
    for (const auto& c : cells) text += c + "\t";
    text += "\n";
  };
  if (!o.noHeaders) line(headers);
  for (const auto& r : rows) line(r.cells);
  for (const auto& r : unsorted) line(r.cells);
  *ctx.out << formatTabbed(text, 6, 3);
}

// GET path; on failure prints kubectl's error line and returns null.
Json fetch(Context& ctx, const std::string& path) {
  auto r = ctx.api->call("GET", path);
  if (!r) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return nullptr;
  }
  if (r->status == 404 && !r->body.is_object()) {
    *ctx.err << "error: Metrics API not available\n";
    return nullptr;
  }
  if (!r->ok()) {
    *ctx.err << serverErrorLine(*r) << "\n";
    return nullptr;
  }
  return r->body.is_object() ? r->body : Json(nullptr);
}

std::string withSelector(std::string path, const std::string& selector) {
  if (!selector.empty()) path += "?labelSelector=" + percentEncode(selector);
  return path;
}

// The objects at `base` narrowed by `selector`, or the one at `base`/NAME; nullopt once the
// error is printed.
std::optional<std::vector<Json>> fetchItems(Context& ctx, const std::string& base,
                                            const std::string& name, const std::string& selector) {
  Json body =
      fetch(ctx, name.empty() ? withSelector(base, selector) : base + "/" + percentEncode(name));
  if (body.is_null()) return std::nullopt;
  if (!name.empty()) return std::vector<Json>{body};  // fetch() answers objects only
  std::vector<Json> items;
  for (const auto& i : body.value("items", Json::array())) {
    if (i.is_object()) items.push_back(i);  // what is not an object has nothing to show
  }
  return items;
}

// Whether discovery lists metrics.k8s.io; nullopt once an error (unreachable, 401, 403) is
// printed.
std::optional<bool> metricsApiServed(Context& ctx) {
  Json groups = fetch(ctx, "/apis");
  if (groups.is_null()) return std::nullopt;
  for (const auto& g : groups.value("groups", Json::array())) {
    if (g.is_object() && api::stringAt(g, "name") == "metrics.k8s.io") return true;
  }
  return false;
}

int topNodes(Context& ctx, const TopOptions& o, const std::string& name) {
  auto items = fetchItems(ctx, std::string(kMetricsBase) + "/nodes", name, o.selector);
  if (!items) return 1;
  // The nodes themselves: allocatable (or capacity) for the percentages, and those without
  // metrics yet, shown as <unknown> like kubectl.
  auto nodeList = fetchItems(ctx, "/api/v1/nodes", name, o.selector);
  if (!nodeList) return 1;
  std::map<std::string, Json> available;
  for (const auto& n : *nodeList) {
    const char* field = o.showCapacity ? "capacity" : "allocatable";
    available[api::stringAt(n, "metadata.name")] = n.contains("status") && n["status"].is_object()
                                                       ? n["status"].value(field, Json::object())
                                                       : Json::object();
  }
  std::vector<Row> rows;
  std::map<std::string, bool> seen;
  for (const auto& m : *items) {
    const std::string node = api::stringAt(m, "metadata.name");
    seen[node] = true;
    const Json usage = m.value("usage", Json::object());
    Row r;
    r.cpuMilli = milliOf(usage, "cpu");
    r.memoryBytes = bytesOf(usage, "memory");
    auto percent = [](int64_t used, int64_t total) {
      return total <= 0 ? std::string("<unknown>") : std::to_string(used * 100 / total) + "%";
    };
    const Json& a = available[node];
    r.cells = {node, cpuText(r.cpuMilli), percent(r.cpuMilli, milliOf(a, "cpu")),
               memoryText(r.memoryBytes), percent(r.memoryBytes, bytesOf(a, "memory"))};
    rows.push_back(std::move(r));
  }
  std::vector<Row> missing;
  for (const auto& n : *nodeList) {
    const std::string node = api::stringAt(n, "metadata.name");
    if (seen.count(node)) continue;
    missing.push_back({{node, "<unknown>", "<unknown>", "<unknown>", "<unknown>"}});
  }
  print(ctx, {"NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"}, std::move(rows), o,
        missing);
  return 0;
}

int topPods(Context& ctx, const TopOptions& o, const std::string& name) {
  const std::string nsPath =
      ctx.allNamespaces ? std::string() : "/namespaces/" + percentEncode(ctx.ns);
  auto items = fetchItems(ctx, std::string(kMetricsBase) + nsPath + "/pods", name, o.selector);
  if (!items) return 1;
  if (items->empty()) {
    // Pods without metrics yet are "not available yet", no pods at all "No resources found".
    auto pods = fetchItems(ctx, "/api/v1" + nsPath + "/pods", "", o.selector);
    if (!pods) return 1;
    if (!pods->empty()) {
      *ctx.err << "error: metrics not available yet\n";
      return 1;
    }
    if (ctx.allNamespaces) {
      *ctx.err << "No resources found\n";
    } else {
      *ctx.err << "No resources found in " << ctx.ns << " namespace.\n";
    }
    return 0;
  }
  std::vector<std::string> headers;
  if (ctx.allNamespaces) headers.push_back("NAMESPACE");
  if (o.containers) headers.push_back("POD");
  for (const char* h : {"NAME", "CPU(cores)", "MEMORY(bytes)"}) headers.push_back(h);
  std::vector<Row> rows;
  for (const auto& m : *items) {
    const std::string pod = api::stringAt(m, "metadata.name");
    const std::string ns = api::stringAt(m, "metadata.namespace");
    Row total;
    int64_t totalNano = 0;
    for (const auto& c : m.value("containers", Json::array())) {
      if (!c.is_object()) continue;
      const Json usage = c.value("usage", Json::object());
      Row r;
      const int64_t nano = nanoOf(usage, "cpu");
      r.cpuMilli = milliFromNano(nano);
      r.memoryBytes = bytesOf(usage, "memory");
      totalNano += nano;
      total.memoryBytes += r.memoryBytes;
      if (o.containers) {
        if (ctx.allNamespaces) r.cells.push_back(ns);
        r.cells.push_back(pod);
        r.cells.push_back(api::stringAt(c, "name"));
        r.cells.push_back(cpuText(r.cpuMilli));
        r.cells.push_back(memoryText(r.memoryBytes));
        rows.push_back(std::move(r));
      }
    }
    total.cpuMilli = milliFromNano(totalNano);
    if (!o.containers) {
      if (ctx.allNamespaces) total.cells.push_back(ns);
      total.cells.push_back(pod);
      total.cells.push_back(cpuText(total.cpuMilli));
      total.cells.push_back(memoryText(total.memoryBytes));
      rows.push_back(std::move(total));
    }
  }
  print(ctx, headers, std::move(rows), o);
  return 0;
}

}  // namespace

int runTop(Context& ctx, const TopOptions& o) {
  if (o.args.empty() || o.args.size() > 2) {
    *ctx.err << "error: usage: edgectl top node [NAME] | edgectl top pod [NAME]\n";
    return 1;
  }
  if (!o.sortBy.empty() && o.sortBy != "cpu" && o.sortBy != "memory") {
    *ctx.err << "error: --sort-by accepts only cpu or memory\n";
    return 1;
  }
  if (o.args.size() == 2 && !o.selector.empty()) {
    *ctx.err << "error: only one of NAME or --selector can be provided\n";
    return 1;
  }
  const std::string& what = o.args[0];
  const std::string name = o.args.size() == 2 ? o.args[1] : "";
  const bool node = what == "node" || what == "nodes" || what == "no";
  const bool pod = what == "pod" || what == "pods" || what == "po";
  if (!node && !pod) {
    *ctx.err << "error: unknown resource \"" << what << "\" (node or pod)\n";
    return 1;
  }
  auto served = metricsApiServed(ctx);
  if (!served) return 1;
  if (!*served) {
    *ctx.err << "error: Metrics API not available\n";
    return 1;
  }
  return node ? topNodes(ctx, o, name) : topPods(ctx, o, name);
}

}  // namespace ep::edgectl
