#include "common/grpclite/server.h"

#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

namespace ep::grpclite {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using error_code = boost::system::error_code;

namespace {

nghttp2_nv header(const std::string& name, const std::string& value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

class ServerConn;

// Everything runs on the I/O thread except start/stop and responders' posts.
struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(ServerOptions o, UnaryHandler h)
      : options(std::move(o)), handler(std::move(h)), acceptor(io) {}

  const ServerOptions options;
  const UnaryHandler handler;
  asio::io_context io;
  local::acceptor acceptor;
  std::thread thread;
  std::set<std::shared_ptr<ServerConn>> conns;
  bool stopping = false;

  void accept();
};

struct Stream {
  std::string method;
  bool grpc = false;
  Deframer deframer;
  bool dispatched = false;
  bool answered = false;
  std::string body;  // framed response message
  size_t offset = 0;
  std::string status, message;  // trailers
  std::unique_ptr<asio::steady_timer> timer;
  explicit Stream(size_t max) : deframer(max) {}
};

class ServerConn final : public std::enable_shared_from_this<ServerConn> {
 public:
  ServerConn(Server::Impl& server, local::socket sock) : server_(server), sock_(std::move(sock)) {}
  ~ServerConn() {
    if (session_) nghttp2_session_del(session_);
  }

  bool start() {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &ServerConn::onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &ServerConn::onHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &ServerConn::onDataChunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &ServerConn::onFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &ServerConn::onStreamClose);
    const int rv = nghttp2_session_server_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) return false;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server_.options.maxConcurrentStreams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    read();
    flush();
    return true;
  }

  void close() {
    if (dead_) return;
    dead_ = true;
    for (auto& [id, s] : streams_) {
      if (s->timer) s->timer->cancel();
    }
    error_code ignored;
    sock_.close(ignored);
    server_.conns.erase(shared_from_this());
  }

  // Sends the answer of stream `id` if it is still open and unanswered.
  void answer(int32_t id, const RpcStatus& status, std::string response) {
    if (dead_) return;
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second->answered) return;
    Stream& s = *it->second;
    s.answered = true;
    if (s.timer) s.timer->cancel();
    const std::string st = std::to_string(status.codeNumber());
    const std::string msg = grpcMessageEncode(status.message);
    static const std::string kStatus = ":status", k200 = "200", kType = "content-type",
                             kGrpc = "application/grpc", kGrpcStatus = "grpc-status",
                             kGrpcMessage = "grpc-message";
    if (!status.ok()) {
      // Trailers-only response.
      std::vector<nghttp2_nv> h = {header(kStatus, k200), header(kType, kGrpc),
                                   header(kGrpcStatus, st)};
      if (!msg.empty()) h.push_back(header(kGrpcMessage, msg));
      nghttp2_submit_response(session_, id, h.data(), h.size(), nullptr);
    } else {
      s.body = frameMessage(response);
      s.status = st;
      nghttp2_data_provider body{};
      body.source.ptr = &s;
      body.read_callback = &ServerConn::onReadBody;
      std::vector<nghttp2_nv> h = {header(kStatus, k200), header(kType, kGrpc)};
      nghttp2_submit_response(session_, id, h.data(), h.size(), &body);
    }
    flush();
  }

 private:
  static ServerConn* self(void* user) { return static_cast<ServerConn*>(user); }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto* c = self(user);
    c->streams_[frame->hd.stream_id] = std::make_unique<Stream>(c->server_.options.maxMessageBytes);
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* c = self(user);
    auto it = c->streams_.find(frame->hd.stream_id);
    if (it == c->streams_.end()) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":path") it->second->method.assign(v);
    if (n == "content-type") it->second->grpc = v.rfind("application/grpc", 0) == 0;
    return 0;
  }

  static int onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* user) {
    auto* c = self(user);
    auto it = c->streams_.find(id);
    if (it == c->streams_.end() || it->second->dispatched) return 0;
    Stream& s = *it->second;
    s.deframer.feed(data, len);
    // A unary request is one message: more than that (plus its 5-byte prefix) is refused now,
    // before it is buffered any further.
    if (s.deframer.buffered() > c->server_.options.maxMessageBytes + 5) {
      s.dispatched = true;
      c->answer(
          id,
          {RpcCode::kResourceExhausted,
           "request larger than " + std::to_string(c->server_.options.maxMessageBytes) + " bytes"},
          "");
    }
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* c = self(user);
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      c->dispatch(frame->hd.stream_id);
    }
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t, void* user) {
    auto* c = self(user);
    auto it = c->streams_.find(id);
    if (it != c->streams_.end()) {
      if (it->second->timer) it->second->timer->cancel();
      c->streams_.erase(it);
    }
    return 0;
  }

  static ssize_t onReadBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                            uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* s = static_cast<Stream*>(source->ptr);
    const size_t n = std::min(length, s->body.size() - s->offset);
    std::memcpy(buf, s->body.data() + s->offset, n);
    s->offset += n;
    if (s->offset == s->body.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      static const std::string kGrpcStatus = "grpc-status";
      nghttp2_nv trailer = header(kGrpcStatus, s->status);
      nghttp2_submit_trailer(session, id, &trailer, 1);
    }
    return static_cast<ssize_t>(n);
  }

  void dispatch(int32_t id) {
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second->dispatched) return;
    Stream& s = *it->second;
    s.dispatched = true;
    if (!s.grpc)
      return answer(id, {RpcCode::kInternal, "content-type is not application/grpc"}, "");
    std::string request;
    const bool got = s.deframer.next(&request);
    if (s.deframer.failed()) {
      const bool big = s.deframer.error().find("above the limit") != std::string::npos;
      return answer(
          id, {big ? RpcCode::kResourceExhausted : RpcCode::kInternal, s.deframer.error()}, "");
    }
    if (!got || s.deframer.buffered() != 0) {
      return answer(id, {RpcCode::kInternal, "a unary call needs exactly one request message"}, "");
    }
    s.timer = std::make_unique<asio::steady_timer>(server_.io, server_.options.handlerTimeout);
    std::weak_ptr<ServerConn> weak = weak_from_this();
    s.timer->async_wait([weak, id](const error_code& ec) {
      if (ec) return;
      if (auto c = weak.lock())
        c->answer(id, {RpcCode::kDeadlineExceeded, "handler timed out"}, "");
    });
    auto* io = &server_.io;
    auto responder = [weak, id, io](RpcStatus status, std::string response) {
      asio::post(*io,
                 [weak, id, status = std::move(status), response = std::move(response)]() mutable {
                   if (auto c = weak.lock()) c->answer(id, status, std::move(response));
                 });
    };
    try {
      server_.handler(s.method, std::move(request), std::move(responder));
    } catch (const std::exception& e) {
      answer(id, {RpcCode::kInternal, std::string("handler: ") + e.what()}, "");
    }
  }

  void read() {
    sock_.async_read_some(
        asio::buffer(in_), [self = shared_from_this()](const error_code& ec, size_t n) {
          if (self->dead_) return;
          if (ec) return self->close();
          self->inRecv_ = true;  // callbacks may submit frames; they are sent after mem_recv
          const ssize_t rv = nghttp2_session_mem_recv(self->session_, self->in_.data(), n);
          self->inRecv_ = false;
          if (rv < 0) return self->close();
          self->flush();
          if (!self->dead_) self->read();
        });
  }

  void flush() {
    if (writing_ || dead_ || inRecv_) return;
    out_.clear();
    while (out_.size() < 256 * 1024) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return close();
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (out_.empty()) {
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) close();
      return;
    }
    writing_ = true;
    asio::async_write(sock_, asio::buffer(out_),
                      [self = shared_from_this()](const error_code& ec, size_t) {
                        self->writing_ = false;
                        if (self->dead_) return;
                        if (ec) return self->close();
                        self->flush();
                      });
  }

  Server::Impl& server_;
  local::socket sock_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::unique_ptr<Stream>> streams_;
  std::array<uint8_t, 16384> in_{};
  std::string out_;
  bool writing_ = false;
  bool dead_ = false;
  bool inRecv_ = false;  // inside nghttp2_session_mem_recv: no mem_send (not reentrant)
};

void Server::Impl::accept() {
  acceptor.async_accept([this](const error_code& ec, local::socket sock) {
    if (stopping) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      spdlog::warn("grpclite server {}: accept: {}", options.unixPath, ec.message());
      // EMFILE and friends: try again shortly rather than spinning.
      auto t = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
      t->async_wait([this, t](const error_code&) {
        if (!stopping) accept();
      });
      return;
    }
    if (conns.size() >= options.maxConnections) {
      error_code ignored;
      sock.close(ignored);
    } else {
      auto c = std::make_shared<ServerConn>(*this, std::move(sock));
      if (c->start()) conns.insert(c);
    }
    accept();
  });
}

Server::Server(ServerOptions options, UnaryHandler handler)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() {
  stop();
}

Status Server::start() {
  const std::string& path = impl_->options.unixPath;
  if (path.empty()) return invalidError("socket path: must not be empty");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return invalidError("socket path \"" + path + "\": longer than a unix socket path may be");
  }
  std::error_code fec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), fec);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return invalidError("socket path \"" + path + "\": exists and is not a socket");
    }
    // A socket someone still accepts on belongs to a running process: never take it over.
    // One nobody answers on is stale (left by a crash) and is replaced.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    const bool live =
        fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0) ::close(fd);
    if (live) return unavailableError("socket " + path + ": in use by another process");
    ::unlink(path.c_str());
  }
  error_code ec;
  impl_->acceptor.open(local(), ec);
  if (!ec) impl_->acceptor.bind(local::endpoint(path), ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailableError("socket " + path + ": " + ec.message());
  if (::chmod(path.c_str(), impl_->options.socketMode) != 0) {
    return unavailableError("socket " + path + ": chmod: " + std::strerror(errno));
  }
  impl_->accept();
  impl_->thread = std::thread([impl = impl_.get()] {
    auto guard = asio::make_work_guard(impl->io);
    impl->io.run();
  });
  return Status::ok();
}

void Server::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [impl = impl_.get()] {
    impl->stopping = true;
    error_code ignored;
    impl->acceptor.close(ignored);
    auto conns = impl->conns;
    for (const auto& c : conns) c->close();
    impl->io.stop();
  });
  impl_->thread.join();
  ::unlink(impl_->options.unixPath.c_str());
}

}  // namespace ep::grpclite
