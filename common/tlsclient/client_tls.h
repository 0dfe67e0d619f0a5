#pragma once

// Client-side TLS for edgecore's outbound connections (grpclite's channel to the cloud, the
// MQTT client to the broker), on wolfSSL through its OpenSSL-compatible API and Boost.Asio's
// ssl streams (BOOST_ASIO_USE_WOLFSSL): a third of OpenSSL's resident memory on the edge.
//
// This header names no wolfSSL or Asio SSL type beyond forward declarations, so including it
// needs neither; code that builds streams on the context compiles with BOOST_ASIO_USE_WOLFSSL
// and wolfSSL's include directory (see common/tlsclient/CMakeLists.txt).
//
// Pure functions over their arguments; thread-safe. A context may be shared by connections on
// any threads (wolfSSL contexts are read-only once built).

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace boost::asio::ssl {
class context;
}
namespace boost::system {
class error_code;
}
struct WOLFSSL;

namespace ep::tlsclient {

struct Options {
  // Trust anchors for the server's chain (PEM, one or more certificates). Required unless
  // insecureSkipVerify; the system's default roots are never used.
  std::string caPem;
  // Client certificate chain (leaf first) and its private key, presented when the server asks.
  // Both or neither; the key must match the leaf and must not be encrypted.
  std::string certPem;
  std::string keyPem;
  // Sent as SNI (unless an IP literal) and checked against the server certificate's SANs (DNS
  // names, or IP addresses for an IP literal). Empty = the default given to makeConfig.
  std::string serverName;
  // Accepts any server certificate, unchecked. Never the default.
  bool insecureSkipVerify = false;
  // Minimum protocol version TLS 1.3; false admits TLS 1.2 (AEAD ECDHE suites only).
  bool tls13Only = true;
  // ALPN protocols offered (e.g. {"h2"}); empty: no ALPN.
  std::vector<std::string> alpn;
  // How errors name the fields (the caller's configuration names).
  struct Names {
    std::string ca = "tls.caPem";
    std::string cert = "tls.certPem";
    std::string key = "tls.keyPem";
    std::string serverName = "tls.serverName";
    std::string insecure = "tls.insecureSkipVerify";
  } names;
};

// A built client context and what each connection needs from it.
struct Config {
  std::shared_ptr<boost::asio::ssl::context> context;
  std::string serverName;  // may be empty (unix socket target with insecureSkipVerify)
  bool verify = true;
  std::string serverNameField = "tls.serverName";  // how errors name it (Options::names)
};

// Builds the context. `defaultServerName` is used when options.serverName is empty ("" for a
// unix socket target). Errors are kInvalid and start with the field's name
// ("tls.caPem: no PEM certificate found").
Result<Config> makeConfig(const Options& options, const std::string& defaultServerName);

// Prepares one connection's SSL object before its handshake: SNI and, when verifying, the name
// the server certificate must carry.
Status prepareConnection(WOLFSSL* ssl, const Config& config);

// What went wrong on a TLS connection, in words: the certificate check's reason, the alert the
// server sent, or wolfSSL's reason; ec's message for errors that are not TLS errors.
std::string describeError(WOLFSSL* ssl, const boost::system::error_code& ec, bool verify);

// Frees wolfSSL's per-thread fixed-point ECC cache (Debian's build keeps megabytes of
// precomputed points per thread); call after each handshake on the handshaking thread.
void releaseHandshakeMemory();

}  // namespace ep::tlsclient
