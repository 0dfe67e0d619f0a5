#include "edgectl/get.h"

#include <chrono>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "common/yaml/yaml.h"
#include "edgectl/jsonpath.h"
#include "edgectl/paths.h"
#include "edgectl/printer.h"
#include "edgectl/resource_args.h"

namespace ep::edgectl {

using nlohmann::json;

namespace {

bool isTableMode(const std::string& output) {
  return output.empty() || output == "wide";
}

bool isTable(const json& body) {
  return body.is_object() && body.value("kind", "") == "Table";
}

// Fills in apiVersion/kind on list items (servers usually omit them).
json withTypeMeta(json obj, const api::KindInfo& kind) {
  if (obj.is_object()) {
    if (!obj.contains("apiVersion")) obj["apiVersion"] = kind.apiVersion();
    if (!obj.contains("kind")) obj["kind"] = kind.kind;
  }
  return obj;
}

std::string objectName(const json& obj) {
  return stringAt(obj, {"metadata", "name"});
}

std::string combineSelectors(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "," + b;
}

// Per-kind output collected before printing.
struct KindResult {
  const api::KindInfo* kind = nullptr;
  std::vector<json> tables;   // server Tables (table mode)
  std::vector<json> objects;  // plain objects (non-table answers or -o yaml/json/name)
};

class GetCommand {
 public:
  GetCommand(Context& ctx, const GetOptions& options)
      : ctx_(ctx), opts_(options), out_(*ctx.out), err_(*ctx.err) {}

  int run() {
    if (opts_.output.rfind("jsonpath=", 0) == 0 || opts_.output.rfind("jsonpath-file=", 0) == 0) {
      if (!parseJsonPath()) return 1;
    } else if (!(isTableMode(opts_.output) || opts_.output == "yaml" || opts_.output == "json" ||
                 opts_.output == "name")) {
      err_ << "error: unable to match a printer suitable for the output format \"" << opts_.output
           << "\", allowed formats are: json,jsonpath,jsonpath-file,name,wide,yaml\n";
      return 1;
    }
    auto refs = parseResourceArgs(opts_.args, "get");
    if (!refs) {
      err_ << "error: " << refs.status().message() << "\n";
      return 1;
    }
    if (opts_.watch || opts_.watchOnly) {
      if (refs->size() != 1 || refs->front().names.size() > 1) {
        err_ << "error: you may only specify a single resource type and at most one name when "
                "watching\n";
        return 1;
      }
      return watch(refs->front());
    }
    multiKind_ = refs->size() > 1;
    std::vector<KindResult> results;
    for (const auto& ref : *refs) {
      KindResult r;
      r.kind = ref.kind;
      if (!fetch(ref, r)) return 1;  // transport failure: nothing more will work
      results.push_back(std::move(r));
    }
    print(results, *refs);
    return rc_;
  }

 private:
  std::string namespaceFor(const api::KindInfo& kind) const {
    if (!kind.namespaced) return "";
    return ctx_.allNamespaces ? "" : ctx_.ns;
  }

  std::string listQuery(const std::string& extraFieldSelector, bool table) const {
    std::vector<std::pair<std::string, std::string>> q = {
        {"labelSelector", opts_.labelSelector},
        {"fieldSelector", combineSelectors(opts_.fieldSelector, extraFieldSelector)}};
    if (table) q.emplace_back("includeObject", "Metadata");
    return buildQuery(q);
  }

  // -o jsonpath=TEMPLATE or jsonpath-file=FILE, as kubectl words its errors.
  bool parseJsonPath() {
    std::string text = opts_.output.substr(opts_.output.find('=') + 1);
    if (opts_.output.rfind("jsonpath-file=", 0) == 0) {
      std::ifstream f(text, std::ios::binary);
      if (!f) {
        err_ << "error: error reading --template " << text << ": cannot open the file\n";
        return false;
      }
      std::stringstream ss;
      ss << f.rdbuf();
      text = ss.str();
    }
    if (text.empty()) {
      err_ << "error: template format specified but no template given\n";
      return false;
    }
    auto parsed = JsonPathTemplate::parse(text);
    if (!parsed.isOk()) {
      err_ << "error: error parsing jsonpath " << text << ", " << parsed.status().message() << "\n";
      return false;
    }
    jsonPathText_ = text;
    jsonPath_.emplace(std::move(*parsed));
    return true;
  }

  void printJsonPath(const json& doc) {
    auto text = jsonPath_->execute(doc);
    if (!text.isOk()) {
      err_ << "error: error executing jsonpath \"" << jsonPathText_
           << "\": Error executing template: " << text.status().message() << "\n";
      rc_ = 1;
      return;
    }
    out_ << *text;
  }

  // Adds a successful answer (Table, list or object) to `r`.
  void collect(const json& body, const api::KindInfo& kind, KindResult& r) {
    if (isTable(body)) {
      r.tables.push_back(body);
      return;
    }
    if (const json* items = jsonAt(body, {"items"}); items && items->is_array()) {
      for (const auto& item : *items) r.objects.push_back(withTypeMeta(item, kind));
      return;
    }
    r.objects.push_back(withTypeMeta(body, kind));
  }

  // False only on a transport failure (already reported).
  bool fetch(const ResourceRef& ref, KindResult& r) {
    const api::KindInfo& kind = *ref.kind;
    bool table = isTableMode(opts_.output);
    std::string_view accept = table ? kTableAccept : kJson;
    if (ref.names.empty()) {
      std::string path = resourcePath(kind, namespaceFor(kind)) + listQuery("", table);
      auto resp = ctx_.api->call("GET", path, nullptr, kJson, accept);
      if (!resp) return transportFailure(resp.status());
      if (!resp->ok()) {
        err_ << serverErrorLine(*resp) << "\n";
        rc_ = 1;
        return true;
      }
      collect(resp->body, kind, r);
      return true;
    }
    for (const auto& name : ref.names) {
      std::string path = resourcePath(kind, effectiveNamespace(kind, ctx_.ns), name) +
                         (table ? buildQuery({{"includeObject", "Metadata"}}) : "");
      auto resp = ctx_.api->call("GET", path, nullptr, kJson, accept);
      if (!resp) return transportFailure(resp.status());
      if (!resp->ok()) {
        if (resp->status == 404 && opts_.ignoreNotFound) continue;
        err_ << serverErrorLine(*resp) << "\n";
        rc_ = 1;
        continue;
      }
      collect(resp->body, kind, r);
    }
    return true;
  }

  bool transportFailure(const Status& s) {
    err_ << "error: " << s.message() << "\n";
    rc_ = 1;
    return false;
  }

  TableOptions tableOptions(const api::KindInfo& kind) const {
    TableOptions t;
    t.wide = opts_.output == "wide";
    t.withNamespace = ctx_.allNamespaces && kind.namespaced;
    t.showLabels = opts_.showLabels;
    if (multiKind_) t.namePrefix = kindDisplayName(kind) + "/";
    t.withEventType = opts_.outputWatchEvents && (opts_.watch || opts_.watchOnly);
    return t;
  }

  // Table rows of one kind's answers.
  TextTable toText(const KindResult& r, std::string_view eventType = {}) const {
    TableOptions t = tableOptions(*r.kind);
    TextTable text;
    for (const auto& table : r.tables) {
      TextTable part = tableFromServer(table, t, eventType);
      if (text.headers.empty()) text.headers = std::move(part.headers);
      for (auto& row : part.rows) text.rows.push_back(std::move(row));
    }
    if (!r.objects.empty()) {
      TextTable part = tableFromObjects(r.objects, t, ctx_.clock->nowMillis(), eventType);
      if (text.headers.empty()) text.headers = std::move(part.headers);
      for (auto& row : part.rows) text.rows.push_back(std::move(row));
    }
    return text;
  }

  void print(const std::vector<KindResult>& results, const std::vector<ResourceRef>& refs) {
    bool singleObject = refs.size() == 1 && refs.front().names.size() == 1;
    bool anyNamespaced = false;
    for (const auto& ref : refs) anyNamespaced = anyNamespaced || ref.kind->namespaced;
    if (isTableMode(opts_.output)) {
      bool printedAny = false;
      for (const auto& r : results) {
        TextTable text = toText(r);
        if (text.rows.empty()) continue;
        if (printedAny) out_ << "\n";
        TablePrinter printer;
        out_ << printer.print(text, !opts_.noHeaders);
        printedAny = true;
      }
      if (!printedAny && rc_ == 0 && !hasNames(refs)) {
        err_ << noResourcesMessage(anyNamespaced, ctx_.allNamespaces, ctx_.ns) << "\n";
      }
      return;
    }
    std::vector<json> objects;
    for (const auto& r : results) {
      for (const auto& o : r.objects) objects.push_back(o);
    }
    if (opts_.output == "name") {
      for (const auto& r : results) {
        for (const auto& o : r.objects)
          out_ << kindDisplayName(*r.kind) << "/" << objectName(o) << "\n";
      }
      if (objects.empty() && rc_ == 0 && !hasNames(refs)) {
        err_ << noResourcesMessage(anyNamespaced, ctx_.allNamespaces, ctx_.ns) << "\n";
      }
      return;
    }
    json doc;
    if (singleObject && objects.size() == 1) {
      doc = objects.front();
    } else if (singleObject && objects.empty()) {
      return;  // the NotFound error was printed
    } else {
      doc = {{"apiVersion", "v1"},
             {"kind", "List"},
             {"items", objects},
             {"metadata", {{"resourceVersion", ""}}}};
    }
    printDocument(doc);
  }

  static bool hasNames(const std::vector<ResourceRef>& refs) {
    for (const auto& r : refs) {
      if (!r.names.empty()) return true;
    }
    return false;
  }

  // kubectl's --show-managed-fields=false: objects print without metadata.managedFields.
  json printable(json doc) const {
    if (opts_.showManagedFields || !doc.is_object()) return doc;
    auto strip = [](json& obj) {
      if (obj.is_object() && obj.contains("metadata") && obj["metadata"].is_object()) {
        obj["metadata"].erase("managedFields");
      }
    };
    strip(doc);
    if (auto items = doc.find("items"); items != doc.end() && items->is_array()) {
      for (auto& item : *items) strip(item);
    }
    return doc;
  }

  void printDocument(const json& shown) {
    json doc = printable(shown);
    if (jsonPath_) {
      printJsonPath(doc);
    } else if (opts_.output == "json") {
      out_ << doc.dump(4) << "\n";
    } else {
      out_ << yaml::toYaml(doc);
    }
  }

  // --- watch ------------------------------------------------------------------------------

  // Lists once: prints rows (unless quiet) and returns the list's resourceVersion.
  Result<std::string> listForWatch(const ResourceRef& ref, const std::string& nameSelector,
                                   bool quiet) {
    const api::KindInfo& kind = *ref.kind;
    bool table = isTableMode(opts_.output);
    std::string path = resourcePath(kind, namespaceFor(kind)) + listQuery(nameSelector, table);
    auto resp = ctx_.api->call("GET", path, nullptr, kJson, table ? kTableAccept : kJson);
    if (!resp) return resp.status();
    if (!resp->ok()) return Status(Code::kInternal, serverErrorLine(*resp));
    std::string rv = stringAt(resp->body, {"metadata", "resourceVersion"});
    json body = withColumns(resp->body);
    if (quiet) return rv;
    KindResult r;
    r.kind = &kind;
    collect(body, kind, r);
    if (table) {
      TextTable text = toText(r, "ADDED");
      if (!text.rows.empty()) {
        out_ << printer_.print(text, !opts_.noHeaders && !headersPrinted_);
        headersPrinted_ = headersPrinted_ || !opts_.noHeaders;
      }
    } else {
      for (const auto& o : r.objects) printWatchObject(kind, o);
    }
    out_.flush();
    return rv;
  }

  void printWatchObject(const api::KindInfo& kind, const json& shown) {
    json obj = printable(shown);
    if (jsonPath_) {
      printJsonPath(obj);
    } else if (opts_.output == "name") {
      out_ << kindDisplayName(kind) << "/" << objectName(obj) << "\n";
    } else if (opts_.output == "json") {
      out_ << obj.dump(4) << "\n";
    } else {
      if (printedDocs_++ > 0) out_ << "---\n";
      out_ << yaml::toYaml(obj);
    }
  }

  int watch(const ResourceRef& ref) {
    const api::KindInfo& kind = *ref.kind;
    std::string nameSelector = ref.names.empty() ? "" : "metadata.name=" + ref.names.front();
    bool table = isTableMode(opts_.output);
    auto listed = listForWatch(ref, nameSelector, opts_.watchOnly);
    if (!listed) return reportWatchFailure(listed.status());
    std::string rv = *listed;
    int events = 0;
    while (true) {
      std::vector<std::pair<std::string, std::string>> q = {
          {"labelSelector", opts_.labelSelector},
          {"fieldSelector", combineSelectors(opts_.fieldSelector, nameSelector)},
          {"watch", "1"},
          {"resourceVersion", rv},
          {"allowWatchBookmarks", "true"}};
      if (table) q.emplace_back("includeObject", "Metadata");
      std::string path = resourcePath(kind, namespaceFor(kind)) + buildQuery(q);
      bool expired = false;
      bool failed = false;
      bool done = false;
      int seenThisStream = 0;
      auto started = std::chrono::steady_clock::now();
      Status s = ctx_.api->watch(path, table ? kTableAccept : kJson, [&](const json& ev) {
        std::string type = ev.value("type", "");
        const json* obj = jsonAt(ev, {"object"});
        static const json kNull;
        const json& o = obj ? *obj : kNull;
        ++seenThisStream;
        if (type == "BOOKMARK") {
          std::string brv = stringAt(o, {"metadata", "resourceVersion"});
          if (!brv.empty()) rv = brv;
          return true;
        }
        if (type == "ERROR") {
          if (jsonAt(o, {"code"}) && o["code"].is_number() && o["code"].get<int>() == 410) {
            expired = true;
          } else {
            std::string msg = stringAt(o, {"message"});
            err_ << "error: " << (msg.empty() ? o.dump() : msg) << "\n";
            failed = true;
          }
          return false;
        }
        std::string erv = stringAt(o, {"metadata", "resourceVersion"});
        if (isTable(o)) {
          const json* rows = jsonAt(o, {"rows"});
          if (rows && rows->is_array() && !rows->empty()) {
            std::string rowRv = stringAt((*rows)[0], {"object", "metadata", "resourceVersion"});
            if (!rowRv.empty()) erv = rowRv;
          }
        }
        if (!erv.empty()) rv = erv;
        if (table) {
          KindResult r;
          r.kind = &kind;
          collect(withColumns(o), kind, r);
          TextTable text = toText(r, type);
          out_ << printer_.print(text, !opts_.noHeaders && !headersPrinted_);
          headersPrinted_ = headersPrinted_ || !opts_.noHeaders;
        } else {
          printWatchObject(kind, withTypeMeta(o, kind));
        }
        out_.flush();
        if (opts_.maxWatchEvents > 0 && ++events >= opts_.maxWatchEvents) {
          done = true;
          return false;
        }
        return true;
      });
      if (done) return rc_;
      if (failed) return 1;
      if (!s.isOk() && s.code() != Code::kExpired) return reportWatchFailure(s);
      if (expired || s.code() == Code::kExpired) {
        auto relisted = listForWatch(ref, nameSelector, false);
        if (!relisted) return reportWatchFailure(relisted.status());
        rv = *relisted;
        continue;
      }
      // The server ended the stream (e.g. its watch timeout): resume from the last version.
      if (seenThisStream == 0 &&
          std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
  }

  // Servers send a watch's column definitions once (in the list or the first event) and leave
  // them empty afterwards, like Kubernetes: remember them and fill them in.
  json withColumns(json table) {
    if (!isTable(table)) return table;
    const json* cols = jsonAt(table, {"columnDefinitions"});
    if (cols && cols->is_array() && !cols->empty()) {
      columns_ = *cols;
    } else if (!columns_.is_null()) {
      table["columnDefinitions"] = columns_;
    }
    return table;
  }

  int reportWatchFailure(const Status& s) {
    const std::string& m = s.message();
    err_ << (m.rfind("Error from server", 0) == 0 ? "" : "error: ") << m << "\n";
    return 1;
  }

  Context& ctx_;
  const GetOptions& opts_;
  std::ostream& out_;
  std::ostream& err_;
  bool multiKind_ = false;
  int rc_ = 0;
  std::optional<JsonPathTemplate> jsonPath_;  // -o jsonpath=...
  std::string jsonPathText_;
  TablePrinter printer_;
  bool headersPrinted_ = false;
  int printedDocs_ = 0;
  json columns_;  // last non-empty Table column definitions seen while watching
};

}  // namespace

int runGet(Context& ctx, const GetOptions& options) {
  return GetCommand(ctx, options).run();
}

}  // namespace ep::edgectl
