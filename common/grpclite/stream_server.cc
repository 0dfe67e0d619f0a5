#include "common/grpclite/stream_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <vector>

namespace ep::grpclite {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kWriteBatch = 64 * 1024;
constexpr int kReadsPerWakeup = 32;  // then the connection yields to the others on its thread

nghttp2_nv header(const std::string& name, const std::string& value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

const std::string kStatusName = ":status", k200 = "200", kContentType = "content-type",
                  kGrpcType = "application/grpc", kGrpcStatus = "grpc-status",
                  kGrpcMessage = "grpc-message";

// The newest OpenSSL error as text (clears the queue).
std::string sslError(const char* fallback) {
  unsigned long e = ERR_get_error();
  unsigned long last = e;
  while (e != 0) {
    last = e;
    e = ERR_get_error();
  }
  if (last == 0) return fallback;
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr memBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string peerAddress(const tcp::socket& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  if (ep.address().is_v6())
    return "ipv6:[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return "ipv4:" + ep.address().to_string() + ":" + std::to_string(ep.port());
}

// OpenSSL's socket BIO writes with write(2): a peer that went away raises SIGPIPE, which kills
// a process that does not ignore it. This one sends with MSG_NOSIGNAL (EPIPE comes back as an
// error instead). The socket is non-blocking; would-block becomes a retry.
int socketFd(BIO* b) {
  return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
}

int bioWrite(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  const ssize_t n = ::send(socketFd(b), data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int bioRead(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  const ssize_t n = ::recv(socketFd(b), data, static_cast<size_t>(len), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
  return static_cast<int>(n);
}

long bioCtrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

// Made once, never freed (OpenSSL keeps using it for every connection).
BIO_METHOD* socketBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "grpclite socket");
    if (m == nullptr) return m;
    BIO_meth_set_write(m, &bioWrite);
    BIO_meth_set_read(m, &bioRead);
    BIO_meth_set_ctrl(m, &bioCtrl);
    BIO_meth_set_create(m, &bioCreate);
    return m;
  }();
  return method;
}

int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  static const unsigned char kH2[] = {2, 'h', '2'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kH2, sizeof kH2, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // gRPC needs h2
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

class Conn;
class CallState;

// One I/O thread and the connections it serves (touched only on that thread).
struct IoThread {
  asio::io_context io{1};
  asio::steady_timer sweep{io};
  std::set<std::shared_ptr<Conn>> conns;
  // Calls dispatched and not yet done: what stop() still has to release when an observer never
  // finished (the call and its observer hold each other).
  std::set<std::shared_ptr<CallState>> calls;
  std::thread thread;
};

struct StreamServer::Impl : std::enable_shared_from_this<StreamServer::Impl> {
  Impl(StreamServerOptions o, CallAcceptor a) : options(std::move(o)), acceptFn(std::move(a)) {}
  ~Impl() {
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }

  Status makeTlsContext();
  void accept();
  void sweep(IoThread& t);
  // Logs a failed handshake, at most once a second (a scanner must not flood the log).
  void handshakeFailed(const std::string& peer, const std::string& why);

  const StreamServerOptions options;
  const CallAcceptor acceptFn;
  SSL_CTX* ctx = nullptr;
  std::vector<std::shared_ptr<IoThread>> threads;
  std::unique_ptr<tcp::acceptor> acceptor;  // on threads[0]
  size_t nextThread = 0;                    // threads[0] only
  bool stopping = false;                    // threads[0] only
  std::atomic<int> port{0};
  std::atomic<size_t> connections{0};
  std::atomic<int64_t> liveCalls{0};
  std::atomic<int64_t> lastFailureLog{0};
  std::atomic<uint64_t> failuresSuppressed{0};
  bool started = false;  // owner thread
};

// One call (HTTP/2 stream). Its I/O-thread state is touched only on its connection's thread;
// the ServerCall methods post there.
class CallState final : public ServerCall, public std::enable_shared_from_this<CallState> {
 public:
  CallState(StreamServer::Impl& server, std::weak_ptr<Conn> conn, std::weak_ptr<IoThread> thread,
            int32_t id, size_t maxMessageBytes)
      : server_(server),
        conn_(std::move(conn)),
        thread_(std::move(thread)),
        id_(id),
        deframer_(maxMessageBytes) {}

  void startRead() override {
    post([](CallState& c, Conn* conn) { c.doRead(conn); });
  }
  void startWrite(std::string message) override {
    post([m = std::move(message)](CallState& c, Conn* conn) mutable {
      c.doWrite(conn, std::move(m));
    });
  }
  void finish(RpcStatus status) override {
    post([s = std::move(status)](CallState& c, Conn* conn) mutable {
      c.doFinish(conn, std::move(s));
    });
  }
  void cancel() override {
    post([](CallState& c, Conn* conn) { c.doCancel(conn); });
  }

  // I/O thread from here on.
  void setObserver(std::shared_ptr<ServerCallObserver> o) { observer_ = std::move(o); }
  // After the I/O threads stopped: breaks the call <-> observer cycle of a call never finished.
  void dropObserver() { observer_.reset(); }
  void onData(Conn& conn, const uint8_t* data, size_t len);
  void onClientDone();
  void onClosed();
  void onTrailersSent(Conn& conn);
  static ssize_t readBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void*);
  // Ends the call from the server's side (bad input): status to the client, onCancel to the
  // observer.
  void abort(Conn& conn, RpcStatus status);
  void finishNow(Conn& conn, RpcStatus status) { doFinish(&conn, std::move(status)); }

  std::string method;
  bool grpc = false;

 private:
  template <typename F>
  void post(F f);
  template <typename F>
  void notify(F f);
  void doRead(Conn* conn);
  void doWrite(Conn* conn, std::string message);
  void doFinish(Conn* conn, RpcStatus status);
  void doCancel(Conn* conn);
  void deliver(Conn* conn);
  void maybeDone();
  void submitTrailersOnly(Conn& conn, const RpcStatus& status);
  // Gives the bytes held back for unread messages to flow control (the stream's and, what
  // matters once the stream is gone, the connection's window).
  void releaseHeldBack(Conn* conn);

  StreamServer::Impl& server_;
  const std::weak_ptr<Conn> conn_;
  const std::weak_ptr<IoThread> thread_;
  const int32_t id_;
  std::shared_ptr<ServerCallObserver> observer_;
  Deframer deframer_;
  std::deque<std::string> ready_;  // whole messages not yet read by the observer
  size_t heldBack_ = 0;            // received bytes not yet given back to flow control
  std::string out_;                // the framed message being written
  size_t outOff_ = 0;
  RpcStatus status_;
  bool readPending_ = false;
  bool writePending_ = false;
  bool clientDone_ = false;  // the client half-closed
  bool closed_ = false;      // the stream is closed (or its connection)
  bool headersSent_ = false;
  bool deferred_ = false;  // the data provider waits for a write or finish
  bool finishRequested_ = false;
  bool trailersSent_ = false;
  bool aborted_ = false;
  bool cancelNotified_ = false;
  bool cancelAfterWrite_ = false;  // aborted while a write was in flight: onCancel after it
  bool doneQueued_ = false;
};

// One TCP connection: TLS (optional) and an HTTP/2 server session.
class Conn final : public std::enable_shared_from_this<Conn> {
 public:
  // `thread` runs this connection; it owns the io_context and outlives every handler of it.
  Conn(StreamServer::Impl& server, IoThread* thread, std::weak_ptr<IoThread> weak, tcp::socket sock)
      : server_(server),
        thread_(thread),
        threadWeak_(std::move(weak)),
        sock_(std::move(sock)),
        created_(SteadyClock::now()),
        lastRead_(created_) {
    peer_.address = peerAddress(sock_);
  }
  ~Conn() {
    if (session_ != nullptr) nghttp2_session_del(session_);
    if (ssl_ != nullptr) SSL_free(ssl_);
  }

  void start() {
    error_code ec;
    sock_.non_blocking(true, ec);
    sock_.set_option(tcp::no_delay(true), ec);
    if (server_.ctx != nullptr) {
      ssl_ = SSL_new(server_.ctx);
      BIO_METHOD* method = socketBioMethod();
      BIO* bio = ssl_ != nullptr && method != nullptr ? BIO_new(method) : nullptr;
      if (bio == nullptr) return close("cannot create the TLS session");
      BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(sock_.native_handle())));
      SSL_set_bio(ssl_, bio, bio);  // the SSL owns the one reference
      SSL_set_accept_state(ssl_);
      handshake();
    } else {
      startHttp2();
    }
  }

  void close(const std::string& why) {
    if (dead_) return;
    dead_ = true;
    spdlog::debug("grpclite: connection from {} closed: {}", peer_.address, why);
    auto calls = std::move(calls_);
    calls_.clear();
    for (auto& [id, call] : calls) call->onClosed();
    error_code ignored;
    sock_.close(ignored);
    server_.connections.fetch_sub(1);
    thread_->conns.erase(shared_from_this());
  }

  // Tells the client that no new streams will be accepted (the stop has begun).
  void shutdownNotice() {
    if (dead_ || session_ == nullptr) return;
    nghttp2_submit_shutdown_notice(session_);
    flush();
  }

  // Asks the client to go away (GOAWAY), then closes.
  void terminate() {
    if (dead_) return;
    if (session_ != nullptr) {
      nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
      flush();
    }
    close("server stopping");
  }

  void tick(SteadyClock::time_point now) {
    if (dead_) return;
    if (session_ == nullptr || !prefaceSeen_) {
      if (now - created_ > server_.options.handshakeTimeout) {
        server_.handshakeFailed(peer_.address, session_ == nullptr
                                                   ? "handshake timed out"
                                                   : "no HTTP/2 preface after the handshake");
        close("handshake timed out");
      }
      return;
    }
    if (pingOutstanding_) {
      if (now - pingSent_ > server_.options.keepaliveTimeout) close("keepalive timeout");
      return;
    }
    if (ssl_ != nullptr && !writeArmed_ && outOff_ == out_.size() &&
        now - lastTicket_ > server_.options.tls->ticketLifetime / 2) {
      // A fresh ticket, sent now (SSL_do_handshake writes it) or with the next write.
      lastTicket_ = now;
      ERR_clear_error();
      if (SSL_new_session_ticket(ssl_) == 1) SSL_do_handshake(ssl_);
      ERR_clear_error();
    }
    if (server_.options.keepaliveTime.count() > 0 &&
        now - lastRead_ > server_.options.keepaliveTime) {
      nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
      pingOutstanding_ = true;
      pingSent_ = now;
      flush();
    }
  }

  // Sends what nghttp2 has queued; never inside nghttp2_session_mem_recv (not reentrant).
  void flush() {
    if (dead_ || session_ == nullptr || inRecv_ || writeArmed_) return;
    for (;;) {
      if (outOff_ == out_.size()) {
        out_.clear();
        outOff_ = 0;
        while (out_.size() < kWriteBatch) {
          const uint8_t* data = nullptr;
          const ssize_t n = nghttp2_session_mem_send(session_, &data);
          if (n < 0) return close(std::string("http2: ") + nghttp2_strerror(static_cast<int>(n)));
          if (n == 0) break;
          out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
        }
        if (!rstAfterTrailers_.empty()) {
          for (int32_t id : rstAfterTrailers_)
            nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
          rstAfterTrailers_.clear();
          if (out_.empty()) continue;
        }
        if (out_.empty()) {
          if (out_.capacity() > 4096) std::string().swap(out_);
          if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))
            close("session ended");
          return;
        }
      }
      const size_t left = out_.size() - outOff_;
      size_t written = 0;
      if (ssl_ != nullptr) {
        ERR_clear_error();
        const int r = SSL_write(ssl_, out_.data() + outOff_, static_cast<int>(left));
        if (r <= 0) {
          const int e = SSL_get_error(ssl_, r);
          if (e == SSL_ERROR_WANT_WRITE) return armWrite();
          if (e == SSL_ERROR_WANT_READ) {
            writeWantsRead_ = true;  // TLS must read first: the write resumes once readable
            return armRead();
          }
          return close("TLS write: " + sslError("connection lost"));
        }
        written = static_cast<size_t>(r);
      } else {
        const ssize_t r = ::send(sock_.native_handle(), out_.data() + outOff_, left, MSG_NOSIGNAL);
        if (r < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) return armWrite();
          return close(std::string("write: ") + std::strerror(errno));
        }
        written = static_cast<size_t>(r);
      }
      outOff_ += written;
    }
  }

  nghttp2_session* session() { return session_; }
  bool dead() const { return dead_; }
  void rstAfterTrailers(int32_t id) { rstAfterTrailers_.push_back(id); }

 private:
  static Conn* self(void* user) { return static_cast<Conn*>(user); }

  void handshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      lastTicket_ = SteadyClock::now();
      if (server_.options.onHandshake) server_.options.onHandshake(SSL_session_reused(ssl_) == 1);
      return startHttp2();
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) return armRead();
    if (e == SSL_ERROR_WANT_WRITE) return armWrite();
    const std::string why = e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN
                                ? sslError("connection closed during the handshake")
                                : sslError("handshake failed");
    server_.handshakeFailed(peer_.address, why);
    close("TLS handshake: " + why);
  }

  void startHttp2() {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Conn::onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &Conn::onHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Conn::onDataChunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Conn::onFrameRecv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &Conn::onFrameSend);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Conn::onStreamClose);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // Flow control follows the observer's reads (CallState::deliver), not receipt.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    const int rv = nghttp2_session_server_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
      session_ = nullptr;
      return close("cannot create the HTTP/2 session");
    }
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server_.options.maxConcurrentStreams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    // The connection's window fits a full window on several streams at once, so that one slow
    // reader does not stop the others.
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 1 << 20);
    lastRead_ = SteadyClock::now();
    // TLS may already hold the client's preface (it came with the handshake's last flight).
    onReadable();
  }

  void armRead() {
    if (readArmed_ || dead_) return;
    readArmed_ = true;
    sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const error_code& ec) {
      self->readArmed_ = false;
      if (self->dead_) return;
      if (ec) return self->close("wait: " + ec.message());
      if (self->session_ == nullptr) return self->handshake();
      if (self->writeWantsRead_) {
        self->writeWantsRead_ = false;
        self->flush();
      }
      if (!self->dead_) self->onReadable();
    });
  }

  void armWrite() {
    if (writeArmed_ || dead_) return;
    writeArmed_ = true;
    sock_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](const error_code& ec) {
      self->writeArmed_ = false;
      if (self->dead_) return;
      if (ec) return self->close("wait: " + ec.message());
      if (self->session_ == nullptr) return self->handshake();
      if (self->readWantsWrite_) {
        self->readWantsWrite_ = false;
        self->onReadable();
      }
      self->flush();
    });
  }

  void onReadable() {
    static thread_local std::array<uint8_t, kReadChunk> buf;  // one per I/O thread
    for (int i = 0; i < kReadsPerWakeup; ++i) {
      size_t got = 0;
      if (ssl_ != nullptr) {
        ERR_clear_error();
        const int r = SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()));
        if (r <= 0) {
          const int e = SSL_get_error(ssl_, r);
          if (e == SSL_ERROR_WANT_READ) {
            armRead();
            break;
          }
          if (e == SSL_ERROR_WANT_WRITE) {
            readWantsWrite_ = true;
            armWrite();
            break;
          }
          return close(e == SSL_ERROR_ZERO_RETURN ? std::string("closed by the peer")
                                                  : "TLS read: " + sslError("connection lost"));
        }
        got = static_cast<size_t>(r);
      } else {
        const ssize_t r = ::recv(sock_.native_handle(), buf.data(), buf.size(), 0);
        if (r == 0) return close("closed by the peer");
        if (r < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            armRead();
            break;
          }
          return close(std::string("read: ") + std::strerror(errno));
        }
        got = static_cast<size_t>(r);
      }
      lastRead_ = SteadyClock::now();
      pingOutstanding_ = false;  // anything received proves the peer alive
      inRecv_ = true;
      const ssize_t rv = nghttp2_session_mem_recv(session_, buf.data(), got);
      inRecv_ = false;
      if (rv < 0) return close(std::string("http2: ") + nghttp2_strerror(static_cast<int>(rv)));
      if (i + 1 == kReadsPerWakeup) {
        // More may be waiting: come back after the other connections had their turn.
        asio::post(thread_->io, [self = shared_from_this()] {
          if (!self->dead_) self->onReadable();
        });
      }
    }
    flush();
  }

  CallState* call(int32_t id) {
    auto it = calls_.find(id);
    return it == calls_.end() ? nullptr : it->second.get();
  }

  // nghttp2's callbacks are C frames: no exception may cross them. A failure (allocation)
  // fails the session, which closes the connection.
  template <typename F>
  static int guarded(F f) {
    try {
      return f();
    } catch (const std::exception& e) {
      spdlog::error("grpclite: HTTP/2 callback: {}", e.what());
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }

  // The largest request message a call on this connection may send: a client without a
  // certificate gets maxMessageBytesWithoutCertificate (it can only join).
  size_t messageLimit() const {
    if (ssl_ != nullptr && SSL_get0_peer_certificate(ssl_) == nullptr)
      return server_.options.maxMessageBytesWithoutCertificate;
    return server_.options.maxMessageBytes;
  }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    return guarded([&] {
      if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
      auto* c = self(user);
      c->calls_[frame->hd.stream_id] = std::make_shared<CallState>(
          c->server_, c->weak_from_this(), c->threadWeak_, frame->hd.stream_id, c->messageLimit());
      return 0;
    });
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    return guarded([&] {
      CallState* call = self(user)->call(frame->hd.stream_id);
      if (call == nullptr || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
      std::string_view n(reinterpret_cast<const char*>(name), namelen);
      std::string_view v(reinterpret_cast<const char*>(value), valuelen);
      if (n == ":path") call->method.assign(v);
      if (n == "content-type") call->grpc = v.rfind("application/grpc", 0) == 0;
      return 0;
    });
  }

  static int onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* user) {
    return guarded([&] {
      auto* c = self(user);
      if (CallState* call = c->call(id)) {
        call->onData(*c, data, len);
      } else {
        nghttp2_session_consume(c->session_, id, len);
      }
      return 0;
    });
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    return guarded([&] {
      auto* c = self(user);
      c->prefaceSeen_ = true;
      if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->pingOutstanding_ = false;
        return 0;
      }
      if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        c->dispatch(frame->hd.stream_id);
      }
      if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
          (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        if (CallState* call = c->call(frame->hd.stream_id)) call->onClientDone();
      }
      return 0;
    });
  }

  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    return guarded([&] {
      if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        auto* c = self(user);
        if (CallState* call = c->call(frame->hd.stream_id)) call->onTrailersSent(*c);
      }
      return 0;
    });
  }

  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t, void* user) {
    return guarded([&] {
      auto* c = self(user);
      auto it = c->calls_.find(id);
      if (it == c->calls_.end()) return 0;
      auto call = std::move(it->second);
      c->calls_.erase(it);
      call->onClosed();
      return 0;
    });
  }

  void dispatch(int32_t id) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    std::shared_ptr<CallState> call = it->second;
    server_.liveCalls.fetch_add(1);
    thread_->calls.insert(call);
    if (!call->grpc) {
      return call->finishNow(*this, {RpcCode::kInternal, "content-type is not application/grpc"});
    }
    PeerInfo peer{peer_.address, nullptr};
    if (ssl_ != nullptr) peer.certificate = SSL_get0_peer_certificate(ssl_);
    std::shared_ptr<ServerCallObserver> observer;
    try {
      observer = server_.acceptFn(call->method, peer, call);
    } catch (const std::exception& e) {
      spdlog::error("grpclite: call {}: {}", call->method, e.what());
      return call->finishNow(*this, {RpcCode::kInternal, "internal error"});
    }
    if (!observer) {
      return call->finishNow(*this, {RpcCode::kUnimplemented, "unknown method " + call->method});
    }
    call->setObserver(std::move(observer));
  }

  StreamServer::Impl& server_;
  IoThread* const thread_;
  const std::weak_ptr<IoThread> threadWeak_;  // for the calls (they may outlive the server)
  tcp::socket sock_;
  SSL* ssl_ = nullptr;
  nghttp2_session* session_ = nullptr;  // null until the TLS handshake completed
  PeerInfo peer_;
  std::map<int32_t, std::shared_ptr<CallState>> calls_;
  std::vector<int32_t> rstAfterTrailers_;
  std::string out_;
  size_t outOff_ = 0;
  const SteadyClock::time_point created_;
  SteadyClock::time_point lastRead_;
  SteadyClock::time_point pingSent_{};
  SteadyClock::time_point lastTicket_{};  // when the client last got (or resumed) a ticket
  bool pingOutstanding_ = false;
  bool readArmed_ = false;
  bool writeArmed_ = false;
  bool readWantsWrite_ = false;
  bool writeWantsRead_ = false;
  bool prefaceSeen_ = false;  // a frame arrived after the handshake
  bool inRecv_ = false;
  bool dead_ = false;
};

// ---- CallState ----

template <typename F>
void CallState::post(F f) {
  auto thread = thread_.lock();
  if (!thread) return;  // the server is gone
  asio::post(thread->io, [self = shared_from_this(), f = std::move(f)]() mutable {
    auto conn = self->conn_.lock();
    f(*self, conn.get());
  });
}

template <typename F>
void CallState::notify(F f) {
  auto thread = thread_.lock();
  if (!thread) return;
  asio::post(thread->io, [self = shared_from_this(), f = std::move(f)]() mutable {
    if (!self->observer_) return;
    try {
      f(*self->observer_);
    } catch (const std::exception& e) {
      spdlog::error("grpclite: call {}: observer: {}", self->method, e.what());
    }
  });
}

void CallState::releaseHeldBack(Conn* conn) {
  if (heldBack_ == 0) return;
  std::shared_ptr<Conn> owner;
  if (conn == nullptr) {
    owner = conn_.lock();
    conn = owner.get();
  }
  const size_t n = heldBack_;
  heldBack_ = 0;
  // Also after the stream closed: nghttp2 then gives back the connection's window.
  if (conn != nullptr && !conn->dead()) nghttp2_session_consume(conn->session(), id_, n);
}

void CallState::onData(Conn& conn, const uint8_t* data, size_t len) {
  if (closed_ || aborted_ || finishRequested_) {
    nghttp2_session_consume(conn.session(), id_, len);  // nobody will read it
    return;
  }
  deframer_.feed(data, len);
  std::string m;
  while (deframer_.next(&m)) ready_.push_back(std::move(m));
  if (deframer_.failed()) {
    nghttp2_session_consume(conn.session(), id_, len);
    const bool big = deframer_.error().find("above the limit") != std::string::npos;
    return abort(conn, {big ? RpcCode::kResourceExhausted : RpcCode::kInternal, deframer_.error()});
  }
  if (ready_.empty()) {
    // Part of a message: give the window back so the rest can come.
    nghttp2_session_consume(conn.session(), id_, len);
  } else {
    heldBack_ += len;  // given back when the observer has read what is queued
  }
  deliver(&conn);
}

void CallState::onClientDone() {
  clientDone_ = true;
  if (deframer_.buffered() != 0 && !aborted_ && !closed_) {
    if (auto conn = conn_.lock()) abort(*conn, {RpcCode::kInternal, "truncated message"});
    return;
  }
  deliver(nullptr);
}

void CallState::deliver(Conn* conn) {
  if (!readPending_) return;
  if (!ready_.empty()) {
    readPending_ = false;
    std::string m = std::move(ready_.front());
    ready_.pop_front();
    if (ready_.empty()) {
      deframer_.shrink();
      releaseHeldBack(conn);
    }
    notify([m = std::move(m)](ServerCallObserver& o) mutable { o.onReadDone(true, std::move(m)); });
    return;
  }
  if (clientDone_ || closed_ || aborted_) {
    readPending_ = false;
    notify([](ServerCallObserver& o) { o.onReadDone(false, std::string()); });
  }
}

void CallState::doRead(Conn* conn) {
  if (readPending_) return;  // one read at a time (a second is a caller's bug: ignored)
  readPending_ = true;
  deliver(conn);
  // A consumed window goes out with the next write.
  if (conn != nullptr) conn->flush();
}

void CallState::doWrite(Conn* conn, std::string message) {
  if (closed_ || aborted_ || finishRequested_ || writePending_ || conn == nullptr) {
    notify([](ServerCallObserver& o) { o.onWriteDone(false); });
    return;
  }
  out_ = frameMessage(message);
  outOff_ = 0;
  writePending_ = true;
  if (!headersSent_) {
    headersSent_ = true;
    nghttp2_data_provider body{};
    body.source.ptr = this;
    body.read_callback = &CallState::readBody;
    const nghttp2_nv h[] = {header(kStatusName, k200), header(kContentType, kGrpcType)};
    if (nghttp2_submit_response(conn->session(), id_, h, std::size(h), &body) != 0) {
      writePending_ = false;
      notify([](ServerCallObserver& o) { o.onWriteDone(false); });
      return;
    }
  } else if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(conn->session(), id_);
  }
  conn->flush();
}

ssize_t CallState::readBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                            uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* c = static_cast<CallState*>(source->ptr);
  if (c->outOff_ < c->out_.size()) {
    const size_t n = std::min(length, c->out_.size() - c->outOff_);
    std::memcpy(buf, c->out_.data() + c->outOff_, n);
    c->outOff_ += n;
    if (c->outOff_ == c->out_.size()) {
      if (c->out_.capacity() > 4096) {
        std::string().swap(c->out_);
      } else {
        c->out_.clear();
      }
      c->outOff_ = 0;
      c->writePending_ = false;
      c->notify([](ServerCallObserver& o) { o.onWriteDone(true); });
      if (c->cancelAfterWrite_) {
        c->cancelAfterWrite_ = false;
        c->notify([](ServerCallObserver& o) { o.onCancel(); });
      }
    }
    return static_cast<ssize_t>(n);
  }
  if ((c->finishRequested_ || c->aborted_) && !c->trailersSent_) {
    c->trailersSent_ = true;
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    const std::string code = std::to_string(c->status_.codeNumber());
    const std::string msg = grpcMessageEncode(c->status_.message);
    std::vector<nghttp2_nv> t = {header(kGrpcStatus, code)};
    if (!msg.empty()) t.push_back(header(kGrpcMessage, msg));
    nghttp2_submit_trailer(session, id, t.data(), t.size());
    return 0;
  }
  c->deferred_ = true;
  return NGHTTP2_ERR_DEFERRED;
}

void CallState::submitTrailersOnly(Conn& conn, const RpcStatus& status) {
  headersSent_ = true;
  trailersSent_ = true;
  const std::string code = std::to_string(status.codeNumber());
  const std::string msg = grpcMessageEncode(status.message);
  std::vector<nghttp2_nv> h = {header(kStatusName, k200), header(kContentType, kGrpcType),
                               header(kGrpcStatus, code)};
  if (!msg.empty()) h.push_back(header(kGrpcMessage, msg));
  nghttp2_submit_response(conn.session(), id_, h.data(), h.size(), nullptr);
}

void CallState::doFinish(Conn* conn, RpcStatus status) {
  if (finishRequested_) return;
  finishRequested_ = true;
  // Messages not read by now never will be: their window goes back.
  ready_.clear();
  releaseHeldBack(conn);
  if (closed_ || aborted_ || conn == nullptr) return maybeDone();  // the status went, or cannot
  status_ = std::move(status);
  if (!headersSent_) {
    submitTrailersOnly(*conn, status_);
  } else if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(conn->session(), id_);
  }
  conn->flush();
}

void CallState::doCancel(Conn* conn) {
  if (closed_ || conn == nullptr) return;
  nghttp2_submit_rst_stream(conn->session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
  conn->flush();
}

void CallState::abort(Conn& conn, RpcStatus status) {
  if (aborted_ || closed_) return;
  spdlog::warn("grpclite: call {}: {}", method, status.toString());
  if (finishRequested_) {
    // The observer's status is on its way already: cut the stream.
    nghttp2_submit_rst_stream(conn.session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    aborted_ = true;
  } else if (!headersSent_) {
    submitTrailersOnly(conn, status);  // then RST (onTrailersSent)
    aborted_ = true;
  } else {
    // Trailers after the message being written, if any (readBody), then RST.
    aborted_ = true;
    status_ = std::move(status);
    if (deferred_) {
      deferred_ = false;
      nghttp2_session_resume_data(conn.session(), id_);
    }
  }
  ready_.clear();
  releaseHeldBack(&conn);
  if (!finishRequested_ && !cancelNotified_) {
    cancelNotified_ = true;
    if (readPending_) {
      readPending_ = false;
      notify([](ServerCallObserver& o) { o.onReadDone(false, std::string()); });
    }
    // Pending operations complete before onCancel: a write in flight finishes first (its bytes
    // are on their way, the trailers follow them).
    if (writePending_) {
      cancelAfterWrite_ = true;
    } else {
      notify([](ServerCallObserver& o) { o.onCancel(); });
    }
  }
}

void CallState::onTrailersSent(Conn& conn) {
  // gRPC servers reset a stream the client has not half-closed once the trailers are out, so
  // that it closes now rather than when the client gets round to it.
  if (!clientDone_) conn.rstAfterTrailers(id_);
}

void CallState::onClosed() {
  if (closed_) return;
  closed_ = true;
  ready_.clear();
  releaseHeldBack(nullptr);
  std::string().swap(out_);
  if (writePending_) {
    writePending_ = false;
    notify([](ServerCallObserver& o) { o.onWriteDone(false); });
  }
  if (cancelAfterWrite_) {
    cancelAfterWrite_ = false;
    notify([](ServerCallObserver& o) { o.onCancel(); });
  }
  if (readPending_) {
    readPending_ = false;
    notify([](ServerCallObserver& o) { o.onReadDone(false, std::string()); });
  }
  if (!finishRequested_ && !cancelNotified_) {
    cancelNotified_ = true;
    notify([](ServerCallObserver& o) { o.onCancel(); });
  }
  maybeDone();
}

void CallState::maybeDone() {
  if (!closed_ || !finishRequested_ || doneQueued_) return;
  doneQueued_ = true;
  auto thread = thread_.lock();
  auto* server = &server_;
  auto done = [self = shared_from_this(), server, weakThread = thread_] {
    if (auto t = weakThread.lock()) t->calls.erase(self);
    auto observer = std::move(self->observer_);
    if (observer) {
      try {
        observer->onDone();
      } catch (const std::exception& e) {
        spdlog::error("grpclite: call {}: observer: {}", self->method, e.what());
      }
    }
    server->liveCalls.fetch_sub(1);
  };
  if (thread) {
    asio::post(thread->io, std::move(done));
  } else {
    server_.liveCalls.fetch_sub(1);
  }
}

// ---- Impl ----

Status StreamServer::Impl::makeTlsContext() {
  const StreamServerTls& tls = *options.tls;
  ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return internalError("TLS: " + sslError("cannot create a context"));
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  ERR_clear_error();
  {
    auto bio = memBio(tls.certPem);
    X509* leaf = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (leaf == nullptr) return invalidError("tls.certPem: " + sslError("no certificate"));
    const int ok = SSL_CTX_use_certificate(ctx, leaf);
    X509_free(leaf);
    if (ok != 1) return invalidError("tls.certPem: " + sslError("unusable certificate"));
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
        X509_free(extra);
        return invalidError("tls.certPem: " + sslError("unusable chain certificate"));
      }
    }
    ERR_clear_error();  // the end of the PEM list
  }
  {
    auto bio = memBio(tls.keyPem);
    EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (key == nullptr) return invalidError("tls.keyPem: " + sslError("no private key"));
    const int ok = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (ok != 1 || SSL_CTX_check_private_key(ctx) != 1)
      return invalidError("tls.keyPem: " + sslError("does not match tls.certPem"));
  }
  if (!tls.clientCaPem.empty()) {
    auto bio = memBio(tls.clientCaPem);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    int added = 0;
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, ca);
      X509_free(ca);
      ++added;
    }
    ERR_clear_error();
    if (added == 0) return invalidError("tls.clientCaPem: no certificate");
    // Asked for, verified when presented, not required (joining nodes have none yet).
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  SSL_CTX_set_alpn_select_cb(ctx, &selectAlpn, nullptr);
  // Resumption by stateless TLS 1.3 tickets only: nothing cached per session on the server.
  static const unsigned char kContext[] = "edgeplane-grpclite";
  SSL_CTX_set_session_id_context(ctx, kContext, sizeof kContext - 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_timeout(ctx, static_cast<long>(tls.ticketLifetime.count()));
  if (!tls.ticketKey.empty()) {
    if (tls.ticketKey.size() != 80) return invalidError("tls.ticketKey: must be 80 bytes");
    if (SSL_CTX_set_tlsext_ticket_keys(
            ctx, reinterpret_cast<unsigned char*>(const_cast<char*>(tls.ticketKey.data())), 80) !=
        1) {
      return invalidError("tls.ticketKey: " + sslError("refused"));
    }
  }
  return Status::ok();
}

void StreamServer::Impl::handshakeFailed(const std::string& peer, const std::string& why) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(SteadyClock::now().time_since_epoch())
          .count();
  int64_t last = lastFailureLog.load();
  if (now > last && lastFailureLog.compare_exchange_strong(last, now)) {
    const uint64_t more = failuresSuppressed.exchange(0);
    if (more > 0) {
      spdlog::warn("grpclite: TLS handshake from {} failed: {} ({} more failed in the last second)",
                   peer, why, more);
    } else {
      spdlog::warn("grpclite: TLS handshake from {} failed: {}", peer, why);
    }
  } else {
    failuresSuppressed.fetch_add(1);
  }
}

void StreamServer::Impl::accept() {
  // Raw pointers in handlers: a handler queued in an io_context must not own it.
  IoThread* target = threads[nextThread].get();
  std::weak_ptr<IoThread> weak = threads[nextThread];
  nextThread = (nextThread + 1) % threads.size();
  acceptor->async_accept(target->io, [this, target, weak](const error_code& ec, tcp::socket sock) {
    if (stopping) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      spdlog::warn("grpclite: accept on port {}: {}", port.load(), ec.message());
      // Out of descriptors and the like: try again shortly rather than spinning.
      auto t = std::make_shared<asio::steady_timer>(threads[0]->io, std::chrono::milliseconds(100));
      t->async_wait([this, t](const error_code&) {
        if (!stopping) accept();
      });
      return;
    }
    connections.fetch_add(1);
    asio::post(target->io, [this, target, weak, s = std::move(sock)]() mutable {
      auto conn = std::make_shared<Conn>(*this, target, weak, std::move(s));
      target->conns.insert(conn);
      conn->start();
    });
    accept();
  });
}

void StreamServer::Impl::sweep(IoThread& t) {
  t.sweep.expires_after(std::chrono::seconds(1));
  t.sweep.async_wait([this, &t](const error_code& ec) {
    if (ec) return;
    const auto now = SteadyClock::now();
    auto conns = t.conns;  // tick may close (erase) connections
    for (const auto& c : conns) c->tick(now);
    sweep(t);
  });
}

// ---- StreamServer ----

StreamServer::StreamServer(StreamServerOptions options, CallAcceptor acceptor)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(acceptor))) {}

StreamServer::~StreamServer() {
  stop(std::chrono::milliseconds(0));
}

Status StreamServer::start() {
  Impl& s = *impl_;
  if (s.started) return Status::ok();
  s.stopping = false;
  if (s.ctx != nullptr) {
    SSL_CTX_free(s.ctx);
    s.ctx = nullptr;
  }
  if (s.options.tls) {
    if (Status st = s.makeTlsContext(); !st.isOk()) return st;
  }
  const unsigned n = std::max(1u, s.options.ioThreads);
  for (unsigned i = 0; i < n; ++i) s.threads.push_back(std::make_shared<IoThread>());
  error_code ec;
  auto address = asio::ip::make_address(s.options.host, ec);
  if (ec) return invalidError("host \"" + s.options.host + "\": not an IP address");
  tcp::endpoint ep(address, s.options.port);
  s.acceptor = std::make_unique<tcp::acceptor>(s.threads[0]->io);
  s.acceptor->open(ep.protocol(), ec);
  // SO_REUSEADDR (TIME_WAIT after a restart) but never SO_REUSEPORT: binding is exclusive.
  if (!ec) s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(ep, ec);
  if (!ec) s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    const std::string where = s.options.host + ":" + std::to_string(s.options.port);
    s.acceptor.reset();
    s.threads.clear();
    return unavailableError("cannot listen on " + where + ": " + ec.message());
  }
  s.port = s.acceptor->local_endpoint().port();
  s.accept();
  for (auto& t : s.threads) {
    s.sweep(*t);
    t->thread = std::thread([t = t.get()] {
      for (;;) {
        try {
          t->io.run();
          return;  // stopped
        } catch (const std::exception& e) {
          // A handler threw (a broken invariant): the thread keeps serving its connections.
          spdlog::error("grpclite: I/O thread: {}", e.what());
        }
      }
    });
  }
  s.started = true;
  return Status::ok();
}

void StreamServer::stop(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  if (!s.started) return;
  s.started = false;
  asio::post(s.threads[0]->io, [impl = &s] {
    impl->stopping = true;
    error_code ignored;
    impl->acceptor->close(ignored);
  });
  // No new calls on open connections either (GOAWAY's shutdown notice).
  for (auto& t : s.threads) {
    asio::post(t->io, [t = t.get()] {
      for (const auto& c : t->conns) c->shutdownNotice();
    });
  }
  const auto waitCalls = [&](std::chrono::milliseconds limit) {
    const auto deadline = SteadyClock::now() + limit;
    while (s.liveCalls.load() > 0 && SteadyClock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  waitCalls(grace);
  // Close what is left: calls are cancelled; their observers finish and get onDone.
  for (auto& t : s.threads) {
    asio::post(t->io, [t = t.get()] {
      auto conns = t->conns;
      for (const auto& c : conns) c->terminate();
      t->sweep.cancel();
    });
  }
  waitCalls(std::chrono::milliseconds(1000));
  for (auto& t : s.threads) t->io.stop();
  for (auto& t : s.threads) {
    if (t->thread.joinable()) t->thread.join();
  }
  for (auto& t : s.threads) {
    t->conns.clear();
    for (const auto& call : t->calls) call->dropObserver();  // never finished: break the cycle
    t->calls.clear();
  }
  s.acceptor.reset();
  s.threads.clear();  // queued handlers (and the calls they hold) go with the io_contexts
}

uint16_t StreamServer::port() const {
  return static_cast<uint16_t>(impl_->port.load());
}

size_t StreamServer::connections() const {
  return impl_->connections.load();
}

}  // namespace ep::grpclite
