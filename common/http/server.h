#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/http/server_types.h"
#include "common/status.h"

namespace ep::http {

// TLS for the server: on when certPem is set. TLS 1.2 and 1.3 only.
struct ServerTlsOptions {
  std::string certPem;  // serving certificate (chain, leaf first)
  std::string keyPem;   // its private key
  // CA bundle client certificates are checked against. When set, clients are asked for a
  // certificate (not required: token clients send none); see ClientCertificate.
  std::string clientCaPem;
  std::chrono::seconds handshakeTimeout{10};
  bool enabled() const { return !certPem.empty(); }
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6443;  // 0 picks a free port (see Server::port())
  size_t maxBodyBytes = 3 * 1024 * 1024;
  size_t workerThreads = 8;  // run handlers (which may block on the store)
  std::chrono::seconds idleTimeout{120};
  ServerTlsOptions tls;
};

// HTTP/1.1 server (HTTPS when options.tls is enabled) on Boost.Beast. One I/O thread runs all
// sockets as C++20 coroutines (reads, writes, streaming); handlers run on a worker pool so a slow
// store never stalls the network. Per connection at most one read and one write are in flight.
// start()/stop() are called from one owner thread; port() is thread-safe after start().
class Server {
 public:
  Server(ServerOptions options, ServerHandler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status start();
  void stop();
  uint16_t port() const;
  // Accepts that failed since start (thread-safe). Out of file descriptors the server pauses
  // accepting (10 ms doubling to 1 s) instead of retrying at once.
  uint64_t acceptFailures() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-decoding for paths and query values ('+' is a space only in queries).
std::string percentDecode(std::string_view in, bool plusIsSpace);

}  // namespace ep::http
