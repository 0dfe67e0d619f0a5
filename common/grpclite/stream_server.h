#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/grpclite/framing.h"
#include "common/status.h"

// grpclite's TCP server: gRPC calls of every shape (unary, streaming, bidirectional) over
// HTTP/2 on libnghttp2, with TLS on OpenSSL used directly (no BIO pairs, no Asio ssl stream),
// for cloudcore's edge tunnel. It exists for the tunnel's per-connection cost: an idle TLS
// connection holds no TLS record buffers (SSL_MODE_RELEASE_BUFFERS) and no read buffer (one
// per I/O thread), and TLS 1.3 session tickets whose key the caller supplies let nodes resume
// after a server restart without a full handshake (docs/tunnel.md, "Transport").
//
// Asio, nghttp2 and OpenSSL stay out of this header. Messages cross it as serialized bytes.
struct x509_st;

namespace ep::grpclite {

struct StreamServerTls {
  std::string certPem;  // server certificate chain, leaf first
  std::string keyPem;
  // Client certificates are asked for and verified against these; a client may present none
  // (PeerInfo::certificatePem stays empty) and the handler decides.
  std::string clientCaPem;
  // 80 bytes (16 name, 32 HMAC, 32 AES) encrypting TLS 1.3 session tickets. The same key after a
  // restart lets clients resume; empty = a random key per process.
  std::string ticketKey;
  // How long a ticket may be used to resume (it carries the client certificate it was issued
  // for; the handler checks that certificate's validity again). Every handshake, resumed or
  // not, gives the client a new ticket, and a connection open for half of this gets a fresh
  // one, so that a client can resume after a server restart however long it was connected.
  // At most 7 days (RFC 8446).
  std::chrono::seconds ticketLifetime{24 * 3600};
};

struct StreamServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 0;                   // 0 picks a free port (see port())
  std::optional<StreamServerTls> tls;  // nullopt: plaintext HTTP/2 (h2c, prior knowledge)
  unsigned ioThreads = 2;              // connections are spread over them round-robin
  uint32_t maxConcurrentStreams = 100;
  size_t maxMessageBytes = 4 * 1024 * 1024;  // a larger request ends RESOURCE_EXHAUSTED
  // The same for connections whose client presented no certificate (they can only join):
  // what an unauthenticated client can make the server buffer.
  size_t maxMessageBytesWithoutCertificate = 4 * 1024 * 1024;
  // HTTP/2 PING after this long without anything received; no answer within keepaliveTimeout
  // closes the connection (its calls are cancelled).
  std::chrono::milliseconds keepaliveTime{60000};
  std::chrono::milliseconds keepaliveTimeout{20000};
  // A connection that has not completed its TLS handshake and HTTP/2 preface by then is closed.
  std::chrono::milliseconds handshakeTimeout{10000};
  // Called on an I/O thread after each completed TLS handshake (resumed: from a session ticket).
  // Must not block.
  std::function<void(bool resumed)> onHandshake;
};

struct PeerInfo {
  std::string address;  // "ipv4:127.0.0.1:41234", "ipv6:[::1]:41234" (gRPC's form)
  // The verified client certificate (OpenSSL's X509), null when none was presented. Valid only
  // during the CallAcceptor call; read it there (common/pki's certificateInfo) instead of
  // parsing it again from PEM. A resumed session brings the certificate it was made with.
  const x509_st* certificate = nullptr;
};

// The server's side of one call. Thread-safe: every method may be called from any thread and
// never blocks; results arrive at the call's observer on the connection's I/O thread, in order.
// The contract is gRPC's callback API (ServerBidiReactor): at most one read and one write in
// flight, finish() exactly once, with no write in flight, and onDone() last, after finish().
class ServerCall {
 public:
  virtual ~ServerCall() = default;
  // Asks for the next request message: onReadDone(true, message), or onReadDone(false) when the
  // client half-closed or the call ended.
  virtual void startRead() = 0;
  // Sends one message: onWriteDone(true) once HTTP/2 took all of it (flow control may hold it),
  // onWriteDone(false) when the call ended first.
  virtual void startWrite(std::string message) = 0;
  // Ends the call with `status` (trailers, or a trailers-only response when nothing was sent).
  virtual void finish(RpcStatus status) = 0;
  // Resets the stream (RST_STREAM CANCEL): pending operations complete with false, then
  // onCancel(). finish() is still required.
  virtual void cancel() = 0;
};

class ServerCallObserver {
 public:
  virtual ~ServerCallObserver() = default;
  virtual void onReadDone(bool ok, std::string&& message) = 0;
  virtual void onWriteDone(bool ok) = 0;
  // The stream ended before finish(): the client reset it, the connection was lost, or the
  // server is stopping. Pending operations have completed (false). Call finish().
  virtual void onCancel() = 0;
  // The last callback: finish() was called and the stream is closed. The call drops the observer
  // after it.
  virtual void onDone() = 0;
};

// A new call of `method` ("/package.Service/Method"). Runs on an I/O thread: must not block.
// Returns the call's observer; null ends the call UNIMPLEMENTED.
using CallAcceptor = std::function<std::shared_ptr<ServerCallObserver>(
    const std::string& method, const PeerInfo& peer, std::shared_ptr<ServerCall> call)>;

// Thread-safety: start/stop from the owning thread; port() and connections() from any.
class StreamServer {
 public:
  StreamServer(StreamServerOptions options, CallAcceptor acceptor);
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Loads the TLS material (errors name the field), binds exclusively (no SO_REUSEPORT: a second
  // server cannot take the port) and starts the I/O threads.
  Status start();
  // Stops accepting, waits up to `grace` for the calls to finish, then closes every connection
  // (their calls are cancelled and get their onDone) and joins the threads. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

  uint16_t port() const;
  size_t connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ep::grpclite
