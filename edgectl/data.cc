#include "edgectl/data.h"

#include <ostream>

#include "common/api/kinds.h"
#include "edgectl/config.h"
#include "edgectl/paths.h"
#include "edgectl/printer.h"

namespace ep::edgectl {
namespace {

using Json = nlohmann::json;

// "thermometer-1" or "device/thermometer-1" / "devices/thermometer-1": a Device;
// "rule/NAME" / "rules/NAME": a Rule's routed messages; "node/NAME": what the node uploaded
// on $hw/events/upload/# (docs/rules.md).
struct DataSource {
  const api::KindInfo* kind = nullptr;
  std::string name;
};
Result<DataSource> dataSource(const std::string& arg) {
  const auto* device = api::findByApiVersionKind("devices.kubeedge.io/v1beta1", "Device");
  const auto* rule = api::findByApiVersionKind("rules.kubeedge.io/v1", "Rule");
  auto slash = arg.find('/');
  if (slash == std::string::npos) return DataSource{device, arg};
  std::string kind = arg.substr(0, slash);
  const api::KindInfo* k = nullptr;
  if (kind == "device" || kind == "devices" || kind == "devices.devices.kubeedge.io") {
    k = device;
  } else if (kind == "rule" || kind == "rules" || kind == "rules.rules.kubeedge.io") {
    k = rule;
  } else if (kind == "node" || kind == "nodes" || kind == "no") {
    k = api::findByApiVersionKind("v1", "Node");
  } else {
    return invalidError("only devices, rules and nodes have data; got \"" + arg + "\"");
  }
  if (slash + 1 >= arg.size()) return invalidError("missing a name in \"" + arg + "\"");
  return DataSource{k, arg.substr(slash + 1)};
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string field(const Json& item, const char* name) {
  auto it = item.find(name);
  return it != item.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

Result<std::string> dataPath(const std::string& ns, const DataOptions& o) {
  if (o.args.size() != 1) {
    return invalidError(
        o.args.empty() ? "expected a device: edgectl data DEVICE|rule/NAME|node/NAME [--property P]"
                       : "expected exactly one device or rule");
  }
  auto source = dataSource(o.args[0]);
  if (!source.isOk()) return source.status();
  if (o.output != "" && o.output != "json" && o.output != "csv") {
    return invalidError("--output must be json or csv, got \"" + o.output + "\"");
  }
  if (o.limit < 0 || o.limit > 10000) return invalidError("--limit must be 1..10000");
  std::vector<std::pair<std::string, std::string>> params = {{"property", o.property}};
  if (!o.since.empty()) {
    auto d = parseTimeout(o.since);
    if (!d.isOk() || d->count() <= 0) {
      return invalidError("--since must be a positive duration such as 30s, 10m or 2h, got \"" +
                          o.since + "\"");
    }
    params.emplace_back("sinceSeconds", std::to_string((d->count() + 999) / 1000));
  }
  if (o.limit > 0) params.emplace_back("limit", std::to_string(o.limit));
  return resourcePath(*source->kind, ns, source->name) + "/data" + buildQuery(params);
}

Result<std::string> formatData(const Json& answer, const DataOptions& o) {
  if (o.output == "json") return answer.dump(4) + "\n";
  auto items = answer.find("items");
  if (!answer.is_object() || items == answer.end() || !items->is_array()) {
    return invalidError("unexpected answer from the server: no items");
  }
  if (o.output == "csv") {
    std::string out = o.noHeaders ? "" : "property,timestamp,value\n";
    for (const auto& item : *items) {
      out += csvField(field(item, "property")) + "," + csvField(field(item, "timestamp")) + "," +
             csvField(field(item, "value")) + "\n";
    }
    return out;
  }
  TextTable table;
  table.headers = {"PROPERTY", "TIMESTAMP", "VALUE"};
  for (const auto& item : *items) {
    table.rows.push_back({field(item, "property"), field(item, "timestamp"), field(item, "value")});
  }
  if (table.rows.empty()) return std::string();
  TablePrinter printer;
  return printer.print(table, !o.noHeaders);
}

int runData(Context& ctx, const DataOptions& o) {
  auto path = dataPath(ctx.ns, o);
  if (!path.isOk()) {
    *ctx.err << "error: " << path.status().message() << "\n";
    return 1;
  }
  auto r = ctx.api->call("GET", *path);
  if (!r.isOk()) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return 1;
  }
  if (!r->ok()) {
    *ctx.err << serverErrorLine(*r) << "\n";
    return 1;
  }
  auto text = formatData(r->body, o);
  if (!text.isOk()) {
    *ctx.err << "error: " << text.status().message() << "\n";
    return 1;
  }
  if (o.output.empty() && text->empty()) {
    // "device thermometer-1 in default namespace", "rule/up in default namespace", "node/edge-1".
    const std::string& what = o.args[0];
    if (what.find('/') == std::string::npos) {
      *ctx.err << "No data found for device " << what << " in " << ctx.ns << " namespace.\n";
    } else if (what.rfind("node", 0) == 0 || what.rfind("no/", 0) == 0) {
      *ctx.err << "No data found for " << what << ".\n";
    } else {
      *ctx.err << "No data found for " << what << " in " << ctx.ns << " namespace.\n";
    }
    return 0;
  }
  *ctx.out << *text;
  return 0;
}

}  // namespace ep::edgectl
