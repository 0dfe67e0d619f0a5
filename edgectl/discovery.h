#pragma once

// `edgectl api-resources` and `edgectl version`.

#include <string>

#include "edgectl/context.h"

namespace ep::edgectl {

struct ApiResourcesOptions {
  std::string output;            // "", "wide", "name"
  std::string namespacedFilter;  // "", "true", "false"
  std::string apiGroup;          // only this group ("" = core when apiGroupSet)
  bool apiGroupSet = false;
  bool noHeaders = false;
};

int runApiResources(Context& ctx, const ApiResourcesOptions& options);

struct VersionOptions {
  bool clientOnly = false;
  std::string output;  // "", "json", "yaml"
};

// The client's own version ("v0.1.0").
std::string clientVersion();

int runVersion(Context& ctx, const VersionOptions& options);

}  // namespace ep::edgectl
