#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"

namespace ep::edged::streaming {

// A TCP connection to the container runtime's streaming server after an HTTP/1.1 upgrade
// (WebSocket or SPDY/3.1): the socket (blocking, owned by the caller from here on), the
// response head, and the bytes read past it.
struct UpgradedConnection {
  int fd = -1;
  std::string head;      // status line and headers, each line ending in CRLF
  std::string buffered;  // the protocol's first bytes, read along with the head
};

// Connects to `url` (http://HOST:PORT/PATH with a numeric IPv4 or IPv6 host), sends what
// `makeRequest(hostPort, path)` builds and reads the response head, all within `timeout`.
// kBadRequest for a URL of another form (an https streaming server is not supported),
// kUnavailable when the server cannot be reached, times out, or answers other than 101
// (naming the server, its status line and the start of its body).
Result<UpgradedConnection> upgradeConnection(
    const std::string& url, std::chrono::milliseconds timeout,
    const std::function<std::string(const std::string& hostPort, const std::string& path)>&
        makeRequest);

// The value of header `name` (lower case) in a response head, trimmed; empty when absent.
std::string responseHeader(const std::string& head, const std::string& name);

// "the container runtime's streaming server HOST:PORT", for errors.
std::string streamingServerName(const std::string& url);

}  // namespace ep::edged::streaming
