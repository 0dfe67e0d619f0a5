#include "common/api/managed_fields.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "common/api/patch.h"

namespace ep::api {
namespace {

using nlohmann::json;
// A member path: its elements ("f:x", "k:{...}", "v:...") joined by kSep, so sets of paths are
// sets of flat strings (one allocation each, memcmp order; a parent sorts right before its
// children). JSON text never holds kSep raw; a field name holding it is not tracked.
using Path = std::string;
constexpr char kSep = '\x01';
using PathSet = std::set<Path>;

constexpr std::string_view kOwnMark = ".";
constexpr const char* kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

// The string at `key` of an object, "" when absent or not a string (never a throw).
std::string str(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// JSON text of a key or value inside a path element (invalid UTF-8 replaced, never a throw).
std::string text(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}
constexpr int kMaxDepth = 600;
// What the member paths of one object may take (each path holds its whole prefix, so a deep
// object of many leaves costs far more than its JSON). Beyond: ownership is not tracked.
constexpr size_t kPathBudget = 32u
                               << 20;  // above the request limit (512); deeper input is not walked

std::vector<std::string> elementsOf(const Path& path) {
  std::vector<std::string> out;
  if (path.empty()) return out;
  size_t start = 0;
  for (size_t sep = path.find(kSep); sep != std::string::npos; sep = path.find(kSep, start)) {
    out.push_back(path.substr(start, sep - start));
    start = sep + 1;
  }
  out.push_back(path.substr(start));
  return out;
}

// Appends an element to a path; returns the length to restore with resize().
size_t pushElement(Path& path, std::string_view element) {
  size_t size = path.size();
  if (!path.empty()) path += kSep;
  path += element;
  return size;
}

// Whether `below` lies under `path` (a descendant, not path itself).
bool isBelow(const Path& below, const Path& path) {
  return below.size() > path.size() && below.compare(0, path.size(), path) == 0 &&
         below[path.size()] == kSep;
}

// Metadata the server controls: never owned.
bool serverMetadata(std::string_view key) {
  static constexpr std::string_view kKeys[] = {"name",
                                               "namespace",
                                               "uid",
                                               "resourceVersion",
                                               "generation",
                                               "creationTimestamp",
                                               "deletionTimestamp",
                                               "deletionGracePeriodSeconds",
                                               "managedFields",
                                               "selfLink"};
  return std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys);
}

struct ListKey {
  std::string name;
  json defaultValue;  // null: required
};

// The keys of a keyed list of a built-in kind (empty: atomic). Ports are keyed by port and
// protocol (protocol defaults to TCP), as Kubernetes' list-map keys say.
std::vector<ListKey> listKeys(std::string_view field, const json& list) {
  std::string_view key = strategicMergeKey(field, list);
  if (key.empty()) return {};
  if (field == "ports") return {{std::string(key), nullptr}, {"protocol", "TCP"}};
  return {{std::string(key), nullptr}};
}

// The key object of one element, or null when the element lacks a required key.
json keyOf(const json& element, const std::vector<ListKey>& keys) {
  if (!element.is_object()) return nullptr;
  json k = json::object();
  for (const auto& key : keys) {
    auto it = element.find(key.name);
    if (it != element.end() && !it->is_null()) {
      if (it->is_object() || it->is_array()) return nullptr;
      k[key.name] = *it;
    } else if (!key.defaultValue.is_null()) {
      k[key.name] = key.defaultValue;
    } else {
      return nullptr;
    }
  }
  return k;
}

// Every member path of an object with its value (the element itself for keyed elements and
// set values), in one walk.
using Members = std::map<Path, const json*>;

std::string pathString(const Path& path);

class Collector {
 public:
  // `error`: non-null for an applied configuration, whose keyed lists must be keyable (as the
  // apiserver requires); receives the first problem. Null: such lists are atomic.
  Collector(bool builtin, Members& out, std::string* error = nullptr)
      : builtin_(builtin), out_(out), error_(error) {}

  // Set when the paths outgrew kPathBudget: the walk stopped and the members are partial.
  bool overflowed() const { return overflow_; }

  void object(const json& object, bool top) {
    for (const auto& [key, value] : object.items()) {
      if (value.is_null()) continue;
      if (top && (key == "apiVersion" || key == "kind" || key == "status")) continue;
      if (top && key == "metadata" && value.is_object()) {
        size_t restore = pushElement(path_, "f:metadata");
        for (const auto& [mk, mv] : value.items()) {
          if (mv.is_null() || serverMetadata(mk)) continue;
          field(mk, mv);
        }
        path_.resize(restore);
        continue;
      }
      field(key, value);
    }
  }

 private:
  void field(const std::string& name, const json& value) {
    if (++depth_ > kMaxDepth || name.find(kSep) != std::string::npos) {
      --depth_;
      return;
    }
    size_t restore = pushElement(path_, "f:" + name);
    if (value.is_object() && !value.empty()) {
      object(value, false);  // owned through its fields
    } else if (!value.is_array() || !list(name, value)) {
      add(&value);  // scalar, empty object, atomic list
    }
    path_.resize(restore);
    --depth_;
  }

  // A set or keyed list: its values or elements are the members. False: atomic.
  bool list(std::string_view name, const json& list) {
    if (!builtin_ || list.empty()) return false;
    if (isPrimitiveMergeList(name)) {
      if (!std::all_of(list.begin(), list.end(), [](const json& v) { return v.is_primitive(); })) {
        return false;
      }
      for (const auto& v : list) {
        size_t restore = pushElement(path_, "v:" + text(v));
        add(&v);
        path_.resize(restore);
      }
      return true;
    }
    auto keys = listKeys(name, list);
    if (keys.empty()) return false;
    std::vector<std::string> elements;
    std::set<std::string> seen;
    if (!std::all_of(list.begin(), list.end(), [](const json& e) { return e.is_object(); })) {
      return false;  // replaced as a whole
    }
    for (const auto& element : list) {
      json k = keyOf(element, keys);
      std::string problem;
      if (k.is_null()) {
        problem = "associative list with keys has an element that omits key field \"" +
                  keys.front().name + "\"";
      } else if (!seen.insert("k:" + text(k)).second) {
        problem = "duplicate entries for key " + text(k);
      }
      if (!problem.empty()) {
        if (error_ != nullptr && error_->empty()) {
          *error_ =
              pathString(path_) + ": element " + std::to_string(elements.size()) + ": " + problem;
        }
        return false;  // atomic
      }
      elements.push_back("k:" + text(k));
    }
    for (size_t i = 0; i < elements.size(); ++i) {
      size_t restore = pushElement(path_, elements[i]);
      add(&list[i]);
      object(list[i], false);
      path_.resize(restore);
    }
    return true;
  }

  bool builtin_;
  // Adds one member, unless the paths' total size passed the budget.
  void add(const json* value) {
    bytes_ += path_.size() + 64;
    if (bytes_ > kPathBudget) {
      overflow_ = true;
      return;
    }
    out_.emplace(path_, value);
  }

  Members& out_;
  std::string* error_;
  size_t bytes_ = 0;
  bool overflow_ = false;
  Path path_;
  int depth_ = 0;
};

// `overflow` (when given) is set when the object has more fields than kPathBudget tracks.
Members membersOf(const json& object, bool builtin, std::string* error = nullptr,
                  bool* overflow = nullptr) {
  Members out;
  if (!object.is_object()) return out;
  Collector collector(builtin, out, error);
  collector.object(object, /*top=*/true);
  if (overflow != nullptr && collector.overflowed()) *overflow = true;
  return out;
}

PathSet keysOf(const Members& members) {
  PathSet out;
  for (const auto& [p, v] : members) out.insert(out.end(), p);
  return out;
}

// Every path the object has: its members and the objects above them. An entry may own an
// object it applied empty (`strategy: {}`) that defaults have since filled; that is still there.
PathSet existingPaths(const Members& members) {
  PathSet out;
  for (const auto& [p, v] : members) {
    out.insert(p);
    for (size_t sep = p.find(kSep); sep != std::string::npos; sep = p.find(kSep, sep + 1)) {
      out.insert(p.substr(0, sep));
    }
  }
  return out;
}

void flattenInto(const json& node, Path& prefix, int depth, PathSet& out) {
  if (!node.is_object()) return;
  if (node.empty()) {
    if (!prefix.empty()) out.insert(prefix);
    return;
  }
  for (const auto& [key, child] : node.items()) {
    if (key == kOwnMark) {
      if (!prefix.empty()) out.insert(prefix);
      continue;
    }
    if (depth > kMaxDepth || key.empty() || key.find(kSep) != std::string::npos) continue;
    size_t restore = pushElement(prefix, key);
    flattenInto(child, prefix, depth + 1, out);
    prefix.resize(restore);
  }
}

PathSet flatten(const json& set) {
  PathSet out;
  Path prefix;
  flattenInto(set, prefix, 0, out);
  return out;
}

json unflatten(const PathSet& paths) {
  json root = json::object();
  std::vector<json*> members;
  members.reserve(paths.size());
  for (const auto& p : paths) {
    json* node = &root;
    for (const auto& pe : elementsOf(p)) {
      json& child = (*node)[pe];
      if (!child.is_object()) child = json::object();
      node = &child;
    }
    members.push_back(node);  // map nodes keep their address as siblings are added
  }
  for (json* node : members) {
    if (!node->empty()) (*node)[std::string(kOwnMark)] = json::object();
  }
  return root;
}

PathSet minus(const PathSet& a, const PathSet& b) {
  PathSet out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

PathSet intersect(const PathSet& a, const PathSet& b) {
  PathSet out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

bool startsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The element of `list` that a "k:" or "v:" path element names (list.end() if none).
json::const_iterator findElement(const json& list, const std::string& pe) {
  json parsed = json::parse(pe.substr(2), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return list.end();
  if (startsWith(pe, "v:")) return std::find(list.begin(), list.end(), parsed);
  if (!parsed.is_object()) return list.end();
  return std::find_if(list.begin(), list.end(), [&](const json& element) {
    if (!element.is_object()) return false;
    for (const auto& [k, v] : parsed.items()) {
      auto it = element.find(k);
      bool matches = it != element.end() && !it->is_null()
                         ? *it == v
                         : (k == "protocol" && v == "TCP");  // the one defaulted key
      if (!matches) return false;
    }
    return true;
  });
}

const json* valueAt(const json& object, const std::vector<std::string>& path) {
  const json* cur = &object;
  for (const auto& pe : path) {
    if (startsWith(pe, "f:")) {
      if (!cur->is_object()) return nullptr;
      auto it = cur->find(pe.substr(2));
      if (it == cur->end() || it->is_null()) return nullptr;
      cur = &*it;
    } else {
      if (!cur->is_array()) return nullptr;
      auto it = findElement(*cur, pe);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    }
  }
  return cur;
}

// Whether the member's value is compared (a field); keyed elements and set values are owned
// by being present.
bool isField(const Path& path) {
  size_t last = path.rfind(kSep);
  return path.compare(last == std::string::npos ? 0 : last + 1, 2, "f:") == 0;
}

// Whether the member is a key field of its keyed list element ("f:name" under
// "k:{\"name\":...}").
bool isKeyField(const Path& flat) {
  const std::vector<std::string> path = elementsOf(flat);
  if (path.size() < 2 || !startsWith(path.back(), "f:") ||
      !startsWith(path[path.size() - 2], "k:")) {
    return false;
  }
  json key = json::parse(path[path.size() - 2].substr(2), nullptr, false);
  return key.is_object() && key.contains(path.back().substr(2));
}

// Removes the member at `path` from `object`, then the objects and lists that removal left
// empty (below the top-level fields, which stay), unless `keep` holds them (the configuration
// set them empty).
void removePath(json& object, const Path& flat, const PathSet& keep) {
  const std::vector<std::string> path = elementsOf(flat);
  if (path.empty()) return;
  std::vector<json*> chain{&object};
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    json* cur = chain.back();
    const std::string& pe = path[i];
    if (startsWith(pe, "f:")) {
      if (!cur->is_object()) return;
      auto it = cur->find(pe.substr(2));
      if (it == cur->end()) return;
      chain.push_back(&*it);
    } else {
      if (!cur->is_array()) return;
      auto it = findElement(*cur, pe);
      if (it == cur->end()) return;
      chain.push_back(&(*cur)[static_cast<size_t>(it - cur->cbegin())]);
    }
  }
  auto eraseIn = [](json& parent, const std::string& pe) {
    if (startsWith(pe, "f:")) return parent.is_object() && parent.erase(pe.substr(2)) > 0;
    if (!parent.is_array()) return false;
    auto it = findElement(parent, pe);
    if (it == parent.cend()) return false;
    parent.erase(it);
    return true;
  };
  if (!eraseIn(*chain.back(), path.back())) return;  // not there: nothing was emptied
  for (size_t i = chain.size() - 1; i >= 2; --i) {
    const json& v = *chain[i];
    if (!(v.is_object() || v.is_array()) || !v.empty()) break;
    Path container;
    for (size_t e = 0; e < i; ++e) (void)pushElement(container, path[e]);
    if (keep.contains(container)) break;
    if (!eraseIn(*chain[i - 1], path[i - 1])) break;
  }
}

std::string pathString(const Path& path) {
  std::string out;
  for (const auto& pe : elementsOf(path)) {
    if (startsWith(pe, "f:")) {
      out += "." + pe.substr(2);
    } else if (startsWith(pe, "v:")) {
      out += "[=" + pe.substr(2) + "]";
    } else if (startsWith(pe, "k:")) {
      json k = json::parse(pe.substr(2), nullptr, false);
      out += "[";
      bool first = true;
      if (k.is_object()) {
        for (const auto& [name, v] : k.items()) {
          if (!first) out += ",";
          first = false;
          out += name + "=" + text(v);
        }
      }
      out += "]";
    } else {
      out += "[" + pe + "]";
    }
  }
  return out;
}

json entry(const ManagerInfo& who, const char* operation, json fields) {
  return {{"manager", who.manager}, {"operation", operation},   {"apiVersion", who.apiVersion},
          {"time", who.time},       {"fieldsType", "FieldsV1"}, {"fieldsV1", std::move(fields)}};
}

bool isEntryOf(const json& e, const ManagerInfo& who, std::string_view operation) {
  return str(e, "manager") == who.manager && str(e, "operation") == operation &&
         str(e, "subresource").empty() &&
         (operation == "Apply" || str(e, "apiVersion") == who.apiVersion);
}

// "\"kubectl-edit\" using apps/v1" for an Update entry, "\"kubectl\"" for an Apply one.
std::string managerLabel(const json& e) {
  std::string label = text(json(str(e, "manager")));
  if (std::string sub = str(e, "subresource"); !sub.empty()) {
    label += " with subresource " + text(json(sub));
  }
  if (str(e, "operation") == "Update") label += " using " + str(e, "apiVersion");
  return label;
}

json withoutNulls(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, c] : v.items()) {
      if (!c.is_null()) out[k] = withoutNulls(c);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& c : v) out.push_back(withoutNulls(c));
    return out;
  }
  return v;
}

bool hasDirective(const json& v, int depth) {
  if (depth > kMaxDepth) return false;
  if (v.is_object()) {
    for (const auto& [k, c] : v.items()) {
      if (!k.empty() && k[0] == '$') return true;
      if (hasDirective(c, depth + 1)) return true;
    }
  } else if (v.is_array()) {
    for (const auto& c : v) {
      if (hasDirective(c, depth + 1)) return true;
    }
  }
  return false;
}

json withoutManagedFields(json v) {
  if (v.is_object() && v.contains("metadata") && v["metadata"].is_object()) {
    v["metadata"].erase("managedFields");
  }
  return v;
}

}  // namespace

json fieldSetOf(const json& object, bool builtin) {
  return unflatten(keysOf(membersOf(object, builtin)));
}

bool validManagedFields(const json& managedFields) {
  if (!managedFields.is_array()) return false;
  for (const auto& e : managedFields) {
    if (!e.is_object()) return false;
    auto manager = e.find("manager");
    if (manager == e.end() || !manager->is_string() || manager->get<std::string>().empty()) {
      return false;
    }
    std::string op = str(e, "operation");
    if (op != "Apply" && op != "Update") return false;
    if (auto t = e.find("fieldsType"); t != e.end() && *t != "FieldsV1") return false;
    if (auto f = e.find("fieldsV1"); f == e.end() || !f->is_object()) return false;
  }
  return true;
}

json recordUpdate(const json& managed, const json* before, const json& after,
                  const ManagerInfo& who, bool builtin) {
  bool overflow = false;
  const Members afterMembers = membersOf(after, builtin, nullptr, &overflow);
  const Members beforeMembers =
      before != nullptr && !overflow ? membersOf(*before, builtin, nullptr, &overflow) : Members{};
  if (overflow) return managed;  // too many fields to track: ownership stays as it was
  PathSet afterSet = existingPaths(afterMembers);
  PathSet changed;
  for (const auto& [p, value] : afterMembers) {
    auto was = beforeMembers.find(p);
    if (was == beforeMembers.end() || (isField(p) && *was->second != *value)) {
      changed.insert(changed.end(), p);
    }
  }
  static const json kNone = json::array();
  const json& entries = validManagedFields(managed) ? managed : kNone;
  json out = json::array();
  bool found = false;
  bool anyChange = false;
  for (const auto& e : entries) {
    PathSet s = flatten(e["fieldsV1"]);
    bool mine = isEntryOf(e, who, "Update");
    PathSet next;
    if (mine) {
      found = true;
      next = s;
      next.insert(changed.begin(), changed.end());
      next = intersect(next, afterSet);
    } else {
      next = intersect(minus(s, changed), afterSet);
    }
    if (next == s) {
      out.push_back(e);
      continue;
    }
    anyChange = true;
    if (next.empty()) continue;
    json updated = e;
    updated["fieldsV1"] = unflatten(next);
    if (mine) updated["time"] = who.time;
    out.push_back(std::move(updated));
  }
  if (!found && !changed.empty()) {
    out.push_back(entry(who, "Update", unflatten(changed)));
    anyChange = true;
  }
  return anyChange ? out : managed;
}

json forgetRemovedFields(const json& managed, const json& after, bool builtin) {
  if (!validManagedFields(managed) || managed.empty()) return managed;
  bool overflow = false;
  const PathSet present = existingPaths(membersOf(after, builtin, nullptr, &overflow));
  if (overflow) return managed;
  json out = json::array();
  bool anyChange = false;
  for (const auto& e : managed) {
    PathSet s = flatten(e["fieldsV1"]);
    PathSet kept = intersect(s, present);
    if (kept == s) {
      out.push_back(e);
      continue;
    }
    anyChange = true;
    if (kept.empty()) continue;
    json trimmed = e;
    trimmed["fieldsV1"] = unflatten(kept);
    out.push_back(std::move(trimmed));
  }
  return anyChange ? out : managed;
}

json applyCreateManagedFields(const json& config, const ManagerInfo& who, bool builtin) {
  return json::array({entry(who, "Apply", fieldSetOf(withoutNulls(config), builtin))});
}

namespace {

Result<json> applyConfigurationImpl(const json& live, const json& config, const ManagerInfo& who,
                                    bool force, bool builtin) {
  if (!config.is_object()) return badRequestError("the applied configuration must be an object");
  if (builtin && hasDirective(config, 0)) {
    return badRequestError(
        "the applied configuration holds a patch directive (a key starting with \"$\")");
  }
  json cfg = withoutNulls(config);
  cfg.erase("status");
  if (cfg.contains("metadata") && cfg["metadata"].is_object()) {
    cfg["metadata"].erase("managedFields");
  }
  std::string shapeError;
  bool overflow = false;
  PathSet cfgSet = keysOf(membersOf(cfg, builtin, &shapeError, &overflow));
  if (overflow) {
    return Status(Code::kTooLarge,
                  "the applied configuration has too many fields to track their ownership");
  }
  if (!shapeError.empty()) {
    return badRequestError("the applied configuration cannot be merged: " + shapeError);
  }

  json managed = json::array();
  if (const json* mf = valueAt(live, {"f:metadata", "f:managedFields"});
      mf != nullptr && validManagedFields(*mf)) {
    managed = *mf;
  }
  if (managed.empty()) {
    ManagerInfo first{"before-first-apply",
                      str(live, "apiVersion").empty() ? who.apiVersion : str(live, "apiVersion"),
                      who.time};
    PathSet liveSet = keysOf(membersOf(live, builtin));
    if (!liveSet.empty()) managed.push_back(entry(first, "Update", unflatten(liveSet)));
  }

  auto merged = builtin ? applyStrategicMergePatch(withoutManagedFields(live), cfg)
                        : applyMergePatch(withoutManagedFields(live), cfg);
  if (!merged.isOk()) return merged.status();
  json result = std::move(merged.value());
  if (!result.is_object() || (result.contains("metadata") && !result["metadata"].is_object())) {
    return badRequestError("metadata must be an object");
  }

  // kubectl moving from client-side to server-side apply (manager "kubectl", as the apiserver
  // singles it out): the fields its last-applied-configuration names are handed over instead
  // of conflicting, and that annotation follows the new configuration.
  PathSet lastApplied;
  if (who.manager == "kubectl") {
    const json* annotation =
        valueAt(live, {"f:metadata", "f:annotations", std::string("f:") + kLastApplied});
    if (annotation != nullptr && annotation->is_string()) {
      json previous = json::parse(annotation->get<std::string>(), nullptr, false);
      if (previous.is_object()) {
        lastApplied =
            intersect(keysOf(membersOf(previous, builtin)), keysOf(membersOf(live, builtin)));
      }
      json& annotations = result["metadata"]["annotations"];
      if (annotations.is_object()) annotations[kLastApplied] = text(config);
    }
  }

  // Conflicts: fields the configuration changes that another manager owns.
  const Members liveMembers = membersOf(live, builtin);
  const Members resultMembers = membersOf(result, builtin);
  std::vector<PathSet> sets;
  std::vector<StatusCause> causes;
  std::vector<std::pair<std::string, std::string>> conflicts;  // manager label, path
  int mine = -1;
  for (size_t i = 0; i < managed.size(); ++i) {
    sets.push_back(flatten(managed[i]["fieldsV1"]));
    if (isEntryOf(managed[i], who, "Apply")) {
      mine = static_cast<int>(i);
      continue;
    }
    PathSet lost;
    PathSet handedOver;
    for (const auto& p : intersect(cfgSet, sets.back())) {
      if (!isField(p)) continue;
      auto was = liveMembers.find(p);
      if (was == liveMembers.end()) continue;  // not in the object: nobody's (stale ownership)
      auto now = resultMembers.find(p);
      if (now != resultMembers.end() && *was->second == *now->second) continue;
      if (lastApplied.contains(p)) {
        handedOver.insert(p);
        continue;
      }
      std::string label = managerLabel(managed[i]);
      conflicts.emplace_back(label, pathString(p));
      causes.push_back({pathString(p), "FieldManagerConflict", "conflict with " + label});
      lost.insert(p);
    }
    sets.back() = minus(sets.back(), handedOver);
    if (force) sets.back() = minus(sets.back(), lost);
  }
  if (!conflicts.empty() && !force) {
    std::string msg;
    if (conflicts.size() == 1) {
      msg = "Apply failed with 1 conflict: conflict with " + conflicts[0].first + ": " +
            conflicts[0].second;
    } else {
      std::map<std::string, std::vector<std::string>> byManager;
      for (const auto& [label, path] : conflicts) byManager[label].push_back(path);
      msg = "Apply failed with " + std::to_string(conflicts.size()) + " conflicts: ";
      bool first = true;
      for (const auto& [label, paths] : byManager) {
        if (!first) msg += "\n";
        first = false;
        msg += "conflicts with " + label + ":";
        for (const auto& p : paths) msg += "\n- " + p;
      }
    }
    return Status(Code::kConflict, msg).withCauses(std::move(causes));
  }

  // What who applied before and no longer applies goes, unless another manager owns it (or
  // something beneath it).
  PathSet others;
  for (size_t i = 0; i < sets.size(); ++i) {
    if (static_cast<int>(i) != mine) others.insert(sets[i].begin(), sets[i].end());
  }
  PathSet previous = mine >= 0 ? sets[static_cast<size_t>(mine)] : PathSet{};
  PathSet gone = minus(minus(previous, cfgSet), others);
  // Parents before children (set order): what lies below a removed member went with it. A
  // keyed element's key fields stay while the element does.
  PathSet removed;
  for (const auto& p : gone) {
    bool underRemoved = false;
    for (size_t sep = p.find(kSep); sep != std::string::npos && !underRemoved;
         sep = p.find(kSep, sep + 1)) {
      underRemoved = removed.contains(p.substr(0, sep));
    }
    if (underRemoved || isKeyField(p)) continue;
    if (auto applied = cfgSet.lower_bound(p); applied != cfgSet.end() && isBelow(*applied, p)) {
      continue;  // an object that was applied empty and is now applied with fields
    }
    auto below = others.lower_bound(p);
    bool ownedBelow = below != others.end() && isBelow(*below, p);
    if (ownedBelow) continue;
    removePath(result, p, cfgSet);
    removed.insert(p);
  }

  bool objectChanged = withoutManagedFields(live) != result;
  json out = json::array();
  for (size_t i = 0; i < managed.size(); ++i) {
    if (static_cast<int>(i) == mine) {
      json e = managed[i];
      if (cfgSet != sets[i] || objectChanged) {
        e = entry(who, "Apply", unflatten(cfgSet));
      }
      out.push_back(std::move(e));
      continue;
    }
    if (sets[i].empty()) continue;
    json e = managed[i];
    if (sets[i] != flatten(managed[i]["fieldsV1"])) e["fieldsV1"] = unflatten(sets[i]);
    out.push_back(std::move(e));
  }
  if (mine < 0) out.push_back(entry(who, "Apply", unflatten(cfgSet)));
  result["metadata"]["managedFields"] = std::move(out);
  return result;
}

}  // namespace

Result<json> applyConfiguration(const json& live, const json& config, const ManagerInfo& who,
                                bool force, bool builtin) {
  try {
    return applyConfigurationImpl(live, config, who, force, builtin);
  } catch (const std::exception& e) {  // a broken invariant here must not cross the API
    return internalError(std::string("server-side apply: ") + e.what());
  }
}

std::vector<std::string> fieldSetPaths(const json& set) {
  std::vector<std::string> out;
  for (const auto& p : flatten(set)) out.push_back(pathString(p));
  return out;
}

}  // namespace ep::api
