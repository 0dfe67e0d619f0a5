#include "common/api/patch.h"

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/api/field_error.h"
#include "common/api/object_util.h"

namespace ep::api {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 512;
constexpr size_t kMaxCopiedValues = 1'000'000;
constexpr std::string_view kPatchKey = "$patch";
constexpr std::string_view kRetainKeys = "$retainKeys";
constexpr std::string_view kSetElementOrder = "$setElementOrder/";
constexpr std::string_view kDeleteFromPrimitiveList = "$deleteFromPrimitiveList/";

Status tooDeep() {
  return badRequestError("patch is nested too deeply");
}

std::string render(const json& v) {
  return renderValue(v);
}

// Refuses documents whose nesting would make the recursive helpers (ours and nlohmann's copy and
// dump) run out of stack.
Status checkDepth(const json& target, const json& patch) {
  if (nestedDeeperThan(target, kMaxDepth)) return badRequestError("object is nested too deeply");
  if (nestedDeeperThan(patch, kMaxDepth)) return tooDeep();
  return Status::ok();
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool isDirectiveKey(std::string_view key) {
  return key == kPatchKey || key == kRetainKeys || startsWith(key, kSetElementOrder) ||
         startsWith(key, kDeleteFromPrimitiveList);
}

// The "$patch" directive of a map, "" when absent. Non-string values are an error.
Result<std::string> patchDirective(const json& m) {
  auto it = m.find(kPatchKey);
  if (it == m.end()) return std::string();
  if (!it->is_string()) {
    return badRequestError("invalid $patch directive " + render(*it) + ": must be a string");
  }
  return it->get<std::string>();
}

// ---- RFC 7386 ----

Status mergePatchInto(json& target, const json& patch, int depth) {
  if (depth > kMaxDepth) return tooDeep();
  if (!patch.is_object()) {
    target = patch;
    return Status::ok();
  }
  if (!target.is_object()) target = json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      target.erase(it.key());
      continue;
    }
    json& slot = target[it.key()];
    if (Status s = mergePatchInto(slot, it.value(), depth + 1); !s.isOk()) return s;
  }
  return Status::ok();
}

// ---- strategic merge patch ----

class StrategicMerger {
 public:
  // Merges an object patch into an object target.
  Status mergeMap(json& target, const json& patch, int depth) {
    if (depth > kMaxDepth) return tooDeep();
    if (!target.is_object()) target = json::object();
    auto directive = patchDirective(patch);
    if (!directive.isOk()) return directive.status();
    if (*directive == "replace") {
      json fresh;
      if (Status s = cleanMap(patch, fresh, depth + 1); !s.isOk()) return s;
      target = std::move(fresh);
      return Status::ok();
    }
    if (*directive == "delete") {
      target = json::object();
      return Status::ok();
    }
    if (!directive->empty() && *directive != "merge") {
      return badRequestError("unknown $patch directive \"" + *directive + "\" in a map");
    }

    if (auto rk = patch.find(kRetainKeys); rk != patch.end()) {
      if (Status s = applyRetainKeys(target, patch, *rk); !s.isOk()) return s;
    }
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      if (!startsWith(it.key(), kDeleteFromPrimitiveList)) continue;
      std::string field = it.key().substr(kDeleteFromPrimitiveList.size());
      if (!it.value().is_array()) {
        return badRequestError("invalid " + it.key() + ": must be a list");
      }
      auto t = target.find(field);
      if (t == target.end() || !t->is_array()) continue;
      json kept = json::array();
      for (const auto& v : *t) {
        if (std::find(it.value().begin(), it.value().end(), v) == it.value().end()) {
          kept.push_back(v);
        }
      }
      *t = std::move(kept);
    }

    for (auto it = patch.begin(); it != patch.end(); ++it) {
      const std::string& key = it.key();
      if (isDirectiveKey(key)) continue;
      const json& pv = it.value();
      if (pv.is_null()) {
        target.erase(key);
        continue;
      }
      auto t = target.find(key);
      if (t != target.end() && t->is_object() && pv.is_object()) {
        if (Status s = mergeMap(*t, pv, depth + 1); !s.isOk()) return s;
      } else if (t != target.end() && t->is_array() && pv.is_array()) {
        if (Status s = mergeList(*t, pv, key, depth + 1); !s.isOk()) return s;
      } else {
        bool drop = false;
        json fresh;
        if (Status s = cleanValue(pv, fresh, drop, depth + 1); !s.isOk()) return s;
        if (drop) {
          // A map carrying "$patch": "delete" where there was nothing (or a scalar) to delete.
          if (t != target.end()) target.erase(t);
        } else {
          target[key] = std::move(fresh);
        }
      }
    }

    for (auto it = patch.begin(); it != patch.end(); ++it) {
      if (!startsWith(it.key(), kSetElementOrder)) continue;
      std::string field = it.key().substr(kSetElementOrder.size());
      if (!it.value().is_array()) {
        return badRequestError("invalid " + it.key() + ": must be a list");
      }
      auto t = target.find(field);
      if (t == target.end() || !t->is_array()) continue;
      reorder(*t, it.value(), field);
    }
    return Status::ok();
  }

 private:
  Status applyRetainKeys(json& target, const json& patch, const json& retain) {
    if (!retain.is_array()) return badRequestError("invalid $retainKeys: must be a list");
    std::vector<std::string> keys;
    for (const auto& k : retain) {
      if (!k.is_string()) {
        return badRequestError("invalid $retainKeys: " + render(k) + " is not a string");
      }
      keys.push_back(k.get<std::string>());
    }
    auto listed = [&](const std::string& k) {
      return std::find(keys.begin(), keys.end(), k) != keys.end();
    };
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      if (isDirectiveKey(it.key()) || it.value().is_null()) continue;
      if (!listed(it.key())) {
        return invalidError("patch content does not match the $retainKeys list: key \"" + it.key() +
                            "\" is not listed");
      }
    }
    for (auto it = target.begin(); it != target.end();) {
      if (listed(it.key())) {
        ++it;
      } else {
        it = target.erase(it);
      }
    }
    return Status::ok();
  }

  // Merges a list patch into a list target, choosing the strategy by field name.
  Status mergeList(json& target, const json& patch, const std::string& field, int depth) {
    if (depth > kMaxDepth) return tooDeep();
    bool replaceAll = false;
    for (const auto& e : patch) {
      if (!e.is_object()) continue;
      auto d = patchDirective(e);
      if (!d.isOk()) return d.status();
      if (*d == "replace") replaceAll = true;
    }
    std::string_view mergeKey = strategicMergeKey(field, patch);
    bool allMaps =
        std::all_of(patch.begin(), patch.end(), [](const json& e) { return e.is_object(); });
    if (replaceAll || (mergeKey.empty() && !isPrimitiveMergeList(field)) ||
        (!mergeKey.empty() && !allMaps)) {
      json fresh;
      bool drop = false;
      if (Status s = cleanList(patch, fresh, depth + 1); !s.isOk()) return s;
      (void)drop;
      target = std::move(fresh);
      return Status::ok();
    }
    if (mergeKey.empty()) {  // primitive union list
      for (const auto& e : patch) {
        if (std::find(target.begin(), target.end(), e) == target.end()) target.push_back(e);
      }
      return Status::ok();
    }
    const std::string key(mergeKey);
    for (const auto& e : patch) {
      auto d = patchDirective(e);
      if (!d.isOk()) return d.status();
      auto kv = e.find(key);
      if (kv == e.end()) {
        return invalidError("list element " + render(e) + " of \"" + field +
                            "\" does not contain declared merge key: " + key);
      }
      auto found = std::find_if(target.begin(), target.end(), [&](const json& t) {
        if (!t.is_object()) return false;
        auto tk = t.find(key);
        return tk != t.end() && *tk == *kv;
      });
      if (*d == "delete") {
        if (found != target.end()) target.erase(found);
        continue;
      }
      if (!d->empty() && *d != "merge") {
        return badRequestError("unknown $patch directive \"" + *d + "\" in list \"" + field + "\"");
      }
      if (found != target.end()) {
        if (Status s = mergeMap(*found, e, depth + 1); !s.isOk()) return s;
      } else {
        json fresh;
        if (Status s = cleanMap(e, fresh, depth + 1); !s.isOk()) return s;
        target.push_back(std::move(fresh));
      }
    }
    return Status::ok();
  }

  // Reorders `list` so that elements named in `order` come first, in that order.
  static void reorder(json& list, const json& order, const std::string& field) {
    std::string_view mergeKey = strategicMergeKey(field, list);
    const std::string key(mergeKey);
    auto identity = [&](const json& e) -> const json* {
      if (key.empty()) return &e;
      if (!e.is_object()) return nullptr;
      auto it = e.find(key);
      return it == e.end() ? nullptr : &*it;
    };
    std::vector<std::pair<size_t, json>> ranked;
    ranked.reserve(list.size());
    for (auto& e : list) {
      size_t rank = SIZE_MAX;
      if (const json* id = identity(e)) {
        for (size_t i = 0; i < order.size(); ++i) {
          const json* oid = identity(order[i]);
          if (oid != nullptr && *oid == *id) {
            rank = i;
            break;
          }
        }
      }
      ranked.emplace_back(rank, std::move(e));
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    json out = json::array();
    for (auto& r : ranked) out.push_back(std::move(r.second));
    list = std::move(out);
  }

  // A patch value placed where the target has nothing to merge with: directives and nulls are
  // removed. `drop` is set for a map carrying "$patch": "delete".
  Status cleanValue(const json& v, json& out, bool& drop, int depth) {
    if (depth > kMaxDepth) return tooDeep();
    drop = false;
    if (v.is_object()) {
      auto d = patchDirective(v);
      if (!d.isOk()) return d.status();
      if (*d == "delete") {
        drop = true;
        return Status::ok();
      }
      return cleanMap(v, out, depth);
    }
    if (v.is_array()) return cleanList(v, out, depth);
    out = v;
    return Status::ok();
  }

  Status cleanMap(const json& v, json& out, int depth) {
    if (depth > kMaxDepth) return tooDeep();
    out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (isDirectiveKey(it.key()) || it.value().is_null()) continue;
      json child;
      bool drop = false;
      if (Status s = cleanValue(it.value(), child, drop, depth + 1); !s.isOk()) return s;
      if (!drop) out[it.key()] = std::move(child);
    }
    return Status::ok();
  }

  Status cleanList(const json& v, json& out, int depth) {
    if (depth > kMaxDepth) return tooDeep();
    out = json::array();
    for (const auto& e : v) {
      if (e.is_object()) {
        auto d = patchDirective(e);
        if (!d.isOk()) return d.status();
        // The list-level {"$patch": "replace"} marker carries no element.
        if (*d == "replace" && e.size() == 1) continue;
      }
      json child;
      bool drop = false;
      if (Status s = cleanValue(e, child, drop, depth + 1); !s.isOk()) return s;
      if (!drop) out.push_back(std::move(child));
    }
    return Status::ok();
  }
};

// ---- RFC 6902 ----

size_t countValues(const json& root) {
  size_t n = 0;
  std::vector<const json*> stack{&root};
  while (!stack.empty()) {
    const json* v = stack.back();
    stack.pop_back();
    ++n;
    if (v->is_structured()) {
      for (const auto& c : *v) stack.push_back(&c);
    }
  }
  return n;
}

// nlohmann's messages start with "[json.exception.<type>.<id>] ".
std::string stripExceptionPrefix(const char* what) {
  std::string s(what);
  if (!s.empty() && s[0] == '[') {
    auto close = s.find("] ");
    if (close != std::string::npos) return s.substr(close + 2);
  }
  return s;
}

}  // namespace

bool isPrimitiveMergeList(std::string_view field) {
  return field == "finalizers" || field == "podCIDRs";
}

std::string_view strategicMergeKey(std::string_view fieldName, const nlohmann::json& list) {
  // A Service's (and Endpoints') ports are keyed by port, a container's by containerPort.
  if (fieldName == "ports" && list.is_array() && !list.empty() && list.front().is_object() &&
      !list.front().contains("containerPort") && list.front().contains("port")) {
    return "port";
  }
  return strategicMergeKey(fieldName);
}

std::string_view strategicMergeKey(std::string_view fieldName) {
  static constexpr std::pair<std::string_view, std::string_view> kKeys[] = {
      {"containers", "name"},
      {"initContainers", "name"},
      {"ephemeralContainers", "name"},
      {"volumes", "name"},
      {"env", "name"},
      {"imagePullSecrets", "name"},
      {"resourceClaims", "name"},
      {"hostAliases", "ip"},
      {"podIPs", "ip"},
      {"hostIPs", "ip"},
      {"volumeMounts", "mountPath"},
      {"volumeDevices", "devicePath"},
      {"ports", "containerPort"},
      {"conditions", "type"},
      {"addresses", "type"},
      {"ownerReferences", "uid"},
      {"topologySpreadConstraints", "topologyKey"},
  };
  for (const auto& [field, key] : kKeys) {
    if (field == fieldName) return key;
  }
  return {};
}

Result<nlohmann::json> applyMergePatch(const nlohmann::json& target, const nlohmann::json& patch) {
  try {
    if (Status s = checkDepth(target, patch); !s.isOk()) return s;
    json result = target;
    if (Status s = mergePatchInto(result, patch, 0); !s.isOk()) return s;
    return result;
  } catch (const std::exception& e) {
    return internalError(std::string("merge patch: ") + e.what());
  }
}

Result<nlohmann::json> applyJsonPatch(const nlohmann::json& target, const nlohmann::json& patch) {
  try {
    if (Status s = checkDepth(target, patch); !s.isOk()) return s;
    if (!patch.is_array()) {
      return badRequestError("a JSON patch must be an array of operations, got " + render(patch));
    }
    json result = target;
    size_t copied = 0;
    for (size_t i = 0; i < patch.size(); ++i) {
      const json& op = patch[i];
      std::string label = "JSON patch operation " + std::to_string(i);
      if (!op.is_object()) return badRequestError(label + " is not an object");
      auto opName = op.find("op");
      if (opName != op.end() && *opName == "copy") {
        auto from = op.find("from");
        if (from != op.end() && from->is_string()) {
          try {
            json::json_pointer ptr(from->get<std::string>());
            if (result.contains(ptr)) copied += countValues(result.at(ptr));
          } catch (const json::exception&) {
            // Reported by patch() below with its own message.
          }
        }
        if (copied > kMaxCopiedValues) {
          return invalidError(label + ": copy operations exceed the limit of " +
                              std::to_string(kMaxCopiedValues) + " copied values");
        }
      }
      try {
        result = result.patch(json::array({op}));
      } catch (const json::parse_error& e) {
        std::string msg =
            label + " " + render(op) + " is malformed: " + stripExceptionPrefix(e.what());
        // 104/105: bad operation object; 106-108: bad JSON pointer syntax.
        if (e.id >= 104 && e.id <= 108) return badRequestError(msg);
        return invalidError(msg);
      } catch (const json::exception& e) {
        return invalidError(label + " " + render(op) +
                            " could not be applied: " + stripExceptionPrefix(e.what()));
      }
    }
    return result;
  } catch (const std::exception& e) {
    return internalError(std::string("JSON patch: ") + e.what());
  }
}

Result<nlohmann::json> applyStrategicMergePatch(const nlohmann::json& original,
                                                const nlohmann::json& patch) {
  try {
    if (Status s = checkDepth(original, patch); !s.isOk()) return s;
    if (!patch.is_object()) {
      return badRequestError("a strategic merge patch must be a JSON object, got " + render(patch));
    }
    json result = original.is_object() ? original : json::object();
    StrategicMerger merger;
    if (Status s = merger.mergeMap(result, patch, 0); !s.isOk()) return s;
    return result;
  } catch (const std::exception& e) {
    return internalError(std::string("strategic merge patch: ") + e.what());
  }
}

}  // namespace ep::api
