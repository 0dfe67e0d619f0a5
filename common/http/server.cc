#include "common/http/server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cerrno>
// EP_HTTP_NO_TLS (ep_http_server_small, edgecore's loopback API): built without TLS, so the
// edge does not load the TLS library of the API server at all (docs/performance.md).
#if !defined(EP_HTTP_NO_TLS)
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>
#endif
#include <optional>
#include <thread>

namespace ep::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

std::string percentDecode(std::string_view in, bool plusIsSpace) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plusIsSpace && c == '+' ? ' ' : c);
  }
  return out;
}

namespace {

void parseTarget(ServerRequest& req) {
  std::string_view t = req.target;
  auto q = t.find('?');
  req.path = percentDecode(t.substr(0, q), false);
  if (q == std::string_view::npos) return;
  std::string_view rest = t.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    auto eq = kv.find('=');
    std::string key = percentDecode(kv.substr(0, eq), true);
    std::string val = eq == std::string_view::npos ? "" : percentDecode(kv.substr(eq + 1), true);
    if (!key.empty()) req.query[key] = val;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
}

std::string statusJson(int code, const std::string& reason, const std::string& message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    escaped.push_back(c);
  }
  return R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":")" +
         escaped + R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) + "}";
}

#if !defined(EP_HTTP_NO_TLS)
// The verified client certificate of an established TLS connection, or an empty one.
ClientCertificate verifiedPeerCertificate(SSL* ssl) {
  ClientCertificate out;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return out;
  X509_NAME* subject = X509_get_subject_name(cert);
  auto entries = [subject](int nid) {
    std::vector<std::string> values;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, nid, i)) >= 0;) {
      ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
      unsigned char* utf8 = nullptr;
      int n = ASN1_STRING_to_UTF8(&utf8, data);
      if (n >= 0) values.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
    }
    return values;
  };
  auto cns = entries(NID_commonName);
  if (cns.size() != 1 || cns[0].empty()) return out;  // no single user name: anonymous
  out.commonName = cns[0];
  out.organizations = entries(NID_organizationName);
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      out.serialHex = hex;
      for (auto& c : out.serialHex)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      // BN_bn2hex pads to whole bytes; serials are compared without leading zeros.
      size_t nz = out.serialHex.find_first_not_of('0');
      out.serialHex = nz == std::string::npos ? "0" : out.serialHex.substr(nz);
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  out.verified = true;
  return out;
}

// TLS 1.2+ server context; client certificates requested (not required) when a client CA is
// given. Verification failures are recorded, not fatal (see verifiedPeerCertificate).
Status makeServerContext(const ServerTlsOptions& tls, std::optional<asio::ssl::context>& out) {
  try {
    out.emplace(asio::ssl::context::tls_server);
    auto& ctx = *out;
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                    asio::ssl::context::single_dh_use);
    SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_SERVER);
    ctx.use_certificate_chain(asio::buffer(tls.certPem));
    ctx.use_private_key(asio::buffer(tls.keyPem), asio::ssl::context::pem);
    if (!tls.clientCaPem.empty()) {
      ctx.add_certificate_authority(asio::buffer(tls.clientCaPem));
      ctx.set_verify_mode(asio::ssl::verify_peer);
      ctx.set_verify_callback([](bool, asio::ssl::verify_context&) { return true; });
      static const unsigned char kSessionContext[] = "edgeplane";
      SSL_CTX_set_session_id_context(ctx.native_handle(), kSessionContext,
                                     sizeof kSessionContext - 1);
    }
  } catch (const std::exception& e) {
    out.reset();
    return invalidError(std::string("TLS: cannot use the serving certificate or key: ") + e.what());
  }
  return Status::ok();
}

#endif  // !EP_HTTP_NO_TLS

}  // namespace

namespace {

// What is wrong with a request's message framing (RFC 9112 6.3), or "".
template <typename Message>
std::string framingError(const Message& msg) {
  auto te = msg.find(bhttp::field::transfer_encoding);
  if (te == msg.end()) return {};
  if (msg.find(bhttp::field::content_length) != msg.end()) {
    return "a request must not carry both Transfer-Encoding and Content-Length";
  }
  std::string codings(te->value());
  auto comma = codings.rfind(',');
  std::string last = comma == std::string::npos ? codings : codings.substr(comma + 1);
  auto b = last.find_first_not_of(" \t");
  auto e = last.find_last_not_of(" \t");
  last = b == std::string::npos ? "" : last.substr(b, e - b + 1);
  for (auto& c : last) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (last != "chunked") {
    return "the last Transfer-Encoding of a request must be chunked (got \"" + codings + "\")";
  }
  return {};
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  ServerHandler handler;
  asio::io_context ioc{1};
  asio::thread_pool pool;
  tcp::acceptor acceptor{ioc};
  // The accept loop's pause when out of descriptors (I/O thread only). A member, made with the
  // io_context and destroyed before it: made later there may be no descriptor left for Asio's
  // timer service, and a coroutine-local timer would die inside the io_context's shutdown.
  asio::steady_timer acceptPause{ioc};
  std::thread ioThread;
  std::atomic<uint16_t> boundPort{0};
  std::atomic<uint64_t> acceptFailures{0};
  std::atomic<bool> stopping{false};
#if !defined(EP_HTTP_NO_TLS)
  std::optional<asio::ssl::context> ssl;  // set by start() when options.tls.enabled()
#else
  std::optional<int> ssl;  // never set: no TLS in this build
#endif

  Impl(ServerOptions o, ServerHandler h)
      : options(std::move(o)), handler(std::move(h)), pool(options.workerThreads) {}

  // Runs fn on the worker pool and resumes the calling coroutine on the I/O thread.
  template <typename T, typename Fn>
  awaitable<T> onPool(Fn fn) {
    auto ex = ioc.get_executor();
    return asio::async_initiate<decltype(use_awaitable), void(T)>(
        [this, fn = std::move(fn), ex](auto completion) mutable {
          asio::post(pool, [fn = std::move(fn), ex, completion = std::move(completion)]() mutable {
            T value = fn();
            asio::post(ex, [completion = std::move(completion),
                            value = std::move(value)]() mutable { completion(std::move(value)); });
          });
        },
        use_awaitable);
  }

  ServerResponse runHandler(ServerRequest& req) {
    try {
      return handler(req);
    } catch (const std::exception& e) {
      spdlog::error("apiserver: handler for {} {} threw: {}", req.method, req.target, e.what());
    } catch (...) {
      spdlog::error("apiserver: handler for {} {} threw", req.method, req.target);
    }
    ServerResponse r;
    r.status = 500;
    r.body = statusJson(500, "InternalError", "internal error");
    return r;
  }

  // Out of file descriptors (or kernel memory) the pending connection stays in the backlog and
  // every accept fails at once: the loop pauses (10 ms doubling to 1 s) instead of spinning,
  // logs the first failure and how many it suppressed once accepts work again.
  awaitable<void> acceptLoop() {
    std::chrono::milliseconds pause{0};
    uint64_t suppressed = 0;
    for (;;) {
      tcp::socket socket(ioc);
      boost::system::error_code ec;
      co_await acceptor.async_accept(socket, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (stopping) co_return;
        acceptFailures.fetch_add(1, std::memory_order_relaxed);
        const bool exhausted = ec == asio::error::no_descriptors || ec.value() == ENFILE ||
                               ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
        if (!exhausted) {
          spdlog::warn("apiserver: accept: {}", ec.message());
          continue;
        }
        if (pause.count() == 0) {
          spdlog::error("apiserver: accept: {}; pausing new connections", ec.message());
          pause = std::chrono::milliseconds(10);
        } else {
          ++suppressed;
          pause = std::min(pause * 2, std::chrono::milliseconds(1000));
        }
        acceptPause.expires_after(pause);
        co_await acceptPause.async_wait(asio::redirect_error(use_awaitable, ec));
        if (stopping) co_return;
        continue;
      }
      if (pause.count() > 0) {
        spdlog::info("apiserver: accepting connections again ({} more failed accepts not logged)",
                     suppressed);
        pause = std::chrono::milliseconds(0);
        suppressed = 0;
      }
      socket.set_option(tcp::no_delay(true), ec);
#if !defined(EP_HTTP_NO_TLS)
      if (ssl) {
        asio::co_spawn(ioc, tlsSession(std::move(socket)), asio::detached);
        continue;
      }
#endif
      asio::co_spawn(ioc, plainSession(std::move(socket)), asio::detached);
    }
  }

  static std::string remoteOf(tcp::socket& socket) {
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    return ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  awaitable<void> plainSession(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    std::string remote = remoteOf(stream.socket());
    // Arguments of an awaited coroutine are named locals passed by reference: GCC 12 may
    // destroy temporaries of a co_await full-expression twice.
    const ClientCertificate none;
    co_await session(stream, remote, none);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

#if !defined(EP_HTTP_NO_TLS)
  // TLS: handshake (bounded by handshakeTimeout), then the same HTTP session. A client
  // certificate that does not verify against the client CA leaves the request anonymous (the
  // authenticator answers 401), as in Kubernetes; it does not fail the handshake.
  awaitable<void> tlsSession(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *ssl);
    std::string remote = remoteOf(beast::get_lowest_layer(stream).socket());
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(options.tls.handshakeTimeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server,
                                    asio::redirect_error(use_awaitable, ec));
    if (ec) {
      spdlog::debug("apiserver: TLS handshake with {}: {}", remote, ec.message());
      beast::get_lowest_layer(stream).close();
      co_return;
    }
    const ClientCertificate cert = verifiedPeerCertificate(stream.native_handle());
    co_await session(stream, remote, cert);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
    beast::get_lowest_layer(stream).close();
  }

#endif

  template <typename Stream>
  awaitable<void> session(Stream& stream, const std::string& remote,
                          const ClientCertificate& cert) {
    auto& lowest = beast::get_lowest_layer(stream);
    beast::flat_buffer buffer;
    try {
      for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.body_limit(options.maxBodyBytes);
        parser.header_limit(64 * 1024);
        lowest.expires_after(options.idleTimeout);
        boost::system::error_code ec;
        co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
        if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
            ec == beast::error::timeout || ec == asio::error::connection_reset ||
            ec == asio::error::operation_aborted) {
          break;
        }
        if (ec == bhttp::error::body_limit) {
          ServerResponse r;
          r.status = 413;
          r.body = statusJson(413, "RequestEntityTooLarge",
                              "the request body exceeds the limit of " +
                                  std::to_string(options.maxBodyBytes) + " bytes");
          co_await writeResponse(stream, r, 11, false);
          break;
        }
        if (ec) {
          ServerResponse r;
          r.status = 400;
          r.body = statusJson(400, "BadRequest", "malformed HTTP request: " + ec.message());
          co_await writeResponse(stream, r, 11, false);
          break;
        }
        // RFC 9112 6.3: a request whose last transfer coding is not chunked has no knowable
        // length, and one with both Transfer-Encoding and Content-Length is ambiguous; either
        // could smuggle a second request behind the first. 400 and close.
        if (auto why = framingError(parser.get()); !why.empty()) {
          ServerResponse r;
          r.status = 400;
          r.body = statusJson(400, "BadRequest", why);
          co_await writeResponse(stream, r, 11, false);
          break;
        }
        auto msg = parser.release();
        ServerRequest req;
        req.method = std::string(msg.method_string());
        req.target = std::string(msg.target());
        for (const auto& f : msg) {
          std::string name(f.name_string());
          for (auto& ch : name)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          req.headers[name] = std::string(f.value());
        }
        req.body = std::move(msg.body());
        req.remote = remote;
        req.clientCertificate = cert;
        parseTarget(req);
        bool keepAlive = msg.keep_alive();
        unsigned version = msg.version();

        auto start = std::chrono::steady_clock::now();
        lowest.expires_never();
        ServerResponse res =
            co_await onPool<ServerResponse>([this, &req] { return runHandler(req); });
        if (res.websocket) {
          if (!beast::websocket::is_upgrade(msg)) {
            res.websocket->close();
            ServerResponse bad;
            bad.status = 400;
            bad.body =
                statusJson(400, "BadRequest", "this resource needs a WebSocket upgrade request");
            co_await writeResponse(stream, bad, version, false);
            break;
          }
          spdlog::info("{} {} 101 websocket ({}) from {}", req.method, req.target,
                       res.websocketProtocol, remote);
          co_await websocketSession(stream, msg, res);
          break;
        }
        if (res.stream) {
          spdlog::info("{} {} {} stream from {}", req.method, req.target, res.status, remote);
          co_await streamResponse(stream, res, version);
          break;
        }
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
        spdlog::info("{} {} {} {}B {}us {}", req.method, req.target, res.status, res.body.size(),
                     us, remote);
        co_await writeResponse(stream, res, version, keepAlive);
        if (!keepAlive) break;
      }
    } catch (const std::exception& e) {
      spdlog::debug("apiserver: connection {}: {}", remote, e.what());
    }
  }

  // A handler's headers replace the server's of the same name; a name the handler repeats
  // (Warning) is sent once per value.
  template <typename Fields>
  static void setHeaders(Fields& res,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
    for (size_t i = 0; i < headers.size(); ++i) {
      bool repeated = false;
      for (size_t j = 0; j < i && !repeated; ++j) {
        repeated = beast::iequals(headers[j].first, headers[i].first);
      }
      if (repeated) {
        res.insert(headers[i].first, headers[i].second);
      } else {
        res.set(headers[i].first, headers[i].second);
      }
    }
  }

  template <typename Stream>
  awaitable<void> writeResponse(Stream& stream, ServerResponse& r, unsigned version,
                                bool keepAlive) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::server, "edgeplane-cloudcore");
    res.set(bhttp::field::content_type, r.contentType);
    setHeaders(res, r.headers);
    res.keep_alive(keepAlive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(60));
    co_await bhttp::async_write(stream, res, use_awaitable);
  }

  // A WebSocket after an accepted upgrade: writes what the WebSocketStream produces, keeps one
  // read pending while the stream wants input (answers pings, notices the client closing) and
  // hands each client message to the stream.
  template <typename Stream>
  awaitable<void> websocketSession(Stream& stream, bhttp::request<bhttp::string_body>& upgrade,
                                   ServerResponse& r) {
    namespace websocket = beast::websocket;
    std::shared_ptr<WebSocketStream> body = r.websocket;
    struct Shared {
      explicit Shared(asio::io_context& io) : timer(io) {}
      asio::steady_timer timer;
      std::atomic<bool> woken{true};
      bool clientGone = false;
      bool readerDone = true;
      bool readerPaused = false;  // the stream wanted no input: read again after a wake
      beast::flat_buffer readBuf;
    };
    auto shared = std::make_shared<Shared>(ioc);
    auto ex = ioc.get_executor();
    body->setWake([weak = std::weak_ptr<Shared>(shared), ex] {
      auto s = weak.lock();
      if (!s || s->woken.exchange(true)) return;
      asio::post(ex, [weak] {
        if (auto s2 = weak.lock()) s2->timer.cancel();
      });
    });
    // Refers to `stream`: every operation on it ends before this coroutine returns.
    websocket::stream<Stream&> ws(stream);
    std::function<void()> readMore;
    try {
      ws.set_option(websocket::stream_base::decorator(
          [proto = r.websocketProtocol](websocket::response_type& res) {
            res.set(bhttp::field::server, "edgeplane-cloudcore");
            if (!proto.empty()) res.set(bhttp::field::sec_websocket_protocol, proto);
          }));
      beast::get_lowest_layer(stream).expires_never();
      co_await ws.async_accept(upgrade, use_awaitable);
      ws.binary(true);
      // Client messages are stdin chunks and resize events (kubectl sends at most 32 KiB each);
      // a larger one ends the socket instead of growing a buffer to Beast's 16 MiB default.
      ws.read_message_max(128 * 1024);
      {
        // kubectl up to 1.32 starts reading right after the upgrade but creates its stream
        // readers a moment later and drops what arrives in between ("Unknown stream id 1,
        // discarding message": kubernetes/kubernetes#131189, fixed in 1.33). Output that was
        // ready at once (a fast exec) would be lost, so the first frames wait a little.
        asio::steady_timer settle(ioc, std::chrono::milliseconds(50));
        boost::system::error_code ec;
        co_await settle.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      WebSocketStream* wsBody = body.get();  // outlives every read: joined below
      readMore = [&ws, shared, &readMore, wsBody] {
        shared->readerDone = false;
        ws.async_read(shared->readBuf,
                      [shared, &readMore, wsBody](boost::system::error_code ec, size_t) {
                        shared->readerDone = true;
                        if (ec) {
                          shared->clientGone = true;
                          shared->timer.cancel();
                          return;
                        }
                        wsBody->onMessage(beast::buffers_to_string(shared->readBuf.data()));
                        shared->readBuf.clear();
                        if (wsBody->wantsInput()) {
                          readMore();
                        } else {
                          shared->readerPaused = true;
                        }
                      });
      };
      readMore();
      for (;;) {
        if (shared->clientGone || stopping) break;
        shared->woken = false;
        if (shared->readerPaused && body->wantsInput()) {
          shared->readerPaused = false;
          readMore();
        }
        bool finished = false;
        WebSocketStream* raw = body.get();
        std::vector<std::string> messages = co_await onPool<std::vector<std::string>>(
            [raw, &finished] { return raw->next(finished); });
        for (auto& m : messages) {
          if (shared->clientGone) break;
          co_await ws.async_write(asio::buffer(m), use_awaitable);
        }
        if (finished || shared->clientGone || stopping) break;
        if (messages.empty() && !shared->woken) {
          shared->timer.expires_after(shared->readerPaused ? std::chrono::seconds(20)
                                                           : std::chrono::hours(24));
          boost::system::error_code ec;
          co_await shared->timer.async_wait(asio::redirect_error(use_awaitable, ec));
          if (!ec && shared->readerPaused && !shared->clientGone) {
            // Not reading the client (its input waits for room), so its going away would go
            // unnoticed while the stream is quiet: a ping that cannot be sent says so.
            boost::system::error_code pingEc;
            co_await ws.async_ping({}, asio::redirect_error(use_awaitable, pingEc));
            if (pingEc) shared->clientGone = true;
          }
        }
      }
      if (!shared->clientGone) {
        boost::system::error_code ec;
        co_await ws.async_close(websocket::close_code::normal,
                                asio::redirect_error(use_awaitable, ec));
      }
    } catch (const std::exception& e) {
      spdlog::debug("apiserver: websocket ended: {}", e.what());
    }
    // The pending read refers to `ws`: let it finish (the peer's close reply, or cancelled).
    for (int i = 0; !shared->readerDone; ++i) {
      if (i == 40) {
        boost::system::error_code ignored;
        beast::get_lowest_layer(stream).socket().cancel(ignored);
      }
      shared->timer.expires_after(std::chrono::milliseconds(50));
      boost::system::error_code ec;
      co_await shared->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    body->setWake(nullptr);
    body->close();
  }

  // Chunked streaming: waits for the stream's wake-up, its deadline, or the client going away.
  template <typename Stream>
  awaitable<void> streamResponse(Stream& stream, ServerResponse& r, unsigned version) {
    std::shared_ptr<BodyStream> body = r.stream;
    struct Shared {
      explicit Shared(asio::io_context& io) : timer(io) {}
      asio::steady_timer timer;
      std::atomic<bool> woken{true};
      bool clientGone = false;
    };
    auto shared = std::make_shared<Shared>(ioc);
    auto ex = ioc.get_executor();
    body->setWake([weak = std::weak_ptr<Shared>(shared), ex] {
      auto s = weak.lock();
      if (!s || s->woken.exchange(true)) return;
      asio::post(ex, [weak] {
        if (auto s2 = weak.lock()) s2->timer.cancel();
      });
    });
    try {
      bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(r.status), version};
      res.set(bhttp::field::server, "edgeplane-cloudcore");
      res.set(bhttp::field::content_type, r.contentType);
      setHeaders(res, r.headers);
      res.chunked(true);
      res.keep_alive(false);
      bhttp::response_serializer<bhttp::empty_body> sr{res};
      beast::get_lowest_layer(stream).expires_never();
      co_await bhttp::async_write_header(stream, sr, use_awaitable);

      // Watch the read side so a client that hangs up ends the stream promptly.
      auto readBuf = std::make_shared<std::array<char, 512>>();
      // (With TLS this is a read of the TLS stream, which may run next to the writes below.)
      stream.async_read_some(asio::buffer(*readBuf),
                             [shared, readBuf](boost::system::error_code ec, size_t) {
                               if (ec) {
                                 shared->clientGone = true;
                                 shared->timer.cancel();
                               }
                             });

      const auto deadline = body->deadline();
      for (;;) {
        if (shared->clientGone || stopping) break;
        if (std::chrono::steady_clock::now() >= deadline) break;
        shared->woken = false;
        bool finished = false;
        // Only trivially destructible captures inside a co_await expression: GCC 12 may
        // destroy temporaries of a co_await full-expression twice.
        BodyStream* raw = body.get();
        std::string data =
            co_await onPool<std::string>([raw, &finished] { return raw->next(finished); });
        if (!data.empty()) {
          co_await asio::async_write(stream, bhttp::make_chunk(asio::buffer(data)), use_awaitable);
        }
        if (finished) break;
        // The hang-up handler may have run while this coroutine was suspended above; its
        // timer cancel would then have been lost, so look again before waiting.
        if (shared->clientGone || stopping) break;
        if (data.empty() && !shared->woken) {
          shared->timer.expires_at(std::min(deadline, raw->nextCall()));
          boost::system::error_code ec;
          co_await shared->timer.async_wait(asio::redirect_error(use_awaitable, ec));
        }
      }
      if (!shared->clientGone) {
        co_await asio::async_write(stream, bhttp::make_chunk_last(), use_awaitable);
      }
    } catch (const std::exception& e) {
      spdlog::debug("apiserver: stream ended: {}", e.what());
    }
    body->setWake(nullptr);
    body->close();
  }
};

Server::Server(ServerOptions options, ServerHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() {
  stop();
}

Status Server::start() {
  if (impl_->options.tls.enabled()) {
#if !defined(EP_HTTP_NO_TLS)
    if (auto s = makeServerContext(impl_->options.tls, impl_->ssl); !s.isOk()) return s;
#else
    return invalidError("TLS: this build of the HTTP server has no TLS (plain loopback only)");
#endif
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return invalidError("apiListen: invalid address \"" + impl_->options.host + "\"");
  tcp::endpoint ep(addr, impl_->options.port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return unavailableError("apiListen: cannot listen on " + impl_->options.host + ":" +
                            std::to_string(impl_->options.port) + ": " + ec.message());
  }
  impl_->boundPort = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->ioc, impl_->acceptLoop(), asio::detached);
  impl_->ioThread = std::thread([this] { impl_->ioc.run(); });
  spdlog::info("apiserver: listening on {}://{}:{}", impl_->ssl ? "https" : "http",
               impl_->options.host, port());
  return Status::ok();
}

void Server::stop() {
  if (!impl_->ioThread.joinable()) return;
  impl_->stopping = true;
  asio::post(impl_->ioc, [this] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
  });
  // Streams notice `stopping` at their next wake-up; give in-flight requests a moment.
  impl_->ioc.stop();
  impl_->ioThread.join();
  impl_->pool.join();
}

uint64_t Server::acceptFailures() const {
  return impl_->acceptFailures.load(std::memory_order_relaxed);
}

uint16_t Server::port() const {
  return impl_->boundPort.load();
}

}  // namespace ep::http
