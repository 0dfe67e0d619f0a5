#include "cloudcore/store/store_copy.h"

#include "cloudcore/store/store_keys.h"

namespace ep::store {

Result<size_t> copyObjects(Store& from, const std::vector<std::string>& resources, Store& to) {
  for (const auto& resource : resources) {
    auto present = to.list({.resource = resource, .limit = 1});
    if (!present) return present.status();
    if (!present->items.empty()) {
      const Object& o = present->items.front();
      return Status(Code::kAlreadyExists, "the target store already holds " + resource + " (" +
                                              keyString(resource, o.namespace_, o.name) +
                                              "); copy only into an empty store");
    }
  }
  size_t copied = 0;
  for (const auto& resource : resources) {
    ListOptions page{.resource = resource, .limit = 500};
    do {
      auto rows = from.list(page);
      if (!rows)
        return Status(rows.status().code(), "reading " + resource + ": " + rows.status().message());
      for (Object& o : rows->items) {
        auto c = to.create(resource, o.namespace_, o.name, std::move(o.value));
        if (!c) {
          return Status(c.status().code(), "writing " + keyString(resource, o.namespace_, o.name) +
                                               ": " + c.status().message());
        }
        ++copied;
      }
      page.continueToken = rows->continueToken;
    } while (!page.continueToken.empty());
  }
  return copied;
}

}  // namespace ep::store
