#include "edgectl/delete.h"

#include <ostream>
#include <thread>

#include "edgectl/manifest.h"
#include "edgectl/paths.h"
#include "edgectl/resource_args.h"

namespace ep::edgectl {

using nlohmann::json;

namespace {

struct Target {
  const api::KindInfo* kind = nullptr;
  std::string ns;
  std::string name;
};

Result<std::string> propagationPolicy(const std::string& cascade) {
  if (cascade == "background" || cascade == "true") return std::string("Background");
  if (cascade == "foreground") return std::string("Foreground");
  if (cascade == "orphan" || cascade == "false") return std::string("Orphan");
  return badRequestError("invalid cascade value (" + cascade +
                         "). Must be \"background\", \"foreground\", or \"orphan\"");
}

}  // namespace

int runDelete(Context& ctx, const DeleteOptions& options) {
  std::ostream& out = *ctx.out;
  std::ostream& err = *ctx.err;
  auto policy = propagationPolicy(options.cascade);
  if (!policy) {
    err << "error: " << policy.status().message() << "\n";
    return 1;
  }
  int rc = 0;
  std::vector<Target> targets;
  if (!options.files.empty()) {
    if (!options.args.empty()) {
      err << "error: when paths, URLs, or stdin is provided as input, you may not specify "
             "resource arguments as well\n";
      return 1;
    }
    ManifestSet set = readManifests(options.files, options.recursive, *ctx.in);
    for (const auto& e : set.errors) {
      err << "error: " << e << "\n";
      rc = 1;
    }
    for (const auto& doc : set.docs) {
      std::string where = doc.source + " (document " + std::to_string(doc.index) + ")";
      if (Status st = checkManifestObject(doc.object); !st.isOk()) {
        err << "error: " << where << ": " << st.message() << "\n";
        rc = 1;
        continue;
      }
      std::string apiVersion = doc.object["apiVersion"].get<std::string>();
      std::string kindName = doc.object["kind"].get<std::string>();
      const api::KindInfo* kind = api::findByApiVersionKind(apiVersion, kindName);
      if (!kind) {
        err << "error: " << where << ": no matches for kind \"" << kindName << "\" in version \""
            << apiVersion << "\"\n";
        rc = 1;
        continue;
      }
      std::string ns = stringAt(doc.object, {"metadata", "namespace"});
      if (ns.empty()) ns = ctx.ns;
      targets.push_back(
          Target{kind, effectiveNamespace(*kind, ns), stringAt(doc.object, {"metadata", "name"})});
    }
  } else {
    auto refs = parseResourceArgs(options.args, "delete");
    if (!refs) {
      err << "error: " << refs.status().message() << "\n";
      return 1;
    }
    for (const auto& ref : *refs) {
      const api::KindInfo& kind = *ref.kind;
      if (!ref.names.empty()) {
        if (options.all || !options.labelSelector.empty()) {
          err << "error: name cannot be provided when a selector or --all is specified\n";
          return 1;
        }
        for (const auto& n : ref.names) {
          targets.push_back(Target{&kind, effectiveNamespace(kind, ctx.ns), n});
        }
        continue;
      }
      if (!options.all && options.labelSelector.empty()) {
        err << "error: resource(s) were provided, but no name was specified\n";
        return 1;
      }
      std::string listNs = kind.namespaced && !ctx.allNamespaces ? ctx.ns : "";
      auto r = ctx.api->call("GET", resourcePath(kind, listNs) +
                                        buildQuery({{"labelSelector", options.labelSelector}}));
      if (!r) {
        err << "error: " << r.status().message() << "\n";
        return 1;
      }
      if (!r->ok()) {
        err << serverErrorLine(*r) << "\n";
        rc = 1;
        continue;
      }
      const json* items = jsonAt(r->body, {"items"});
      size_t before = targets.size();
      if (items && items->is_array()) {
        for (const auto& item : *items) {
          targets.push_back(Target{&kind, stringAt(item, {"metadata", "namespace"}),
                                   stringAt(item, {"metadata", "name"})});
        }
      }
      if (targets.size() == before) {
        err << noResourcesMessage(kind.namespaced, ctx.allNamespaces, ctx.ns) << "\n";
      }
    }
  }

  json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", *policy}};
  if (options.gracePeriod >= 0) body["gracePeriodSeconds"] = options.gracePeriod;
  std::vector<Target> deleted;
  for (const auto& t : targets) {
    auto r = ctx.api->call("DELETE", resourcePath(*t.kind, t.ns, t.name), &body);
    if (!r) {
      err << "error: " << r.status().message() << "\n";
      return 1;
    }
    if (r->status == 404 && options.ignoreNotFound) continue;
    if (!r->ok()) {
      err << serverErrorLine(*r) << "\n";
      rc = 1;
      continue;
    }
    out << kindDisplayName(*t.kind) << " \"" << t.name << "\" deleted\n";
    out.flush();
    deleted.push_back(t);
  }

  if (options.wait && !deleted.empty()) {
    auto deadline = ctx.clock->steadyNow() + options.waitTimeout;
    for (const auto& t : deleted) {
      while (true) {
        auto r = ctx.api->call("GET", resourcePath(*t.kind, t.ns, t.name));
        if (!r) {
          err << "error: " << r.status().message() << "\n";
          return 1;
        }
        if (r->status == 404) break;
        if (ctx.clock->steadyNow() >= deadline) {
          err << "error: timed out waiting for the condition on " << t.kind->resource() << "/"
              << t.name << "\n";
          rc = 1;
          break;
        }
        std::this_thread::sleep_for(options.pollInterval);
      }
    }
  }
  return rc;
}

}  // namespace ep::edgectl
