#include "edgectl/apply_patch.h"

namespace ep::edgectl {

using nlohmann::json;

void applyMergePatch(json& target, const json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      target.erase(it.key());
    } else {
      applyMergePatch(target[it.key()], it.value());
    }
  }
}

namespace {

// True when `current` holds everything `modified` says, allowing extra object members in
// `current` (fields the server defaulted, e.g. a container's imagePullPolicy).
bool subsumes(const json& current, const json& modified) {
  if (modified.is_object()) {
    if (!current.is_object()) return false;
    for (auto it = modified.begin(); it != modified.end(); ++it) {
      auto c = current.find(it.key());
      if (c == current.end() || !subsumes(*c, it.value())) return false;
    }
    return true;
  }
  if (modified.is_array()) {
    if (!current.is_array() || current.size() != modified.size()) return false;
    for (size_t i = 0; i < modified.size(); ++i) {
      if (!subsumes(current[i], modified[i])) return false;
    }
    return true;
  }
  return current == modified;
}

}  // namespace

json threeWayMergePatch(const json& original, const json& modified, const json& current) {
  json patch = json::object();
  if (!modified.is_object()) return patch;
  static const json kEmpty = json::object();
  for (auto it = modified.begin(); it != modified.end(); ++it) {
    const json* cur = nullptr;
    if (current.is_object()) {
      if (auto c = current.find(it.key()); c != current.end()) cur = &*c;
    }
    if (it.value().is_object() && cur && cur->is_object()) {
      const json* orig = &kEmpty;
      if (original.is_object()) {
        if (auto o = original.find(it.key()); o != original.end() && o->is_object()) orig = &*o;
      }
      json sub = threeWayMergePatch(*orig, it.value(), *cur);
      if (!sub.empty()) patch[it.key()] = std::move(sub);
    } else if (!cur || *cur != it.value()) {
      // A list the user did not touch since the last apply, and that the live object still
      // satisfies apart from server-defaulted members, needs no update.
      if (cur && it.value().is_array() && original.is_object()) {
        auto o = original.find(it.key());
        if (o != original.end() && *o == it.value() && subsumes(*cur, it.value())) continue;
      }
      patch[it.key()] = it.value();
    }
  }
  if (original.is_object()) {
    for (auto it = original.begin(); it != original.end(); ++it) {
      if (!modified.contains(it.key())) patch[it.key()] = nullptr;
    }
  }
  return patch;
}

std::string lastAppliedConfig(const json& manifest) {
  json copy = manifest;
  if (copy.is_object() && copy.contains("metadata") && copy["metadata"].is_object()) {
    json& md = copy["metadata"];
    if (md.contains("annotations") && md["annotations"].is_object()) {
      md["annotations"].erase(std::string(kLastAppliedAnnotation));
      if (md["annotations"].empty()) md.erase("annotations");
    }
  }
  return copy.dump() + "\n";  // trailing newline like kubectl (prints as a YAML block)
}

json withLastApplied(const json& manifest) {
  std::string config = lastAppliedConfig(manifest);
  json out = manifest;
  out["metadata"]["annotations"][std::string(kLastAppliedAnnotation)] = config;
  return out;
}

ApplyPlan planApply(const json& manifest, const json& live) {
  ApplyPlan plan;
  json original = json::object();
  const json* annotation = nullptr;
  if (live.is_object()) {
    auto md = live.find("metadata");
    if (md != live.end() && md->is_object()) {
      auto an = md->find("annotations");
      if (an != md->end() && an->is_object()) {
        auto la = an->find(std::string(kLastAppliedAnnotation));
        if (la != an->end() && la->is_string()) annotation = &*la;
      }
    }
  }
  if (annotation) {
    json parsed = json::parse(annotation->get<std::string>(), nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) {
      original = std::move(parsed);
    } else {
      plan.hadLastApplied = false;
    }
  } else {
    plan.hadLastApplied = false;
  }
  json modified = withLastApplied(manifest);
  plan.patch = threeWayMergePatch(original, modified, live);
  plan.patch["metadata"]["annotations"][std::string(kLastAppliedAnnotation)] =
      modified["metadata"]["annotations"][std::string(kLastAppliedAnnotation)];
  json result = live;
  applyMergePatch(result, plan.patch);
  plan.unchanged = result == live;
  return plan;
}

}  // namespace ep::edgectl
