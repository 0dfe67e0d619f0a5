#pragma once

// Resolving "KIND [NAME...]", "KIND/NAME..." and "KIND1,KIND2" command-line arguments against
// the kind registry, plus small JSON accessors shared by the commands. Pure; thread-safe.

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/api/kinds.h"
#include "common/status.h"

namespace ep::edgectl {

struct ResourceRef {
  const api::KindInfo* kind = nullptr;
  std::vector<std::string> names;  // empty: every object of the kind
};

// `verb` only shapes the "You must specify the type of resource to <verb>" message. Kinds keep
// the order of first mention; "all" expands to the kinds in that category.
Result<std::vector<ResourceRef>> parseResourceArgs(const std::vector<std::string>& args,
                                                   const std::string& verb);

// Null when a member along `keys` is missing.
const nlohmann::json* jsonAt(const nlohmann::json& v, std::initializer_list<const char*> keys);
// The string along `keys`, or "" when missing or not a string.
std::string stringAt(const nlohmann::json& v, std::initializer_list<const char*> keys);

// "No resources found in NS namespace." / "No resources found" (cluster-scoped or -A).
std::string noResourcesMessage(bool namespaced, bool allNamespaces, const std::string& ns);

}  // namespace ep::edgectl
