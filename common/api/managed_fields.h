#pragma once

// Field ownership (metadata.managedFields) and server-side apply, as the apiserver keeps them.
//
// A field set is Kubernetes' FieldsV1 JSON: "f:<field>" for a field of an object, "k:<json>"
// for the element of a keyed list (containers by name, ports by containerPort and protocol,
// ...), "v:<json>" for a value of a set list (finalizers), and "." marking that a node with
// children is itself owned. Owned ("member") paths here are: scalars, atomic lists, empty
// objects, keyed list elements and set values; a non-empty object is owned only through its
// fields. apiVersion, kind, status and the metadata the server controls (name, namespace, uid,
// resourceVersion, generation, creationTimestamp, deletion*, managedFields, selfLink) are never
// in a set.
//
// All functions are pure, thread-safe and never throw; inputs nested deeper than the request
// limits (512) were refused before they get here.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::api {

// The FieldsV1 set of the fields `object` sets. `builtin`: a Kubernetes kind, whose lists of
// objects are keyed by the strategic-merge keys (patch.h) and whose finalizers are a set; other
// kinds' lists are atomic, as for a CRD without list annotations.
nlohmann::json fieldSetOf(const nlohmann::json& object, bool builtin);

// Whether a managedFields value is usable: a list of objects, each with a non-empty string
// manager, operation Apply or Update, fieldsType FieldsV1 (when set) and an object fieldsV1.
bool validManagedFields(const nlohmann::json& managedFields);

struct ManagerInfo {
  std::string manager;     // the fieldManager
  std::string apiVersion;  // the object's apiVersion
  std::string time;        // RFC 3339, when the entry changes
};

// managedFields after a write that is not an apply (create, update, patch) by `who`: the fields
// whose value the write changed or added move to who's Update entry (removed from every other
// entry), fields the write removed leave every entry, entries left empty are dropped. `before`
// is null on create. Returns `managed` itself when nothing changed hands.
nlohmann::json recordUpdate(const nlohmann::json& managed, const nlohmann::json* before,
                            const nlohmann::json& after, const ManagerInfo& who, bool builtin);

// managedFields after a write by no manager (the platform's own writers): fields the object no
// longer has leave every entry, entries left empty are dropped. Returns `managed` itself when
// nothing changed.
nlohmann::json forgetRemovedFields(const nlohmann::json& managed, const nlohmann::json& after,
                                   bool builtin);

// Server-side apply of `config` (the applied configuration, an object) by `who` to `live` (the
// stored object, with its managedFields; an object without any is first owned by the
// "before-first-apply" manager, as the apiserver does). Returns the merged object with its new
// managedFields: the configuration merged into live (maps recursively, keyed lists by key,
// other lists replaced), then the fields who applied before and no longer applies removed unless
// another manager owns them. A field of the configuration whose value differs from live and
// that another manager owns is a conflict: kConflict with Kubernetes' message ("Apply failed
// with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas") and one
// FieldManagerConflict cause per field, unless `force`, which moves the fields to who.
// For manager "kubectl" (kubectl apply --server-side), as in the apiserver: fields that live's
// kubectl.kubernetes.io/last-applied-configuration names are handed over from their managers
// instead of conflicting (moving from client-side apply), and that annotation is set to the
// new configuration. `config` must hold no directive keys ("$patch", ...): kBadRequest.
Result<nlohmann::json> applyConfiguration(const nlohmann::json& live, const nlohmann::json& config,
                                          const ManagerInfo& who, bool force, bool builtin);

// The managedFields of an object created by apply: one Apply entry owning config's fields.
nlohmann::json applyCreateManagedFields(const nlohmann::json& config, const ManagerInfo& who,
                                        bool builtin);

// A set's member paths in Kubernetes' notation, e.g. `.spec.template.spec.containers[name="a"]
// .image` (one string per member, sorted as the set's keys).
std::vector<std::string> fieldSetPaths(const nlohmann::json& set);

}  // namespace ep::api
