#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/grpclite/framing.h"

// grpclite: a small gRPC client (HTTP/2 via libnghttp2, sockets via Boost.Asio) for the edge,
// where gRPC's C core costs more memory than the whole rest of edgecore. It speaks the gRPC
// wire protocol (application/grpc, length-prefixed messages, grpc-status trailers, grpc-timeout),
// so any gRPC server answers it: cloudhub's tunnel and containerd's CRI.
//
// Asio and nghttp2 stay out of this header. Messages cross it as serialized bytes; the typed
// helpers at the bottom take protobuf MessageLite.
//
// TLS (client side, OpenSSL) is optional per channel: ChannelOptions::tls.
//
// Not supported (not needed by edgecore): compression, name resolution beyond one host name,
// retries, load balancing.
namespace google::protobuf {
class MessageLite;
}

namespace ep::grpclite {

// The last TLS session of the channels that share this object, offered by their next connection
// so that it resumes (a TLS 1.3 ticket: no certificates sent or verified, no signatures). A
// session carries the client certificate it was made with: use one cache per client identity
// and a new one when the certificate changes. Thread-safe.
class TlsSessionCache {
 public:
  TlsSessionCache();
  ~TlsSessionCache();
  TlsSessionCache(const TlsSessionCache&) = delete;
  TlsSessionCache& operator=(const TlsSessionCache&) = delete;
  // Handshakes that resumed a session, and full ones (for /status and tests).
  uint64_t resumed() const;
  uint64_t full() const;
  // Forgets the session (the next handshake is a full one).
  void clear();

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// TLS for the channel's connections (OpenSSL; client certificates for mTLS). Every PEM is read
// when the channel is created; an unusable one makes every call on the channel end at once with
// INVALID_ARGUMENT naming the field ("tls.keyPem: ..."), and no connection is attempted.
struct TlsOptions {
  bool enabled = false;
  // Trust anchors for the server's certificate chain (PEM, one or more certificates). Required
  // unless insecureSkipVerify; the system's default roots are never used.
  std::string caPem;
  // Client certificate chain (leaf first) and its private key, presented when the server asks.
  // Both or neither; the key must match the leaf and must not be encrypted.
  std::string certPem;
  std::string keyPem;
  // Sent as SNI (unless an IP literal) and checked against the server certificate's SANs (DNS
  // names, or IP addresses for an IP literal). Empty = the target's host; required for a unix
  // socket target (unless insecureSkipVerify).
  std::string serverName;
  // Accepts any server certificate, unchecked. Only for a caller that verifies the server by
  // other means (node join pins the CA's hash); never the default.
  bool insecureSkipVerify = false;
  // Minimum protocol version TLS 1.3; false admits TLS 1.2 (AEAD ECDHE suites only, as HTTP/2
  // requires).
  bool tls13Only = true;
  // Resume sessions through this cache (null: every handshake is a full one).
  std::shared_ptr<TlsSessionCache> sessionCache;
};

struct ChannelOptions {
  // Bounds each connection attempt: name resolution, TCP/unix connect, the TLS handshake, and
  // the server's first HTTP/2 SETTINGS frame (calls already sent on it end UNAVAILABLE when it
  // passes).
  std::chrono::milliseconds connectTimeout{10000};
  // HTTP/2 PING interval on an idle or busy connection; 0 sends none. A PING not acknowledged
  // within keepaliveTimeout closes the connection (its calls end UNAVAILABLE).
  std::chrono::milliseconds keepaliveTime{0};
  std::chrono::milliseconds keepaliveTimeout{20000};
  // A received message above this ends its call with RESOURCE_EXHAUSTED.
  size_t maxReceiveMessageBytes = 4 * 1024 * 1024;
  // HTTP/2 receive windows (per stream and per connection).
  int32_t streamWindowBytes = 1 << 20;
  int32_t connectionWindowBytes = 4 << 20;
  // :authority; empty = the target ("localhost" for unix sockets).
  std::string authority;
  std::string userAgent = "edgeplane-grpclite/1";
  // Off by default: plaintext HTTP/2 (h2c).
  TlsOptions tls;
};

// Receives a call's results. Runs on the channel's I/O thread: must not block and must not call
// Channel::unary. onMessage comes zero or more times, then onDone exactly once.
class CallHandler {
 public:
  virtual ~CallHandler() = default;
  virtual void onMessage(std::string&& bytes) = 0;
  virtual void onDone(const RpcStatus& status) = 0;
};

enum class WriteResult {
  kQueued,  // will be sent in order
  kClosed,  // the call finished (or writesDone was called); nothing queued
  kFull,    // maxQueuedMessages are waiting to go out; nothing queued
};

// A started call (client, server or bidirectional streaming). Thread-safe; every method is
// non-blocking and may be called from any thread, handlers included.
class Call {
 public:
  virtual ~Call() = default;
  // Queues one serialized message.
  virtual WriteResult write(std::string bytes) = 0;
  // Half-closes the request side after the queued messages.
  virtual void writesDone() = 0;
  // Ends the call with CANCELLED (RST_STREAM to the server) unless it already finished.
  virtual void cancel() = 0;
  // Messages queued by write() and not yet handed to HTTP/2 (flow control may hold them).
  virtual size_t queuedMessages() const = 0;
};

struct CallOptions {
  // 0 = no deadline. Sent as grpc-timeout; the call ends DEADLINE_EXCEEDED when it passes.
  std::chrono::milliseconds timeout{0};
  // write() answers kFull beyond this many unsent messages.
  size_t maxQueuedMessages = 1024;
};

// One target, at most one HTTP/2 connection at a time, opened on demand by the first call and
// again by the first call after it failed or the server sent GOAWAY. Calls waiting for a
// connection that cannot be made end UNAVAILABLE with the reason ("connect to 127.0.0.1:6444:
// Connection refused", "TLS handshake with 127.0.0.1:6444: certificate verify failed (unable to
// get local issuer certificate)").
//
// Owns one I/O thread. Create with create(); destroying the last reference ends every call
// still running with CANCELLED ("channel closed"), runs their onDone, and joins the thread; it
// must not happen on the channel's own I/O thread (from a handler).
class Channel {
 public:
  // target: "HOST:PORT", "[V6]:PORT", "unix:///abs/path", "unix:/abs/path" or "/abs/path".
  static std::shared_ptr<Channel> create(std::string target, ChannelOptions options = {});
  virtual ~Channel() = default;

  // Starts a call of `method` ("/package.Service/Method"). The handler is kept until its onDone
  // ran. Never null; a call on a closed channel ends at once (handler runs on the I/O thread).
  virtual std::shared_ptr<Call> startCall(std::string method, std::shared_ptr<CallHandler> handler,
                                          CallOptions options = {}) = 0;

  // One request, one response, blocking. Must not be called from a handler. Answers INTERNAL
  // when the server sent no message or more than one.
  RpcStatus unary(std::string method, std::string request, std::string* response,
                  std::chrono::milliseconds timeout);
  RpcStatus unary(std::string method, const google::protobuf::MessageLite& request,
                  google::protobuf::MessageLite* response, std::chrono::milliseconds timeout);

  const std::string& target() const { return target_; }

 protected:
  explicit Channel(std::string target) : target_(std::move(target)) {}

 private:
  const std::string target_;
};

}  // namespace ep::grpclite
