#pragma once

// Tunnel Sync changes for tests that fill an edge cache (metamanager::MetaManager::applySync)
// the way edgehub does: one place for the Change fields.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "proto/tunnel.pb.h"

namespace ep::testing {

// Appends a PUT of `object` under `resource`; its namespace and name come from its metadata,
// and metadata.resourceVersion is set to `revision`, as the cloud sends objects.
inline void addPutChange(edgeplane::tunnel::v1::Sync& sync, const std::string& resource,
                         nlohmann::json object, int64_t revision) {
  auto* c = sync.add_changes();
  c->set_op(edgeplane::tunnel::v1::Change::OP_PUT);
  c->set_resource(resource);
  c->set_namespace_(object["metadata"].value("namespace", ""));
  c->set_name(object["metadata"].value("name", ""));
  c->set_revision(revision);
  object["metadata"]["resourceVersion"] = std::to_string(revision);
  c->set_value(object.dump());
}

// Appends a DELETE of resource ns/name.
inline void addDeleteChange(edgeplane::tunnel::v1::Sync& sync, const std::string& resource,
                            const std::string& ns, const std::string& name, int64_t revision) {
  auto* c = sync.add_changes();
  c->set_op(edgeplane::tunnel::v1::Change::OP_DELETE);
  c->set_resource(resource);
  c->set_namespace_(ns);
  c->set_name(name);
  c->set_revision(revision);
}

}  // namespace ep::testing
