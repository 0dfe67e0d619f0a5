#include "common/http/client.h"

// EP_HTTP_NO_TLS (ep_http_client_small): built without TLS; https URLs are then refused.
// EP_HTTP_WOLFSSL (ep_http_client_edge, edgecore): TLS on wolfSSL through common/tlsclient
// (BOOST_ASIO_USE_WOLFSSL), so the edge does not load OpenSSL. caPem is then required unless
// insecureSkipVerify (wolfSSL has no system trust store of its own); no client certificate.

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#if defined(EP_HTTP_WEBSOCKET)
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>
#endif
#if !defined(EP_HTTP_NO_TLS)
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#endif
#include <cctype>
#include <limits>
#include <optional>
#if defined(EP_HTTP_WOLFSSL)
#include "common/tlsclient/client_tls.h"
#endif

namespace ep::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string formatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

// Runs the io_context until every handler started by `start` (and any timers it armed) has
// completed, and returns the error code the operation's handler reported.
template <typename Start>
beast::error_code runOp(asio::io_context& ioc, Start&& start) {
  beast::error_code result = asio::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

bool isConnectionDrop(const beast::error_code& ec) {
#if !defined(EP_HTTP_NO_TLS)
  if (ec == asio::ssl::error::stream_truncated) return true;
#endif
  return ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof ||
         ec == asio::error::connection_aborted;
}

// One connection, plain or TLS. The HTTP exchange is written against a generic stream and
// reaches it through with().
struct Connection {
  std::unique_ptr<beast::tcp_stream> tcp;
#if !defined(EP_HTTP_NO_TLS)
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;

  beast::tcp_stream& lowest() {
    return tls ? beast::get_lowest_layer(*tls) : *tcp;
  }
  template <typename Fn>
  auto with(Fn&& fn) {
    return tls ? fn(*tls) : fn(*tcp);
  }
#else
  beast::tcp_stream& lowest() {
    return *tcp;
  }
  template <typename Fn>
  auto with(Fn&& fn) {
    return fn(*tcp);
  }
#endif
};

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

Result<BaseUrl> parseBaseUrl(std::string_view url) {
  BaseUrl out;
  std::string_view rest = url;
  if (auto pos = rest.find("://"); pos != std::string_view::npos) {
    std::string_view scheme = rest.substr(0, pos);
    if (iequals(scheme, "http")) {
      out.scheme = "http";
    } else if (iequals(scheme, "https")) {
      out.scheme = "https";
    } else {
      return invalidError("unsupported URL scheme \"" + std::string(scheme) + "\" in \"" +
                          std::string(url) + "\": expected http://host:port");
    }
    rest.remove_prefix(pos + 3);
  } else {
    out.scheme = "http";
  }
  std::string_view authority = rest.substr(0, rest.find('/'));
  std::string_view path = rest.substr(authority.size());
  if (path.find_first_of("?#") != std::string_view::npos) {
    return invalidError("server URL \"" + std::string(url) +
                        "\" must not have a query or fragment");
  }
  std::string_view portText;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return invalidError("bad IPv6 address in server URL \"" + std::string(url) + "\"");
    }
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return invalidError("bad server URL \"" + std::string(url) + "\"");
      }
      portText = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      out.host = std::string(authority.substr(0, colon));
      portText = authority.substr(colon + 1);
    } else {
      out.host = std::string(authority);
    }
  }
  if (out.host.empty()) {
    return invalidError("server URL \"" + std::string(url) + "\" has no host");
  }
  if (!portText.empty()) {
    unsigned long port = 0;
    for (char c : portText) {
      if (c < '0' || c > '9' || port > 65535) {
        return invalidError("bad port in server URL \"" + std::string(url) + "\"");
      }
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) {
      return invalidError("bad port in server URL \"" + std::string(url) + "\"");
    }
    out.port = static_cast<uint16_t>(port);
  } else {
    out.port = out.scheme == "https" ? 443 : 80;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.prefix = std::string(path);
  return out;
}

Code codeForHttpStatus(int status) {
  if (status >= 200 && status < 300) return Code::kOk;
  switch (status) {
    case 400:
      return Code::kBadRequest;
    case 401:
      return Code::kUnauthorized;
    case 403:
      return Code::kForbidden;
    case 404:
      return Code::kNotFound;
    case 405:
      return Code::kMethodNotAllowed;
    case 409:
      return Code::kConflict;
    case 410:
      return Code::kExpired;
    case 413:
      return Code::kTooLarge;
    case 415:
      return Code::kUnsupportedMedia;
    case 422:
      return Code::kInvalid;
    case 503:
      return Code::kUnavailable;
    case 504:
      return Code::kTimeout;
    default:
      break;
  }
  if (status >= 400 && status < 500) return Code::kBadRequest;
  return Code::kInternal;
}

// The transport is written against a generic stream (see sendRequest/readWhole); Connection
// holds a plain TCP or a TLS stream.
struct HttpClient::Impl {
  std::string baseUrlText;
  ClientOptions options;
  Status urlStatus;
  BaseUrl url;
  asio::io_context ioc;
#if defined(EP_HTTP_WOLFSSL)
  std::optional<tlsclient::Config> tlsConfig;  // https only
  asio::ssl::context* ssl = nullptr;           // tlsConfig's context
#elif !defined(EP_HTTP_NO_TLS)
  std::optional<asio::ssl::context> ssl;  // https only
#endif
  // Idle keep-alive connection (with its read buffer), or null.
  std::unique_ptr<Connection> conn;
  beast::flat_buffer connBuffer;

  Impl(std::string base, ClientOptions opts)
      : baseUrlText(std::move(base)), options(std::move(opts)) {
    auto parsed = parseBaseUrl(baseUrlText);
    if (!parsed) {
      urlStatus = parsed.status();
      return;
    }
    url = std::move(parsed).value();
    if (url.scheme == "https") urlStatus = makeTlsContext();
  }

  Status makeTlsContext() {
#if defined(EP_HTTP_NO_TLS)
    return invalidError("https is not available in this program");
#elif defined(EP_HTTP_WOLFSSL)
    if (!options.clientCertPem.empty() || !options.clientKeyPem.empty()) {
      return invalidError("client certificates are not available in this program");
    }
    tlsclient::Options o;
    o.caPem = options.caPem;
    o.serverName = options.tlsServerName;
    o.insecureSkipVerify = options.insecureSkipVerify;
    o.tls13Only = false;
    o.names.ca = "certificate-authority";
    o.names.serverName = "tls-server-name";
    o.names.insecure = "insecure-skip-tls-verify";
    auto config = tlsclient::makeConfig(o, url.host);
    if (!config.isOk()) return config.status();
    tlsConfig = std::move(config).value();
    ssl = tlsConfig->context.get();
    return Status::ok();
#else
    try {
      ssl.emplace(asio::ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(ssl->native_handle(), TLS1_2_VERSION);
      if (options.insecureSkipVerify) {
        ssl->set_verify_mode(asio::ssl::verify_none);
      } else {
        ssl->set_verify_mode(asio::ssl::verify_peer);
        if (options.caPem.empty()) {
          ssl->set_default_verify_paths();
        } else {
          try {
            ssl->add_certificate_authority(asio::buffer(options.caPem));
          } catch (const std::exception& e) {
            return invalidError("certificate-authority: not a PEM certificate (" +
                                std::string(e.what()) + ")");
          }
        }
      }
      if (!options.clientCertPem.empty() || !options.clientKeyPem.empty()) {
        try {
          ssl->use_certificate_chain(asio::buffer(options.clientCertPem));
        } catch (const std::exception& e) {
          return invalidError("client-certificate: not a PEM certificate (" +
                              std::string(e.what()) + ")");
        }
        try {
          ssl->use_private_key(asio::buffer(options.clientKeyPem), asio::ssl::context::pem);
        } catch (const std::exception& e) {
          return invalidError("client-key: not a usable PEM private key for the certificate (" +
                              std::string(e.what()) + ")");
        }
      }
    } catch (const std::exception& e) {
      return invalidError(std::string("TLS setup failed: ") + e.what());
    }
    return Status::ok();
#endif
  }

  std::chrono::steady_clock::time_point deadline() const {
    if (options.timeout.count() <= 0) return std::chrono::steady_clock::time_point::max();
    return std::chrono::steady_clock::now() + options.timeout;
  }

  void arm(Connection& c, std::chrono::steady_clock::time_point dl) {
    arm(c.lowest(), dl);
  }
  void arm(beast::tcp_stream& s, std::chrono::steady_clock::time_point dl) {
    if (dl == std::chrono::steady_clock::time_point::max()) {
      s.expires_never();
    } else {
      s.expires_at(dl);
    }
  }

  Status unreachable(const std::string& why) const {
    return unavailableError("cannot reach " + options.peerName + " at " + baseUrlText + ": " + why);
  }
  Status timedOut() const {
    return {Code::kTimeout, "timed out after " + formatDuration(options.timeout) + " waiting for " +
                                options.peerName + " at " + baseUrlText};
  }
  Status transportError(const beast::error_code& ec) const {
    if (ec == beast::error::timeout) return timedOut();
    if (ec == bhttp::error::body_limit) {
      return {Code::kTooLarge, "response from " + options.peerName + " at " + baseUrlText +
                                   " exceeds " + std::to_string(options.maxBodyBytes) + " bytes"};
    }
    return unavailableError("connection to " + options.peerName + " at " + baseUrlText +
                            " failed: " + ec.message());
  }

  // Opens a new connection (TCP, then the TLS handshake for https) honoring the deadline.
  Result<std::unique_ptr<Connection>> connect(std::chrono::steady_clock::time_point dl) {
    tcp::resolver resolver(ioc);
    tcp::resolver::results_type endpoints;
    asio::steady_timer timer(ioc);
    bool timerFired = false;
    if (dl != std::chrono::steady_clock::time_point::max()) {
      timer.expires_at(dl);
      timer.async_wait([&](beast::error_code ec) {
        if (!ec) {
          timerFired = true;
          resolver.cancel();
        }
      });
    }
    beast::error_code ec = runOp(ioc, [&](auto handler) {
      resolver.async_resolve(url.host, std::to_string(url.port),
                             [&, handler](beast::error_code e, tcp::resolver::results_type r) {
                               timer.cancel();
                               endpoints = std::move(r);
                               handler(e);
                             });
    });
    if (timerFired) return timedOut();
    if (ec) return unreachable(ec.message());
    auto stream = std::make_unique<beast::tcp_stream>(ioc);
    arm(*stream, dl);
    ec = runOp(ioc, [&](auto handler) { stream->async_connect(endpoints, handler); });
    if (ec == beast::error::timeout) return timedOut();
    if (ec) return unreachable(ec.message());
    beast::error_code ignored;
    stream->socket().set_option(tcp::no_delay(true), ignored);
    auto c = std::make_unique<Connection>();
#if defined(EP_HTTP_NO_TLS)
    c->tcp = std::move(stream);
    return c;
#else
    if (!ssl) {
      c->tcp = std::move(stream);
      return c;
    }
    c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*stream), *ssl);
#if defined(EP_HTTP_WOLFSSL)
    if (auto s = tlsclient::prepareConnection(c->tls->native_handle(), *tlsConfig); !s.isOk()) {
      return s;
    }
    arm(*c, dl);
    ec = runOp(ioc, [&](auto handler) {
      c->tls->async_handshake(asio::ssl::stream_base::client, handler);
    });
    tlsclient::releaseHandshakeMemory();
    if (ec == beast::error::timeout) return timedOut();
    if (ec) {
      return unreachable("TLS handshake: " +
                         tlsclient::describeError(c->tls->native_handle(), ec, tlsConfig->verify));
    }
    return c;
#else
    const std::string& name = options.tlsServerName.empty() ? url.host : options.tlsServerName;
    SSL* h = c->tls->native_handle();
    boost::system::error_code addrEc;
    asio::ip::make_address(name, addrEc);
    if (addrEc) SSL_set_tlsext_host_name(h, name.c_str());  // SNI for names only
    if (!options.insecureSkipVerify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(h);
      if (!addrEc) {
        X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
      } else {
        X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
      }
    }
    arm(*c, dl);
    ec = runOp(ioc, [&](auto handler) {
      c->tls->async_handshake(asio::ssl::stream_base::client, handler);
    });
    if (ec == beast::error::timeout) return timedOut();
    if (ec) {
      std::string why = ec.message();
      long verify = SSL_get_verify_result(h);
      if (verify != X509_V_OK) {
        why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify) +
              (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH
                   ? " (the certificate is not valid for \"" + name + "\")"
                   : std::string());
      }
      return unreachable("TLS handshake: " + why);
    }
    return c;
#endif  // EP_HTTP_WOLFSSL
#endif
  }

  bhttp::request<bhttp::string_body> buildRequest(std::string_view method,
                                                  std::string_view pathAndQuery,
                                                  std::string_view body,
                                                  std::string_view contentType,
                                                  std::string_view accept) const {
    bhttp::request<bhttp::string_body> req;
    bhttp::verb verb = bhttp::string_to_verb(method);
    if (verb == bhttp::verb::unknown) {
      req.method_string(method);
    } else {
      req.method(verb);
    }
    std::string target = url.prefix;
    if (pathAndQuery.empty() || pathAndQuery.front() != '/') target += '/';
    target += pathAndQuery;
    req.target(target);
    req.version(11);
    bool v6 = url.host.find(':') != std::string::npos;
    req.set(bhttp::field::host,
            (v6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port));
    req.set(bhttp::field::user_agent, options.userAgent);
    if (!accept.empty()) req.set(bhttp::field::accept, accept);
    if (!options.bearerToken.empty()) {
      req.set(bhttp::field::authorization, "Bearer " + options.bearerToken);
    }
    for (const auto& [k, v] : options.headers) req.set(k, v);
    if (!body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put ||
        verb == bhttp::verb::patch) {
      if (!contentType.empty()) req.set(bhttp::field::content_type, contentType);
      req.body() = std::string(body);
    }
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  template <typename Stream>
  beast::error_code sendRequest(Stream& s, bhttp::request<bhttp::string_body>& req) {
    return runOp(ioc, [&](auto handler) { bhttp::async_write(s, req, handler); });
  }

  template <typename Stream>
  beast::error_code readWhole(Stream& s, beast::flat_buffer& buf,
                              bhttp::response_parser<bhttp::string_body>& parser) {
    return runOp(ioc, [&](auto handler) { bhttp::async_read(s, buf, parser, handler); });
  }

  static HttpResponse toResponse(bhttp::response<bhttp::string_body>&& msg) {
    HttpResponse out;
    out.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.contentType = std::string(msg[bhttp::field::content_type]);
    out.body = std::move(msg.body());
    return out;
  }

  Result<HttpResponse> request(std::string_view method, std::string_view pathAndQuery,
                               std::string_view body, std::string_view contentType,
                               std::string_view accept) {
    if (!urlStatus.isOk()) return urlStatus;
    auto req = buildRequest(method, pathAndQuery, body, contentType, accept);
    auto dl = deadline();
    // A reused connection may have been closed by the server while idle: retry once on a fresh
    // connection when nothing of the response arrived.
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = conn != nullptr;
      if (!conn) {
        auto c = connect(dl);
        if (!c) return c.status();
        conn = std::move(c).value();
        connBuffer.clear();
      }
      arm(*conn, dl);
      beast::error_code ec = conn->with([&](auto& s) { return sendRequest(s, req); });
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(options.maxBodyBytes);
      parser.header_limit(1u << 20);
      if (method == "HEAD") parser.skip(true);
      if (!ec) ec = conn->with([&](auto& s) { return readWhole(s, connBuffer, parser); });
      if (ec) {
        bool retry = reused && !parser.got_some() && isConnectionDrop(ec);
        closeConnection();
        if (retry) continue;
        return transportError(ec);
      }
      auto msg = parser.release();
      if (!msg.keep_alive()) {
        closeConnection();
      } else {
        conn->lowest().expires_never();
      }
      return toResponse(std::move(msg));
    }
    return unavailableError("connection to " + options.peerName + " at " + baseUrlText +
                            " keeps closing");
  }

  void closeConnection() {
    if (!conn) return;
    beast::error_code ignored;
    conn->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    conn->lowest().close();
    conn.reset();
    connBuffer.clear();
  }

  // A connection of its own: connects, sends `req` and reads the response headers into
  // `parser` (body unbounded: the caller reads it piecewise). On error the connection is closed.
  Status openResponse(bhttp::request<bhttp::string_body>& req,
                      std::chrono::steady_clock::time_point dl, std::unique_ptr<Connection>& s,
                      beast::flat_buffer& buf, bhttp::response_parser<bhttp::buffer_body>& parser) {
    auto c = connect(dl);
    if (!c) return c.status();
    s = std::move(c).value();
    arm(*s, dl);
    beast::error_code ec = s->with([&](auto& st) { return sendRequest(st, req); });
    // Not boost::none: Beast 1.74 compares Content-Length against an empty optional wrongly.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.header_limit(1u << 20);
    if (!ec) {
      ec = s->with([&](auto& st) {
        return runOp(ioc,
                     [&](auto handler) { bhttp::async_read_header(st, buf, parser, handler); });
      });
    }
    if (ec) return finishStream(*s, transportError(ec));
    return Status::ok();
  }

  Status stream(std::string_view method, std::string_view pathAndQuery,
                const std::function<bool(std::string_view)>& onLine, std::string_view accept,
                const std::function<void(std::string_view, std::string_view)>& onHeader) {
    if (!urlStatus.isOk()) return urlStatus;
    auto req = buildRequest(method, pathAndQuery, {}, {}, accept);
    auto dl = deadline();
    std::unique_ptr<Connection> s;
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::buffer_body> parser;
    if (Status st = openResponse(req, dl, s, buf, parser); !st.isOk()) return st;
    s->lowest().expires_never();
    beast::error_code ec;
    int status = static_cast<int>(parser.get().result_int());
    bool ok = status >= 200 && status < 300;
    if (onHeader) {
      for (const auto& field : parser.get()) onHeader(field.name_string(), field.value());
    }
    std::string pending;  // partial line (2xx) or error body (non-2xx)
    char chunk[16 * 1024];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      if (!ok) arm(*s, dl);
      ec = s->with([&](auto& st) {
        return runOp(ioc, [&](auto handler) { bhttp::async_read_some(st, buf, parser, handler); });
      });
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t n = sizeof chunk - parser.get().body().size;
      if (!ok) {
        if (pending.size() < options.maxBodyBytes) pending.append(chunk, n);
      } else {
        size_t start = 0;
        for (size_t i = 0; i < n; ++i) {
          if (chunk[i] != '\n') continue;
          pending.append(chunk + start, i - start);
          start = i + 1;
          if (!pending.empty() && pending.back() == '\r') pending.pop_back();
          bool more = onLine(pending);
          pending.clear();
          if (!more) return finishStream(*s, Status::ok());
        }
        pending.append(chunk + start, n - start);
      }
      if (ec == bhttp::error::end_of_stream && parser.is_header_done()) break;
      if (ec) return finishStream(*s, transportError(ec));
    }
    if (!ok) return finishStream(*s, Status(codeForHttpStatus(status), pending));
    if (!pending.empty()) {
      if (pending.back() == '\r') pending.pop_back();
      onLine(pending);
    }
    return finishStream(*s, Status::ok());
  }

  Result<HttpResponse> download(std::string_view pathAndQuery,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                const std::function<Status(std::string_view)>& onBody,
                                std::string_view accept,
                                const std::function<Status(const HttpResponse&)>& onHeaders) {
    if (!urlStatus.isOk()) return urlStatus;
    auto req = buildRequest("GET", pathAndQuery, {}, {}, accept);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.keep_alive(false);
    std::unique_ptr<Connection> s;
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::buffer_body> parser;
    if (Status st = openResponse(req, deadline(), s, buf, parser); !st.isOk()) return st;
    beast::error_code ec;
    HttpResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.contentType = out.header("Content-Type");
    const bool ok = out.status >= 200 && out.status < 300;
    if (onHeaders) {
      if (Status st = onHeaders(out); !st.isOk()) return finishStream(*s, st);
    }
    std::vector<char> chunk(64 * 1024);
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      arm(*s, deadline());
      ec = s->with([&](auto& st) {
        return runOp(ioc, [&](auto handler) { bhttp::async_read_some(st, buf, parser, handler); });
      });
      if (ec == bhttp::error::need_buffer) ec = {};
      const size_t n = chunk.size() - parser.get().body().size;
      if (ok && n > 0) {
        if (Status st = onBody(std::string_view(chunk.data(), n)); !st.isOk()) {
          return finishStream(*s, st);
        }
      } else if (!ok) {
        out.body.append(chunk.data(), std::min(n, options.maxBodyBytes - out.body.size()));
        if (out.body.size() >= options.maxBodyBytes) break;  // enough of an error to say why
      }
      if (ec == bhttp::error::end_of_stream && parser.is_header_done() && !ok) break;
      if (ec) return finishStream(*s, transportError(ec));
    }
    (void)finishStream(*s, Status::ok());
    return out;
  }

  Status finishStream(Connection& c, Status result) {
    beast::error_code ignored;
    c.lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    c.lowest().close();
    // Drain handlers of the closed socket before the stream object goes away.
    ioc.restart();
    ioc.run();
    return result;
  }
};

HttpClient::HttpClient(std::string baseUrl, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(baseUrl), std::move(options))) {}
HttpClient::~HttpClient() {
  if (impl_) impl_->closeConnection();
}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

const std::string& HttpClient::baseUrl() const {
  return impl_->baseUrlText;
}
Status HttpClient::valid() const {
  return impl_->urlStatus;
}

Result<HttpResponse> HttpClient::request(std::string_view method, std::string_view pathAndQuery,
                                         std::string_view body, std::string_view contentType,
                                         std::string_view accept) {
  try {
    return impl_->request(method, pathAndQuery, body, contentType, accept);
  } catch (const std::exception& e) {
    impl_->closeConnection();
    return unavailableError("request to " + impl_->baseUrlText + " failed: " + e.what());
  }
}

Status HttpClient::stream(std::string_view method, std::string_view pathAndQuery,
                          const std::function<bool(std::string_view)>& onLine,
                          std::string_view accept,
                          const std::function<void(std::string_view, std::string_view)>& onHeader) {
  try {
    return impl_->stream(method, pathAndQuery, onLine, accept, onHeader);
  } catch (const std::exception& e) {
    return unavailableError("stream from " + impl_->baseUrlText + " failed: " + e.what());
  }
}

void HttpClient::setHeaders(std::vector<std::pair<std::string, std::string>> headers) {
  impl_->options.headers = std::move(headers);
}

Result<HttpResponse> HttpClient::download(
    std::string_view pathAndQuery, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::function<Status(std::string_view)>& onBody, std::string_view accept,
    const std::function<Status(const HttpResponse&)>& onHeaders) {
  try {
    return impl_->download(pathAndQuery, headers, onBody, accept, onHeaders);
  } catch (const std::exception& e) {
    return unavailableError("download from " + impl_->baseUrlText + " failed: " + e.what());
  }
}

#if defined(EP_HTTP_WEBSOCKET)

struct ClientWebSocket::Impl {
  using TlsSocket = beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>&>;
  using TcpSocket = beast::websocket::stream<beast::tcp_stream&>;

  explicit Impl(HttpClient c) : client(std::move(c)), ioc(client.impl_->ioc) {}

  HttpClient client;  // owns the io_context and the TLS context
  asio::io_context& ioc;
  std::unique_ptr<Connection> conn;
  // Over conn's stream: exactly one is set.
  std::unique_ptr<TlsSocket> tls;
  std::unique_ptr<TcpSocket> tcp;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::atomic<bool> closed{false};

  template <typename Fn>
  auto with(Fn&& fn) {
    return tls ? fn(*tls) : fn(*tcp);
  }
};

ClientWebSocket::ClientWebSocket(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<ClientWebSocket>> ClientWebSocket::open(HttpClient client,
                                                               std::string_view pathAndQuery,
                                                               std::string_view protocol) {
  namespace websocket = beast::websocket;
  if (Status s = client.valid(); !s.isOk()) return s;
  auto impl = std::make_unique<Impl>(std::move(client));
  HttpClient::Impl& http = *impl->client.impl_;
  try {
    const auto dl = http.deadline();
    auto conn = http.connect(dl);
    if (!conn.isOk()) return conn.status();
    impl->conn = std::move(conn).value();
    if (impl->conn->tls) {
      impl->tls = std::make_unique<Impl::TlsSocket>(*impl->conn->tls);
    } else {
      impl->tcp = std::make_unique<Impl::TcpSocket>(*impl->conn->tcp);
    }
    // The upgrade carries what every request of the client carries.
    auto base = http.buildRequest("GET", pathAndQuery, {}, {}, {});
    const std::string target(base.target());
    const std::string host(base[bhttp::field::host]);
    impl->with([&](auto& ws) {
      ws.set_option(websocket::stream_base::decorator(
          [base, proto = std::string(protocol)](websocket::request_type& req) {
            for (const auto& field : base) {
              if (field.name() == bhttp::field::host || field.name() == bhttp::field::connection) {
                continue;
              }
              req.set(field.name_string(), field.value());
            }
            req.set(bhttp::field::sec_websocket_protocol, proto);
          }));
      ws.read_message_max(1024 * 1024);
      ws.binary(true);
    });
    websocket::response_type res;
    http.arm(*impl->conn, dl);
    beast::error_code ec = impl->with([&](auto& ws) {
      return runOp(http.ioc, [&](auto handler) { ws.async_handshake(res, host, target, handler); });
    });
    if (ec == websocket::error::upgrade_declined) {
      // The server answered, without upgrading: its status and why.
      const int status = res.result_int();
      {
        std::string message = res.body();
        auto j = nlohmann::json::parse(message, nullptr, false);
        if (j.is_object() && j.contains("message") && j["message"].is_string()) {
          message = j["message"].get<std::string>();
        }
        if (message.empty()) {
          message = "the server refused the upgrade (" + std::to_string(status) + ")";
        }
        const Code code = codeForHttpStatus(status);
        return Status(code == Code::kOk ? Code::kBadRequest : code, message);
      }
    }
    if (ec) return http.transportError(ec);
    impl->conn->lowest().expires_never();
  } catch (const std::exception& e) {
    return unavailableError("WebSocket to " + http.baseUrlText + " failed: " + e.what());
  }
  Impl& i = *impl;
  i.work.emplace(asio::make_work_guard(i.ioc));
  try {
    i.thread = std::thread([&i] {
      i.ioc.restart();
      for (;;) {
        try {
          i.ioc.run();
          return;
        } catch (...) {
          // A handler threw (they catch what they can): keep the socket's thread alive.
        }
      }
    });
  } catch (const std::system_error& e) {
    i.work.reset();
    return unavailableError(std::string("WebSocket: cannot start its thread: ") + e.what());
  }
  return std::unique_ptr<ClientWebSocket>(new ClientWebSocket(std::move(impl)));
}

ClientWebSocket::~ClientWebSocket() {
  close();
  impl_->work.reset();
  impl_->thread.join();
  // Handlers of the closed socket ran on that thread; nothing refers to the streams now.
}

// read() and write() wait for a handler on the socket's thread. The promise and the buffer are
// shared with it, so the caller may return (and drop its share) while the handler still holds
// them; a handler never throws past its promise.
Result<std::string> ClientWebSocket::read() {
  Impl& i = *impl_;
  if (i.closed) return unavailableError("the WebSocket is closed");
  struct Op {
    std::promise<Result<std::string>> done;
    beast::flat_buffer buf;
  };
  auto op = std::make_shared<Op>();
  auto result = op->done.get_future();
  asio::post(i.ioc, [&i, op] {
    i.with([&](auto& ws) {
      ws.async_read(op->buf, [op](beast::error_code ec, size_t) {
        try {
          if (ec) {
            op->done.set_value(unavailableError("the WebSocket ended: " + ec.message()));
          } else {
            op->done.set_value(beast::buffers_to_string(op->buf.data()));
          }
        } catch (const std::exception& e) {
          op->done.set_value(internalError(std::string("WebSocket read: ") + e.what()));
        }
      });
    });
  });
  return result.get();
}

Status ClientWebSocket::write(std::string_view message) {
  Impl& i = *impl_;
  if (i.closed) return unavailableError("the WebSocket is closed");
  struct Op {
    std::promise<Status> done;
    std::string data;
  };
  auto op = std::make_shared<Op>();
  op->data.assign(message);
  auto result = op->done.get_future();
  asio::post(i.ioc, [&i, op] {
    i.with([&](auto& ws) {
      ws.async_write(asio::buffer(op->data), [op](beast::error_code ec, size_t) {
        op->done.set_value(ec ? unavailableError("the WebSocket ended: " + ec.message())
                              : Status::ok());
      });
    });
  });
  return result.get();
}

void ClientWebSocket::close() {
  Impl& i = *impl_;
  if (i.closed.exchange(true)) return;
  // On the socket's thread: a pending read or write ends with an error.
  asio::post(i.ioc, [&i] {
    beast::error_code ignored;
    i.conn->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    i.conn->lowest().socket().close(ignored);
  });
}

#endif  // EP_HTTP_WEBSOCKET

}  // namespace ep::http
