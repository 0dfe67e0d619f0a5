#pragma once

// Kubernetes error replies shared by cloudcore's API server and edgecore's local API: the
// ep::Code -> HTTP status/reason mapping, metav1.Status bodies and the small ServerResponse
// builders around them. Pure functions: thread-safe, never throw.

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/api/kinds.h"
#include "common/http/server_types.h"
#include "common/status.h"

namespace ep::api {

// The HTTP status for a code (kInvalid 422, kNotFound 404, kConflict/kAlreadyExists 409, ...).
int httpStatusFor(Code code);
// The metav1.StatusReason for a code ("Invalid", "NotFound", "AlreadyExists", "Expired", ...).
const char* statusReasonFor(Code code);

// A metav1.Status (status "Failure") for s. details carries name when not empty, the kind's
// group and plural when kind is set, and s.causes() as details.causes; it is left out when
// empty.
nlohmann::json statusObject(const Status& s, const KindInfo* kind = nullptr,
                            std::string_view name = {});

// A JSON reply: status and the body dumped compactly.
http::ServerResponse jsonResponse(int status, const nlohmann::json& body);
// The error reply for s: httpStatusFor(s.code()) with statusObject(s, kind, name).
http::ServerResponse errorResponse(const Status& s, const KindInfo* kind = nullptr,
                                   std::string_view name = {});
// A text/plain reply (health endpoints, version strings).
http::ServerResponse plainResponse(int status, std::string body);

}  // namespace ep::api
