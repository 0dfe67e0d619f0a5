#include "edgectl/rollout.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <thread>

#include "edgectl/api_client.h"
#include "edgectl/apply_patch.h"
#include "edgectl/paths.h"
#include "edgectl/resource_args.h"

namespace ep::edgectl {

using nlohmann::json;

namespace {

constexpr const char* kRevisionAnnotation = "deployment.kubernetes.io/revision";
constexpr const char* kChangeCause = "kubernetes.io/change-cause";

struct Target {
  const api::KindInfo* kind = nullptr;
  std::string name;
};

// "deployment/NAME", "deploy NAME", "rs/NAME"... `allowed` lists the accepted kinds.
Result<Target> parseTarget(const std::vector<std::string>& args,
                           const std::vector<std::string>& allowed, const std::string& verb) {
  std::string kindText, name;
  if (args.size() == 1 && args[0].find('/') != std::string::npos) {
    kindText = args[0].substr(0, args[0].find('/'));
    name = args[0].substr(args[0].find('/') + 1);
  } else if (args.size() == 2 && args[0].find('/') == std::string::npos) {
    kindText = args[0];
    name = args[1];
  } else if (args.empty()) {
    return badRequestError("required resource not specified");
  } else {
    return badRequestError("expected exactly one resource (TYPE/NAME or TYPE NAME) to " + verb);
  }
  const api::KindInfo* kind = api::findByUserName(kindText);
  if (kind == nullptr) {
    return badRequestError("the server doesn't have a resource type \"" + kindText + "\"");
  }
  if (std::find(allowed.begin(), allowed.end(), kind->kind) == allowed.end()) {
    return badRequestError("no " + verb + " support for " + kindDisplayName(*kind) + "/" + name);
  }
  if (name.empty()) return badRequestError("resource name may not be empty");
  return Target{kind, name};
}

int64_t revisionOf(const json& obj) {
  std::string r = stringAt(obj, {"metadata", "annotations", kRevisionAnnotation});
  try {
    return r.empty() ? 0 : std::stoll(r);
  } catch (...) {
    return 0;
  }
}

int64_t intOf(const json& obj, std::initializer_list<const char*> keys, int64_t fallback = 0) {
  const json* v = jsonAt(obj, keys);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : fallback;
}

// GET the object; prints kubectl's error line and returns nullopt on failure.
std::optional<json> fetch(Context& ctx, const api::KindInfo& kind, const std::string& name) {
  auto r = ctx.api->call("GET", resourcePath(kind, effectiveNamespace(kind, ctx.ns), name));
  if (!r) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return std::nullopt;
  }
  if (!r->ok()) {
    *ctx.err << serverErrorLine(*r) << "\n";
    return std::nullopt;
  }
  return r->body;
}

// ReplicaSets controlled by `deployment` (by uid), sorted by revision.
Result<std::vector<json>> ownedReplicaSets(Context& ctx, const json& deployment) {
  const api::KindInfo* rsKind = api::findByApiVersionKind("apps/v1", "ReplicaSet");
  std::string uid = stringAt(deployment, {"metadata", "uid"});
  auto r = ctx.api->call("GET", resourcePath(*rsKind, ctx.ns));
  if (!r) return r.status();
  if (!r->ok()) return Status(Code::kUnavailable, serverErrorLine(*r));
  std::vector<json> out;
  if (const json* items = jsonAt(r->body, {"items"}); items && items->is_array()) {
    for (const auto& rs : *items) {
      const json* refs = jsonAt(rs, {"metadata", "ownerReferences"});
      if (refs == nullptr || !refs->is_array()) continue;
      for (const auto& ref : *refs) {
        const json* controller = jsonAt(ref, {"controller"});
        if (controller != nullptr && *controller == true && stringAt(ref, {"uid"}) == uid) {
          out.push_back(rs);
          break;
        }
      }
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const json& a, const json& b) { return revisionOf(a) < revisionOf(b); });
  return out;
}

int rolloutStatus(Context& ctx, const RolloutOptions& options, const Target& t) {
  auto sleep = options.sleep ? options.sleep
                             : [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  auto start = ctx.clock->steadyNow();
  std::string last;
  for (;;) {
    auto d = fetch(ctx, *t.kind, t.name);
    if (!d) return 1;
    RolloutState st = deploymentRolloutState(*d);
    if (st.failed) {
      *ctx.err << st.message;
      return 1;
    }
    if (st.message != last || st.done) *ctx.out << st.message;
    ctx.out->flush();
    last = st.message;
    if (st.done || !options.watch) return 0;
    if (options.timeout.count() > 0 && ctx.clock->steadyNow() - start >= options.timeout) {
      *ctx.err << "error: timed out waiting for the condition\n";
      return 1;
    }
    sleep(options.pollInterval);
  }
}

int rolloutHistory(Context& ctx, const Target& t) {
  auto d = fetch(ctx, *t.kind, t.name);
  if (!d) return 1;
  auto sets = ownedReplicaSets(ctx, *d);
  if (!sets) {
    *ctx.err << "error: " << sets.status().message() << "\n";
    return 1;
  }
  std::map<int64_t, std::string> history;
  for (const auto& rs : *sets) {
    int64_t rev = revisionOf(rs);
    if (rev <= 0) continue;
    std::string cause = stringAt(rs, {"metadata", "annotations", kChangeCause});
    history[rev] = cause.empty() ? "<none>" : cause;
  }
  *ctx.out << kindDisplayName(*t.kind) << "/" << t.name << " \n";
  if (history.empty()) {
    *ctx.out << "No rollout history found.\n";
    return 0;
  }
  size_t width = std::string("REVISION").size();
  *ctx.out << "REVISION  CHANGE-CAUSE\n";
  for (const auto& [rev, cause] : history) {
    std::string r = std::to_string(rev);
    *ctx.out << r << std::string(width - std::min(width, r.size()) + 2, ' ') << cause << "\n";
  }
  *ctx.out << "\n";
  return 0;
}

json withoutHashLabel(json tmpl) {
  if (json* labels =
          tmpl.is_object() && tmpl.contains("metadata") && tmpl["metadata"].is_object()
              ? (tmpl["metadata"].contains("labels") ? &tmpl["metadata"]["labels"] : nullptr)
              : nullptr;
      labels != nullptr && labels->is_object()) {
    labels->erase("pod-template-hash");
  }
  return tmpl;
}

int rolloutUndo(Context& ctx, const RolloutOptions& options, const Target& t) {
  auto d = fetch(ctx, *t.kind, t.name);
  if (!d) return 1;
  auto sets = ownedReplicaSets(ctx, *d);
  if (!sets) {
    *ctx.err << "error: " << sets.status().message() << "\n";
    return 1;
  }
  std::string display = kindDisplayName(*t.kind) + "/" + t.name;
  const json* target = nullptr;
  if (options.toRevision > 0) {
    for (const auto& rs : *sets) {
      if (revisionOf(rs) == options.toRevision) target = &rs;
    }
    if (target == nullptr) {
      *ctx.err << "error: unable to find specified revision " << options.toRevision
               << " in history\n";
      return 1;
    }
  } else {
    // The previous revision: the highest one below the current (highest) revision.
    int64_t current = 0;
    for (const auto& rs : *sets) current = std::max(current, revisionOf(rs));
    for (const auto& rs : *sets) {
      int64_t rev = revisionOf(rs);
      if (rev > 0 && rev < current && (target == nullptr || rev > revisionOf(*target))) {
        target = &rs;
      }
    }
    if (target == nullptr) {
      *ctx.err << "error: no rollout history found for " << t.kind->singular << " \"" << t.name
               << "\"\n";
      return 1;
    }
  }
  json current = jsonAt(*d, {"spec", "template"}) ? (*d)["spec"]["template"] : json::object();
  const json* tmplPtr = jsonAt(*target, {"spec", "template"});
  json wanted = tmplPtr ? withoutHashLabel(*tmplPtr) : json::object();
  if (wanted == current) {
    *ctx.out << display << " skipped rollback (current template already matches revision "
             << revisionOf(*target) << ")\n";
    return 0;
  }
  json patch = {{"spec", {{"template", threeWayMergePatch(current, wanted, current)}}}};
  std::string cause = stringAt(*target, {"metadata", "annotations", kChangeCause});
  patch["metadata"]["annotations"][kChangeCause] = cause.empty() ? json(nullptr) : json(cause);
  auto r = ctx.api->call("PATCH", resourcePath(*t.kind, ctx.ns, t.name), &patch, kMergePatch);
  if (!r) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return 1;
  }
  if (!r->ok()) {
    *ctx.err << serverErrorLine(*r) << "\n";
    return 1;
  }
  *ctx.out << display << " rolled back\n";
  return 0;
}

}  // namespace

RolloutState deploymentRolloutState(const json& d) {
  RolloutState st;
  std::string name = stringAt(d, {"metadata", "name"});
  int64_t generation = intOf(d, {"metadata", "generation"});
  int64_t observed = intOf(d, {"status", "observedGeneration"});
  if (generation > observed) {
    st.message = "Waiting for deployment spec update to be observed...\n";
    return st;
  }
  if (const json* conds = jsonAt(d, {"status", "conditions"}); conds && conds->is_array()) {
    for (const auto& c : *conds) {
      if (stringAt(c, {"type"}) == "Progressing" &&
          stringAt(c, {"reason"}) == "ProgressDeadlineExceeded") {
        st.message = "error: deployment \"" + name + "\" exceeded its progress deadline\n";
        st.done = st.failed = true;
        return st;
      }
    }
  }
  int64_t replicas = intOf(d, {"spec", "replicas"}, 1);
  int64_t updated = intOf(d, {"status", "updatedReplicas"});
  int64_t total = intOf(d, {"status", "replicas"});
  int64_t available = intOf(d, {"status", "availableReplicas"});
  std::string prefix = "Waiting for deployment \"" + name + "\" rollout to finish: ";
  if (updated < replicas) {
    st.message = prefix + std::to_string(updated) + " out of " + std::to_string(replicas) +
                 " new replicas have been updated...\n";
  } else if (total > updated) {
    st.message =
        prefix + std::to_string(total - updated) + " old replicas are pending termination...\n";
  } else if (available < updated) {
    st.message = prefix + std::to_string(available) + " of " + std::to_string(updated) +
                 " updated replicas are available...\n";
  } else {
    st.message = "deployment \"" + name + "\" successfully rolled out\n";
    st.done = true;
  }
  return st;
}

int runRollout(Context& ctx, const RolloutOptions& options) {
  static const std::vector<std::string> kActions = {"status", "history", "undo"};
  if (std::find(kActions.begin(), kActions.end(), options.action) == kActions.end()) {
    *ctx.err << "error: unknown rollout command \"" << options.action
             << "\" (status, history, undo)\n";
    return 1;
  }
  auto t = parseTarget(options.args, {"Deployment"}, "rollout " + options.action);
  if (!t) {
    *ctx.err << "error: " << t.status().message() << "\n";
    return 1;
  }
  if (options.action == "status") return rolloutStatus(ctx, options, *t);
  if (options.action == "history") return rolloutHistory(ctx, *t);
  return rolloutUndo(ctx, options, *t);
}

int runScale(Context& ctx, const ScaleOptions& options) {
  if (options.replicas < 0) {
    *ctx.err << "error: The --replicas=COUNT flag is required, and COUNT must be greater than or "
                "equal to 0\n";
    return 1;
  }
  auto t = parseTarget(options.args, {"Deployment", "ReplicaSet"}, "scale");
  if (!t) {
    *ctx.err << "error: " << t.status().message() << "\n";
    return 1;
  }
  json patch = {{"spec", {{"replicas", options.replicas}}}};
  auto r = ctx.api->call("PATCH", resourcePath(*t->kind, ctx.ns, t->name), &patch, kMergePatch);
  if (!r) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return 1;
  }
  if (!r->ok()) {
    *ctx.err << serverErrorLine(*r) << "\n";
    return 1;
  }
  *ctx.out << kindDisplayName(*t->kind) << "/" << t->name << " scaled\n";
  return 0;
}

}  // namespace ep::edgectl
