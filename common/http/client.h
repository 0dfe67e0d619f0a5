#pragma once

// Synchronous HTTP/1.1 client used by edgectl (and any tool that talks to cloudcore's REST API).
// Three builds of it (common/http/CMakeLists.txt): ep_http (TLS on OpenSSL), ep_http_client_edge
// (TLS on wolfSSL through common/tlsclient, for edgecore: its registry pulls and servicebus
// calls) and ep_http_client_small (no TLS).
//
// Thread-safety: an HttpClient is thread-compatible: one thread at a time may call request() or
// stream() on a given instance; distinct instances are independent. Free functions are
// thread-safe.
//
// Lifecycle: the client owns at most one idle keep-alive connection, opened lazily by the first
// request() and reused by later ones while the server keeps it open. stream() always uses a
// connection of its own that is closed when stream() returns. Destroying the client closes
// everything; no background threads exist.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ep::http {

struct HttpResponse {
  int status = 0;
  std::string contentType;
  std::string body;
  // Response headers in arrival order, names as sent by the server.
  std::vector<std::pair<std::string, std::string>> headers;

  // Case-insensitive header lookup; "" when absent.
  std::string header(std::string_view name) const;
};

struct ClientOptions {
  // Bound on connecting plus the whole exchange of one request(); for stream(), bound on
  // connecting and receiving the response headers only (a watch may then run indefinitely).
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // Sent as "Authorization: Bearer <token>" when not empty.
  std::string bearerToken;
  // Extra headers sent with every request.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string userAgent = "edgeplane-http/0.1";
  // Names the peer in connection errors: "cannot reach <peerName> at <url>: <reason>".
  std::string peerName = "cloudcore";
  // Largest response body request() accepts.
  size_t maxBodyBytes = 256u << 20;
  // https:// URLs (TLS 1.2+). The server certificate is verified against caPem (PEM bundle;
  // empty = the system's trust store) and the URL's host (or tlsServerName) unless
  // insecureSkipVerify. A client certificate is presented when clientCertPem is set.
  std::string caPem;
  std::string clientCertPem;
  std::string clientKeyPem;
  std::string tlsServerName;
  bool insecureSkipVerify = false;
};

// A parsed base URL: scheme://host[:port][/prefix].
struct BaseUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // without IPv6 brackets
  uint16_t port = 0;
  std::string prefix;  // "" or "/something" without a trailing slash
};

// Parses "http://host:port[/prefix]" or "https://..." (port 80 / 443 by default). Errors are
// Code::kInvalid.
Result<BaseUrl> parseBaseUrl(std::string_view url);

// Maps an HTTP status to the closest ep::Code (2xx -> kOk).
Code codeForHttpStatus(int status);

class HttpClient {
 public:
  // baseUrl: "http[s]://host:port[/prefix]". An invalid URL or unusable TLS material is not
  // fatal here: every call then returns that error.
  explicit HttpClient(std::string baseUrl, ClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const std::string& baseUrl() const;
  // Ok when the base URL was usable.
  Status valid() const;

  // Sends one request and reads the whole response. Any HTTP status is a successful Result;
  // errors are transport failures: kUnavailable (cannot connect / resolve, connection dropped,
  // TLS handshake or verification failed), kTimeout, kInvalid (bad URL or TLS material),
  // kTooLarge (body above maxBodyBytes).
  // pathAndQuery starts with "/" and is appended to the URL prefix.
  Result<HttpResponse> request(std::string_view method, std::string_view pathAndQuery,
                               std::string_view body = {}, std::string_view contentType = {},
                               std::string_view accept = "application/json");

  // Sends a request whose response body is a stream of newline-delimited lines (e.g. a watch)
  // and calls onLine for each complete line (without the "\n" or a trailing "\r") as it
  // arrives. Returns ok when the server ends the stream or onLine returns false (a final line
  // without a newline is delivered too). A non-2xx response is returned as an error Status whose
  // code follows codeForHttpStatus and whose message is the response body (so callers can
  // decode a structured error); transport errors are as for request(). onHeader, when given,
  // sees each response header (name, value) before the first line, e.g. a watch's Warning.
  Status stream(
      std::string_view method, std::string_view pathAndQuery,
      const std::function<bool(std::string_view line)>& onLine,
      std::string_view accept = "application/json",
      const std::function<void(std::string_view name, std::string_view value)>& onHeader = {});

  // Replaces the extra headers sent with every later request (ClientOptions::headers), e.g. the
  // Authorization a registry's challenge asked for.
  void setHeaders(std::vector<std::pair<std::string, std::string>> headers);

  // A GET whose 2xx body is handed to onBody in pieces as it arrives (at most 64 KiB each);
  // `headers` are sent with this request only. The result holds the status and the headers,
  // and for a non-2xx answer the body (up to maxBodyBytes). options.timeout bounds connecting,
  // the response headers and each read of the body (an idle limit, not a total). onBody
  // returning an error stops the transfer and that error is returned. Uses a connection of its
  // own, closed when it returns. Transport errors as for request(). onHeaders, when given, sees
  // the status and headers before any of the body (its error stops the transfer too).
  Result<HttpResponse> download(std::string_view pathAndQuery,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                const std::function<Status(std::string_view)>& onBody,
                                std::string_view accept = "*/*",
                                const std::function<Status(const HttpResponse&)>& onHeaders = {});

 private:
  friend class ClientWebSocket;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A WebSocket (RFC 6455) to the server of an HttpClient, with its TLS settings and credentials:
// for the channel.k8s.io protocols (edgectl port-forward). Built into ep_http only (the
// OpenSSL client); the edge's small clients leave it out.
//
// Threading: read() on one thread and write() on another may run at once; close() from any
// thread makes both return. A thread of its own runs the socket while it is open.
class ClientWebSocket {
 public:
  // Connects with `client` (which the socket then owns), asks for an upgrade of pathAndQuery
  // offering `protocol`, within the client's timeout. Errors: those of HttpClient::request(),
  // or for a refused upgrade the HTTP status's code with the server's message (a v1 Status's
  // `message` when the body is one).
  static Result<std::unique_ptr<ClientWebSocket>> open(HttpClient client,
                                                       std::string_view pathAndQuery,
                                                       std::string_view protocol);
  ~ClientWebSocket();
  ClientWebSocket(const ClientWebSocket&) = delete;
  ClientWebSocket& operator=(const ClientWebSocket&) = delete;

  // The next data message (binary or text), at most 1 MiB. kUnavailable once the server closed
  // the socket, the connection ended or close() was called.
  [[nodiscard]] Result<std::string> read();
  // Sends `message` as one binary message. kUnavailable when the socket is gone.
  [[nodiscard]] Status write(std::string_view message);
  // Ends the connection; idempotent, never blocks.
  void close();

 private:
  struct Impl;
  explicit ClientWebSocket(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::http
