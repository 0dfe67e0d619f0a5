#include <nlohmann/json.hpp>

#include "cloudcore/certs/cluster_pki.h"
#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "common/kubeconfig/kubeconfig.h"

namespace ep::certs {

Status publishClusterInfo(registry::Registry& registry, const ClusterPki& pki,
                          const std::string& apiServerUrl) {
  using Json = nlohmann::json;
  const api::KindInfo& kind = *api::findByApiVersionKind("v1", "ConfigMap");
  kubeconfig::RenderInput in;
  in.server = apiServerUrl;
  in.caPem = pki.ca.certPem;
  in.userName = "";
  Json data = {{"ca.crt", pki.ca.certPem}, {"kubeconfig", kubeconfig::render(in)}};
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto current = registry.get(kind, "kube-public", "cluster-info");
    if (!current) {
      if (current.status().code() != Code::kNotFound) return current.status();
      Json obj = {{"apiVersion", "v1"},
                  {"kind", "ConfigMap"},
                  {"metadata", {{"name", "cluster-info"}, {"namespace", "kube-public"}}},
                  {"data", data}};
      auto created = registry.create(kind, "kube-public", obj);
      if (created || created.status().code() != Code::kAlreadyExists) return created.status();
      continue;
    }
    if (current->value("data", Json::object()) == data) return Status::ok();
    Json next = *current;
    next["data"] = data;
    auto updated = registry.update(kind, "kube-public", "cluster-info", next);
    if (updated || updated.status().code() != Code::kConflict) return updated.status();
  }
  return unavailableError("cluster-info: too many concurrent updates");
}

}  // namespace ep::certs
