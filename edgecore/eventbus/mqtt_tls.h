#pragma once

// TLS for the MQTT client (ssl:// brokers) behind a seam. Asio's ssl streams compiled against
// wolfSSL (as edgecore uses them) and against OpenSSL (as cloud-side code and tools use them)
// cannot live in one binary: they are the same inline functions and templates built twice, and
// the linker keeps one. So mqtt_client.cc never includes them; edgecore links this
// implementation (ep_eventbus_tls) and hands it to the client through
// MqttClientOptions::tlsFactory, while tools that only speak plain MQTT (bench/) do not.

#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "common/tlsclient/client_tls.h"

namespace ep::edgecore::eventbus {

// One TLS session over the client's connected socket. Every call runs on the client's I/O
// thread; one read and one write may be in flight at a time. Shared: an implementation keeps
// itself alive until its pending operations complete, so the client may drop its reference
// (and close the socket) at any time.
class MqttTlsSession {
 public:
  using IoHandler = std::function<void(const boost::system::error_code&, size_t)>;
  virtual ~MqttTlsSession() = default;
  // Completes with "" or why the handshake failed (the certificate check's reason included).
  virtual void handshake(std::function<void(std::string error)> done) = 0;
  virtual void readSome(char* data, size_t size, IoHandler done) = 0;
  virtual void write(const char* data, size_t size, IoHandler done) = 0;
  // Best effort and blocking (the DISCONNECT at stop).
  virtual void writeNow(const char* data, size_t size) = 0;
  virtual std::string describe(const boost::system::error_code& ec) const = 0;
};

// Makes a session on a connected socket (the socket object outlives it).
using MqttTlsSessionMaker =
    std::function<std::shared_ptr<MqttTlsSession>(boost::asio::ip::tcp::socket& socket)>;

// Builds the session maker for a broker: the context from `options` (errors kInvalid naming
// the field), `host` the default name its certificate must carry.
using MqttTlsFactory = std::function<Result<MqttTlsSessionMaker>(const tlsclient::Options& options,
                                                                 const std::string& host)>;

// The implementation on wolfSSL (common/tlsclient): TLS 1.2 or 1.3, no ALPN.
MqttTlsFactory wolfsslMqttTls();

}  // namespace ep::edgecore::eventbus
