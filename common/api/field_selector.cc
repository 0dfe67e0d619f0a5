#include "common/api/field_selector.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "common/api/field_error.h"
#include "common/api/object_util.h"

namespace ep::api {
namespace {

using nlohmann::json;

std::vector<std::string> withMeta(std::vector<std::string> extra) {
  std::vector<std::string> out = {"metadata.name", "metadata.namespace"};
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

std::string_view trim(std::string_view s) {
  auto isBlank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && isBlank(s.back())) s.remove_suffix(1);
  return s;
}

// Splits on commas not preceded by an escaping backslash.
std::vector<std::string_view> splitTerms(std::string_view text) {
  std::vector<std::string_view> terms;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
      continue;
    }
    if (text[i] == ',') {
      terms.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.push_back(text.substr(start));
  return terms;
}

struct SplitTerm {
  std::string_view lhs;
  std::string_view op;
  std::string_view rhs;
};

// Finds the first unescaped operator ("!=", "==" or "=").
std::optional<SplitTerm> splitTerm(std::string_view term) {
  for (size_t i = 0; i < term.size(); ++i) {
    if (term[i] == '\\') {
      ++i;
      continue;
    }
    for (std::string_view op : {"!=", "==", "="}) {
      if (term.substr(i, op.size()) == op) {
        return SplitTerm{term.substr(0, i), op, term.substr(i + op.size())};
      }
    }
  }
  return std::nullopt;
}

Result<std::string> unescapeValue(std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\\') {
      if (i + 1 >= v.size()) {
        return badRequestError("invalid field selector: invalid escape sequence at end of value");
      }
      char n = v[++i];
      if (n != '\\' && n != ',' && n != '=') {
        return badRequestError(std::string("invalid field selector: invalid escape sequence '\\") +
                               n + "'");
      }
      out += n;
      continue;
    }
    if (c == ',' || c == '=') {
      return badRequestError(std::string("invalid field selector: unescaped character '") + c +
                             "' in value");
    }
    out += c;
  }
  return out;
}

std::string escapeValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

const std::vector<std::string>& supportedFieldLabels(const KindInfo& kind) {
  static const auto* byKind = new std::map<std::string, std::vector<std::string>>{
      {"/Pod", withMeta({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                         "spec.serviceAccountName", "status.phase", "status.podIP",
                         "status.nominatedNodeName"})},
      {"/Event", withMeta({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                           "involvedObject.uid", "involvedObject.apiVersion",
                           "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                           "reportingComponent", "source", "type"})},
      {"/Secret", withMeta({"type"})},
      {"/Node", withMeta({"spec.unschedulable"})},
      {"/Namespace", withMeta({"status.phase"})},
      {"/Service", withMeta({"spec.clusterIP", "spec.type"})},
      {"devices.kubeedge.io/Device", withMeta({"spec.nodeName"})},
  };
  static const auto* metaOnly = new std::vector<std::string>(withMeta({}));
  auto it = byKind->find(kind.group + "/" + kind.kind);
  return it == byKind->end() ? *metaOnly : it->second;
}

std::string fieldLabelValue(const nlohmann::json& obj, std::string_view field) {
  try {
    std::string_view path = field == "source" ? std::string_view("source.component") : field;
    const json* v = lookupPath(obj, path);
    if (v == nullptr || v->is_null()) return field == "spec.unschedulable" ? "false" : "";
    if (v->is_string()) return v->get<std::string>();
    if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
    return renderValue(*v);
  } catch (...) {
    return "";
  }
}

bool FieldSelector::matches(const nlohmann::json& obj) const {
  for (const auto& r : requirements_) {
    bool eq = fieldLabelValue(obj, r.field) == r.value;
    if (eq == r.negated) return false;
  }
  return true;
}

std::optional<std::string> FieldSelector::exactValue(std::string_view field) const {
  for (const auto& r : requirements_) {
    if (!r.negated && r.field == field) return r.value;
  }
  return std::nullopt;
}

std::string FieldSelector::toString() const {
  std::string out;
  for (const auto& r : requirements_) {
    if (!out.empty()) out += ',';
    out += r.field + (r.negated ? "!=" : "=") + escapeValue(r.value);
  }
  return out;
}

Result<FieldSelector> parseFieldSelector(std::string_view text, const KindInfo& kind) {
  try {
    std::vector<FieldRequirement> reqs;
    const auto& supported = supportedFieldLabels(kind);
    for (std::string_view raw : splitTerms(text)) {
      std::string_view term = trim(raw);
      if (term.empty()) continue;
      auto split = splitTerm(term);
      if (!split) {
        return badRequestError("invalid field selector: '" + std::string(text) +
                               "'; can't understand '" + std::string(term) + "'");
      }
      FieldRequirement req;
      req.field = std::string(trim(split->lhs));
      req.negated = split->op == "!=";
      if (req.field.empty()) {
        return badRequestError("invalid field selector: '" + std::string(text) +
                               "'; missing field name in '" + std::string(term) + "'");
      }
      auto value = unescapeValue(trim(split->rhs));
      if (!value.isOk()) return value.status();
      req.value = std::move(value).value();
      if (std::find(supported.begin(), supported.end(), req.field) == supported.end()) {
        return badRequestError("field label not supported: " + req.field);
      }
      reqs.push_back(std::move(req));
    }
    return FieldSelector(std::move(reqs));
  } catch (const std::exception& e) {
    return internalError(std::string("field selector parser: ") + e.what());
  }
}

}  // namespace ep::api
