#include "edgectl/create.h"

#include <ostream>

#include "common/api/base64.h"
#include "common/yaml/yaml.h"
#include "edgectl/api_client.h"
#include "edgectl/paths.h"
#include "edgectl/resource_args.h"

namespace ep::edgectl {

using nlohmann::json;

namespace {

constexpr std::string_view kStrategicMergePatch = "application/strategic-merge-patch+json";

// Prints the failed call's error the way kubectl does and returns 1.
int reportFailure(Context& ctx, const Result<ApiResponse>& r) {
  if (!r) {
    *ctx.err << "error: " << r.status().message() << "\n";
  } else {
    *ctx.err << serverErrorLine(*r) << "\n";
  }
  return 1;
}

}  // namespace

bool checkGeneratorFlags(Context& ctx, const std::string& dry, const std::string& out) {
  if (!dry.empty() && dry != "none" && dry != "client" && dry != "server") {
    *ctx.err << "error: Invalid dry-run value (" << dry
             << "). Must be \"none\", \"server\", or \"client\".\n";
    return false;
  }
  if (!out.empty() && out != "json" && out != "yaml" && out != "name") {
    *ctx.err << "error: unable to match a printer suitable for the output format \"" << out
             << "\", allowed formats are: json,name,yaml\n";
    return false;
  }
  return true;
}

int postAndPrint(Context& ctx, const std::string& collectionPath, const json& object,
                 const std::string& resource, const std::string& verb, const std::string& dry,
                 const std::string& out) {
  json result = object;
  if (dry != "client") {
    std::string path = collectionPath + (dry == "server" ? "?dryRun=All" : "");
    auto r = ctx.api->call("POST", path, &object);
    if (!r || !r->ok()) return reportFailure(ctx, r);
    if (r->body.is_object()) result = r->body;
  }
  if (out == "json") {
    *ctx.out << result.dump(4) << "\n";
  } else if (out == "yaml") {
    *ctx.out << yaml::toYaml(result);
  } else {
    *ctx.out << resource << "/" << stringAt(result, {"metadata", "name"});
    if (out != "name") {
      *ctx.out << " " << verb
               << (dry == "client"   ? " (dry run)"
                   : dry == "server" ? " (server dry run)"
                                     : "");
    }
    *ctx.out << "\n";
  }
  return 0;
}

json dockerConfigJson(const std::string& server, const std::string& username,
                      const std::string& password, const std::string& email) {
  json entry = {{"username", username},
                {"password", password},
                {"auth", api::base64Encode(username + ":" + password)}};
  if (!email.empty()) entry["email"] = email;
  return {{"auths", {{server, entry}}}};
}

int runCreateSecret(Context& ctx, const CreateSecretOptions& options) {
  if (options.args.empty() || options.args[0] != "docker-registry") {
    *ctx.err << "error: only \"create secret docker-registry NAME\" is supported"
             << (options.args.empty() ? "" : " (got \"" + options.args[0] + "\")") << "\n";
    return 1;
  }
  if (options.args.size() != 2 || options.args[1].empty()) {
    *ctx.err << "error: exactly one NAME is required, got " << options.args.size() - 1 << "\n";
    return 1;
  }
  for (const auto& [flag, value] : {std::pair{"--docker-username", &options.dockerUsername},
                                    std::pair{"--docker-password", &options.dockerPassword},
                                    std::pair{"--docker-server", &options.dockerServer}}) {
    if (value->empty()) {
      *ctx.err << "error: required flag(s) \"" << flag << "\" not set\n";
      return 1;
    }
  }
  if (!checkGeneratorFlags(ctx, options.dryRun, options.output)) return 1;
  const std::string& name = options.args[1];
  json config = dockerConfigJson(options.dockerServer, options.dockerUsername,
                                 options.dockerPassword, options.dockerEmail);
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata", {{"name", name}, {"namespace", ctx.ns}}},
                 {"type", "kubernetes.io/dockerconfigjson"},
                 {"data", {{".dockerconfigjson", api::base64Encode(config.dump())}}}};
  return postAndPrint(ctx, "/api/v1/namespaces/" + percentEncode(ctx.ns) + "/secrets", secret,
                      "secret", "created", options.dryRun, options.output);
}

int runSetImage(Context& ctx, const SetImageOptions& options) {
  std::vector<std::string> resource;
  std::vector<std::pair<std::string, std::string>> images;
  for (const auto& a : options.args) {
    auto eq = a.find('=');
    if (eq == std::string::npos) {
      resource.push_back(a);
    } else if (eq == 0 || eq + 1 == a.size()) {
      *ctx.err << "error: invalid image update \"" << a << "\": CONTAINER=IMAGE expected\n";
      return 1;
    } else {
      images.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    }
  }
  if (images.empty()) {
    *ctx.err << "error: at least one image update is required (CONTAINER=IMAGE)\n";
    return 1;
  }
  std::string kindText, name;
  if (resource.size() == 1 && resource[0].find('/') != std::string::npos) {
    kindText = resource[0].substr(0, resource[0].find('/'));
    name = resource[0].substr(resource[0].find('/') + 1);
  } else if (resource.size() == 2) {
    kindText = resource[0];
    name = resource[1];
  } else {
    *ctx.err << "error: expected exactly one resource (TYPE/NAME or TYPE NAME)\n";
    return 1;
  }
  const api::KindInfo* kind = api::findByUserName(kindText);
  if (kind == nullptr) {
    *ctx.err << "error: the server doesn't have a resource type \"" << kindText << "\"\n";
    return 1;
  }
  const bool isPod = kind->kind == "Pod";
  if (!isPod && kind->kind != "Deployment" && kind->kind != "ReplicaSet") {
    *ctx.err << "error: no image support for " << kindDisplayName(*kind) << "/" << name << "\n";
    return 1;
  }
  if (name.empty()) {
    *ctx.err << "error: resource name may not be empty\n";
    return 1;
  }
  const std::string path = resourcePath(*kind, ctx.ns, name);
  auto got = ctx.api->call("GET", path);
  if (!got || !got->ok()) return reportFailure(ctx, got);
  const json* podSpec =
      isPod ? jsonAt(got->body, {"spec"}) : jsonAt(got->body, {"spec", "template", "spec"});
  if (podSpec == nullptr || !podSpec->is_object()) {
    *ctx.err << "error: " << kindDisplayName(*kind) << "/" << name << " has no pod spec\n";
    return 1;
  }
  // The patch lists only the containers whose image changes, keyed by name (strategic merge).
  json patchSpec = json::object();
  for (const auto& [container, image] : images) {
    bool found = false;
    for (const char* list : {"containers", "initContainers"}) {
      const json* cs = jsonAt(*podSpec, {list});
      if (cs == nullptr || !cs->is_array()) continue;
      for (const auto& c : *cs) {
        std::string cname = stringAt(c, {"name"});
        if (container != "*" && cname != container) continue;
        found = true;
        json& entries = patchSpec[list];
        if (!entries.is_array()) entries = json::array();
        // A container named twice (or by "*" and by name) gets the last image given, as kubectl.
        bool replaced = false;
        for (auto& e : entries) {
          if (e["name"] == cname) {
            e["image"] = image;
            replaced = true;
          }
        }
        if (!replaced) entries.push_back({{"name", cname}, {"image", image}});
      }
    }
    if (!found) {
      *ctx.err << "error: unable to find container named \"" << container << "\"\n";
      return 1;
    }
  }
  json patch =
      isPod ? json{{"spec", patchSpec}} : json{{"spec", {{"template", {{"spec", patchSpec}}}}}};
  auto r = ctx.api->call("PATCH", path, &patch, kStrategicMergePatch);
  if (!r || !r->ok()) return reportFailure(ctx, r);
  *ctx.out << kindDisplayName(*kind) << "/" << name << " image updated\n";
  return 0;
}

}  // namespace ep::edgectl
