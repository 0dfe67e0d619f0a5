#pragma once

// The client side of `apply`: the last-applied annotation and the three-way JSON merge patch
// (RFC 7386) computed from it. Pure functions; thread-safe.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ep::edgectl {

inline constexpr std::string_view kLastAppliedAnnotation =
    "kubectl.kubernetes.io/last-applied-configuration";

// Applies an RFC 7386 merge patch to `target` in place: object members merge recursively, null
// removes a member, anything else (including arrays) replaces.
void applyMergePatch(nlohmann::json& target, const nlohmann::json& patch);

// Three-way merge patch that turns `current` (the live object) into one that matches `modified`
// (the new manifest) while deleting what the user removed since `original` (the last applied
// manifest):
//  - members of `original` absent from `modified` -> null (deleted),
//  - members of `modified` missing from or different in `current` -> set (objects recurse,
//    arrays and scalars are replaced wholesale). Exception: an array equal to its `original`
//    value whose live counterpart has the same elements plus server-defaulted object members
//    (e.g. containers with imagePullPolicy filled in) is left alone,
//  - members only in `current` (server defaults, status) are left alone.
// Returns an object, empty when nothing needs to change.
nlohmann::json threeWayMergePatch(const nlohmann::json& original, const nlohmann::json& modified,
                                  const nlohmann::json& current);

// Compact JSON of `manifest` without the last-applied annotation (and without an annotations map
// left empty by removing it), plus a final newline as kubectl writes it: the value the
// annotation stores.
std::string lastAppliedConfig(const nlohmann::json& manifest);

// `manifest` with the last-applied annotation set to lastAppliedConfig(manifest).
nlohmann::json withLastApplied(const nlohmann::json& manifest);

struct ApplyPlan {
  nlohmann::json patch;        // merge patch to send; always sets the new annotation
  bool unchanged = false;      // applying `patch` to the live object changes nothing
  bool hadLastApplied = true;  // the live object carried a parsable annotation
};

// Plans `apply` of `manifest` (without annotation) onto the existing `live` object.
ApplyPlan planApply(const nlohmann::json& manifest, const nlohmann::json& live);

}  // namespace ep::edgectl
