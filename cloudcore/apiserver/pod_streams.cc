#include "cloudcore/apiserver/pod_streams.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cloudcore/apiserver/port_forward.h"
#include "common/api/kinds.h"
#include "common/api/status_json.h"
#include "common/http/server.h"
#include "common/thread_annotations.h"

namespace ep::apiserver {

using Json = nlohmann::json;

namespace {

// Buffers one stream's output between the broker (gRPC threads) and the HTTP server (worker
// pool). Bounded by the broker's flow-control window: the edge sends no more than was
// consumed() plus the window.
class StreamBuffer final : public StreamObserver {
 public:
  struct Chunk {
    StreamChannel channel;
    std::string data;
  };

  void onData(StreamChannel channel, std::string data) override {
    std::function<void()> wake;
    {
      MutexLock l(mu_);
      ready_ = true;
      if (channel != StreamChannel::kReady && !data.empty()) {
        chunks_.push_back({channel, std::move(data)});
      }
      wake = wake_;
    }
    cv_.notify_all();
    if (wake) wake();
  }

  void onClose(Status status, int32_t exitCode) override {
    std::function<void()> wake;
    {
      MutexLock l(mu_);
      closed_ = true;
      status_ = std::move(status);
      exitCode_ = exitCode;
      wake = wake_;
    }
    cv_.notify_all();
    if (wake) wake();
  }

  // Waits until the edge answered (ready, data or close). False on timeout.
  bool waitFirst(std::chrono::milliseconds timeout) {
    MutexLock l(mu_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!(ready_ || closed_)) {
      if (l.waitUntil(cv_, deadline) == std::cv_status::timeout) return ready_ || closed_;
    }
    return true;
  }
  // Takes what is buffered; `closed` when nothing more will come.
  std::deque<Chunk> take(bool& closed, Status& status, int32_t& exitCode) {
    MutexLock l(mu_);
    std::deque<Chunk> out;
    out.swap(chunks_);
    closed = closed_;
    status = status_;
    exitCode = exitCode_;
    return out;
  }
  void onInputAck(uint64_t bytes, uint32_t inputs) override {
    std::function<void()> wake;
    {
      MutexLock l(mu_);
      unackedInput_ -= std::min(unackedInput_, bytes);
      unackedInputs_ -= std::min<uint64_t>(unackedInputs_, inputs);
      wake = wake_;
    }
    if (wake) wake();
  }
  // One input (stdin chunk, end of stdin, terminal size) sent to the edge.
  void inputSent(uint64_t bytes) {
    MutexLock l(mu_);
    unackedInput_ += bytes;
    ++unackedInputs_;
  }
  // Whether another client message may be read: what was sent and not acknowledged leaves room
  // for one more of at most `nextBytes` (the tunnel protocol's bound, proto/tunnel.proto).
  bool inputRoom(uint64_t maxBytes, uint64_t maxInputs) {
    MutexLock l(mu_);
    return unackedInput_ < maxBytes && unackedInputs_ < maxInputs;
  }

  bool closedWithoutOutput(Status& status) {
    MutexLock l(mu_);
    status = status_;
    return closed_ && chunks_.empty() && !ready_;
  }
  void setWake(std::function<void()> wake) {
    MutexLock l(mu_);
    wake_ = std::move(wake);
  }

 private:
  Mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> chunks_ EP_GUARDED_BY(mu_);
  bool ready_ EP_GUARDED_BY(mu_) = false;
  bool closed_ EP_GUARDED_BY(mu_) = false;
  Status status_ EP_GUARDED_BY(mu_);
  int32_t exitCode_ EP_GUARDED_BY(mu_) = 0;
  uint64_t unackedInput_ EP_GUARDED_BY(mu_) = 0;   // stdin bytes sent, not acknowledged
  uint64_t unackedInputs_ EP_GUARDED_BY(mu_) = 0;  // inputs sent, not acknowledged
  std::function<void()> wake_;
};

// Chunked text/plain log body.
class LogBody final : public http::BodyStream {
 public:
  LogBody(std::shared_ptr<StreamBuffer> buffer, std::shared_ptr<StreamHandle> handle)
      : buffer_(std::move(buffer)), handle_(std::move(handle)) {}

  std::string next(bool& finished) override {
    bool closed = false;
    Status status;
    int32_t exitCode = 0;
    auto chunks = buffer_->take(closed, status, exitCode);
    std::string out;
    for (auto& c : chunks) out += c.data;
    if (!out.empty()) handle_->consumed(out.size());
    if (closed) {
      closed_ = true;
      if (!status.isOk()) spdlog::info("apiserver: log stream ended: {}", status.message());
    }
    finished = closed;
    return out;
  }
  void setWake(std::function<void()> wake) override { buffer_->setWake(std::move(wake)); }
  std::chrono::steady_clock::time_point deadline() const override {
    return std::chrono::steady_clock::time_point::max();
  }
  void close() override {
    buffer_->setWake(nullptr);
    if (!closed_) handle_->cancel();  // the client went away first
  }

 private:
  std::shared_ptr<StreamBuffer> buffer_;
  std::shared_ptr<StreamHandle> handle_;
  bool closed_ = false;  // only touched by next()/close(), which the server serializes
};

// The v1 Status kubectl reads on the error channel for a failure (it prints its message).
std::string failureJson(const Status& status) {
  return api::statusObject(status).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A WebSocket that only reports why the stream could not start (channel 3), then closes: errors
// found after the request's own checks (the node, the edge, the runtime) reach kubectl this way,
// as the kubelet reports them, because an HTTP error would make kubectl retry over SPDY and
// show only why that failed.
class FailureSocket final : public http::WebSocketStream {
 public:
  explicit FailureSocket(Status status) : status_(std::move(status)) {}
  std::vector<std::string> next(bool& finished) override {
    finished = true;
    return {"\x03" + failureJson(status_)};
  }
  void setWake(std::function<void()>) override {}
  void close() override {}

 private:
  const Status status_;
};

// Input the API keeps sent to the edge and not yet written into the container, per stream (the
// tunnel protocol's bound, proto/tunnel.proto StreamInput): the client's next message is read
// only below 32 KiB of stdin and 24 inputs, and one message adds at most 4 inputs (the server
// reads at most 128 KiB; kubectl sends at most 32 KiB): at most 28 inputs, and 64 KiB of stdin
// from kubectl (160 KiB from any client).
constexpr uint64_t kInputBytesBeforeRead = 32 * 1024;
constexpr uint64_t kInputsBeforeRead = 24;
constexpr size_t kMaxInputChunk = 32 * 1024;

// Exec and attach over a channel.k8s.io WebSocket. Output: 1 stdout, 2 stderr, 3 the final
// Status. Input (interactive streams): 0 stdin, 4 a terminal size {"Width":W,"Height":H}, and in
// v5 255 with payload 0, the end of stdin.
class ExecSocket final : public http::WebSocketStream {
 public:
  ExecSocket(std::shared_ptr<StreamBuffer> buffer, std::shared_ptr<StreamHandle> handle, bool v5,
             bool stdin, bool tty)
      : buffer_(std::move(buffer)), handle_(std::move(handle)), v5_(v5), stdin_(stdin), tty_(tty) {}

  // On the server's I/O thread; never blocks (the handle only queues on the tunnel).
  void onMessage(std::string message) override {
    if (message.empty()) return;
    const auto channel = static_cast<uint8_t>(message[0]);
    std::string_view payload = std::string_view(message).substr(1);
    if (channel == 0) {
      if (!stdin_ || stdinClosed_) return;  // like the kubelet: input nobody asked for is dropped
      while (!payload.empty()) {
        std::string_view chunk = payload.substr(0, kMaxInputChunk);
        buffer_->inputSent(chunk.size());
        handle_->input(std::string(chunk), false);
        payload.remove_prefix(chunk.size());
      }
    } else if (channel == 4) {
      if (!tty_) return;
      Json j = Json::parse(payload, nullptr, false);
      if (!j.is_object()) return;
      auto dim = [&j](const char* key) -> uint32_t {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned()) return 0;
        return static_cast<uint32_t>(std::min<uint64_t>(it->get<uint64_t>(), 65535));
      };
      const uint32_t width = dim("Width"), height = dim("Height");
      if (width == 0 || height == 0) return;
      buffer_->inputSent(0);
      handle_->resize(width, height);
    } else if (channel == 255 && v5_ && payload.size() == 1 && payload[0] == 0) {
      if (!stdin_ || stdinClosed_) return;
      stdinClosed_ = true;
      buffer_->inputSent(0);
      handle_->input({}, true);
    }
  }
  bool wantsInput() override {
    return buffer_->inputRoom(kInputBytesBeforeRead, kInputsBeforeRead);
  }

  std::vector<std::string> next(bool& finished) override {
    bool closed = false;
    Status status;
    int32_t exitCode = 0;
    auto chunks = buffer_->take(closed, status, exitCode);
    std::vector<std::string> out;
    size_t bytes = 0;
    for (auto& c : chunks) {
      bytes += c.data.size();
      std::string m(1, c.channel == StreamChannel::kStderr ? '\x02' : '\x01');
      m += c.data;
      out.push_back(std::move(m));
    }
    if (bytes > 0) handle_->consumed(bytes);
    if (closed) {
      closed_ = true;
      out.push_back("\x03" + (status.isOk() ? execStatusJson(exitCode) : failureJson(status)));
    }
    finished = closed;
    return out;
  }
  void setWake(std::function<void()> wake) override { buffer_->setWake(std::move(wake)); }
  void close() override {
    buffer_->setWake(nullptr);
    if (!closed_) handle_->cancel();
  }

 private:
  std::shared_ptr<StreamBuffer> buffer_;
  std::shared_ptr<StreamHandle> handle_;
  const bool v5_, stdin_, tty_;
  bool closed_ = false;       // only touched by next()/close(), which the server serializes
  bool stdinClosed_ = false;  // only touched by onMessage() (the I/O thread)
};

// Exec without a WebSocket (edgectl exec): the command's output is gathered as it arrives and
// answered as one ExecResult once the command ends, or as a Status if the stream fails. A
// stream, not a handler that waits: a long command holds no API worker (before, eight of them
// stalled the whole API). The output is bounded by what the runtime's execSync returns;
// consumption is granted as it arrives. The edge ends every command within its exec limit (at
// most an hour), which closes the stream with a Status; the server's own deadline, a little
// later, is only a backstop (the client would then see an empty body).
class ExecResultBody final : public http::BodyStream {
 public:
  ExecResultBody(std::shared_ptr<StreamBuffer> buffer, std::shared_ptr<StreamHandle> handle)
      : buffer_(std::move(buffer)),
        handle_(std::move(handle)),
        deadline_(std::chrono::steady_clock::now() + std::chrono::hours(1) +
                  std::chrono::minutes(2)) {}

  std::string next(bool& finished) override {
    bool closed = false;
    Status status;
    int32_t exitCode = 0;
    auto chunks = buffer_->take(closed, status, exitCode);
    size_t bytes = 0;
    for (auto& c : chunks) {
      bytes += c.data.size();
      (c.channel == StreamChannel::kStderr ? err_ : out_) += c.data;
    }
    if (bytes > 0) handle_->consumed(bytes);
    finished = closed;
    if (!closed) return "";
    closed_ = true;
    Json j;
    if (status.isOk()) {
      j = {{"kind", "ExecResult"},
           {"apiVersion", "edgeplane.io/v1"},
           {"stdout", std::move(out_)},
           {"stderr", std::move(err_)},
           {"exitCode", exitCode}};
    } else {
      j = api::statusObject(status);
    }
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  void setWake(std::function<void()> wake) override { buffer_->setWake(std::move(wake)); }
  std::chrono::steady_clock::time_point deadline() const override { return deadline_; }
  void close() override {
    buffer_->setWake(nullptr);
    if (!closed_) handle_->cancel();  // the client went away, or the hour is over
  }

 private:
  std::shared_ptr<StreamBuffer> buffer_;
  std::shared_ptr<StreamHandle> handle_;
  const std::chrono::steady_clock::time_point deadline_;
  // Only touched by next()/close(), which the server serializes.
  std::string out_, err_;
  bool closed_ = false;
};

// Optional integer query parameter; nullopt value + error on junk.
Status intParam(const ServerRequest& req, const std::string& name, int64_t min, int64_t& out) {
  std::string v = req.param(name);
  if (v.empty()) return Status::ok();
  try {
    size_t used = 0;
    int64_t n = std::stoll(v, &used);
    if (used != v.size() || n < min) throw std::invalid_argument(v);
    out = n;
    return Status::ok();
  } catch (...) {
    return badRequestError(name + ": must be an integer >= " + std::to_string(min) + ", got \"" +
                           v + "\"");
  }
}

struct PodTarget {
  std::string node;
  std::string container;
};

// Kubernetes' checks: the pod exists, the container is named (or the only one) and valid, the
// pod is bound to a node.
Result<PodTarget> resolvePod(registry::Registry& registry, const std::string& ns,
                             const std::string& name, const std::string& container,
                             const api::KindInfo*& kind) {
  kind = api::findByApiVersionKind("v1", "Pod");
  auto pod = registry.get(*kind, ns, name);
  if (!pod.isOk()) return pod.status();
  const Json& spec = (*pod)["spec"].is_object() ? (*pod)["spec"] : Json::object();
  std::vector<std::string> names, all;
  for (const char* field : {"containers", "initContainers", "ephemeralContainers"}) {
    auto it = spec.find(field);
    if (it == spec.end() || !it->is_array()) continue;
    for (const auto& c : *it) {
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) continue;
      all.push_back(c["name"]);
      if (std::string(field) == "containers") names.push_back(c["name"]);
    }
  }
  PodTarget t;
  if (container.empty()) {
    if (names.size() == 1) {
      t.container = names[0];
    } else {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : " ") + n;
      return badRequestError("a container name must be specified for pod " + name +
                             ", choose one of: [" + list + "]");
    }
  } else {
    if (std::find(all.begin(), all.end(), container) == all.end()) {
      return badRequestError("container " + container + " is not valid for pod " + name);
    }
    t.container = container;
  }
  t.node = spec.value("nodeName", std::string());
  if (t.node.empty()) return badRequestError("pod " + name + " does not have a host assigned");
  return t;
}

struct OpenedStream {
  std::shared_ptr<StreamBuffer> buffer;
  std::shared_ptr<StreamHandle> handle;
};

// Opens a stream of `sr` on `node` and waits for the node's first reply. An error when the node
// cannot be reached, does not answer within `timeout` (the stream is cancelled), or closes the
// stream with an error before any output.
Result<OpenedStream> openStream(StreamOpener& broker, const std::string& node,
                                const StreamRequest& sr, std::chrono::milliseconds timeout,
                                const char* what, std::atomic<size_t>& waiting, size_t maxWaiting) {
  // A slot among the requests that may hold an HTTP worker while their node is silent.
  struct Slot {
    std::atomic<size_t>& n;
    ~Slot() { --n; }
  };
  if (++waiting > maxWaiting) {
    --waiting;
    return unavailableError("too many log and exec requests are waiting for their nodes (" +
                            std::to_string(maxWaiting) + "); try again shortly");
  }
  Slot slot{waiting};
  auto buffer = std::make_shared<StreamBuffer>();
  auto handle = broker.open(node, sr, buffer);
  if (!handle.isOk()) return handle.status();
  if (!buffer->waitFirst(timeout)) {
    (*handle)->cancel();
    return Status(Code::kTimeout,
                  "node " + node + " did not answer the " + std::string(what) + " request");
  }
  Status early;
  if (buffer->closedWithoutOutput(early) && !early.isOk()) return early;
  return OpenedStream{std::move(buffer), std::move(handle.value())};
}

}  // namespace

std::vector<std::string> queryValues(const std::string& target, const std::string& name) {
  std::vector<std::string> out;
  auto q = target.find('?');
  if (q == std::string::npos) return out;
  std::string_view rest = std::string_view(target).substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    auto eq = kv.find('=');
    if (http::percentDecode(kv.substr(0, eq), true) == name) {
      out.push_back(eq == std::string_view::npos ? ""
                                                 : http::percentDecode(kv.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return out;
}

std::string execStatusJson(int32_t exitCode) {
  if (exitCode == 0) return R"({"metadata":{},"status":"Success"})";
  Json j = {{"metadata", Json::object()},
            {"status", "Failure"},
            {"message",
             "command terminated with non-zero exit code: exit code " + std::to_string(exitCode)},
            {"reason", "NonZeroExitCode"},
            {"details",
             {{"causes",
               Json::array({{{"reason", "ExitCode"}, {"message", std::to_string(exitCode)}}})}}}};
  return j.dump();
}

PodStreams::PodStreams(registry::Registry& registry, StreamOpener& broker,
                       PodStreamsOptions options)
    : registry_(registry), broker_(broker), options_(options) {}

void PodStreams::install(ApiHandler& handler) {
  handler.addSubresource("pods", "log",
                         [this](ServerRequest& r, const std::string& ns, const std::string& n) {
                           return logs(r, ns, n);
                         });
  handler.addSubresource("pods", "exec",
                         [this](ServerRequest& r, const std::string& ns, const std::string& n) {
                           return exec(r, ns, n);
                         });
  handler.addSubresource("pods", "attach",
                         [this](ServerRequest& r, const std::string& ns, const std::string& n) {
                           return attach(r, ns, n);
                         });
  handler.addSubresource("pods", "portforward",
                         [this](ServerRequest& r, const std::string& ns, const std::string& n) {
                           return portForward(r, ns, n);
                         });
}

ServerResponse PodStreams::portForward(ServerRequest& req, const std::string& ns,
                                       const std::string& name) {
  if (req.method != "GET" && req.method != "POST") {
    return api::errorResponse(Status(Code::kMethodNotAllowed,
                                     "the server does not allow this method on pods/portforward"));
  }
  // The pod and its node first, whatever the client tried: kubectl retries over SPDY after a
  // refused WebSocket upgrade and shows only why the last attempt failed.
  const api::KindInfo* kind = api::findByApiVersionKind("v1", "Pod");
  auto pod = registry_.get(*kind, ns, name);
  if (!pod.isOk()) return api::errorResponse(pod.status(), kind, name);
  const Json& spec = (*pod)["spec"].is_object() ? (*pod)["spec"] : Json::object();
  const std::string node = spec.value("nodeName", std::string());
  if (node.empty()) {
    return api::errorResponse(badRequestError("pod " + name + " does not have a host assigned"));
  }
  const std::string upgrade = req.header("upgrade");
  const bool websocket = upgrade.find("websocket") != std::string::npos ||
                         upgrade.find("WebSocket") != std::string::npos;
  const std::string offered = req.header("sec-websocket-protocol");
  if (websocket && offered.find(kPortForwardTunnelProtocol) != std::string::npos) {
    ServerResponse r;
    r.websocket = std::make_shared<PortForwardSession>(broker_, node, ns, name);
    r.websocketProtocol = kPortForwardTunnelProtocol;
    return r;
  }
  if (!websocket || offered.find(kPortForwardChannelProtocol) == std::string::npos) {
    return api::errorResponse(badRequestError(
        "port-forward needs a WebSocket client offering the subprotocol " +
        std::string(kPortForwardTunnelProtocol) + " (kubectl >= 1.30 does by default) or " +
        kPortForwardChannelProtocol + " with ports; SPDY upgrades are not served"));
  }
  // v4.channel.k8s.io: the ports are query parameters (repeated, or comma-separated).
  std::vector<uint16_t> ports;
  for (const auto& value : queryValues(req.target, "ports")) {
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      std::string text =
          value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      auto port = parsePort(text);
      if (!port) {
        return api::errorResponse(
            badRequestError("ports: \"" + text + "\" is not a port number from 1 to 65535"));
      }
      ports.push_back(*port);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (ports.empty() || ports.size() > 32) {
    return api::errorResponse(badRequestError(
        "ports: the v4.channel.k8s.io port-forward protocol needs 1 to 32 ports, got " +
        std::to_string(ports.size())));
  }
  ServerResponse r;
  r.websocket = std::make_shared<ChannelPortForwardSession>(broker_, node, ns, name, ports);
  r.websocketProtocol = kPortForwardChannelProtocol;
  return r;
}

ServerResponse PodStreams::logs(ServerRequest& req, const std::string& ns,
                                const std::string& name) {
  if (req.method != "GET") {
    return api::errorResponse(
        Status(Code::kMethodNotAllowed, "the server does not allow this method on pods/log"));
  }
  const api::KindInfo* kind = nullptr;
  auto target = resolvePod(registry_, ns, name, req.param("container"), kind);
  if (!target.isOk()) return api::errorResponse(target.status(), kind, name);
  StreamRequest sr;
  sr.kind = StreamRequest::Kind::kLogs;
  sr.ns = ns;
  sr.pod = name;
  sr.container = target->container;
  sr.follow = req.flag("follow");
  sr.previous = req.flag("previous");
  sr.timestamps = req.flag("timestamps");
  for (auto [param, min, out] : {std::tuple{"tailLines", int64_t{0}, &sr.tailLines},
                                 std::tuple{"sinceSeconds", int64_t{1}, &sr.sinceSeconds},
                                 std::tuple{"limitBytes", int64_t{1}, &sr.limitBytes}}) {
    if (auto s = intParam(req, param, min, *out); !s.isOk()) return api::errorResponse(s);
  }
  if (!req.param("sinceTime").empty()) {
    return api::errorResponse(badRequestError("sinceTime is not supported; use sinceSeconds"));
  }
  auto opened = openStream(broker_, target->node, sr, options_.firstReplyTimeout, "log",
                           waitingOpens_, options_.maxWaitingOpens);
  if (!opened.isOk()) return api::errorResponse(opened.status());
  ServerResponse r;
  r.contentType = "text/plain";
  r.stream = std::make_shared<LogBody>(std::move(opened->buffer), std::move(opened->handle));
  return r;
}

ServerResponse PodStreams::exec(ServerRequest& req, const std::string& ns,
                                const std::string& name) {
  return remoteCommand(req, ns, name, StreamRequest::Kind::kExec);
}

ServerResponse PodStreams::attach(ServerRequest& req, const std::string& ns,
                                  const std::string& name) {
  return remoteCommand(req, ns, name, StreamRequest::Kind::kAttach);
}

ServerResponse PodStreams::remoteCommand(ServerRequest& req, const std::string& ns,
                                         const std::string& name, StreamRequest::Kind kind) {
  const bool isExec = kind == StreamRequest::Kind::kExec;
  const std::string what = isExec ? "exec" : "attach";
  if (req.method != "GET" && req.method != "POST") {
    return api::errorResponse(
        Status(Code::kMethodNotAllowed, "the server does not allow this method on pods/" + what));
  }
  const bool upgrade = req.header("upgrade").find("websocket") != std::string::npos ||
                       req.header("upgrade").find("WebSocket") != std::string::npos;
  std::string protocol;
  if (upgrade) {
    std::string offered = req.header("sec-websocket-protocol");
    for (const char* p : {"v5.channel.k8s.io", "v4.channel.k8s.io"}) {
      if (offered.find(p) != std::string::npos) {
        protocol = p;
        break;
      }
    }
    if (protocol.empty()) {
      return api::errorResponse(badRequestError(
          "unsupported WebSocket subprotocol; this server speaks v5.channel.k8s.io and "
          "v4.channel.k8s.io"));
    }
  }
  // kubectl falls back to SPDY when the WebSocket upgrade is refused: the checks below run first
  // so the reason (no such pod, container not running...) reaches the user whichever it tried.
  const bool spdy = !upgrade && !req.header("upgrade").empty();
  const api::KindInfo* podKind = nullptr;
  auto target = resolvePod(registry_, ns, name, req.param("container"), podKind);
  if (!target.isOk()) return api::errorResponse(target.status(), podKind, name);
  StreamRequest sr;
  sr.kind = kind;
  sr.ns = ns;
  sr.pod = name;
  sr.container = target->container;
  sr.stdin = req.flag("stdin");
  sr.tty = req.flag("tty");
  if (isExec) {
    sr.command = queryValues(req.target, "command");
    if (sr.command.empty()) {
      return api::errorResponse(
          badRequestError("you must specify at least one command for the container"));
    }
    if (auto s = intParam(req, "timeoutSeconds", 1, sr.timeoutSeconds); !s.isOk()) {
      return api::errorResponse(s);
    }
  }
  // Kubernetes: at least one stream, and a terminal merges stderr into stdout.
  const bool stdoutFlag = req.param("stdout").empty() || req.flag("stdout");
  if (!sr.stdin && !stdoutFlag && !req.flag("stderr")) {
    return api::errorResponse(
        badRequestError("you must specify at least 1 of stdin, stdout, stderr"));
  }
  if (spdy) {
    return api::errorResponse(badRequestError(
        "SPDY is not supported; use a WebSocket client (kubectl >= 1.30 does by default)"));
  }
  if (!upgrade && sr.interactive()) {
    return api::errorResponse(badRequestError(
        "interactive " + what +
        " (stdin, tty) needs a WebSocket client speaking v5.channel.k8s.io or "
        "v4.channel.k8s.io, such as kubectl; without an upgrade only exec of a command without "
        "input is served"));
  }
  auto opened = openStream(broker_, target->node, sr, options_.firstReplyTimeout, what.c_str(),
                           waitingOpens_, options_.maxWaitingOpens);
  if (!opened.isOk()) {
    if (!upgrade) return api::errorResponse(opened.status());
    ServerResponse r;
    r.websocket = std::make_shared<FailureSocket>(opened.status());
    r.websocketProtocol = protocol;
    return r;
  }
  auto& [buffer, handle] = *opened;
  if (upgrade) {
    ServerResponse r;
    r.websocket = std::make_shared<ExecSocket>(std::move(buffer), std::move(handle),
                                               protocol == "v5.channel.k8s.io", sr.stdin, sr.tty);
    r.websocketProtocol = protocol;
    return r;
  }
  ServerResponse r;
  r.status = 200;
  r.stream = std::make_shared<ExecResultBody>(std::move(buffer), std::move(handle));
  return r;
}

}  // namespace ep::apiserver
