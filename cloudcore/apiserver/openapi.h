#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ep::apiserver {

// The OpenAPI documents kubectl reads: the schemas of every kind served, built from
// Kubernetes' own message shapes (common/api/k8s_schema.h) for the built-in kinds and from the
// object envelope for the KubeEdge and Sedna kinds (their spec and status are free-form
// objects here). Schemas carry types, formats, x-kubernetes-group-version-kind on each kind
// and the strategic-merge metadata (x-kubernetes-patch-merge-key / -strategy) that the
// server's strategic merge patch uses, so kubectl's client-side patches agree with it. No
// descriptions. Definition names are Kubernetes' ("io.k8s.api.core.v1.Pod").
//
// Every function builds its document once, on first use, and returns it from then on;
// thread-safe.

// /openapi/v2 as JSON (Swagger 2.0).
const nlohmann::json& openApiV2Json();

// /openapi/v2 as gnostic's openapi_v2.Document protobuf
// (application/com.github.proto-openapi.spec.v2@v1.0+protobuf), what kubectl's client-side
// validation downloads.
const std::string& openApiV2Protobuf();

// The OpenAPI v3 document of one group-version ("v1", "apps/v1"): paths whose operations name
// the kind and the fieldValidation and dryRun parameters (kubectl then validates on the
// server), and components.schemas with every schema the group-version's kinds reach. Null for
// a group-version not served.
const nlohmann::json& openApiV3GroupVersion(const std::string& groupVersion);

// /openapi/v3: the group-versions with their documents' URLs; each URL carries a hash of its
// document so clients' caches see changes.
const nlohmann::json& openApiV3Root();

}  // namespace ep::apiserver
