#include "common/api/label_selector.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/api/names.h"

namespace ep::api {
namespace {

using nlohmann::json;

std::string joinDetails(const std::vector<std::string>& details) {
  std::string out;
  for (const auto& d : details) {
    if (!out.empty()) out += "; ";
    out += d;
  }
  return out;
}

void sortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// ---- string syntax ----

enum class Tok {
  kIdent,
  kComma,
  kEquals,
  kDoubleEquals,
  kNotEquals,
  kBang,
  kOpenParen,
  kCloseParen,
  kLess,
  kGreater,
  kEnd
};

struct Token {
  Tok type = Tok::kEnd;
  std::string_view text;
  size_t pos = 0;
};

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool isSpecial(char c) {
  return c == ',' || c == '=' || c == '!' || c == '(' || c == ')' || c == '<' || c == '>';
}

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) { advance(); }

  Result<LabelSelector> parse() {
    std::vector<LabelRequirement> reqs;
    if (cur_.type == Tok::kEnd) return LabelSelector{};
    while (true) {
      auto req = parseRequirement();
      if (!req.isOk()) return req.status();
      reqs.push_back(std::move(req).value());
      if (cur_.type == Tok::kEnd) break;
      if (cur_.type != Tok::kComma) return error("found " + describe(cur_) + ", expected: ','");
      advance();
      if (cur_.type == Tok::kEnd) {
        return error("found end of string after ',', expected: a requirement");
      }
    }
    return LabelSelector(std::move(reqs));
  }

 private:
  void advance() {
    while (pos_ < in_.size() && isSpace(in_[pos_])) ++pos_;
    Token t;
    t.pos = pos_;
    if (pos_ >= in_.size()) {
      t.type = Tok::kEnd;
      cur_ = t;
      return;
    }
    char c = in_[pos_];
    auto two = [&](char next) { return pos_ + 1 < in_.size() && in_[pos_ + 1] == next; };
    size_t len = 1;
    switch (c) {
      case ',':
        t.type = Tok::kComma;
        break;
      case '(':
        t.type = Tok::kOpenParen;
        break;
      case ')':
        t.type = Tok::kCloseParen;
        break;
      case '<':
        t.type = Tok::kLess;
        break;
      case '>':
        t.type = Tok::kGreater;
        break;
      case '=':
        t.type = two('=') ? Tok::kDoubleEquals : Tok::kEquals;
        len = two('=') ? 2 : 1;
        break;
      case '!':
        t.type = two('=') ? Tok::kNotEquals : Tok::kBang;
        len = two('=') ? 2 : 1;
        break;
      default: {
        t.type = Tok::kIdent;
        len = 0;
        while (pos_ + len < in_.size() && !isSpace(in_[pos_ + len]) &&
               !isSpecial(in_[pos_ + len])) {
          ++len;
        }
      }
    }
    t.text = in_.substr(pos_, len);
    pos_ += len;
    cur_ = t;
  }

  static std::string describe(const Token& t) {
    if (t.type == Tok::kEnd) return "end of string";
    return "'" + std::string(t.text) + "' at position " + std::to_string(t.pos);
  }

  Status error(const std::string& detail) const {
    return badRequestError("unable to parse label selector \"" + std::string(in_) +
                           "\": " + detail);
  }

  Status checkKey(std::string_view key) const {
    auto errs = checkQualifiedName(key);
    if (errs.empty()) return Status::ok();
    return error("invalid label key \"" + std::string(key) + "\": " + joinDetails(errs));
  }

  Status checkValue(std::string_view value) const {
    auto errs = checkLabelValue(value);
    if (errs.empty()) return Status::ok();
    return error("invalid label value \"" + std::string(value) + "\": " + joinDetails(errs));
  }

  Result<LabelRequirement> parseRequirement() {
    LabelRequirement req;
    bool negated = false;
    if (cur_.type == Tok::kBang) {
      negated = true;
      advance();
    }
    if (cur_.type != Tok::kIdent) {
      return error("found " + describe(cur_) + ", expected: label key");
    }
    req.key = std::string(cur_.text);
    if (Status s = checkKey(req.key); !s.isOk()) return s;
    advance();
    if (negated) {
      req.op = LabelOp::kDoesNotExist;
      return req;
    }
    switch (cur_.type) {
      case Tok::kComma:
      case Tok::kEnd:
        req.op = LabelOp::kExists;
        return req;
      case Tok::kEquals:
      case Tok::kDoubleEquals:
      case Tok::kNotEquals: {
        req.op = cur_.type == Tok::kNotEquals ? LabelOp::kNotEquals : LabelOp::kEquals;
        advance();
        std::string value;
        if (cur_.type == Tok::kIdent) {
          value = std::string(cur_.text);
          advance();
        } else if (cur_.type != Tok::kComma && cur_.type != Tok::kEnd) {
          return error("found " + describe(cur_) + ", expected: label value");
        }
        if (Status s = checkValue(value); !s.isOk()) return s;
        req.values.push_back(std::move(value));
        return req;
      }
      case Tok::kIdent:
        if (cur_.text == "in" || cur_.text == "notin") {
          req.op = cur_.text == "in" ? LabelOp::kIn : LabelOp::kNotIn;
          advance();
          if (cur_.type != Tok::kOpenParen) {
            return error("found " + describe(cur_) + ", expected: '(' after '" +
                         (req.op == LabelOp::kIn ? "in" : "notin") + "'");
          }
          advance();
          // An empty slot (as in "()", "(a,)" or "(,a)") is the empty value, as in Kubernetes.
          while (true) {
            if (cur_.type == Tok::kIdent) {
              req.values.emplace_back(cur_.text);
              advance();
            } else {
              req.values.emplace_back();
            }
            if (cur_.type == Tok::kComma) {
              advance();
              continue;
            }
            if (cur_.type == Tok::kCloseParen) {
              advance();
              break;
            }
            return error("found " + describe(cur_) + ", expected: ',' or ')'");
          }
          for (const auto& v : req.values) {
            if (Status s = checkValue(v); !s.isOk()) return s;
          }
          sortUnique(req.values);
          return req;
        }
        break;
      case Tok::kLess:
      case Tok::kGreater:
        return error("operator " + describe(cur_) + " is not supported");
      default:
        break;
    }
    return error("found " + describe(cur_) +
                 ", expected: '=', '==', '!=', 'in', 'notin', ',' or end of string");
  }

  std::string_view in_;
  size_t pos_ = 0;
  Token cur_;
};

// ---- metav1.LabelSelector ----

std::string child(std::string_view base, std::string_view name) {
  return childField(base, name);
}

std::string index(std::string_view base, size_t i) {
  return indexField(base, i);
}

// Builds the selector and collects errors; `sel` is meaningful only when `errs` stays empty.
void convertSelector(const json& in, std::string_view path, LabelSelector& sel,
                     std::vector<FieldError>& errs) {
  if (in.is_null()) {
    sel = LabelSelector::nothing();
    return;
  }
  if (!in.is_object()) {
    errs.push_back(fieldTypeInvalid(path, in, "must be an object"));
    return;
  }
  std::vector<LabelRequirement> reqs;
  if (auto ml = in.find("matchLabels"); ml != in.end() && !ml->is_null()) {
    std::string mlPath = child(path, "matchLabels");
    if (!ml->is_object()) {
      errs.push_back(fieldTypeInvalid(mlPath, *ml, "must be an object"));
    } else {
      for (auto it = ml->begin(); it != ml->end(); ++it) {
        for (const auto& d : checkQualifiedName(it.key())) {
          errs.push_back(fieldInvalid(mlPath, it.key(), d));
        }
        if (!it.value().is_string()) {
          errs.push_back(
              fieldTypeInvalid(mlPath + "[" + it.key() + "]", it.value(), "must be a string"));
          continue;
        }
        const auto& v = it.value().get_ref<const std::string&>();
        for (const auto& d : checkLabelValue(v)) errs.push_back(fieldInvalid(mlPath, v, d));
        reqs.push_back(LabelRequirement{it.key(), LabelOp::kEquals, {v}});
      }
    }
  }
  if (auto me = in.find("matchExpressions"); me != in.end() && !me->is_null()) {
    std::string mePath = child(path, "matchExpressions");
    if (!me->is_array()) {
      errs.push_back(fieldTypeInvalid(mePath, *me, "must be an array"));
    } else {
      for (size_t i = 0; i < me->size(); ++i) {
        const json& e = (*me)[i];
        std::string ePath = index(mePath, i);
        if (!e.is_object()) {
          errs.push_back(fieldTypeInvalid(ePath, e, "must be an object"));
          continue;
        }
        LabelRequirement req;
        auto key = e.find("key");
        if (key == e.end() || key->is_null() ||
            (key->is_string() && key->get_ref<const std::string&>().empty())) {
          errs.push_back(fieldRequired(child(ePath, "key")));
        } else if (!key->is_string()) {
          errs.push_back(fieldTypeInvalid(child(ePath, "key"), *key, "must be a string"));
        } else {
          req.key = key->get<std::string>();
          for (const auto& d : checkQualifiedName(req.key)) {
            errs.push_back(fieldInvalid(child(ePath, "key"), req.key, d));
          }
        }
        std::vector<std::string> values;
        bool valuesOk = true;
        if (auto vs = e.find("values"); vs != e.end() && !vs->is_null()) {
          std::string vPath = child(ePath, "values");
          if (!vs->is_array()) {
            errs.push_back(fieldTypeInvalid(vPath, *vs, "must be an array"));
            valuesOk = false;
          } else {
            for (size_t j = 0; j < vs->size(); ++j) {
              const json& v = (*vs)[j];
              if (!v.is_string()) {
                errs.push_back(fieldTypeInvalid(index(vPath, j), v, "must be a string"));
                valuesOk = false;
                continue;
              }
              for (const auto& d : checkLabelValue(v.get_ref<const std::string&>())) {
                errs.push_back(fieldInvalid(index(vPath, j), v, d));
              }
              values.push_back(v.get<std::string>());
            }
          }
        }
        std::string opPath = child(ePath, "operator");
        auto op = e.find("operator");
        if (op == e.end() || op->is_null()) {
          errs.push_back(fieldRequired(opPath));
          continue;
        }
        if (!op->is_string()) {
          errs.push_back(fieldTypeInvalid(opPath, *op, "must be a string"));
          continue;
        }
        const auto& opName = op->get_ref<const std::string&>();
        if (opName == "In" || opName == "NotIn") {
          req.op = opName == "In" ? LabelOp::kIn : LabelOp::kNotIn;
          if (values.empty() && valuesOk) {
            errs.push_back(fieldRequired(child(ePath, "values"),
                                         "must be specified when `operator` is 'In' or 'NotIn'"));
          }
        } else if (opName == "Exists" || opName == "DoesNotExist") {
          req.op = opName == "Exists" ? LabelOp::kExists : LabelOp::kDoesNotExist;
          if (!values.empty()) {
            errs.push_back(fieldForbidden(
                child(ePath, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
          }
          values.clear();
        } else {
          errs.push_back(fieldNotSupported(opPath, *op, {"In", "NotIn", "Exists", "DoesNotExist"}));
          continue;
        }
        sortUnique(values);
        req.values = std::move(values);
        reqs.push_back(std::move(req));
      }
    }
  }
  if (errs.empty()) sel = LabelSelector(std::move(reqs));
}

}  // namespace

bool LabelRequirement::matches(const std::map<std::string, std::string>& labels) const {
  auto it = labels.find(key);
  bool has = it != labels.end();
  auto contains = [&] { return std::binary_search(values.begin(), values.end(), it->second); };
  switch (op) {
    case LabelOp::kExists:
      return has;
    case LabelOp::kDoesNotExist:
      return !has;
    case LabelOp::kEquals:
    case LabelOp::kIn:
      return has && contains();
    case LabelOp::kNotEquals:
    case LabelOp::kNotIn:
      return !has || !contains();
  }
  return false;
}

std::string LabelRequirement::toString() const {
  auto joined = [&] {
    std::string out;
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      out += values[i];
    }
    return out;
  };
  switch (op) {
    case LabelOp::kExists:
      return key;
    case LabelOp::kDoesNotExist:
      return "!" + key;
    case LabelOp::kEquals:
      return key + "=" + joined();
    case LabelOp::kNotEquals:
      return key + "!=" + joined();
    case LabelOp::kIn:
      return key + " in (" + joined() + ")";
    case LabelOp::kNotIn:
      return key + " notin (" + joined() + ")";
  }
  return key;
}

LabelSelector::LabelSelector(std::vector<LabelRequirement> requirements)
    : requirements_(std::move(requirements)) {
  for (auto& r : requirements_) sortUnique(r.values);
  std::stable_sort(
      requirements_.begin(), requirements_.end(),
      [](const LabelRequirement& a, const LabelRequirement& b) { return a.key < b.key; });
}

LabelSelector LabelSelector::nothing() {
  LabelSelector s;
  s.nothing_ = true;
  return s;
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  if (nothing_) return false;
  for (const auto& r : requirements_) {
    if (!r.matches(labels)) return false;
  }
  return true;
}

std::string LabelSelector::toString() const {
  std::string out;
  for (const auto& r : requirements_) {
    if (!out.empty()) out += ',';
    out += r.toString();
  }
  return out;
}

Result<LabelSelector> parseLabelSelector(std::string_view text) {
  try {
    return Parser(text).parse();
  } catch (const std::exception& e) {
    return internalError(std::string("label selector parser: ") + e.what());
  }
}

Result<LabelSelector> labelSelectorFromJson(const nlohmann::json& selector,
                                            std::string_view fieldPath) {
  try {
    LabelSelector sel;
    std::vector<FieldError> errs;
    convertSelector(selector, fieldPath, sel, errs);
    if (!errs.empty()) return invalidError(joinFieldErrors(errs));
    return sel;
  } catch (const std::exception& e) {
    return internalError(std::string("label selector conversion: ") + e.what());
  }
}

std::vector<FieldError> validateLabelSelectorJson(const nlohmann::json& selector,
                                                  std::string_view fieldPath) {
  std::vector<FieldError> errs;
  try {
    LabelSelector sel;
    convertSelector(selector, fieldPath, sel, errs);
  } catch (const std::exception& e) {
    errs.push_back(fieldInvalid(fieldPath, nullptr, std::string("internal error: ") + e.what()));
  }
  return errs;
}

Status validateLabelKey(std::string_view key) {
  auto errs = checkQualifiedName(key);
  if (errs.empty()) return Status::ok();
  return invalidError("invalid label key \"" + std::string(key) + "\": " + joinDetails(errs));
}

Status validateLabelValue(std::string_view value) {
  auto errs = checkLabelValue(value);
  if (errs.empty()) return Status::ok();
  return invalidError("invalid label value \"" + std::string(value) + "\": " + joinDetails(errs));
}

std::string_view filteredWatchEventType(bool deleted, bool matchedBefore, bool matchesNow) {
  if (deleted || !matchesNow) return matchedBefore ? "DELETED" : "";
  return matchedBefore ? "MODIFIED" : "ADDED";
}

}  // namespace ep::api
