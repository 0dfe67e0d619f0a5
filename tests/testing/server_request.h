#pragma once

#include <string>

#include "common/http/server.h"
#include "common/http/server_types.h"

namespace ep::testing {

// A request as the HTTP server hands it to a handler, from a target with its query
// ("/api/v1/pods?labelSelector=a%3Db&watch=1"): path, percent-decoded query parameters, body,
// content type (when given) and accept headers. For handler unit tests that skip the server.
inline http::ServerRequest serverRequest(const std::string& method, const std::string& target,
                                         const std::string& body = "",
                                         const std::string& contentType = "",
                                         const std::string& accept = "application/json") {
  http::ServerRequest r;
  r.method = method;
  r.target = target;
  auto q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) {
    std::string rest = target.substr(q + 1);
    size_t pos = 0;
    while (pos <= rest.size()) {
      size_t amp = rest.find('&', pos);
      std::string kv = rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
      auto eq = kv.find('=');
      r.query[http::percentDecode(kv.substr(0, eq), true)] =
          eq == std::string::npos ? "" : http::percentDecode(kv.substr(eq + 1), true);
      if (amp == std::string::npos) break;
      pos = amp + 1;
    }
  }
  r.body = body;
  if (!contentType.empty()) r.headers["content-type"] = contentType;
  r.headers["accept"] = accept;
  return r;
}

}  // namespace ep::testing
