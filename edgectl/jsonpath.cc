#include "edgectl/jsonpath.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace ep::edgectl {

using nlohmann::json;

namespace {

// Nesting of ranges and filters, and the output's size: a template is user input.
constexpr int kMaxDepth = 32;
constexpr size_t kMaxOutput = 64u << 20;

struct Filter;

// One step of a path.
struct Segment {
  enum class Kind { kField, kWildcard, kRecursive, kIndexes, kFields, kFilter };
  Kind kind = Kind::kField;
  std::vector<std::string> names;                // kField
  std::vector<std::vector<std::string>> union_;  // kFields: ['a.b','c'], each a path of fields
  struct Slice {
    std::optional<long long> start, end, step;
    bool index = false;  // [i] rather than [i:j]
  };
  std::vector<Slice> slices;  // kIndexes
  std::shared_ptr<const Filter> filter;
};

struct Path {
  bool fromRoot = false;  // $ (else the current value, @)
  std::vector<Segment> segments;
};

struct Operand {
  enum class Kind { kPath, kLiteral };
  Kind kind = Kind::kLiteral;
  Path path;
  json literal;
};

struct Filter {
  Operand left;
  std::string op;  // "" = left exists
  Operand right;
};

}  // namespace

struct JsonPathTemplate::Node {
  enum class Kind { kList, kText, kPath, kRange };
  Kind kind = Kind::kList;
  std::string text;         // kText
  Path path;                // kPath, kRange
  std::vector<Node> nodes;  // kList, kRange (the body)
};

namespace {

using Node = JsonPathTemplate::Node;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<Node> parseTemplate() {
    Node root;
    bool sawEnd = false;
    if (auto st = parseList(root.nodes, 0, sawEnd); !st.isOk()) return st;
    if (sawEnd) return fail("{end} without {range}");
    return root;
  }

 private:
  Status fail(const std::string& what) const {
    return invalidError(what + " at " + std::to_string(pos_));
  }
  bool eof() const { return pos_ >= s_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  void skipSpaces() {
    while (!eof() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  bool consume(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // Text and actions until the end, or until {end} (sawEnd) inside a range.
  Status parseList(std::vector<Node>& out, int depth, bool& sawEnd) {
    if (depth > kMaxDepth) return fail("ranges nested too deeply");
    while (!eof()) {
      if (peek() != '{') {
        size_t next = s_.find('{', pos_);
        if (next == std::string_view::npos) next = s_.size();
        Node text;
        text.kind = Node::Kind::kText;
        text.text = std::string(s_.substr(pos_, next - pos_));
        out.push_back(std::move(text));
        pos_ = next;
        continue;
      }
      ++pos_;
      skipSpaces();
      if (isKeyword("end")) {
        pos_ += 3;
        skipSpaces();
        if (!consume("}")) return fail("unclosed action");
        sawEnd = true;
        return Status::ok();
      }
      if (isKeyword("range")) {
        pos_ += 5;
        Node range;
        range.kind = Node::Kind::kRange;
        if (auto st = parseAction(range.path); !st.isOk()) return st;
        bool bodyEnded = false;
        if (auto st = parseList(range.nodes, depth + 1, bodyEnded); !st.isOk()) return st;
        // kubectl accepts a range that the template ends without {end}.
        out.push_back(std::move(range));
        if (!bodyEnded) return Status::ok();
        continue;
      }
      if (peek() == '"' || peek() == '\'') {
        auto text = parseQuoted();
        if (!text.isOk()) return text.status();
        skipSpaces();
        if (!consume("}")) return fail("unclosed action");
        Node node;
        node.kind = Node::Kind::kText;
        node.text = std::move(*text);
        out.push_back(std::move(node));
        continue;
      }
      if (peek() == '}') return fail("empty action");
      Node node;
      node.kind = Node::Kind::kPath;
      if (auto st = parseAction(node.path); !st.isOk()) return st;
      out.push_back(std::move(node));
    }
    return Status::ok();
  }

  bool isKeyword(std::string_view word) const {
    if (s_.substr(pos_, word.size()) != word) return false;
    char after = peek(word.size());
    return after == ' ' || after == '}' || after == '\t';
  }

  // A path up to and including the closing brace.
  Status parseAction(Path& path) {
    skipSpaces();
    if (auto st = parsePath(path, 0); !st.isOk()) return st;
    skipSpaces();
    if (eof()) return fail("unclosed action");
    if (!consume("}")) return fail(std::string("unexpected '") + peek() + "' in action");
    return Status::ok();
  }

  static bool nameChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '/' ||
           c == ':' || static_cast<unsigned char>(c) >= 0x80;
  }

  // A field name: letters, digits, _-/: and escaped characters (`kubernetes\.io`).
  Result<std::string> parseName() {
    std::string name;
    while (!eof()) {
      char c = peek();
      if (c == '\\') {
        if (pos_ + 1 >= s_.size()) return fail("a '\\' ends the template");
        name += s_[pos_ + 1];
        pos_ += 2;
        continue;
      }
      if (!nameChar(c)) break;
      name += c;
      ++pos_;
    }
    if (name.empty()) return fail("missing field name");
    return name;
  }

  Status parsePath(Path& path, int depth) {
    if (depth > kMaxDepth) return fail("filters nested too deeply");
    if (consume("$")) {
      path.fromRoot = true;
    } else if (consume("@")) {
      path.fromRoot = false;
    } else if (peek() != '.' && peek() != '[') {
      size_t start = pos_;
      while (!eof() && nameChar(peek())) ++pos_;
      if (pos_ == start) return fail(std::string("unexpected '") + peek() + "' in action");
      return invalidError("unrecognized identifier " + std::string(s_.substr(start, pos_ - start)) +
                          " at " + std::to_string(start));
    }
    while (!eof()) {
      if (peek() == '.') {
        ++pos_;
        Segment seg;
        if (peek() == '.') {
          ++pos_;
          seg.kind = Segment::Kind::kRecursive;
          path.segments.push_back(std::move(seg));
          if (peek() == '[') continue;
          seg = Segment{};
        }
        if (consume("*")) {
          seg.kind = Segment::Kind::kWildcard;
        } else {
          auto name = parseName();
          if (!name.isOk()) return name.status();
          seg.kind = Segment::Kind::kField;
          seg.names.push_back(std::move(*name));
        }
        path.segments.push_back(std::move(seg));
        continue;
      }
      if (peek() == '[') {
        ++pos_;
        Segment seg;
        if (auto st = parseBracket(seg, depth); !st.isOk()) return st;
        path.segments.push_back(std::move(seg));
        continue;
      }
      break;
    }
    return Status::ok();
  }

  // After '[': [*], [?(filter)], ['a','b'], or indexes and slices; up to and including ']'.
  Status parseBracket(Segment& seg, int depth) {
    skipSpaces();
    if (consume("*")) {
      seg.kind = Segment::Kind::kWildcard;
    } else if (consume("?(")) {
      auto filter = std::make_shared<Filter>();
      skipSpaces();
      if (auto st = parseOperand(filter->left, depth); !st.isOk()) return st;
      skipSpaces();
      for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">"}) {
        if (consume(op)) {
          filter->op = std::string(op);
          break;
        }
      }
      if (!filter->op.empty()) {
        skipSpaces();
        if (auto st = parseOperand(filter->right, depth); !st.isOk()) return st;
        skipSpaces();
      } else if (filter->left.kind != Operand::Kind::kPath) {
        return fail("a filter without a comparison needs a path");
      }
      if (!consume(")")) return fail("unclosed filter");
      seg.kind = Segment::Kind::kFilter;
      seg.filter = std::move(filter);
    } else if (peek() == '\'') {
      seg.kind = Segment::Kind::kFields;
      while (true) {
        skipSpaces();
        if (peek() != '\'') return fail("expected a quoted field name");
        auto fields = parseQuotedFields();
        if (!fields.isOk()) return fields.status();
        seg.union_.push_back(std::move(*fields));
        skipSpaces();
        if (!consume(",")) break;
      }
    } else {
      seg.kind = Segment::Kind::kIndexes;
      while (true) {
        skipSpaces();
        Segment::Slice slice;
        for (int part = 0; part < 3; ++part) {
          skipSpaces();
          std::optional<long long> n;
          if (peek() == '-' || std::isdigit(static_cast<unsigned char>(peek()))) {
            auto v = parseInteger();
            if (!v.isOk()) return v.status();
            n = *v;
          }
          (part == 0 ? slice.start : part == 1 ? slice.end : slice.step) = n;
          skipSpaces();
          if (part < 2 && consume(":")) continue;
          slice.index = part == 0;
          break;
        }
        if (slice.index && !slice.start) {
          size_t start = pos_;
          while (!eof() && peek() != ']') ++pos_;
          return invalidError("invalid array index " + std::string(s_.substr(start, pos_ - start)) +
                              " at " + std::to_string(start));
        }
        seg.slices.push_back(slice);
        skipSpaces();
        if (!consume(",")) break;
      }
    }
    skipSpaces();
    if (!consume("]")) return fail("unclosed '['");
    return Status::ok();
  }

  Result<long long> parseInteger() {
    size_t start = pos_;
    if (peek() == '-') ++pos_;
    while (std::isdigit(static_cast<unsigned char>(peek()))) ++pos_;
    std::string digits(s_.substr(start, pos_ - start));
    if (digits.empty() || digits == "-" || digits.size() > 18) {
      return invalidError("invalid array index " + digits + " at " + std::to_string(start));
    }
    return std::stoll(digits);
  }

  Status parseOperand(Operand& operand, int depth) {
    if (peek() == '@' || peek() == '$') {
      operand.kind = Operand::Kind::kPath;
      return parsePath(operand.path, depth + 1);
    }
    operand.kind = Operand::Kind::kLiteral;
    if (peek() == '"' || peek() == '\'') {
      auto text = parseQuoted();
      if (!text.isOk()) return text.status();
      operand.literal = std::move(*text);
      return Status::ok();
    }
    for (auto [word, value] :
         {std::pair<std::string_view, json>{"true", true}, {"false", false}, {"null", nullptr}}) {
      if (consume(word)) {
        operand.literal = value;
        return Status::ok();
      }
    }
    size_t start = pos_;
    if (peek() == '-' || peek() == '+') ++pos_;
    while (std::isdigit(static_cast<unsigned char>(peek())) || peek() == '.' || peek() == 'e' ||
           peek() == 'E' ||
           ((peek() == '-' || peek() == '+') && (s_[pos_ - 1] == 'e' || s_[pos_ - 1] == 'E'))) {
      ++pos_;
    }
    std::string number(s_.substr(start, pos_ - start));
    json parsed = json::parse(number, nullptr, false);
    if (number.empty() || !parsed.is_number()) {
      pos_ = start;
      return fail("expected a value to compare with");
    }
    operand.literal = std::move(parsed);
    return Status::ok();
  }

  // ['a.b']: a path of fields, split at the dots that are not escaped (`'kubernetes\.io'`).
  Result<std::vector<std::string>> parseQuotedFields() {
    const size_t start = pos_++;
    std::vector<std::string> fields(1);
    while (!eof() && peek() != '\'') {
      char c = peek();
      if (c == '\\' && pos_ + 1 < s_.size()) {
        fields.back() += s_[pos_ + 1];
        pos_ += 2;
        continue;
      }
      if (c == '.') {
        fields.emplace_back();
      } else {
        fields.back() += c;
      }
      ++pos_;
    }
    if (eof()) {
      pos_ = start;
      return fail("unterminated quoted string");
    }
    ++pos_;
    return fields;
  }

  // A "..." or '...' string with the escapes \n \t \r \\ \" \' and \uXXXX (a subset of
  // Go's, which kubectl unquotes with); any other escape is an error.
  Result<std::string> parseQuoted() {
    const char quote = peek();
    const size_t start = pos_++;
    std::string out;
    while (!eof() && peek() != quote) {
      char c = peek();
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= s_.size()) break;
      char e = s_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '\\':
        case '"':
        case '\'':
          out += e;
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return fail("short \\u escape");
          unsigned cp = 0;
          for (int i = 0; i < 4; ++i) {
            char h = s_[pos_ + i];
            if (!std::isxdigit(static_cast<unsigned char>(h))) return fail("bad \\u escape");
            cp = cp * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(h))
                                                     ? h - '0'
                                                     : (std::tolower(h) - 'a' + 10));
          }
          pos_ += 4;
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          return invalidError(std::string("unknown escape \\") + e + " at " +
                              std::to_string(pos_ - 2));
      }
    }
    if (eof()) {
      pos_ = start;
      return fail("unterminated quoted string");
    }
    ++pos_;  // closing quote
    return out;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

using Values = std::vector<const json*>;

class Executor {
 public:
  explicit Executor(const json& root) : root_(root) {}

  Status run(const std::vector<Node>& nodes, const json& current, std::string& out, int depth) {
    for (const Node& node : nodes) {
      switch (node.kind) {
        case Node::Kind::kText:
          out += node.text;
          break;
        case Node::Kind::kPath: {
          auto values = eval(node.path, current, 0);
          if (!values.isOk()) return values.status();
          for (size_t i = 0; i < values->size(); ++i) {
            if (i > 0) out += ' ';
            const json& v = *(*values)[i];
            out += v.is_string() ? v.get_ref<const std::string&>() : v.dump();
          }
          break;
        }
        case Node::Kind::kRange: {
          auto values = eval(node.path, current, 0);
          if (!values.isOk()) return values.status();
          for (const json* v : *values) {
            if (auto st = run(node.nodes, *v, out, depth + 1); !st.isOk()) return st;
          }
          break;
        }
        case Node::Kind::kList:
          if (auto st = run(node.nodes, current, out, depth + 1); !st.isOk()) return st;
          break;
      }
      if (out.size() > kMaxOutput) return invalidError("the template's output exceeds 64 MiB");
    }
    return Status::ok();
  }

 private:
  static std::string typeName(const json& v) {
    if (v.is_string()) return "string";
    if (v.is_number_float()) return "float64";
    if (v.is_number()) return "int64";
    if (v.is_boolean()) return "bool";
    if (v.is_null()) return "nil";
    return "map[string]interface {}";
  }

  Result<Values> eval(const Path& path, const json& current, int depth) {
    Values values{path.fromRoot ? &root_ : &current};
    for (const Segment& seg : path.segments) {
      Values next;
      if (seg.kind == Segment::Kind::kFields) {
        // A union: each member against every value, the members' results one after another.
        for (const auto& member : seg.union_) {
          Values sub = values;
          for (const auto& name : member) {
            Values deeper;
            for (const json* v : sub) {
              if (!v->is_object()) continue;
              if (auto it = v->find(name); it != v->end()) deeper.push_back(&*it);
            }
            sub = std::move(deeper);
          }
          next.insert(next.end(), sub.begin(), sub.end());
        }
        values = std::move(next);
        continue;
      }
      for (const json* v : values) {
        if (auto st = step(seg, *v, next, depth); !st.isOk()) return st;
        if (next.size() > kMaxOutput / 8)
          return invalidError("the template selects too many values");
      }
      values = std::move(next);
    }
    return values;
  }

  Status step(const Segment& seg, const json& v, Values& next, int depth) {
    switch (seg.kind) {
      case Segment::Kind::kField:
        // A missing key, or a field of something that is not an object, selects nothing.
        if (v.is_object()) {
          for (const auto& name : seg.names) {
            if (auto it = v.find(name); it != v.end()) next.push_back(&*it);
          }
        }
        return Status::ok();
      case Segment::Kind::kFields:
        return Status::ok();  // eval() takes unions as a whole
      case Segment::Kind::kWildcard:
        if (v.is_object() || v.is_array()) {
          for (const auto& child : v) next.push_back(&child);
        }
        return Status::ok();
      case Segment::Kind::kRecursive:
        collectContainers(v, next);
        return Status::ok();
      case Segment::Kind::kIndexes:
        return slices(seg, v, next);
      case Segment::Kind::kFilter:
        return filter(*seg.filter, v, next, depth);
    }
    return Status::ok();
  }

  // `..`: the value and every object or array below it, in document order.
  static void collectContainers(const json& v, Values& out) {
    if (!v.is_object() && !v.is_array()) return;
    out.push_back(&v);
    for (const auto& child : v) collectContainers(child, out);
  }

  Status slices(const Segment& seg, const json& v, Values& next) {
    if (!v.is_array()) return invalidError(typeName(v) + " is not array or slice");
    const long long len = static_cast<long long>(v.size());
    for (const auto& s : seg.slices) {
      long long start = s.start.value_or(0);
      long long end = s.index ? start + 1 : s.end.value_or(len);
      const bool derivedEnd = s.index;
      if (start < 0) start += len;
      if (s.end.has_value() || derivedEnd) {
        if (end < 0 || (end == 0 && derivedEnd)) end += len;
      }
      long long step = s.step.value_or(1);
      if (step <= 0) return invalidError("step must be > 0");
      if (start == end) continue;  // zero elements asked for
      if (start >= len || start < 0) {
        return invalidError("array index out of bounds: index " + std::to_string(start) +
                            ", length " + std::to_string(len));
      }
      if (end > len || end < 0) {
        return invalidError("array index out of bounds: index " + std::to_string(end - 1) +
                            ", length " + std::to_string(len));
      }
      if (start > end) {
        return invalidError("starting index " + std::to_string(start) +
                            " is greater than ending index " + std::to_string(end));
      }
      for (long long i = start; i < end; i += step) next.push_back(&v[static_cast<size_t>(i)]);
    }
    return Status::ok();
  }

  Status filter(const Filter& f, const json& v, Values& next, int depth) {
    if (!v.is_array()) {
      return invalidError(typeName(v) + " is not array or slice and cannot be filtered");
    }
    for (const auto& element : v) {
      auto left = operand(f.left, element, depth);
      if (!left.isOk()) return left.status();
      if (f.op.empty()) {
        if (!left->empty()) next.push_back(&element);
        continue;
      }
      auto right = operand(f.right, element, depth);
      if (!right.isOk()) return right.status();
      bool match = false;
      for (const json* l : *left) {
        for (const json* r : *right) match = match || compare(*l, f.op, *r);
      }
      if (match) next.push_back(&element);
    }
    return Status::ok();
  }

  Result<Values> operand(const Operand& o, const json& element, int depth) {
    if (o.kind == Operand::Kind::kLiteral) return Values{&o.literal};
    return eval(o.path, element, depth + 1);
  }

  template <typename T>
  static bool ordered(const T& a, const std::string& op, const T& b) {
    if (op == "==") return a == b;
    if (op == "!=") return a != b;
    if (op == "<") return a < b;
    if (op == "<=") return a <= b;
    if (op == ">") return a > b;
    return a >= b;
  }

  static bool compare(const json& l, const std::string& op, const json& r) {
    if (l.is_number() && r.is_number()) return ordered(l.get<double>(), op, r.get<double>());
    if (l.is_string() && r.is_string()) {
      return ordered(l.get_ref<const std::string&>(), op, r.get_ref<const std::string&>());
    }
    if (op == "==") return l == r;
    if (op == "!=") return l != r;
    return false;  // no order between different types
  }

  const json& root_;
};

}  // namespace

Result<JsonPathTemplate> JsonPathTemplate::parse(std::string_view text) {
  Parser parser(text);
  auto root = parser.parseTemplate();
  if (!root.isOk()) return root.status();
  return JsonPathTemplate(std::make_shared<const Node>(std::move(*root)));
}

Result<std::string> JsonPathTemplate::execute(const json& root) const {
  std::string out;
  Executor exec(root);
  if (auto st = exec.run(root_->nodes, root, out, 0); !st.isOk()) return st;
  return out;
}

}  // namespace ep::edgectl
