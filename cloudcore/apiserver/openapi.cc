#include "cloudcore/apiserver/openapi.h"

#include <map>
#include <set>
#include <vector>

#include "common/api/k8s_schema.h"
#include "common/api/kinds.h"
#include "common/api/patch.h"
#include "common/digest/sha256.h"

namespace ep::apiserver {
namespace {

using Json = nlohmann::json;
using api::k8s::FieldSchema;
using api::k8s::FieldType;

constexpr const char* kVersion = "v1.32.0";

// "k8s.io.api.core.v1.Pod" -> "io.k8s.api.core.v1.Pod", Kubernetes' definition names.
std::string definitionName(const std::string& message) {
  const std::string prefix = "k8s.io.";
  return message.rfind(prefix, 0) == 0 ? "io.k8s." + message.substr(prefix.size()) : message;
}

// "devices.kubeedge.io" -> "io.kubeedge.devices", as Kubernetes names CRD definitions.
std::string reversedGroup(const std::string& group) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = group.find('.', start);
    parts.push_back(group.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) out += (out.empty() ? "" : ".") + *it;
  return out;
}

std::string customDefinitionName(const api::KindInfo& k) {
  return reversedGroup(k.group) + "." + k.version + "." + k.kind;
}

Json refTo(const std::string& definition) {
  return {{"$ref", "#/definitions/" + definition}};
}

Json scalar(FieldType t) {
  switch (t) {
    case FieldType::kString:
      return {{"type", "string"}};
    case FieldType::kBytes:
      return {{"type", "string"}, {"format", "byte"}};
    case FieldType::kInt32:
      return {{"type", "integer"}, {"format", "int32"}};
    case FieldType::kInt64:
      return {{"type", "integer"}, {"format", "int64"}};
    case FieldType::kBool:
      return {{"type", "boolean"}};
    case FieldType::kDouble:
      return {{"type", "number"}, {"format", "double"}};
    default:
      return Json::object();
  }
}

// Schemas of the messages whose JSON is not an object of their fields.
Json opaqueSchema(const std::string& message) {
  namespace k8s = api::k8s;
  if (message == k8s::kTime || message == k8s::kMicroTime) {
    return {{"type", "string"}, {"format", "date-time"}};
  }
  if (message == k8s::kIntOrString) return {{"type", "string"}, {"format", "int-or-string"}};
  if (message == k8s::kQuantity) return {{"type", "string"}};
  return {{"type", "object"}};  // RawExtension, FieldsV1: any JSON object
}

class Builder {
 public:
  Json definitions = Json::object();

  // Adds `message` and everything it reaches; returns its definition name.
  std::string add(const std::string& message) {
    std::string name = definitionName(message);
    if (definitions.contains(name)) return name;
    if (api::k8s::isOpaqueJson(message) || !api::k8s::hasMessage(message)) {
      definitions[name] = opaqueSchema(message);
      return name;
    }
    definitions[name] = Json::object();  // placeholder: cycles end here
    Json properties = Json::object();
    addFields(message, properties, 0);
    definitions[name] = {{"type", "object"}, {"properties", std::move(properties)}};
    return name;
  }

  void addKind(const api::KindInfo& k) {
    Json gvk = Json::array({{{"group", k.group}, {"version", k.version}, {"kind", k.kind}}});
    std::string name;
    if (const char* message = api::k8s::kindMessage(k.apiVersion() + "/" + k.kind)) {
      name = add(message);
    } else {
      name = customDefinitionName(k);
      Json free = {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
      definitions[name] = {
          {"type", "object"},
          {"properties",
           {{"metadata", refTo(add(api::k8s::kObjectMeta))}, {"spec", free}, {"status", free}}}};
    }
    Json& d = definitions[name];
    d["properties"]["apiVersion"] = {{"type", "string"}};
    d["properties"]["kind"] = {{"type", "string"}};
    d["x-kubernetes-group-version-kind"] = gvk;
    kindDefinitions[k.apiVersion()].push_back(name);
  }

  std::map<std::string, std::vector<std::string>> kindDefinitions;  // groupVersion -> names

 private:
  void addFields(const std::string& message, Json& properties, int depth) {
    const auto* fields = api::k8s::fieldsOf(message);
    if (fields == nullptr || depth > 8) return;
    for (const FieldSchema& f : *fields) {
      if (f.inlined && f.type == FieldType::kMessage) {
        addFields(f.message, properties, depth + 1);
        continue;
      }
      properties[f.json] = fieldSchema(f);
    }
  }

  Json fieldSchema(const FieldSchema& f) {
    Json value;
    if (f.type == FieldType::kMap) {
      Json v = f.mapValue == FieldType::kMessage ? refTo(add(f.message)) : scalar(f.mapValue);
      return {{"type", "object"}, {"additionalProperties", std::move(v)}};
    }
    value = f.type == FieldType::kMessage ? refTo(add(f.message)) : scalar(f.type);
    if (!f.repeated) {
      // Strategic merge patch replaces these structs' members when one is set (retainKeys).
      if (std::string_view(f.json) == "strategy" && f.type == FieldType::kMessage) {
        return {{"allOf", Json::array({std::move(value)})},
                {"x-kubernetes-patch-strategy", "retainKeys"}};
      }
      return value;
    }
    Json array = {{"type", "array"}, {"items", std::move(value)}};
    std::string_view key = api::strategicMergeKey(f.json);
    if (!key.empty() && f.type == FieldType::kMessage) {
      array["x-kubernetes-patch-merge-key"] = std::string(key);
      array["x-kubernetes-patch-strategy"] =
          std::string_view(f.json) == "volumes" ? "merge,retainKeys" : "merge";
    } else if (api::isPrimitiveMergeList(f.json) && f.type != FieldType::kMessage) {
      array["x-kubernetes-patch-strategy"] = "merge";
    }
    return array;
  }
};

struct Documents {
  Json v2;
  std::string v2Protobuf;
  std::map<std::string, Json> v3;  // groupVersion -> document
  Json v3Root;
};

// --- gnostic openapi_v2 protobuf -------------------------------------------------------------

void putVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void putBytes(std::string& out, uint32_t field, std::string_view bytes) {
  putVarint(out, (uint64_t{field} << 3) | 2);
  putVarint(out, bytes.size());
  out.append(bytes);
}

// openapi.v2.NamedAny{name = 1, value = 2: Any{yaml = 2}}: a vendor extension.
std::string namedAny(const std::string& name, const Json& value) {
  std::string yaml;
  if (value.is_array()) {  // x-kubernetes-group-version-kind: a YAML list of maps
    for (const auto& m : value) {
      bool first = true;
      for (const auto& [k, v] : m.items()) {
        yaml += (first ? "- " : "  ") + k + ": " + v.dump() + "\n";
        first = false;
      }
    }
  } else {
    yaml = value.is_string() ? value.get<std::string>() : value.dump();
    yaml += "\n";
  }
  std::string any;
  putBytes(any, 2, yaml);
  std::string out;
  putBytes(out, 1, name);
  putBytes(out, 2, any);
  return out;
}

// openapi.v2.Schema from its JSON form (the subset this file writes).
std::string schemaProto(const Json& s) {
  std::string out;
  if (auto r = s.find("$ref"); r != s.end()) putBytes(out, 1, r->get<std::string>());
  if (auto f = s.find("format"); f != s.end()) putBytes(out, 2, f->get<std::string>());
  if (auto a = s.find("additionalProperties"); a != s.end()) {
    std::string item;
    putBytes(item, 1, schemaProto(*a));  // AdditionalPropertiesItem.schema
    putBytes(out, 21, item);
  }
  if (auto t = s.find("type"); t != s.end()) {
    std::string type;
    putBytes(type, 1, t->get<std::string>());  // TypeItem.value
    putBytes(out, 22, type);
  }
  if (auto i = s.find("items"); i != s.end()) {
    std::string items;
    putBytes(items, 1, schemaProto(*i));  // ItemsItem.schema
    putBytes(out, 23, items);
  }
  if (auto a = s.find("allOf"); a != s.end()) {
    for (const auto& e : *a) putBytes(out, 24, schemaProto(e));
  }
  if (auto p = s.find("properties"); p != s.end()) {
    std::string props;
    for (const auto& [name, v] : p->items()) {
      std::string named;
      putBytes(named, 1, name);
      putBytes(named, 2, schemaProto(v));
      putBytes(props, 1, named);  // Properties.additional_properties
    }
    putBytes(out, 25, props);
  }
  for (const auto& [k, v] : s.items()) {
    if (k.rfind("x-", 0) == 0) putBytes(out, 31, namedAny(k, v));
  }
  return out;
}

std::string documentProto(const Json& doc) {
  std::string out;
  putBytes(out, 1, doc["swagger"].get<std::string>());
  std::string info;
  putBytes(info, 1, doc["info"]["title"].get<std::string>());
  putBytes(info, 2, doc["info"]["version"].get<std::string>());
  putBytes(out, 2, info);
  putBytes(out, 8, "");  // Paths: none listed
  std::string defs;
  for (const auto& [name, schema] : doc["definitions"].items()) {
    std::string named;
    putBytes(named, 1, name);
    putBytes(named, 2, schemaProto(schema));
    putBytes(defs, 1, named);  // Definitions.additional_properties
  }
  putBytes(out, 9, defs);
  return out;
}

// --- v3 --------------------------------------------------------------------------------------

std::string gvPath(const std::string& groupVersion) {
  return groupVersion.find('/') == std::string::npos ? "api/" + groupVersion
                                                     : "apis/" + groupVersion;
}

// `schema` with v2 references turned into v3 ones, and the definitions it names added to
// `reached`.
Json toV3(const Json& schema, std::set<std::string>& reached) {
  if (schema.is_object()) {
    Json out = Json::object();
    for (const auto& [k, v] : schema.items()) {
      if (k == "$ref" && v.is_string()) {
        std::string name = v.get<std::string>().substr(sizeof("#/definitions/") - 1);
        reached.insert(name);
        out[k] = "#/components/schemas/" + name;
      } else {
        out[k] = toV3(v, reached);
      }
    }
    return out;
  }
  if (schema.is_array()) {
    Json out = Json::array();
    for (const auto& v : schema) out.push_back(toV3(v, reached));
    return out;
  }
  return schema;
}

Json v3Document(const std::string& groupVersion, const std::vector<std::string>& kindDefs,
                const Json& definitions) {
  Json paths = Json::object();
  for (const auto& k : api::allKinds()) {
    if (k.apiVersion() != groupVersion) continue;
    Json gvk = {{"group", k.group}, {"version", k.version}, {"kind", k.kind}};
    Json params =
        Json::array({{{"name", "fieldValidation"},
                      {"in", "query"},
                      {"schema", {{"type", "string"}, {"uniqueItems", true}}}},
                     {{"name", "dryRun"}, {"in", "query"}, {"schema", {{"type", "string"}}}}});
    Json op = {{"x-kubernetes-group-version-kind", gvk},
               {"parameters", params},
               {"responses", {{"200", {{"description", "OK"}}}}}};
    std::string base =
        "/" + gvPath(groupVersion) + (k.namespaced ? "/namespaces/{namespace}/" : "/") + k.plural;
    paths[base] = {{"post", op}};
    paths[base + "/{name}"] = {{"get", op}, {"put", op}, {"patch", op}, {"delete", op}};
  }
  Json schemas = Json::object();
  std::set<std::string> pending(kindDefs.begin(), kindDefs.end());
  while (!pending.empty()) {
    std::string name = *pending.begin();
    pending.erase(pending.begin());
    if (schemas.contains(name) || !definitions.contains(name)) continue;
    std::set<std::string> reached;
    schemas[name] = toV3(definitions[name], reached);
    for (const auto& r : reached) {
      if (!schemas.contains(r)) pending.insert(r);
    }
  }
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "edgeplane"}, {"version", kVersion}}},
          {"paths", std::move(paths)},
          {"components", {{"schemas", std::move(schemas)}}}};
}

const Documents& documents() {
  static const Documents* docs = [] {
    auto* d = new Documents();
    Builder b;
    for (const auto& k : api::allKinds()) b.addKind(k);
    d->v2 = {{"swagger", "2.0"},
             {"info", {{"title", "edgeplane"}, {"version", kVersion}}},
             {"paths", Json::object()},
             {"definitions", b.definitions}};
    d->v2Protobuf = documentProto(d->v2);
    Json rootPaths = Json::object();
    for (const auto& [gv, names] : b.kindDefinitions) {
      d->v3[gv] = v3Document(gv, names, b.definitions);
      std::string hash = digest::sha256Of(d->v3[gv].dump()).substr(7, 32);
      rootPaths[gvPath(gv)] = {
          {"serverRelativeURL", "/openapi/v3/" + gvPath(gv) + "?hash=" + hash}};
    }
    d->v3Root = {{"paths", std::move(rootPaths)}};
    return d;
  }();
  return *docs;
}

}  // namespace

const Json& openApiV2Json() {
  return documents().v2;
}

const std::string& openApiV2Protobuf() {
  return documents().v2Protobuf;
}

const Json& openApiV3GroupVersion(const std::string& groupVersion) {
  static const Json kNull;
  auto it = documents().v3.find(groupVersion);
  return it == documents().v3.end() ? kNull : it->second;
}

const Json& openApiV3Root() {
  return documents().v3Root;
}

}  // namespace ep::apiserver
