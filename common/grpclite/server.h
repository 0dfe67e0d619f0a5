#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/grpclite/channel.h"
#include "common/status.h"

// grpclite's server side: unary gRPC calls over HTTP/2 (h2c, prior knowledge) on a unix
// socket, for edgecore's local gRPC endpoints (the DMI socket mappers call). No TLS: a unix
// socket's file permissions are its access control. Asio and nghttp2 stay out of this header.
namespace ep::grpclite {

// Completes one call. Thread-safe; may be called from any thread, once (later calls are
// ignored). A call whose client went away meanwhile is dropped silently.
using UnaryResponder = std::function<void(RpcStatus status, std::string response)>;

// Handles one request: `method` is the :path ("/package.Service/Method"), `request` the one
// request message's bytes. Runs on the server's I/O thread: it must not block; it answers
// through `respond`, now or later from another thread.
using UnaryHandler =
    std::function<void(const std::string& method, std::string request, UnaryResponder respond)>;

struct ServerOptions {
  std::string unixPath;        // created (a stale socket file is replaced), mode below
  unsigned socketMode = 0600;  // root-only by default
  size_t maxConnections = 64;  // further connections are closed at once
  uint32_t maxConcurrentStreams = 64;
  size_t maxMessageBytes = 4 * 1024 * 1024;  // larger requests end RESOURCE_EXHAUSTED
  // A call not answered within this ends DEADLINE_EXCEEDED (the handler's late answer is
  // dropped).
  std::chrono::milliseconds handlerTimeout{30000};
};

// Thread-safety: start/stop from the owning thread; the handler runs on the I/O thread.
class Server {
 public:
  Server(ServerOptions options, UnaryHandler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds (errors name the path) and starts the I/O thread.
  Status start();
  // Closes the listener and every connection (pending calls are dropped), joins the thread and
  // removes the socket file. Idempotent.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ep::grpclite
