#include "common/grpclite/channel.h"

#include <google/protobuf/message_lite.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
// wolfSSL's build options must precede its OpenSSL-compatible headers.
#include <wolfssl/options.h>
// clang-format off
#include <openssl/ssl.h>
// clang-format on
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"
#include "common/tlsclient/client_tls.h"

namespace ep::grpclite {

namespace asio = boost::asio;
using boost::system::error_code;

struct TlsSessionCache::Impl {
  ~Impl() {
    if (session != nullptr) SSL_SESSION_free(session);
  }
  // Offers the remembered session to a connection about to handshake.
  void offer(SSL* ssl) {
    MutexLock l(mu);
    if (session != nullptr) SSL_set_session(ssl, session);
  }
  // Remembers a copy of the connection's session `live` (a reference the caller owns and which
  // this releases; null is ignored) in place of the previous one. A copy: the live session
  // keeps changing with the connection (new tickets) while other channels may read this one.
  void store(SSL_SESSION* live) {
    if (live == nullptr) return;
    SSL_SESSION* s = SSL_SESSION_dup(live);
    SSL_SESSION_free(live);
    if (s == nullptr) return;
    MutexLock l(mu);
    if (session != nullptr) SSL_SESSION_free(session);
    session = s;
  }
  void clear() {
    MutexLock l(mu);
    if (session != nullptr) SSL_SESSION_free(session);
    session = nullptr;
  }

  Mutex mu;
  SSL_SESSION* session EP_GUARDED_BY(mu) = nullptr;
  std::atomic<uint64_t> resumed{0};
  std::atomic<uint64_t> full{0};
};

TlsSessionCache::TlsSessionCache() : impl_(std::make_unique<Impl>()) {}
TlsSessionCache::~TlsSessionCache() = default;
uint64_t TlsSessionCache::resumed() const {
  return impl_->resumed.load();
}
uint64_t TlsSessionCache::full() const {
  return impl_->full.load();
}
void TlsSessionCache::clear() {
  impl_->clear();
}

namespace {

struct Target {
  bool isUnix = false;
  std::string host, port, path;
};

Target parseTarget(const std::string& t) {
  Target out;
  std::string s = t;
  if (s.rfind("unix://", 0) == 0) {
    out.isUnix = true;
    out.path = s.substr(7);
  } else if (s.rfind("unix:", 0) == 0) {
    out.isUnix = true;
    out.path = s.substr(5);
  } else if (!s.empty() && s[0] == '/') {
    out.isUnix = true;
    out.path = s;
  } else if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    out.host = s.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    if (close != std::string::npos && close + 1 < s.size() && s[close + 1] == ':') {
      out.port = s.substr(close + 2);
    }
  } else {
    auto colon = s.rfind(':');
    out.host = s.substr(0, colon);
    if (colon != std::string::npos) out.port = s.substr(colon + 1);
  }
  if (!out.isUnix && out.port.empty()) out.port = "443";
  return out;
}

std::string percentDecode(std::string_view in) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

RpcCode codeForHttpStatus(int status) {
  switch (status) {
    case 400:
      return RpcCode::kInternal;
    case 401:
      return RpcCode::kUnauthenticated;
    case 403:
      return RpcCode::kPermissionDenied;
    case 404:
      return RpcCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return RpcCode::kUnavailable;
    default:
      return RpcCode::kUnknown;
  }
}

// grpc-timeout: at most 8 digits and a unit.
std::string grpcTimeout(std::chrono::milliseconds t) {
  const int64_t ms = std::max<int64_t>(t.count(), 1);
  if (ms < 100000000) return std::to_string(ms) + "m";
  return std::to_string(std::min<int64_t>(ms / 1000, 99999999)) + "S";
}

// ---------------------------------------------------------------- TLS settings

// The channel's TLS client context, built once from TlsOptions when the channel is created.
struct TlsConfig {
  tlsclient::Config client;        // context null: plaintext, or `error` is set
  std::optional<RpcStatus> error;  // a TlsOptions field that cannot be used (INVALID_ARGUMENT)
};

TlsConfig makeTlsConfig(const TlsOptions& o, const Target& target) {
  TlsConfig out;
  tlsclient::Options t;
  t.caPem = o.caPem;
  t.certPem = o.certPem;
  t.keyPem = o.keyPem;
  t.serverName = o.serverName;
  t.insecureSkipVerify = o.insecureSkipVerify;
  t.tls13Only = o.tls13Only;
  t.alpn = {"h2"};
  auto built = tlsclient::makeConfig(t, target.isUnix ? "" : target.host);
  if (!built) {
    out.error = RpcStatus{RpcCode::kInvalidArgument, built.status().message()};
    return out;
  }
  out.client = std::move(built).value();
  return out;
}

class Core;
class Conn;

// One call. Fields marked (io) are touched only on the channel's I/O thread; the send queue is
// shared with writers under mu_.
class CallImpl final : public Call, public std::enable_shared_from_this<CallImpl> {
 public:
  CallImpl(std::weak_ptr<Core> core, std::string method, std::shared_ptr<CallHandler> handler,
           CallOptions options, size_t maxReceive)
      : method_(std::move(method)),
        options_(options),
        core_(std::move(core)),
        handler_(std::move(handler)),
        deframer_(maxReceive) {}

  WriteResult write(std::string bytes) override;
  void writesDone() override;
  void cancel() override;
  size_t queuedMessages() const override {
    MutexLock lock(mu_);
    return queue_.size();
  }

  // --- I/O thread only ---
  void finish(RpcStatus status);
  void endLocally(RpcCode code, std::string message);
  // nghttp2 data source: copies queued bytes into buf.
  ssize_t readBody(uint8_t* buf, size_t length, uint32_t* flags);

  const std::string method_;
  const CallOptions options_;
  std::weak_ptr<Core> core_;

  // (io)
  std::shared_ptr<CallHandler> handler_;
  bool started_ = false;
  bool done_ = false;
  int32_t streamId_ = 0;
  std::weak_ptr<Conn> conn_;
  std::unique_ptr<asio::steady_timer> deadline_;
  std::chrono::steady_clock::time_point deadlineAt_;
  Deframer deframer_;
  int httpStatus_ = 0;
  std::optional<int> grpcStatus_;
  std::string grpcMessage_;
  bool badContentType_ = false;
  std::optional<RpcStatus> local_;  // set by cancel/deadline/receive errors: wins over the wire
  std::string sending_;             // bytes taken from queue_, partly handed to nghttp2
  size_t sendingOff_ = 0;

 private:
  void kick();

  mutable Mutex mu_;
  std::deque<std::string> queue_ EP_GUARDED_BY(mu_);  // framed messages
  bool halfClosed_ EP_GUARDED_BY(mu_) = false;
  bool finished_ EP_GUARDED_BY(mu_) = false;
  bool kickPending_ EP_GUARDED_BY(mu_) = false;
  friend class Conn;
};

// One HTTP/2 connection. Lives while its socket operations or the Core refer to it.
class Conn final : public std::enable_shared_from_this<Conn> {
 public:
  Conn(Core& core, asio::io_context& io);
  ~Conn();

  void connect(const Target& target);
  bool usable() const { return ready_ && !goaway_ && !dead_; }
  bool connecting() const { return !ready_ && !dead_; }
  bool dead() const { return dead_; }
  void submit(const std::shared_ptr<CallImpl>& call);
  void resume(int32_t streamId);
  void reset(int32_t streamId);
  void fail(RpcCode code, const std::string& reason);
  void flush();

 private:
  using TlsStream = asio::ssl::stream<asio::generic::stream_protocol::socket&>;

  void onConnected();
  void startTls();
  void startHttp2();
  void tryConnect(std::vector<asio::generic::stream_protocol::endpoint> eps, size_t i);
  void read();
  std::string describe(const error_code& ec) const;
  void armKeepalive(std::chrono::milliseconds after);
  void maybeClose();
  RpcStatus statusOf(CallImpl& call, uint32_t errorCode);

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user);
  static int onDataChunk(nghttp2_session* s, uint8_t, int32_t streamId, const uint8_t* data,
                         size_t len, void* user);
  static int onFrameRecv(nghttp2_session* s, const nghttp2_frame* frame, void* user);
  static int onStreamClose(nghttp2_session* s, int32_t streamId, uint32_t errorCode, void* user);
  static ssize_t onReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                            nghttp2_data_source* source, void*);

  Core& core_;
  asio::generic::stream_protocol::socket sock_;
  // Over sock_ when the channel uses TLS (null for plaintext); made after the TCP connect.
  std::unique_ptr<TlsStream> tls_;
  std::shared_ptr<asio::ssl::context> tlsContext_;
  asio::steady_timer connectTimer_;
  asio::steady_timer pingTimer_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::shared_ptr<CallImpl>> streams_;
  std::string out_;
  std::array<uint8_t, 16384> in_{};
  bool writing_ = false;
  bool ready_ = false;
  bool goaway_ = false;
  bool dead_ = false;
  bool pingOutstanding_ = false;
  bool settingsReceived_ = false;
  bool handshaking_ = false;
  std::string targetName_;
};

// The channel's state, owned by the I/O thread's run loop and the Channel handle.
class Core final : public std::enable_shared_from_this<Core> {
 public:
  Core(std::string target, ChannelOptions options)
      : targetName_(std::move(target)),
        target_(parseTarget(targetName_)),
        options_(std::move(options)),
        work_(asio::make_work_guard(io_)) {
    if (options_.authority.empty()) {
      options_.authority = target_.isUnix ? "localhost" : targetName_;
    }
    if (options_.tls.enabled) {
      tlsConfig_ = makeTlsConfig(options_.tls, target_);
      // The context holds what it needs; the PEM text (the private key) is not kept twice.
      options_.tls.caPem = options_.tls.certPem = options_.tls.keyPem = std::string();
    }
  }

  void start(const std::shared_ptr<CallImpl>& call) {
    if (call->done_) return;
    if (closed_) {
      call->finish({RpcCode::kCancelled, "channel closed"});
      return;
    }
    if (tlsConfig_.error) {
      call->finish(*tlsConfig_.error);
      return;
    }
    if (call->options_.timeout.count() > 0 && !call->deadline_) {
      call->deadlineAt_ = std::chrono::steady_clock::now() + call->options_.timeout;
      call->deadline_ = std::make_unique<asio::steady_timer>(io_, call->deadlineAt_);
      call->deadline_->async_wait([w = std::weak_ptr<CallImpl>(call)](const error_code& ec) {
        auto c = w.lock();
        if (ec || !c) return;
        c->endLocally(RpcCode::kDeadlineExceeded, "deadline exceeded");
      });
    }
    if (conn_ && conn_->usable()) {
      conn_->submit(call);
      return;
    }
    waiting_.push_back(call);
    if (!conn_ || !conn_->connecting()) {
      std::erase_if(conns_, [](const auto& w) { return w.expired(); });
      conn_ = std::make_shared<Conn>(*this, io_);
      conns_.push_back(conn_);
      conn_->connect(target_);
    }
  }

  // The connection `c` is up (usable) or gone (dead): submit or fail whoever waited for it.
  void onConnResult(Conn* c, const RpcStatus& failure) {
    if (conn_.get() != c) return;
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& call : waiting) {
      if (call->done_) continue;
      if (c->usable()) {
        conn_->submit(call);
      } else {
        call->finish(failure.ok() ? RpcStatus{RpcCode::kUnavailable, "connection failed"}
                                  : failure);
      }
    }
    if (c->dead()) conn_.reset();
  }

  void removeWaiting(CallImpl* call) {
    std::erase_if(waiting_, [call](const auto& c) { return c.get() == call; });
  }

  void shutdown() {
    closed_ = true;
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& call : waiting) call->finish({RpcCode::kCancelled, "channel closed"});
    for (auto& w : conns_) {
      if (auto c = w.lock()) c->fail(RpcCode::kCancelled, "channel closed");
    }
    conns_.clear();
    conn_.reset();
    work_.reset();
  }

  asio::io_context io_;
  const std::string targetName_;
  const Target target_;
  ChannelOptions options_;
  TlsConfig tlsConfig_;  // context null: plaintext

 private:
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  bool closed_ = false;
  std::shared_ptr<Conn> conn_;
  std::vector<std::weak_ptr<Conn>> conns_;
  std::vector<std::shared_ptr<CallImpl>> waiting_;
};

// ---------------------------------------------------------------- CallImpl

WriteResult CallImpl::write(std::string bytes) {
  {
    MutexLock lock(mu_);
    if (finished_ || halfClosed_) return WriteResult::kClosed;
    if (queue_.size() >= options_.maxQueuedMessages) return WriteResult::kFull;
    queue_.push_back(frameMessage(bytes));
  }
  kick();
  return WriteResult::kQueued;
}

void CallImpl::writesDone() {
  {
    MutexLock lock(mu_);
    if (finished_ || halfClosed_) return;
    halfClosed_ = true;
  }
  kick();
}

// Tells the I/O thread there is something to send; coalesced while one kick is pending.
void CallImpl::kick() {
  {
    MutexLock lock(mu_);
    if (kickPending_) return;
    kickPending_ = true;
  }
  auto core = core_.lock();
  if (!core) return;
  asio::post(core->io_, [w = weak_from_this()] {
    auto self = w.lock();
    if (!self) return;
    {
      MutexLock lock(self->mu_);
      self->kickPending_ = false;
    }
    if (self->done_ || self->streamId_ == 0) return;
    if (auto conn = self->conn_.lock()) conn->resume(self->streamId_);
  });
}

void CallImpl::cancel() {
  auto core = core_.lock();
  if (!core) return;
  asio::post(core->io_, [w = weak_from_this()] {
    if (auto self = w.lock()) self->endLocally(RpcCode::kCancelled, "cancelled");
  });
}

void CallImpl::endLocally(RpcCode code, std::string message) {
  if (done_ || local_) return;
  local_ = RpcStatus{code, std::move(message)};
  auto conn = conn_.lock();
  if (streamId_ != 0 && conn && !conn->dead()) {
    // The RST_STREAM goes out when the socket takes it; the caller learns the outcome now (a
    // peer that stopped reading must not hold a deadline back). The stream stays in the
    // connection's map until nghttp2 closes it.
    conn->reset(streamId_);
    finish(*local_);
    return;
  }
  if (auto core = core_.lock()) core->removeWaiting(this);
  finish(*local_);
}

void CallImpl::finish(RpcStatus status) {
  if (done_) return;
  done_ = true;
  {
    MutexLock lock(mu_);
    finished_ = true;
    queue_.clear();
  }
  if (deadline_) {
    deadline_->cancel();
    deadline_.reset();  // timers die on the I/O thread, before the io_context
  }
  auto handler = std::move(handler_);
  handler_.reset();
  if (!handler) return;
  // Handlers run inside nghttp2's C callbacks: nothing may unwind through them.
  try {
    handler->onDone(status);
  } catch (const std::exception& e) {
    spdlog::error("grpclite: {} handler's onDone threw: {}", method_, e.what());
  }
}

ssize_t CallImpl::readBody(uint8_t* buf, size_t length, uint32_t* flags) {
  size_t n = 0;
  while (n < length) {
    if (sendingOff_ == sending_.size()) {
      MutexLock lock(mu_);
      sending_.clear();
      sendingOff_ = 0;
      if (queue_.empty()) {
        if (halfClosed_) *flags |= NGHTTP2_DATA_FLAG_EOF;
        break;
      }
      sending_ = std::move(queue_.front());
      queue_.pop_front();
    }
    const size_t k = std::min(length - n, sending_.size() - sendingOff_);
    std::memcpy(buf + n, sending_.data() + sendingOff_, k);
    n += k;
    sendingOff_ += k;
  }
  if (n == 0 && !(*flags & NGHTTP2_DATA_FLAG_EOF)) return NGHTTP2_ERR_DEFERRED;
  return static_cast<ssize_t>(n);
}

// ---------------------------------------------------------------- Conn

Conn::Conn(Core& core, asio::io_context& io)
    : core_(core),
      sock_(io),
      tlsContext_(core.tlsConfig_.client.context),
      connectTimer_(io),
      pingTimer_(io),
      targetName_(core.targetName_) {}

Conn::~Conn() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

void Conn::connect(const Target& target) {
  connectTimer_.expires_after(core_.options_.connectTimeout);
  connectTimer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->settingsReceived_ || self->dead_) return;
    self->fail(RpcCode::kUnavailable,
               self->handshaking_ ? "TLS handshake with " + self->targetName_ + ": timed out"
               : self->ready_
                   ? "connect to " + self->targetName_ + ": no HTTP/2 SETTINGS from the server"
                   : "connect to " + self->targetName_ + ": timed out");
  });
  if (target.isUnix) {
    // Asio throws for a path longer than sun_path; exceptions never leave the I/O thread.
    std::optional<asio::local::stream_protocol::endpoint> ep;
    try {
      ep.emplace(target.path);
    } catch (const std::exception& e) {
      fail(RpcCode::kUnavailable, "connect to " + targetName_ + ": " + e.what());
      return;
    }
    tryConnect({asio::generic::stream_protocol::endpoint(*ep)}, 0);
    return;
  }
  // A numeric address needs no resolver (whose first use starts a thread inside Asio).
  error_code addrError;
  const auto addr = asio::ip::make_address(target.host, addrError);
  uint16_t port = 0;
  const auto portEnd = target.port.data() + target.port.size();
  const bool numericPort =
      std::from_chars(target.port.data(), portEnd, port).ptr == portEnd && !target.port.empty();
  if (!addrError && numericPort) {
    tryConnect({asio::generic::stream_protocol::endpoint(asio::ip::tcp::endpoint(addr, port))}, 0);
    return;
  }
  // getaddrinfo cannot be cancelled: it runs on a thread of its own that posts the answer back
  // only if the connection still wants it, so a slow DNS never holds up shutdown or reconnects.
  std::weak_ptr<Core> core = core_.weak_from_this();
  std::weak_ptr<Conn> conn = weak_from_this();
  try {
    std::thread([core, conn, host = target.host, port = target.port] {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
      std::vector<asio::generic::stream_protocol::endpoint> eps;
      for (addrinfo* a = res; rc == 0 && a != nullptr; a = a->ai_next) {
        eps.emplace_back(a->ai_addr, a->ai_addrlen);
      }
      if (res != nullptr) ::freeaddrinfo(res);
      std::string error = rc == 0 ? "" : ::gai_strerror(rc);
      auto c = core.lock();
      if (!c) return;
      asio::post(c->io_, [conn, eps = std::move(eps), error = std::move(error)]() mutable {
        auto self = conn.lock();
        if (!self || self->dead_) return;
        if (!error.empty()) {
          self->fail(RpcCode::kUnavailable, "resolve " + self->targetName_ + ": " + error);
          return;
        }
        self->tryConnect(std::move(eps), 0);
      });
    }).detach();
  } catch (const std::system_error& e) {
    fail(RpcCode::kUnavailable, "resolve " + targetName_ + ": " + e.what());
  }
}

void Conn::tryConnect(std::vector<asio::generic::stream_protocol::endpoint> eps, size_t i) {
  if (i >= eps.size()) {
    fail(RpcCode::kUnavailable, "connect to " + targetName_ + ": no address");
    return;
  }
  error_code ignored;
  sock_.close(ignored);
  auto ep = eps[i];
  sock_.async_connect(ep, [self = shared_from_this(), eps = std::move(eps),
                           i](const error_code& ec) mutable {
    if (self->dead_) return;
    if (ec) {
      if (i + 1 < eps.size()) {
        self->tryConnect(std::move(eps), i + 1);
      } else {
        self->fail(RpcCode::kUnavailable, "connect to " + self->targetName_ + ": " + ec.message());
      }
      return;
    }
    self->onConnected();
  });
}

void Conn::onConnected() {
  if (!core_.target_.isUnix) {
    int one = 1;
    ::setsockopt(sock_.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (tlsContext_) {
    startTls();
  } else {
    startHttp2();
  }
}

// The handshake runs under connectTimer_. Verification (chain to caPem, serverName against the
// SANs) happens inside OpenSSL; a failure ends the handshake with its reason.
void Conn::startTls() {
  try {
    tls_ = std::make_unique<TlsStream>(sock_, *tlsContext_);
  } catch (const std::exception& e) {
    fail(RpcCode::kUnavailable, "TLS handshake with " + targetName_ + ": " + e.what());
    return;
  }
  if (auto s = tlsclient::prepareConnection(tls_->native_handle(), core_.tlsConfig_.client);
      !s.isOk()) {
    fail(RpcCode::kInvalidArgument, s.message());
    return;
  }
  if (const auto& cache = core_.options_.tls.sessionCache)
    cache->impl().offer(tls_->native_handle());
  handshaking_ = true;
  tls_->async_handshake(
      asio::ssl::stream_base::client, [self = shared_from_this()](const error_code& ec) {
        self->handshaking_ = false;
        tlsclient::releaseHandshakeMemory();
        if (self->dead_) return;
        if (ec) {
          self->fail(RpcCode::kUnavailable,
                     "TLS handshake with " + self->targetName_ + ": " + self->describe(ec));
          return;
        }
        const unsigned char* alpn = nullptr;
        unsigned int alpnLen = 0;
        SSL_get0_alpn_selected(self->tls_->native_handle(), &alpn, &alpnLen);
        if (alpnLen != 2 || std::memcmp(alpn, "h2", 2) != 0) {
          self->fail(RpcCode::kUnavailable, "TLS handshake with " + self->targetName_ +
                                                ": the server did not select ALPN protocol h2");
          return;
        }
        if (const auto& cache = self->core_.options_.tls.sessionCache) {
          auto& counter = SSL_session_reused(self->tls_->native_handle()) ? cache->impl().resumed
                                                                          : cache->impl().full;
          counter.fetch_add(1);
        }
        self->startHttp2();
      });
}

// Calls are submitted at once; connectTimer_ keeps running until the server's SETTINGS arrive,
// so a peer that accepts but never speaks HTTP/2 fails the connection even without keepalive.
void Conn::startHttp2() {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Conn::onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Conn::onDataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Conn::onFrameRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Conn::onStreamClose);
  const int rv = nghttp2_session_client_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    fail(RpcCode::kInternal, std::string("HTTP/2 session: ") + nghttp2_strerror(rv));
    return;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       static_cast<uint32_t>(core_.options_.streamWindowBytes)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        core_.options_.connectionWindowBytes);
  ready_ = true;
  read();
  if (core_.options_.keepaliveTime.count() > 0) armKeepalive(core_.options_.keepaliveTime);
  core_.onConnResult(this, {});
  flush();
}

void Conn::submit(const std::shared_ptr<CallImpl>& call) {
  auto nv = [](const char* name, const std::string& value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                      std::strlen(name), value.size(), NGHTTP2_NV_FLAG_NONE};
  };
  static const std::string kPost = "POST", kHttp = "http", kHttps = "https",
                           kGrpc = "application/grpc", kTrailers = "trailers";
  const auto& o = core_.options_;
  std::vector<nghttp2_nv> h = {nv(":method", kPost),         nv(":scheme", tls_ ? kHttps : kHttp),
                               nv(":path", call->method_),   nv(":authority", o.authority),
                               nv("content-type", kGrpc),    nv("te", kTrailers),
                               nv("user-agent", o.userAgent)};
  std::string timeout;
  if (call->options_.timeout.count() > 0) {
    // What is left of the deadline, which started when the call did (it may have waited for
    // this connection).
    timeout = grpcTimeout(std::chrono::ceil<std::chrono::milliseconds>(
        call->deadlineAt_ - std::chrono::steady_clock::now()));
    h.push_back(nv("grpc-timeout", timeout));
  }
  nghttp2_data_provider body{};
  body.source.ptr = call.get();
  body.read_callback = &Conn::onReadBody;
  const int32_t id =
      nghttp2_submit_request(session_, nullptr, h.data(), h.size(), &body, call.get());
  if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
    // 2^30 streams used up on this connection: later calls go to a new one.
    goaway_ = true;
    core_.start(call);
    maybeClose();
    return;
  }
  if (id < 0) {
    call->finish({RpcCode::kInternal, std::string("HTTP/2 request: ") + nghttp2_strerror(id)});
    return;
  }
  call->streamId_ = id;
  call->conn_ = weak_from_this();
  streams_[id] = call;
  flush();
}

void Conn::resume(int32_t streamId) {
  if (dead_) return;
  nghttp2_session_resume_data(session_, streamId);
  flush();
}

void Conn::reset(int32_t streamId) {
  if (dead_) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, streamId, NGHTTP2_CANCEL);
  flush();
}

void Conn::read() {
  auto onRead = [self = shared_from_this()](const error_code& ec, size_t n) {
    if (self->dead_) return;
    if (ec) {
      self->fail(RpcCode::kUnavailable, self->describe(ec));
      return;
    }
    const ssize_t rv = nghttp2_session_mem_recv(self->session_, self->in_.data(), n);
    if (rv < 0) {
      self->fail(RpcCode::kUnavailable,
                 std::string("HTTP/2 protocol error: ") + nghttp2_strerror(static_cast<int>(rv)));
      return;
    }
    self->flush();
    if (!self->dead_) self->read();
  };
  if (tls_) {
    tls_->async_read_some(asio::buffer(in_), std::move(onRead));
  } else {
    sock_.async_read_some(asio::buffer(in_), std::move(onRead));
  }
}

// An I/O error as the calls see it.
std::string Conn::describe(const error_code& ec) const {
  // A TLS peer that closes without close_notify truncates the stream; HTTP/2 framing tells
  // whether anything was lost, as with a plaintext EOF.
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    // Under TLS 1.3 a server judges the client certificate after our handshake finished; gRPC
    // servers then close without a word.
    return tls_ && ready_ && !settingsReceived_
               ? "connection closed by the server right after the TLS handshake (it may have "
                 "refused the client certificate)"
               : "connection closed by the server";
  }
  if (!tls_) return ec.message();
  const std::string s =
      tlsclient::describeError(tls_->native_handle(), ec, core_.tlsConfig_.client.verify);
  if (ec.category() != asio::error::get_ssl_category() &&
      ec.category() != asio::ssl::error::get_stream_category()) {
    return s;
  }
  return handshaking_ || !ready_ ? s : "TLS: " + s;
}

void Conn::flush() {
  if (writing_ || dead_ || session_ == nullptr) return;
  out_.clear();
  while (out_.size() < 256 * 1024) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      fail(RpcCode::kInternal,
           std::string("HTTP/2 send: ") + nghttp2_strerror(static_cast<int>(n)));
      return;
    }
    if (n == 0) break;
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (out_.empty()) {
    maybeClose();
    return;
  }
  writing_ = true;
  auto onWritten = [self = shared_from_this()](const error_code& ec, size_t) {
    self->writing_ = false;
    if (self->dead_) return;
    if (ec) {
      self->fail(RpcCode::kUnavailable,
                 "write: " + (self->tls_ ? self->describe(ec) : ec.message()));
      return;
    }
    self->flush();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(out_), std::move(onWritten));
  } else {
    asio::async_write(sock_, asio::buffer(out_), std::move(onWritten));
  }
}

// After GOAWAY, or when HTTP/2 wants neither to read nor write, the connection is finished.
void Conn::maybeClose() {
  if (dead_ || !ready_) return;
  const bool over = (goaway_ && streams_.empty()) ||
                    (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_));
  if (over) fail(RpcCode::kUnavailable, "connection closed (GOAWAY)");
}

void Conn::armKeepalive(std::chrono::milliseconds after) {
  pingTimer_.expires_after(after);
  pingTimer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->dead_) return;
    if (self->pingOutstanding_) {
      self->fail(RpcCode::kUnavailable,
                 "keepalive: no PING acknowledgement from " + self->targetName_ + " within " +
                     std::to_string(self->core_.options_.keepaliveTimeout.count()) + " ms");
      return;
    }
    self->pingOutstanding_ = true;
    nghttp2_submit_ping(self->session_, NGHTTP2_FLAG_NONE, nullptr);
    self->flush();
    self->armKeepalive(self->core_.options_.keepaliveTimeout);
  });
}

void Conn::fail(RpcCode code, const std::string& reason) {
  if (dead_) return;
  dead_ = true;
  error_code ignored;
  connectTimer_.cancel();
  pingTimer_.cancel();
  sock_.close(ignored);
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, call] : streams) {
    call->finish(call->local_ ? *call->local_ : RpcStatus{code, reason});
  }
  core_.onConnResult(this, {code, reason});
}

RpcStatus Conn::statusOf(CallImpl& call, uint32_t errorCode) {
  if (call.local_) return *call.local_;
  if (call.grpcStatus_) {
    RpcStatus s{static_cast<RpcCode>(*call.grpcStatus_), percentDecode(call.grpcMessage_)};
    if (*call.grpcStatus_ < 0 || *call.grpcStatus_ > 16) s.code = RpcCode::kUnknown;
    if (s.ok() && call.deframer_.buffered() > 0) {
      return {RpcCode::kInternal, "stream ended inside a message"};
    }
    return s;
  }
  if (errorCode == NGHTTP2_REFUSED_STREAM) return {RpcCode::kUnavailable, "stream refused"};
  if (errorCode == NGHTTP2_CANCEL) return {RpcCode::kCancelled, "stream cancelled by the server"};
  if (errorCode == NGHTTP2_ENHANCE_YOUR_CALM) {
    return {RpcCode::kResourceExhausted, "stream reset by the server: ENHANCE_YOUR_CALM"};
  }
  if (errorCode == NGHTTP2_INADEQUATE_SECURITY) {
    return {RpcCode::kPermissionDenied, "stream reset by the server: INADEQUATE_SECURITY"};
  }
  if (errorCode != NGHTTP2_NO_ERROR) {
    return {RpcCode::kInternal,
            std::string("stream reset by the server: ") + nghttp2_http2_strerror(errorCode)};
  }
  if (call.httpStatus_ != 0 && call.httpStatus_ != 200) {
    return {codeForHttpStatus(call.httpStatus_), "HTTP status " + std::to_string(call.httpStatus_)};
  }
  if (call.badContentType_) return {RpcCode::kUnknown, "response is not application/grpc"};
  return {RpcCode::kUnknown, "stream ended without grpc-status"};
}

int Conn::onHeader(nghttp2_session* s, const nghttp2_frame* frame, const uint8_t* name,
                   size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto* call = static_cast<CallImpl*>(nghttp2_session_get_stream_user_data(s, frame->hd.stream_id));
  if (call == nullptr) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    std::from_chars(v.data(), v.data() + v.size(), call->httpStatus_);
  } else if (n == "grpc-status") {
    int code = 2;
    auto r = std::from_chars(v.data(), v.data() + v.size(), code);
    call->grpcStatus_ = r.ec == std::errc() && r.ptr == v.data() + v.size() ? code : 2;
  } else if (n == "grpc-message") {
    call->grpcMessage_ = std::string(v);
  } else if (n == "content-type") {
    call->badContentType_ = v.rfind("application/grpc", 0) != 0;
  }
  return 0;
}

int Conn::onDataChunk(nghttp2_session* s, uint8_t, int32_t streamId, const uint8_t* data,
                      size_t len, void*) {
  auto* call = static_cast<CallImpl*>(nghttp2_session_get_stream_user_data(s, streamId));
  if (call == nullptr || call->done_ || call->local_) return 0;
  // Not a gRPC response (a proxy's error page, say): its body is no gRPC message stream; the
  // status comes from the HTTP status.
  if (call->httpStatus_ != 200 || call->badContentType_) return 0;
  call->deframer_.feed(data, len);
  std::string msg;
  while (call->deframer_.next(&msg)) {
    if (call->handler_) {
      try {
        call->handler_->onMessage(std::move(msg));
      } catch (const std::exception& e) {
        call->local_ = RpcStatus{RpcCode::kInternal, std::string("handler threw: ") + e.what()};
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, streamId, NGHTTP2_CANCEL);
        call->finish(*call->local_);
        return 0;
      }
    }
    msg.clear();
    if (call->done_ || call->local_) return 0;
  }
  if (call->deframer_.failed()) {
    const RpcCode code = call->deframer_.error().rfind("received message of", 0) == 0
                             ? RpcCode::kResourceExhausted
                             : RpcCode::kInternal;
    call->local_ = RpcStatus{code, call->deframer_.error()};
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, streamId, NGHTTP2_CANCEL);
  }
  return 0;
}

int Conn::onFrameRecv(nghttp2_session* s, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<Conn*>(user);
  switch (frame->hd.type) {
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && self->pingOutstanding_) {
        self->pingOutstanding_ = false;
        self->armKeepalive(self->core_.options_.keepaliveTime);
        // A long-lived connection gets fresh tickets from the server now and then: keep the
        // newest so that a reconnect after a server restart can still resume.
        if (const auto& cache = self->core_.options_.tls.sessionCache; cache && self->tls_)
          cache->impl().store(SSL_get1_session(self->tls_->native_handle()));
      }
      return 0;
    case NGHTTP2_GOAWAY:
      self->goaway_ = true;
      return 0;
    case NGHTTP2_SETTINGS:
      if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !self->settingsReceived_) {
        self->settingsReceived_ = true;
        self->connectTimer_.cancel();
        // The server's ticket came before its SETTINGS: remember the session for the next
        // connection.
        if (const auto& cache = self->core_.options_.tls.sessionCache; cache && self->tls_)
          cache->impl().store(SSL_get1_session(self->tls_->native_handle()));
      }
      return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
      if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
      // The server finished the call (trailers). Report it now even if our side is still open,
      // and close our side.
      auto* call =
          static_cast<CallImpl*>(nghttp2_session_get_stream_user_data(s, frame->hd.stream_id));
      if (call == nullptr || call->done_) return 0;
      call->finish(self->statusOf(*call, NGHTTP2_NO_ERROR));
      if (nghttp2_session_get_stream_local_close(s, frame->hd.stream_id) == 0) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
      }
      return 0;
    }
    default:
      return 0;
  }
}

int Conn::onStreamClose(nghttp2_session*, int32_t streamId, uint32_t errorCode, void* user) {
  auto* self = static_cast<Conn*>(user);
  auto it = self->streams_.find(streamId);
  if (it == self->streams_.end()) return 0;
  auto call = std::move(it->second);
  self->streams_.erase(it);
  call->finish(self->statusOf(*call, errorCode));
  return 0;
}

ssize_t Conn::onReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                         nghttp2_data_source* source, void*) {
  return static_cast<CallImpl*>(source->ptr)->readBody(buf, length, flags);
}

// ---------------------------------------------------------------- Channel

class ChannelImpl final : public Channel {
 public:
  ChannelImpl(std::string target, ChannelOptions options)
      : Channel(target), core_(std::make_shared<Core>(std::move(target), std::move(options))) {
    thread_ = std::thread([core = core_] { core->io_.run(); });
    threadId_ = thread_.get_id();
  }

  ~ChannelImpl() override {
    asio::post(core_->io_, [core = core_] { core->shutdown(); });
    if (std::this_thread::get_id() == threadId_) {
      spdlog::error("grpclite: channel to {} destroyed on its own I/O thread", target());
      thread_.detach();
      return;
    }
    thread_.join();
  }

  std::shared_ptr<Call> startCall(std::string method, std::shared_ptr<CallHandler> handler,
                                  CallOptions options) override {
    auto call = std::make_shared<CallImpl>(core_, std::move(method), std::move(handler), options,
                                           core_->options_.maxReceiveMessageBytes);
    asio::post(core_->io_, [core = core_, call] { core->start(call); });
    return call;
  }

  bool onIoThread() const { return std::this_thread::get_id() == threadId_; }

 private:
  std::shared_ptr<Core> core_;
  std::thread thread_;
  std::thread::id threadId_;
};

class UnaryHandler final : public CallHandler {
 public:
  void onMessage(std::string&& bytes) override {
    MutexLock lock(mu_);
    if (++messages_ == 1) response_ = std::move(bytes);
  }
  void onDone(const RpcStatus& status) override {
    MutexLock lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }
  RpcStatus wait(std::string* response) {
    MutexLock lock(mu_);
    while (!done_) lock.wait(cv_);
    if (!status_.ok()) return status_;
    if (messages_ != 1) {
      return {RpcCode::kInternal,
              "unary call answered with " + std::to_string(messages_) + " messages"};
    }
    *response = std::move(response_);
    return status_;
  }

 private:
  Mutex mu_;
  std::condition_variable cv_;
  int messages_ = 0;
  std::string response_;
  RpcStatus status_;
  bool done_ = false;
};

}  // namespace

std::shared_ptr<Channel> Channel::create(std::string target, ChannelOptions options) {
  return std::make_shared<ChannelImpl>(std::move(target), std::move(options));
}

RpcStatus Channel::unary(std::string method, std::string request, std::string* response,
                         std::chrono::milliseconds timeout) {
  if (static_cast<ChannelImpl*>(this)->onIoThread()) {
    return {RpcCode::kInternal, "unary call from the channel's own I/O thread"};
  }
  auto handler = std::make_shared<UnaryHandler>();
  CallOptions o;
  o.timeout = timeout;
  o.maxQueuedMessages = 1;
  auto call = startCall(std::move(method), handler, o);
  call->write(std::move(request));
  call->writesDone();
  return handler->wait(response);
}

RpcStatus Channel::unary(std::string method, const google::protobuf::MessageLite& request,
                         google::protobuf::MessageLite* response,
                         std::chrono::milliseconds timeout) {
  std::string req;
  if (!request.SerializeToString(&req)) {
    return {RpcCode::kInternal, "cannot serialize the request"};
  }
  std::string resp;
  RpcStatus s = unary(std::move(method), std::move(req), &resp, timeout);
  if (!s.ok()) return s;
  if (!response->ParseFromString(resp)) {
    return {RpcCode::kInternal,
            "cannot parse the response of " + std::to_string(resp.size()) + " bytes"};
  }
  return s;
}

}  // namespace ep::grpclite
