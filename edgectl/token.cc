#include "edgectl/token.h"

#include <iomanip>
#include <ostream>

#include "common/api/base64.h"
#include "common/api/bootstrap_token.h"
#include "common/clock.h"
#include "common/pki/join_token.h"
#include "common/pki/pki.h"
#include "edgectl/printer.h"

namespace ep::edgectl {

using Json = nlohmann::json;

namespace {

constexpr const char* kSecrets = "/api/v1/namespaces/kube-system/secrets";

std::string dataValue(const Json& secret, const char* key) {
  const Json* data =
      secret.contains("data") && secret["data"].is_object() ? &secret["data"] : nullptr;
  if (!data || !data->contains(key) || !(*data)[key].is_string()) return {};
  auto v = api::base64Decode((*data)[key].get<std::string>());
  return v ? *v : std::string();
}

std::string serverError(const ApiResponse& r) {
  if (r.body.is_object() && r.body.contains("message") && r.body["message"].is_string()) {
    return r.body["message"].get<std::string>();
  }
  return "the server answered " + std::to_string(r.status);
}

// The cluster CA: what cloudcore publishes in kube-public/cluster-info, else the kubeconfig's.
Result<std::string> clusterCa(Context& ctx, const TokenOptions& o) {
  auto r = ctx.api->call("GET", "/api/v1/namespaces/kube-public/configmaps/cluster-info");
  if (!r) return r.status();
  if (r->ok() && r->body.is_object() && r->body.contains("data") && r->body["data"].is_object() &&
      r->body["data"].contains("ca.crt") && r->body["data"]["ca.crt"].is_string()) {
    return r->body["data"]["ca.crt"].get<std::string>();
  }
  if (!o.kubeconfigCaPem.empty()) return o.kubeconfigCaPem;
  return invalidError(
      "cannot find the cluster CA: kube-public/cluster-info is not readable and the kubeconfig "
      "has no certificate-authority");
}

int create(Context& ctx, const TokenOptions& o) {
  auto ca = clusterCa(ctx, o);
  if (!ca) {
    *ctx.err << "error: " << ca.status().message() << "\n";
    return 1;
  }
  auto hash = pki::publicKeyHash(*ca);
  if (!hash) {
    *ctx.err << "error: the cluster CA: " << hash.status().message() << "\n";
    return 1;
  }
  auto id = pki::randomToken(6);
  auto secret = pki::randomToken(16);
  if (!id || !secret) {
    *ctx.err << "error: cannot generate a token\n";
    return 1;
  }
  if (o.usages < 0) {
    *ctx.err << "error: --usages must not be negative\n";
    return 1;
  }
  Json body = api::bootstrapTokenSecret(
      {.id = *id,
       .secret = *secret,
       .description = o.description,
       .expiration = o.ttl.count() > 0 ? formatRfc3339(ctx.clock->nowMillis() + o.ttl.count()) : "",
       .usages = o.usages});
  auto r = ctx.api->call("POST", kSecrets, &body);
  if (!r) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return 1;
  }
  if (!r->ok()) {
    *ctx.err << "error: " << serverError(*r) << "\n";
    return 1;
  }
  pki::JoinToken token{*id, *secret, *hash};
  *ctx.out << token.toString() << "\n";
  return 0;
}

int list(Context& ctx, const TokenOptions& o) {
  auto r = ctx.api->call("GET", kSecrets);
  if (!r) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return 1;
  }
  if (!r->ok()) {
    *ctx.err << "error: " << serverError(*r) << "\n";
    return 1;
  }
  std::vector<std::vector<std::string>> rows;
  if (!o.noHeaders) rows.push_back({"TOKEN", "TTL", "EXPIRES", "USES LEFT", "DESCRIPTION"});
  const int64_t now = ctx.clock->nowMillis();
  for (const auto& s : r->body.value("items", Json::array())) {
    if (!s.is_object() || s.value("type", "") != "bootstrap.kubernetes.io/token") continue;
    std::string id = dataValue(s, "token-id");
    std::string exp = dataValue(s, "expiration");
    std::string ttl = "<forever>";
    std::string expires = "<never>";
    if (!exp.empty()) {
      expires = exp;
      int64_t at = parseRfc3339(exp);
      ttl = at < 0 ? "<invalid>" : at <= now ? "<expired>" : formatAge(at - now);
    }
    std::string left = dataValue(s, "usages-remaining");
    rows.push_back({id + "." + dataValue(s, "token-secret"), ttl, expires,
                    left.empty() ? "<unlimited>" : left, dataValue(s, "description")});
  }
  if (rows.size() == (o.noHeaders ? 0u : 1u)) {
    *ctx.err << "No bootstrap tokens found.\n";
    return 0;
  }
  std::string text;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) text += row[i] + (i + 1 < row.size() ? "\t" : "\n");
  }
  *ctx.out << formatTabbed(text, 0, 3);
  return 0;
}

int remove(Context& ctx, const TokenOptions& o) {
  if (o.args.empty()) {
    *ctx.err << "error: expected a token ID: edgectl token delete ID\n";
    return 1;
  }
  int rc = 0;
  for (const auto& arg : o.args) {
    std::string id = arg.substr(0, arg.find('.'));
    if (id.size() != 6) {
      *ctx.err << "error: \"" << arg << "\" is not a token ID (6 characters of [a-z0-9])\n";
      rc = 1;
      continue;
    }
    auto r =
        ctx.api->call("DELETE", std::string(kSecrets) + "/" + pki::bootstrapTokenSecretName(id));
    if (!r) {
      *ctx.err << "error: " << r.status().message() << "\n";
      return 1;
    }
    if (r->status == 404) {
      *ctx.err << "error: bootstrap token \"" << id << "\" not found\n";
      rc = 1;
    } else if (!r->ok()) {
      *ctx.err << "error: " << serverError(*r) << "\n";
      rc = 1;
    } else {
      *ctx.out << "bootstrap token \"" << id << "\" deleted\n";
    }
  }
  return rc;
}

}  // namespace

int runToken(Context& ctx, const TokenOptions& o) {
  if (o.action == "create") return create(ctx, o);
  if (o.action == "list") return list(ctx, o);
  if (o.action == "delete") return remove(ctx, o);
  *ctx.err << "error: unknown token command \"" << o.action << "\": use create, list or delete\n";
  return 1;
}

}  // namespace ep::edgectl
