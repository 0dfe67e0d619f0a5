#include "edgectl/expose.h"

#include <charconv>
#include <ostream>

#include "edgectl/api_client.h"
#include "edgectl/create.h"
#include "edgectl/paths.h"
#include "edgectl/resource_args.h"

namespace ep::edgectl {

using nlohmann::json;

namespace {

bool parsePort(const std::string& s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 1 && out <= 65535;
}

// A target port as the API wants it: a number, or a container port's name.
json targetPortValue(const std::string& s) {
  int n = 0;
  if (parsePort(s, n)) return n;
  return s;
}

// The pod template's (or pod's) containers' ports, in order.
std::vector<json> containerPorts(const json& object, const std::string& kind) {
  const json* spec =
      kind == "Pod" ? jsonAt(object, {"spec"}) : jsonAt(object, {"spec", "template", "spec"});
  std::vector<json> out;
  const json* containers = spec != nullptr ? jsonAt(*spec, {"containers"}) : nullptr;
  if (containers == nullptr || !containers->is_array()) return out;
  for (const auto& c : *containers) {
    const json* ports = jsonAt(c, {"ports"});
    if (ports == nullptr || !ports->is_array()) continue;
    for (const auto& p : *ports) out.push_back(p);
  }
  return out;
}

}  // namespace

namespace {

Result<json> buildService(const json& object, const std::string& ns, const ExposeOptions& options) {
  const std::string kind = stringAt(object, {"kind"});
  const std::string objName = stringAt(object, {"metadata", "name"});
  // The selector: --selector, else the object's.
  json selector = json::object();
  if (!options.selector.empty()) {
    size_t start = 0;
    while (start <= options.selector.size()) {
      size_t comma = options.selector.find(',', start);
      std::string pair = options.selector.substr(
          start, comma == std::string::npos ? std::string::npos : comma - start);
      auto eq = pair.find('=');
      if (eq == std::string::npos || eq == 0) {
        return invalidError("invalid selector \"" + options.selector +
                            "\": expected KEY=VALUE[,KEY=VALUE]");
      }
      selector[pair.substr(0, eq)] = pair.substr(eq + 1);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else if (kind == "Deployment" || kind == "ReplicaSet") {
    if (const json* expr = jsonAt(object, {"spec", "selector", "matchExpressions"});
        expr != nullptr && expr->is_array() && !expr->empty()) {
      return invalidError("couldn't retrieve selectors via --selector flag or introspection: " +
                          kind + " " + objName +
                          " selects with matchExpressions, which a Service cannot; give "
                          "--selector");
    }
    if (const json* m = jsonAt(object, {"spec", "selector", "matchLabels"});
        m != nullptr && m->is_object()) {
      selector = *m;
    }
  } else if (kind == "Pod") {
    if (const json* l = jsonAt(object, {"metadata", "labels"}); l != nullptr && l->is_object()) {
      selector = *l;
    }
  } else if (kind == "Service") {
    if (const json* s = jsonAt(object, {"spec", "selector"}); s != nullptr && s->is_object()) {
      selector = *s;
    }
  } else {
    return invalidError("cannot expose a " + kind);
  }
  if (selector.empty()) {
    return invalidError("couldn't retrieve selectors via --selector flag or introspection");
  }

  const std::string protocol = options.protocol.empty() ? "TCP" : options.protocol;
  json ports = json::array();
  if (!options.port.empty()) {
    int port = 0;
    if (!parsePort(options.port, port)) {
      return invalidError("invalid --port \"" + options.port + "\": must be 1-65535");
    }
    json p = {{"port", port}, {"protocol", protocol}};
    p["targetPort"] = options.targetPort.empty() ? json(port) : targetPortValue(options.targetPort);
    ports.push_back(p);
  } else {
    // Introspection, as kubectl: every port of the object (its containers', or a Service's).
    std::vector<json> found;
    if (kind == "Service") {
      if (const json* sp = jsonAt(object, {"spec", "ports"}); sp != nullptr && sp->is_array()) {
        for (const auto& p : *sp)
          found.push_back(
              {{"containerPort", p.value("port", 0)}, {"protocol", p.value("protocol", "TCP")}});
      }
    } else {
      found = containerPorts(object, kind);
    }
    for (size_t i = 0; i < found.size(); ++i) {
      int port = found[i].value("containerPort", 0);
      if (port <= 0) continue;
      json p = {
          {"port", port},
          {"protocol", options.protocol.empty() ? found[i].value("protocol", "TCP") : protocol}};
      p["targetPort"] =
          options.targetPort.empty() ? json(port) : targetPortValue(options.targetPort);
      if (found.size() > 1) p["name"] = "port-" + std::to_string(i + 1);
      ports.push_back(p);
    }
    if (ports.empty()) {
      return invalidError("couldn't find port via --port flag or introspection");
    }
  }
  json labels = json::object();
  if (const json* l = jsonAt(object, {"metadata", "labels"}); l != nullptr && l->is_object()) {
    labels = *l;
  }
  json spec = {{"selector", selector}, {"ports", ports}};
  if (!options.type.empty()) spec["type"] = options.type;
  if (!options.clusterIp.empty()) spec["clusterIP"] = options.clusterIp;
  json meta = {{"name", options.name.empty() ? objName : options.name}, {"namespace", ns}};
  if (!labels.empty()) meta["labels"] = labels;
  return json{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", meta}, {"spec", spec}};
}

}  // namespace

Result<json> exposeService(const json& object, const std::string& ns,
                           const ExposeOptions& options) {
  try {
    return buildService(object, ns, options);
  } catch (const json::exception& e) {  // a field of an unexpected type in the server's object
    return invalidError(std::string("cannot read the object to expose: ") + e.what());
  }
}

int runExpose(Context& ctx, const ExposeOptions& options) {
  std::string kindText, name;
  const auto& a = options.args;
  if (a.size() == 1 && a[0].find('/') != std::string::npos) {
    kindText = a[0].substr(0, a[0].find('/'));
    name = a[0].substr(a[0].find('/') + 1);
  } else if (a.size() == 2) {
    kindText = a[0];
    name = a[1];
  } else {
    *ctx.err << "error: expected exactly one resource (TYPE/NAME or TYPE NAME)\n";
    return 1;
  }
  if (!checkGeneratorFlags(ctx, options.dryRun, options.output)) return 1;
  const api::KindInfo* kind = api::findByUserName(kindText);
  if (kind == nullptr) {
    *ctx.err << "error: the server doesn't have a resource type \"" << kindText << "\"\n";
    return 1;
  }
  if (kind->kind != "Deployment" && kind->kind != "ReplicaSet" && kind->kind != "Pod" &&
      kind->kind != "Service") {
    *ctx.err << "error: cannot expose a " << kind->kind << "\n";
    return 1;
  }
  auto got = ctx.api->call("GET", resourcePath(*kind, ctx.ns, name));
  if (!got || !got->ok()) {
    *ctx.err << (got ? serverErrorLine(*got) : "error: " + got.status().message()) << "\n";
    return 1;
  }
  auto svc = exposeService(got->body, ctx.ns, options);
  if (!svc) {
    *ctx.err << "error: " << svc.status().message() << "\n";
    return 1;
  }
  return postAndPrint(ctx, "/api/v1/namespaces/" + percentEncode(ctx.ns) + "/services", *svc,
                      "service", "exposed", options.dryRun, options.output);
}

}  // namespace ep::edgectl
