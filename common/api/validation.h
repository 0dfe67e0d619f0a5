#pragma once

#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "common/api/field_error.h"
#include "common/api/kinds.h"

namespace ep::api {

// Server-side validation of objects held as JSON, in the Kubernetes style: every problem found
// is reported (not only the first), each with its field path, cause type and message, e.g.
//   spec.containers[0].image: Required value
//   metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of ...
//   spec.replicas: Invalid value: "three": must be an integer
// A wrong JSON type is always FieldValueTypeInvalid naming the path. Unknown fields are ignored
// (Kubernetes drops them). An object nested deeper than 512 levels yields a single error and is
// not examined further. Pure functions, thread-safe, never throw.
//
// Expectations on the caller (as in the Kubernetes API server): metadata.name is already set
// (generateName expanded), defaults are applied, and Secret stringData may still be present.
// metadata.namespace is only checked for type and syntax; its presence and consistency with the
// request path are the caller's business.
//
// Per kind (see kinds.cc): metadata (name, namespace, labels, annotations <= 256 KiB,
// finalizers, ownerReferences) for all kinds; Pod spec (containers, init containers, env,
// ports, volumes and mounts, resources, probes, tolerations, policies); Deployment and
// ReplicaSet (replicas, selector matching the template labels, strategy, template as a pod
// spec); ConfigMap and Secret (keys, base64, size <= 1 MiB, type-specific keys); Event
// (involvedObject); Node (taints); DeviceModel and Device (devices.kubeedge.io/v1beta1);
// RuleEndpoint and Rule (rules.kubeedge.io/v1); Model (sedna.io/v1alpha1).
std::vector<FieldError> validateObject(const KindInfo& kind, const nlohmann::json& obj);

// The update rules only (callers also run validateObject(kind, newObj)): Pod spec is immutable
// except
// spec.containers[*].image, spec.initContainers[*].image, spec.activeDeadlineSeconds (set, or
// lowered), spec.tolerations (additions only) and spec.nodeName (from empty to a value, i.e.
// binding); Deployment/ReplicaSet spec.selector is immutable; a ConfigMap/Secret with
// immutable: true keeps its data (and stays immutable); Secret type is immutable. Fields set to
// null compare equal to absent ones. metadata.name/namespace/uid/resourceVersion checks are the
// caller's.
std::vector<FieldError> validateUpdate(const KindInfo& kind, const nlohmann::json& oldObj,
                                       const nlohmann::json& newObj);

}  // namespace ep::api
