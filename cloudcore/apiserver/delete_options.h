#pragma once

// DeleteOptions as the API reads them. The handler (which applies them) and the AuthFilter
// (which authorizes an unsafe delete before the handler runs) both read a request through
// these functions, so that no spelling of a request means one thing to one and another to the
// other. Pure; thread-safe.

#include <nlohmann/json.hpp>

#include "common/http/server_types.h"
#include "common/status.h"

namespace ep::apiserver {

// DeleteOptions' ignoreStoreReadErrorWithClusterBreakingPotential (query parameter or body):
// Kubernetes' unsafe delete of an object that cannot be read (registry::DeleteOptions). It
// needs the verb "unsafe-delete-ignore-read-errors" as well as "delete".
inline constexpr const char* kUnsafeDeleteOption =
    "ignoreStoreReadErrorWithClusterBreakingPotential";

// The request's DeleteOptions body: Kubernetes protobuf (by Content-Type) or JSON nested at most
// 512 levels; an empty body is an empty object. kBadRequest when it is neither, or not an
// object.
[[nodiscard]] Result<nlohmann::json> parseDeleteOptionsBody(const http::ServerRequest& req);

// Whether a DELETE asks for the unsafe delete: the query flag (Kubernetes booleans), or the
// body's field set to true. A body that does not parse asks nothing (the handler refuses it).
bool asksUnsafeDelete(const http::ServerRequest& req);

}  // namespace ep::apiserver
