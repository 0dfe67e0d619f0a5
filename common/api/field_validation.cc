#include "common/api/field_validation.h"

#include <set>
#include <string>

#include "common/api/k8s_schema.h"

namespace ep::api {
namespace {

using Json = nlohmann::json;

// Reported paths are cut at this many bytes ("..." marks the cut), so a hostile key costs its
// size once, not once per report or per nesting level.
constexpr size_t kMaxPathBytes = 256;
// At most this many unknown fields are reported per object (all are dropped).
constexpr size_t kMaxReported = 100;

// `path` + `tail`, cut at kMaxPathBytes on a UTF-8 character boundary.
std::string capped(const std::string& path, std::string_view tail) {
  if (path.size() >= kMaxPathBytes) return path;  // already cut
  std::string out = path;
  if (out.size() + tail.size() <= kMaxPathBytes) {
    out.append(tail);
    return out;
  }
  size_t keep = kMaxPathBytes - out.size();
  while (keep > 0 && (static_cast<unsigned char>(tail[keep]) & 0xc0) == 0x80) --keep;
  out.append(tail.substr(0, keep));
  out.append("...");
  return out;
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? capped("", key) : capped(capped(path, "."), key);
}

std::string index(const std::string& path, size_t i) {
  return capped(path, "[" + std::to_string(i) + "]");
}

// Prunes `value` (the JSON of `message`) and records the unknown fields under `path`.
void pruneMessage(Json& value, const std::string& message, const std::string& path,
                  std::vector<std::string>& out);

void pruneValue(Json& value, const k8s::FieldSchema& f, const std::string& path,
                std::vector<std::string>& out) {
  if (f.type == k8s::FieldType::kMap) {
    if (f.mapValue != k8s::FieldType::kMessage || !value.is_object()) return;
    for (auto& [key, v] : value.items()) pruneMessage(v, f.message, join(path, key), out);
    return;
  }
  if (f.type != k8s::FieldType::kMessage) return;
  if (f.repeated) {
    if (!value.is_array()) return;
    for (size_t i = 0; i < value.size(); ++i) {
      pruneMessage(value[i], f.message, index(path, i), out);
    }
    return;
  }
  pruneMessage(value, f.message, path, out);
}

void pruneMessage(Json& value, const std::string& message, const std::string& path,
                  std::vector<std::string>& out) {
  if (!value.is_object() || k8s::isOpaqueJson(message) || !k8s::hasMessage(message)) return;
  for (auto it = value.begin(); it != value.end();) {
    const k8s::FieldSchema* f = k8s::fieldByJsonName(message, it.key());
    if (f == nullptr) {
      if (out.size() < kMaxReported) out.push_back(join(path, it.key()));
      it = value.erase(it);
      continue;
    }
    pruneValue(it.value(), *f, join(path, it.key()), out);
    ++it;
  }
}

// Records the keys an object repeats while nlohmann's SAX parser reads the document. Paths
// are built only for what is found; deeper than kMaxDepth or past kMaxFound it stops (the
// caller's depth check refuses such bodies anyway).
class DuplicateFinder : public nlohmann::json_sax<Json> {
 public:
  static constexpr size_t kMaxDepth = 512;
  static constexpr size_t kMaxFound = 100;
  std::vector<std::string> found;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return start(true); }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      found.push_back(pathOfOpenValue(k));
      if (found.size() >= kMaxFound) return false;
    }
    f.key = k;
    return true;
  }
  bool end_object() override { return end(); }
  bool start_array(std::size_t) override { return start(false); }
  bool end_array() override { return end(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    found.clear();
    return false;
  }

 private:
  struct Frame {
    bool object;
    size_t index = 0;            // arrays: the index of the element being read
    std::string key;             // objects: the key whose value is being read
    std::set<std::string> keys;  // ordered: no hash for colliding keys to degrade
  };

  // The path of key `last` in the innermost object: each enclosing frame's current position.
  std::string pathOfOpenValue(const std::string& last) const {
    std::string path;
    for (size_t i = 0; i + 1 < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      path = f.object ? join(path, f.key) : index(path, f.index);
    }
    return join(path, last);
  }
  bool start(bool object) {
    if (frames_.size() >= kMaxDepth) return false;
    frames_.push_back(Frame{object});
    return true;
  }
  bool value() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
    return true;
  }
  bool end() {
    frames_.pop_back();
    return value();
  }

  std::vector<Frame> frames_;
};

}  // namespace

Result<FieldValidation> parseFieldValidation(std::string_view value) {
  if (value.empty() || value == "Warn") return FieldValidation::kWarn;
  if (value == "Ignore") return FieldValidation::kIgnore;
  if (value == "Strict") return FieldValidation::kStrict;
  return Status(Code::kInvalid, "fieldValidation: Unsupported value: \"" + std::string(value) +
                                    "\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"");
}

std::vector<std::string> pruneUnknownFields(const KindInfo& kind, Json& obj) {
  std::vector<std::string> out;
  if (!obj.is_object()) return out;
  const char* message =
      kind.builtin ? k8s::kindMessage(kind.apiVersion() + "/" + kind.kind) : nullptr;
  for (auto it = obj.begin(); it != obj.end();) {
    const std::string& key = it.key();
    if (key == "apiVersion" || key == "kind") {
      ++it;
      continue;
    }
    const k8s::FieldSchema* f = message ? k8s::fieldByJsonName(message, key) : nullptr;
    if (f != nullptr) {
      pruneValue(it.value(), *f, key, out);
    } else if (message == nullptr && key == "metadata") {
      pruneMessage(it.value(), k8s::kObjectMeta, key, out);
    } else if (message != nullptr || (key != "spec" && key != "status")) {
      if (out.size() < kMaxReported) out.push_back(capped("", key));
      it = obj.erase(it);
      continue;
    }
    ++it;
  }
  return out;
}

std::vector<std::string> duplicateFields(std::string_view json) {
  DuplicateFinder finder;
  Json::sax_parse(json, &finder);  // stops early on malformed input, depth or kMaxFound
  return std::move(finder.found);
}

}  // namespace ep::api
