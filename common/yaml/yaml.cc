#include "common/yaml/yaml.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

namespace ep::yaml {
namespace {

using nlohmann::json;

constexpr std::string_view kTagPrefix = "tag:yaml.org,2002:";
// Upper bound on the number of JSON nodes one stream may expand to. Aliases copy values, so a
// small malicious input could otherwise expand exponentially ("billion laughs").
constexpr size_t kMaxNodes = 5'000'000;

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool isOctDigit(char c) {
  return c >= '0' && c <= '7';
}

bool allOf(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

bool isNullText(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool isFloatText(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t intDigits = 0;
  while (i < s.size() && isDigit(s[i])) ++i, ++intDigits;
  size_t fracDigits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && isDigit(s[i])) ++i, ++fracDigits;
  }
  if (intDigits == 0 && fracDigits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t expDigits = 0;
    while (i < s.size() && isDigit(s[i])) ++i, ++expDigits;
    if (expDigits == 0) return false;
  }
  return i == s.size();
}

// Integer text in base `base` (digits already validated) to a JSON number; values beyond the
// 64-bit range become doubles.
json integerValue(std::string_view digits, int base, bool negative) {
  uint64_t v = 0;
  bool overflow = false;
  for (char c : digits) {
    int d = isDigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
    if (v > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d)) / base) {
      overflow = true;
      break;
    }
    v = v * base + static_cast<uint64_t>(d);
  }
  if (overflow) {
    double dv = 0;
    for (char c : digits) {
      int d = isDigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
      dv = dv * base + d;
    }
    return negative ? -dv : dv;
  }
  if (!negative) {
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(v);
    }
    return v;
  }
  if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
    return static_cast<int64_t>(0 - v);
  }
  return -static_cast<double>(v);
}

// Resolves a plain (unquoted, untagged) scalar per the YAML 1.2 core schema.
json resolvePlain(const std::string& s) {
  if (isNullText(s)) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::string_view v = s;
  if (v.size() > 2 && v[0] == '0' && v[1] == 'x' && allOf(v.substr(2), isHexDigit)) {
    return integerValue(v.substr(2), 16, false);
  }
  if (v.size() > 2 && v[0] == '0' && v[1] == 'o' && allOf(v.substr(2), isOctDigit)) {
    return integerValue(v.substr(2), 8, false);
  }
  {
    bool negative = false;
    std::string_view d = v;
    if (!d.empty() && (d[0] == '-' || d[0] == '+')) {
      negative = d[0] == '-';
      d.remove_prefix(1);
    }
    if (allOf(d, isDigit)) return integerValue(d, 10, negative);
    if (d == ".inf" || d == ".Inf" || d == ".INF") {
      return negative ? -std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::infinity();
    }
  }
  if (v == ".nan" || v == ".NaN" || v == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  if (isFloatText(v)) return std::strtod(s.c_str(), nullptr);
  return s;
}

// A semantic error found while building JSON from parser events.
struct BuildError {
  YAML::Mark mark;
  std::string message;
};

// Builds one JSON value per document from yaml-cpp parser events. Not thread-safe; one
// instance per parse.
class JsonBuilder final : public YAML::EventHandler {
 public:
  explicit JsonBuilder(Scalars scalars) : scalars_(scalars) {}

  void OnDocumentStart(const YAML::Mark&) override {
    stack_.clear();
    anchors_.clear();
    root_ = json();
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    complete(json(nullptr), mark, anchor, 1, std::string("null"), false);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw BuildError{mark, "unknown anchor referenced by alias"};
    std::optional<std::string> keyText;
    if (it->second.first.is_string()) {
      keyText = it->second.first.get<std::string>();
    } else if (it->second.first.is_primitive()) {
      keyText = it->second.first.dump();
    }
    complete(it->second.first, mark, 0, it->second.second, keyText, false);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    json v;
    bool plain = tag == "?";
    if (scalars_ == Scalars::kText) {
      v = plain && isNullText(value) ? json(nullptr) : json(value);
    } else if (plain) {
      v = resolvePlain(value);
    } else if (tag.rfind(kTagPrefix, 0) == 0) {
      std::string_view type = std::string_view(tag).substr(kTagPrefix.size());
      if (type == "int" || type == "float" || type == "bool" || type == "null") {
        v = resolvePlain(value);
      } else {
        v = value;  // !!str, !!binary, !!timestamp...: keep the text
      }
    } else {
      v = value;  // quoted or block scalar ("!") or a local tag
    }
    // JSON has no NaN or infinity (Kubernetes refuses them too); stored, they would read back
    // as null.
    if (v.is_number_float() && !std::isfinite(v.get<double>())) {
      throw BuildError{mark, "\"" + value + "\" is not a finite number; JSON cannot hold it"};
    }
    complete(std::move(v), mark, anchor, 1, value, plain && value == "<<");
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    checkNotKey(mark);
    pushFrame(json::array(), false, anchor, mark);
  }
  void OnSequenceEnd() override { finishFrame(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    checkNotKey(mark);
    pushFrame(json::object(), true, anchor, mark);
  }
  void OnMapEnd() override {
    Frame& top = stack_.back();
    // Merge keys: explicit keys win, then earlier sources win over later ones.
    for (const auto& source : top.mergeSources) {
      for (auto it = source.begin(); it != source.end(); ++it) {
        if (!top.value.contains(it.key())) top.value[it.key()] = it.value();
      }
    }
    finishFrame();
  }

  json takeRoot() { return std::move(root_); }

 private:
  const Scalars scalars_;
  struct PendingKey {
    std::string text;
    YAML::Mark mark;
    bool merge = false;
  };
  struct Frame {
    json value;
    bool isMap = false;
    YAML::anchor_t anchor = 0;
    YAML::Mark mark;
    size_t nodes = 1;
    std::optional<PendingKey> key;
    std::vector<json> mergeSources;
  };

  void checkNotKey(const YAML::Mark& mark) {
    if (!stack_.empty() && stack_.back().isMap && !stack_.back().key) {
      throw BuildError{mark, "mapping keys must be scalars"};
    }
  }

  void pushFrame(json value, bool isMap, YAML::anchor_t anchor, const YAML::Mark& mark) {
    Frame f;
    f.value = std::move(value);
    f.isMap = isMap;
    f.anchor = anchor;
    f.mark = mark;
    stack_.push_back(std::move(f));
  }

  void finishFrame() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    complete(std::move(f.value), f.mark, f.anchor, f.nodes, std::nullopt, false);
  }

  void complete(json v, const YAML::Mark& mark, YAML::anchor_t anchor, size_t nodes,
                std::optional<std::string> keyText, bool mergeKey) {
    totalNodes_ += nodes;
    if (totalNodes_ > kMaxNodes) throw BuildError{mark, "document expands to too many nodes"};
    if (anchor != 0) anchors_[anchor] = {v, nodes};
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    if (!top.isMap) {
      top.value.push_back(std::move(v));
      top.nodes += nodes;
      return;
    }
    if (!top.key) {
      if (!keyText) throw BuildError{mark, "mapping keys must be scalars"};
      top.key = PendingKey{std::move(*keyText), mark, mergeKey};
      return;
    }
    PendingKey key = std::move(*top.key);
    top.key.reset();
    if (key.merge) {
      if (v.is_object()) {
        top.mergeSources.push_back(std::move(v));
      } else if (v.is_array()) {
        for (auto& item : v) {
          if (!item.is_object()) {
            throw BuildError{mark, "merge key (<<) needs a mapping or a sequence of mappings"};
          }
          top.mergeSources.push_back(std::move(item));
        }
      } else {
        throw BuildError{mark, "merge key (<<) needs a mapping or a sequence of mappings"};
      }
      top.nodes += nodes;
      return;
    }
    if (top.value.contains(key.text)) {
      throw BuildError{key.mark, "duplicate key \"" + key.text + "\""};
    }
    top.value[key.text] = std::move(v);
    top.nodes += nodes;
  }

  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, std::pair<json, size_t>> anchors_;
  json root_;
  size_t totalNodes_ = 0;
};

bool isListDocument(const json& doc) {
  if (!doc.is_object()) return false;
  auto items = doc.find("items");
  if (items == doc.end() || !items->is_array()) return false;
  auto kind = doc.find("kind");
  if (kind == doc.end() || !kind->is_string()) return false;
  const auto& k = kind->get_ref<const std::string&>();
  return k.size() >= 4 && k.compare(k.size() - 4, 4, "List") == 0;
}

void appendDocument(std::vector<json>& out, json doc) {
  if (doc.is_null()) return;
  if (isListDocument(doc)) {
    for (auto& item : doc["items"]) {
      if (!item.is_null()) out.push_back(std::move(item));
    }
    return;
  }
  out.push_back(std::move(doc));
}

Status positionedError(size_t document, const YAML::Mark& mark, const std::string& message) {
  std::string text = "document " + std::to_string(document) + ": ";
  if (!mark.is_null()) {
    text += "line " + std::to_string(mark.line + 1) + ", column " +
            std::to_string(mark.column + 1) + ": ";
  }
  return invalidError(text + message);
}

// Fast path for JSON input: a single JSON value without duplicate keys. Returns nullopt when
// the text is not such a value, so the YAML path can parse it (and report errors with
// positions).
std::optional<json> tryParseJson(std::string_view text) {
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  json::parser_callback_t cb = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get<std::string>()).second) {
          duplicate = true;
        }
        break;
      default:
        break;
    }
    return true;
  };
  json value = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (value.is_discarded() || duplicate) return std::nullopt;
  return value;
}

// The offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF) or is a C0 control character other than tab,
// LF and CR (which neither YAML nor JSON allows unescaped), or npos.
size_t firstInvalidByte(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return i;
      ++i;
      continue;
    }
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + n >= s.size()) return i;
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += n + 1;
  }
  return std::string_view::npos;
}

}  // namespace

Result<std::vector<json>> parseYamlDocuments(std::string_view text, Scalars scalars) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  // YAML and JSON are Unicode text; as in Kubernetes, bytes that are not UTF-8, and raw control
  // characters, are refused rather than carried into objects. (yaml-cpp would also take a
  // stream starting with such bytes, e.g. 0xFE 0xFF or "x\0\0\0", for UTF-16 or UTF-32.)
  if (size_t bad = firstInvalidByte(text); bad != std::string_view::npos) {
    const auto before = text.substr(0, bad);
    const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
    const size_t lineStart = before.rfind('\n');
    const size_t column = bad - (lineStart == std::string_view::npos ? 0 : lineStart + 1) + 1;
    static constexpr char kHex[] = "0123456789ABCDEF";
    const auto byte = static_cast<unsigned char>(text[bad]);
    return invalidError("line " + std::to_string(line) + ", column " + std::to_string(column) +
                        (byte < 0x20 ? ": control character 0x" : ": invalid UTF-8 (byte 0x") +
                        kHex[byte >> 4] + kHex[byte & 15] +
                        (byte < 0x20 ? " (only tab, LF and CR are allowed)" : ")"));
  }
  std::vector<json> out;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return out;
  if (scalars == Scalars::kCoreSchema && (text[first] == '{' || text[first] == '[')) {
    if (auto value = tryParseJson(text)) {
      appendDocument(out, std::move(*value));
      return out;
    }
  }
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    JsonBuilder builder(scalars);
    while (true) {
      try {
        if (!parser.HandleNextDocument(builder)) break;
      } catch (const YAML::Exception& e) {
        return positionedError(out.size(), e.mark, e.msg);
      } catch (const BuildError& e) {
        return positionedError(out.size(), e.mark, e.message);
      }
      appendDocument(out, builder.takeRoot());
    }
  } catch (const std::exception& e) {
    return positionedError(out.size(), YAML::Mark::null_mark(), e.what());
  }
  return out;
}

Result<json> parseYamlDocument(std::string_view text, Scalars scalars) {
  auto docs = parseYamlDocuments(text, scalars);
  if (!docs) return docs.status();
  if (docs->empty()) return json();
  if (docs->size() > 1)
    return invalidError("expected one YAML document, found " + std::to_string(docs->size()));
  return std::move(docs->front());
}

// ---------------------------------------------------------------------------------------------
// Emitting

namespace {

bool isControl(unsigned char c) {
  return (c < 0x20) || c == 0x7f;
}

bool isYaml11Bool(std::string_view s) {
  static const char* const kWords[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                       "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
  for (const char* w : kWords) {
    if (s == w) return true;
  }
  return false;
}

// Strings other YAML readers (YAML 1.1, e.g. older Go tooling) would take for numbers:
// 1_000, 0b101, 1:30, ...
bool looksNumeric11(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i >= s.size() || !(isDigit(s[i]) || s[i] == '.')) return false;
  if (s.substr(i, 2) == "0b" || s.substr(i, 2) == "0B") return true;
  bool special = false;
  for (size_t j = i; j < s.size(); ++j) {
    char c = s[j];
    if (c == '_' || c == ':') {
      special = true;
    } else if (!(isHexDigit(c) || c == '.' || c == 'x' || c == 'o' || c == '+' || c == '-')) {
      return false;
    }
  }
  return special;
}

// YAML 1.1 timestamps (2024-01-02, 2024-01-02T03:04:05Z) that other readers would convert.
bool looksLikeTimestamp(std::string_view s) {
  return s.size() >= 8 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]) &&
         s[4] == '-' && isDigit(s[5]);
}

// True when `s` can be written as a plain scalar and read back as the same string.
// U+FEFF as UTF-8. A reader drops a byte order mark where a stream (or document) starts, so a
// string holding one is always double-quoted, with the mark escaped.
constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool canBePlain(std::string_view s) {
  if (s.empty()) return false;
  if (s.find(kBom) != std::string_view::npos) return false;
  if (!resolvePlain(std::string(s)).is_string()) return false;
  if (isYaml11Bool(s) || looksNumeric11(s) || looksLikeTimestamp(s) || s == "<<" || s == "=") {
    return false;
  }
  for (unsigned char c : s) {
    if (isControl(c)) return false;
  }
  if (s.front() == ' ' || s.back() == ' ') return false;
  char c0 = s[0];
  if (std::string_view("?:,[]{}#&*!|>'\"%@`").find(c0) != std::string_view::npos) return false;
  if (c0 == '-' && (s.size() == 1 || s[1] == ' ' || s.substr(0, 3) == "---")) return false;
  if (s.substr(0, 3) == "...") return false;
  if (s.find(": ") != std::string_view::npos || s.find(" #") != std::string_view::npos) {
    return false;
  }
  if (s.back() == ':') return false;
  return true;
}

bool needsDoubleQuotes(std::string_view s) {
  if (s.find(kBom) != std::string_view::npos) return true;
  for (unsigned char c : s) {
    if (isControl(c)) return true;
  }
  return false;
}

std::string doubleQuoted(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (s.compare(i, kBom.size(), kBom) == 0) {
      out += "\\uFEFF";
      i += kBom.size() - 1;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (isControl(c)) {
          static const char* kHex = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string formatString(std::string_view s) {
  if (canBePlain(s)) return std::string(s);
  return doubleQuoted(s);  // kubectl (go-yaml) quotes with double quotes
}

// A multi-line string that a `|` block literal can carry exactly.
bool useBlockLiteral(std::string_view s) {
  if (s.find('\n') == std::string_view::npos) return false;
  if (s.find_first_not_of('\n') == std::string_view::npos) return false;
  bool lineStart = true;
  for (unsigned char c : s) {
    if (c == '\n') {
      lineStart = true;
      continue;
    }
    if (isControl(c) && c != '\t') return false;
    if (c == '\t' && lineStart) return false;
    lineStart = false;
  }
  return true;
}

std::string formatScalar(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float: {
      double d = v.get<double>();
      if (std::isnan(d)) return ".nan";
      if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
      return v.dump();
    }
    case json::value_t::string:
      return formatString(v.get_ref<const std::string&>());
    default:
      return v.dump();
  }
}

class Emitter {
 public:
  std::string run(const json& v) {
    if (v.is_object() && !v.empty()) {
      writeMap(v, 0, false);
    } else if (v.is_array() && !v.empty()) {
      writeSeq(v, 0, false);
    } else if (v.is_object()) {
      out_ = "{}\n";
    } else if (v.is_array()) {
      out_ = "[]\n";
    } else if (v.is_string() && needsDoubleQuotes(v.get_ref<const std::string&>())) {
      out_ = doubleQuoted(v.get_ref<const std::string&>()) + "\n";
    } else {
      out_ = formatScalar(v) + "\n";
    }
    return std::move(out_);
  }

 private:
  void indent(int n) { out_.append(static_cast<size_t>(n), ' '); }

  // Writes what follows "key:" or "-" (already written at column `column`).
  void writeValue(const json& v, int column, bool seqItem) {
    if (v.is_object() && !v.empty()) {
      if (seqItem) {
        out_ += ' ';
        writeMap(v, column + 2, true);
      } else {
        out_ += '\n';
        writeMap(v, column + 2, false);
      }
      return;
    }
    if (v.is_array() && !v.empty()) {
      if (seqItem) {
        out_ += ' ';
        writeSeq(v, column + 2, true);
      } else {
        out_ += '\n';
        writeSeq(v, column, false);
      }
      return;
    }
    if (v.is_object()) {
      out_ += " {}\n";
      return;
    }
    if (v.is_array()) {
      out_ += " []\n";
      return;
    }
    if (v.is_string() && useBlockLiteral(v.get_ref<const std::string&>())) {
      writeBlockLiteral(v.get_ref<const std::string&>(), column + 2);
      return;
    }
    out_ += ' ';
    out_ += formatScalar(v);
    out_ += '\n';
  }

  void writeBlockLiteral(std::string_view s, int contentColumn) {
    out_ += " |";
    if (s.front() == ' ' || s.front() == '\n') out_ += '2';
    size_t trailing = 0;
    while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
    if (trailing == 0) {
      out_ += '-';
    } else {
      if (trailing > 1) out_ += '+';
      s.remove_suffix(1);
    }
    out_ += '\n';
    size_t start = 0;
    while (true) {
      size_t nl = s.find('\n', start);
      std::string_view line = s.substr(start, nl == std::string_view::npos ? s.npos : nl - start);
      if (!line.empty()) {
        indent(contentColumn);
        out_ += line;
      }
      out_ += '\n';
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }

  void writeMap(const json& obj, int column, bool firstInline) {
    bool first = true;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (!(first && firstInline)) indent(column);
      first = false;
      std::string key = formatString(it.key());
      if (key.size() <= kMaxImplicitKey) {
        out_ += key;
        out_ += ':';
        writeValue(it.value(), column, false);
        continue;
      }
      // YAML limits implicit keys to 1024 characters: a longer one is an explicit key.
      out_ += "? ";
      out_ += key;
      out_ += '\n';
      indent(column);
      out_ += ':';
      const json& v = it.value();
      if (v.is_array() && !v.empty()) {
        out_ += '\n';
        writeSeq(v, column + 2, false);
      } else {
        writeValue(v, column, false);
      }
    }
  }

  static constexpr size_t kMaxImplicitKey = 1000;

  void writeSeq(const json& arr, int column, bool firstInline) {
    bool first = true;
    for (const auto& item : arr) {
      if (!(first && firstInline)) indent(column);
      first = false;
      out_ += '-';
      writeValue(item, column, true);
    }
  }

  std::string out_;
};

}  // namespace

std::string toYaml(const json& value) {
  return Emitter().run(value);
}

}  // namespace ep::yaml
