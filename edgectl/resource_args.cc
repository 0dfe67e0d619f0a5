#include "edgectl/resource_args.h"

#include <algorithm>

namespace ep::edgectl {

using nlohmann::json;

namespace {

Result<std::vector<const api::KindInfo*>> resolveKinds(const std::string& text) {
  std::vector<const api::KindInfo*> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string one =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (one.empty()) continue;
    if (one == "all") {
      for (const auto& k : api::allKinds()) {
        if (std::find(k.categories.begin(), k.categories.end(), "all") != k.categories.end()) {
          out.push_back(&k);
        }
      }
      continue;
    }
    const api::KindInfo* k = api::findByUserName(one);
    if (!k) return notFoundError("the server doesn't have a resource type \"" + one + "\"");
    out.push_back(k);
  }
  return out;
}

void addRef(std::vector<ResourceRef>& refs, const api::KindInfo* kind,
            std::vector<std::string> names) {
  for (auto& r : refs) {
    if (r.kind == kind) {
      if (names.empty() || r.names.empty()) {
        r.names.clear();
      } else {
        for (auto& n : names) r.names.push_back(std::move(n));
      }
      return;
    }
  }
  refs.push_back(ResourceRef{kind, std::move(names)});
}

}  // namespace

Result<std::vector<ResourceRef>> parseResourceArgs(const std::vector<std::string>& args,
                                                   const std::string& verb) {
  if (args.empty()) {
    return badRequestError("You must specify the type of resource to " + verb +
                           ". Use \"edgectl api-resources\" for a complete list of supported "
                           "resources.");
  }
  std::vector<ResourceRef> refs;
  bool slashForm = args.front().find('/') != std::string::npos;
  if (slashForm) {
    for (const auto& a : args) {
      auto slash = a.find('/');
      if (slash == std::string::npos) {
        return badRequestError(
            "there is no need to specify a resource type as a separate argument when passing "
            "arguments in resource/name form (e.g. 'edgectl " +
            verb + " resource/<resource_name>' instead of 'edgectl " + verb +
            " resource resource/<resource_name>')");
      }
      std::string name = a.substr(slash + 1);
      if (name.empty())
        return badRequestError(
            "arguments in resource/name form must have a "
            "single resource and name");
      auto kinds = resolveKinds(a.substr(0, slash));
      if (!kinds) return kinds.status();
      if (kinds->size() != 1) {
        return badRequestError(
            "arguments in resource/name form must have a single resource "
            "and name");
      }
      addRef(refs, kinds->front(), {name});
    }
    return refs;
  }
  auto kinds = resolveKinds(args.front());
  if (!kinds) return kinds.status();
  std::vector<std::string> names(args.begin() + 1, args.end());
  for (const auto& n : names) {
    if (n.find('/') != std::string::npos) {
      return badRequestError(
          "there is no need to specify a resource type as a separate argument when passing "
          "arguments in resource/name form (e.g. 'edgectl " +
          verb + " resource/<resource_name>' instead of 'edgectl " + verb +
          " resource resource/<resource_name>')");
    }
  }
  for (const auto* k : *kinds) addRef(refs, k, names);
  return refs;
}

const json* jsonAt(const json& v, std::initializer_list<const char*> keys) {
  const json* cur = &v;
  for (const char* k : keys) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(k);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string stringAt(const json& v, std::initializer_list<const char*> keys) {
  const json* p = jsonAt(v, keys);
  return p && p->is_string() ? p->get<std::string>() : std::string();
}

std::string noResourcesMessage(bool namespaced, bool allNamespaces, const std::string& ns) {
  if (!namespaced || allNamespaces) return "No resources found";
  return "No resources found in " + ns + " namespace.";
}

}  // namespace ep::edgectl
