#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/http/server_types.h"
#include "common/status.h"

namespace ep::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6443;  // 0 picks a free port (see Server::port())
  size_t maxBodyBytes = 3 * 1024 * 1024;
  size_t workerThreads = 8;  // run handlers (which may block on the store)
  std::chrono::seconds idleTimeout{120};
};

// HTTP/1.1 server on Boost.Beast. One I/O thread runs all sockets as C++20 coroutines (reads,
// writes, streaming); handlers run on a worker pool so a slow store never stalls the network.
// Per connection at most one read and one write are in flight. start()/stop() are called from
// one owner thread; port() is thread-safe after start().
class Server {
 public:
  Server(ServerOptions options, ServerHandler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status start();
  void stop();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-decoding for paths and query values ('+' is a space only in queries).
std::string percentDecode(std::string_view in, bool plusIsSpace);

}  // namespace ep::http
