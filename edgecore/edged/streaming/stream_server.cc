#include "edgecore/edged/streaming/stream_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/thread_annotations.h"
#include "edgecore/edged/streaming/channel_session.h"
#include "edgecore/edged/streaming/cri_log.h"
#include "edgecore/edged/streaming/websocket_client.h"

namespace ep::edged::streaming {

namespace tv1 = edgeplane::tunnel::v1;

namespace {

constexpr size_t kMaxChunk = 32 * 1024;
// Input an interactive stream may have queued: the cloud keeps at most 64 KiB of stdin
// unacknowledged (proto/tunnel.proto StreamInput); far beyond that the cloud is broken and the
// stream ends rather than grow.
constexpr uint64_t kMaxQueuedInput = 256 * 1024;
constexpr size_t kMaxQueuedInputs = 64;  // the cloud keeps at most 32 unacknowledged
constexpr const char* kStreamingProtocol = "v4.channel.k8s.io";

tv1::StreamErrorCode errorCodeOf(Code code) {
  switch (code) {
    case Code::kNotFound:
      return tv1::STREAM_ERROR_NOT_FOUND;
    case Code::kBadRequest:
    case Code::kInvalid:
      return tv1::STREAM_ERROR_BAD_REQUEST;
    case Code::kUnavailable:
      return tv1::STREAM_ERROR_UNAVAILABLE;
    case Code::kTimeout:
      return tv1::STREAM_ERROR_TIMEOUT;
    default:
      return tv1::STREAM_ERROR_INTERNAL;
  }
}

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

// Shared by the handler methods (reaction threads) and the stream's thread.
struct StreamServer::Stream {
  tv1::StreamOpen open;
  edgecore::edgehub::StreamSender send;

  Mutex mu;
  std::condition_variable cv;
  uint64_t credit EP_GUARDED_BY(mu) = 0;     // payload bytes the edge may still send
  bool cancelled EP_GUARDED_BY(mu) = false;  // StreamCancel, connection gone, or stop()
  // Interactive streams: the cloud's input not yet written, the runtime's streaming socket
  // (shut down on cancel, so a blocked read or write returns), and the end of the session.
  std::deque<tv1::StreamInput> inputs EP_GUARDED_BY(mu);
  uint64_t queuedInput EP_GUARDED_BY(mu) = 0;
  std::shared_ptr<ChannelSession> socket EP_GUARDED_BY(mu);
  bool sessionOver EP_GUARDED_BY(mu) = false;

  bool isCancelled() {
    MutexLock l(mu);
    return cancelled;
  }
  void cancel() {
    std::shared_ptr<ChannelSession> s;
    {
      MutexLock l(mu);
      cancelled = true;
      s = socket;
    }
    if (s) s->shutdown();
    cv.notify_all();
  }
  // Waits up to `d` (or until cancelled). False when cancelled.
  bool sleep(std::chrono::milliseconds d) {
    MutexLock l(mu);
    const auto until = std::chrono::steady_clock::now() + d;
    while (!cancelled && l.waitUntil(cv, until) != std::cv_status::timeout) {
    }
    return !cancelled;
  }

  // Sends `data` on `channel` within the window, in chunks of at most 32 KiB; blocks (this
  // stream's thread only) while the window is closed. False when cancelled or disconnected.
  bool sendData(tv1::StreamChannel channel, std::string_view data) {
    while (!data.empty()) {
      size_t n = 0;
      {
        MutexLock l(mu);
        while (!cancelled && credit == 0) l.wait(cv);
        if (cancelled) return false;
        n = static_cast<size_t>(std::min<uint64_t>({credit, kMaxChunk, data.size()}));
        credit -= n;
      }
      tv1::EdgeMessage m;
      auto* d = m.mutable_stream_data();
      d->set_id(open.id());
      d->set_channel(channel);
      d->set_data(std::string(data.substr(0, n)));
      if (!send(std::move(m))) {
        cancel();
        return false;
      }
      data.remove_prefix(n);
    }
    return true;
  }

  // The empty first StreamData: the container was found, output follows.
  bool sendReady() {
    tv1::EdgeMessage m;
    m.mutable_stream_data()->set_id(open.id());
    return send(std::move(m));
  }

  void sendClose(tv1::StreamErrorCode code, const std::string& error, int32_t exitCode = 0) {
    tv1::EdgeMessage m;
    auto* c = m.mutable_stream_close();
    c->set_id(open.id());
    c->set_exit_code(exitCode);
    c->set_error(error);
    c->set_error_code(code);
    send(std::move(m));
  }
};

namespace {

// The container the stream is about: latest attempt, or the one before with `previous`.
Result<ContainerStatus> findContainer(ContainerRuntime& runtime, const tv1::StreamOpen& open) {
  ContainerFilter filter;
  filter.labels = {{kLabelPodName, open.pod()},
                   {kLabelPodNamespace, open.namespace_()},
                   {kLabelContainerName, open.container()}};
  auto list = runtime.listContainers(filter);
  if (!list.isOk()) return list.status();
  std::vector<ContainerInfo> found = std::move(list.value());
  std::sort(found.begin(), found.end(), [](const ContainerInfo& a, const ContainerInfo& b) {
    return a.attempt != b.attempt ? a.attempt > b.attempt : a.createdAtNs > b.createdAtNs;
  });
  const size_t index = open.previous() ? 1 : 0;
  if (found.size() <= index) {
    if (open.previous()) {
      return notFoundError("previous terminated container \"" + open.container() + "\" in pod \"" +
                           open.pod() + "\" not found");
    }
    return notFoundError("container \"" + open.container() + "\" in pod \"" + open.pod() +
                         "\" is waiting to start: no container on the node yet");
  }
  return runtime.containerStatus(found[index].id);
}

}  // namespace

StreamServer::StreamServer(ContainerRuntime& runtime, StreamServerOptions options)
    : runtime_(runtime), options_(std::move(options)) {}

StreamServer::~StreamServer() {
  stop();
}

void StreamServer::onStreamOpen(const tv1::StreamOpen& open, edgecore::edgehub::StreamSender send) {
  auto stream = std::make_shared<Stream>();
  stream->open = open;
  stream->send = std::move(send);
  {
    MutexLock l(stream->mu);  // not shared yet; the lock states what guards it
    stream->credit = open.initial_window();
  }
  std::string refusal;
  {
    MutexLock l(mu_);
    reapFinishedLocked();
    if (stopping_) {
      refusal = "edgecore is shutting down";
    } else if (streams_.size() >= options_.maxStreams) {
      refusal = "too many streams on this node (limit " + std::to_string(options_.maxStreams) + ")";
    } else if (streams_.count(open.id()) != 0) {
      refusal = "stream id " + std::to_string(open.id()) + " is already in use";
    } else {
      streams_[open.id()] = stream;
      // Starting a thread does not block on anything the stream does.
      threads_[open.id()] = std::thread([this, stream] { run(stream); });
      return;
    }
  }
  stream->sendClose(tv1::STREAM_ERROR_UNAVAILABLE, refusal);
}

void StreamServer::onStreamCancel(uint64_t id) {
  std::shared_ptr<Stream> s;
  {
    MutexLock l(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    s = it->second;
  }
  s->cancel();
}

void StreamServer::onStreamWindow(uint64_t id, uint64_t bytes) {
  std::shared_ptr<Stream> s;
  {
    MutexLock l(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    s = it->second;
  }
  {
    MutexLock l(s->mu);
    // A misbehaving cloud cannot overflow the counter.
    s->credit = std::min<uint64_t>(s->credit + bytes, uint64_t{1} << 40);
  }
  s->cv.notify_all();
}

void StreamServer::onStreamInput(tv1::StreamInput&& input) {
  std::shared_ptr<Stream> s;
  {
    MutexLock l(mu_);
    auto it = streams_.find(input.id());
    if (it == streams_.end()) return;
    s = it->second;
  }
  bool overflow = false;
  {
    MutexLock l(s->mu);
    if (s->queuedInput + input.data().size() > kMaxQueuedInput ||
        s->inputs.size() >= kMaxQueuedInputs) {
      overflow = true;
    } else {
      s->queuedInput += input.data().size();
      s->inputs.push_back(std::move(input));
    }
  }
  if (overflow) {
    spdlog::warn("edged: stream {}: the cloud sent more input than the protocol allows; ending it",
                 s->open.id());
    s->cancel();
    return;
  }
  s->cv.notify_all();
}

void StreamServer::onConnectionClosed() {
  std::vector<std::shared_ptr<Stream>> all;
  {
    MutexLock l(mu_);
    for (auto& [id, s] : streams_) all.push_back(s);
  }
  for (auto& s : all) s->cancel();
}

void StreamServer::stop() {
  std::map<uint64_t, std::thread> threads;
  std::vector<std::thread> finished;
  {
    MutexLock l(mu_);
    stopping_ = true;
    for (auto& [id, s] : streams_) s->cancel();
    threads.swap(threads_);
    finished.swap(finished_);
  }
  // A stream blocked in execSync ends when the runtime call returns (its own timeout).
  for (auto& [id, t] : threads) t.join();
  for (auto& t : finished) t.join();
}

size_t StreamServer::activeStreams() const {
  MutexLock l(mu_);
  return streams_.size();
}

void StreamServer::reapFinishedLocked() {
  for (auto& t : finished_) t.join();  // these threads already returned from run()
  finished_.clear();
}

void StreamServer::run(std::shared_ptr<Stream> stream) {
  const tv1::StreamOpen& open = stream->open;
  tv1::StreamErrorCode code = tv1::STREAM_ERROR_NONE;
  std::string error;
  int32_t exitCode = 0;
  try {
    if (open.kind() == tv1::STREAM_KIND_PORT_FORWARD) {
      Status s = streamPortForward(*stream);
      if (!s.isOk()) {
        code = errorCodeOf(s.code());
        error = s.message();
      }
    } else if (auto container = findContainer(runtime_, open); !container.isOk()) {
      code = errorCodeOf(container.status().code());
      error = container.status().message();
    } else if (open.kind() == tv1::STREAM_KIND_ATTACH ||
               (open.kind() == tv1::STREAM_KIND_EXEC && (open.stdin() || open.tty()))) {
      auto r = streamInteractive(*stream, *container);
      if (!r.isOk()) {
        code = errorCodeOf(r.status().code());
        error = r.status().message();
      } else {
        exitCode = *r;
      }
    } else if (open.kind() == tv1::STREAM_KIND_EXEC) {
      if (container->info.state != ContainerState::kRunning) {
        code = tv1::STREAM_ERROR_BAD_REQUEST;
        error =
            "container \"" + open.container() + "\" in pod \"" + open.pod() + "\" is not running";
      } else if (open.command().empty()) {
        code = tv1::STREAM_ERROR_BAD_REQUEST;
        error = "you must specify at least one command for the container";
      } else if (stream->sendReady()) {
        auto timeout = open.timeout_seconds() > 0 ? std::chrono::seconds(open.timeout_seconds())
                                                  : options_.defaultExecTimeout;
        timeout = std::min(timeout, options_.maxExecTimeout);
        std::vector<std::string> cmd(open.command().begin(), open.command().end());
        auto r = runtime_.execSync(container->info.id, cmd, timeout);
        if (!r.isOk()) {
          code = errorCodeOf(r.status().code());
          error = r.status().message();
        } else if (stream->sendData(tv1::STREAM_CHANNEL_STDOUT, r->stdoutData) &&
                   stream->sendData(tv1::STREAM_CHANNEL_STDERR, r->stderrData)) {
          exitCode = r->exitCode;
        }
      }
    } else if (open.kind() == tv1::STREAM_KIND_LOGS) {
      Status s = streamLogs(*stream, *container);
      if (!s.isOk()) {
        code = errorCodeOf(s.code());
        error = s.message();
      }
    } else {
      code = tv1::STREAM_ERROR_BAD_REQUEST;
      error = "unknown stream kind " + std::to_string(open.kind());
    }
  } catch (const std::exception& e) {
    code = tv1::STREAM_ERROR_INTERNAL;
    error = std::string("internal error: ") + e.what();
  }
  if (stream->isCancelled() && code == tv1::STREAM_ERROR_NONE) {
    code = tv1::STREAM_ERROR_CANCELLED;
    error = "cancelled";
  }
  if (code != tv1::STREAM_ERROR_NONE && code != tv1::STREAM_ERROR_CANCELLED) {
    spdlog::info("edged: stream {} ({} {}/{}/{}) failed: {}", open.id(),
                 open.kind() == tv1::STREAM_KIND_EXEC           ? "exec"
                 : open.kind() == tv1::STREAM_KIND_ATTACH       ? "attach"
                 : open.kind() == tv1::STREAM_KIND_PORT_FORWARD ? "port-forward"
                                                                : "logs",
                 open.namespace_(), open.pod(), open.container(), error);
  }
  stream->sendClose(code, error, exitCode);

  MutexLock l(mu_);
  streams_.erase(open.id());
  if (auto it = threads_.find(open.id()); it != threads_.end()) {
    finished_.push_back(std::move(it->second));
    threads_.erase(it);
  }
}

namespace {

// The exit code in the final Status of a channel.k8s.io session (channel 3): 0 for Success, N
// for NonZeroExitCode with an ExitCode cause; any other failure is an error.
Result<int32_t> exitCodeOf(std::string_view statusJson) {
  auto j = nlohmann::json::parse(statusJson, nullptr, false);
  if (!j.is_object()) return internalError("the runtime sent an unreadable exec status");
  auto str = [&j](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (str("status") == "Success") return 0;
  if (str("reason") == "NonZeroExitCode") {
    auto details = j.find("details");
    if (details != j.end() && details->is_object()) {
      auto causes = details->find("causes");
      if (causes != details->end() && causes->is_array()) {
        for (const auto& c : *causes) {
          if (!c.is_object() || c.value("reason", nlohmann::json()) != "ExitCode") continue;
          auto m = c.find("message");
          if (m == c.end() || !m->is_string()) continue;
          try {
            return static_cast<int32_t>(std::stol(m->get<std::string>()));
          } catch (...) {
          }
        }
      }
    }
  }
  std::string message = str("message");
  return internalError(message.empty() ? "the command failed in the runtime" : message);
}

}  // namespace

// Ends a runtime streaming session on every way out of its scope: shuts the socket down, marks
// the session over and joins the thread writing the cloud's input into it.
struct StreamServer::WriterGuard {
  WriterGuard(Stream& st, ChannelSession& so, std::thread& w) : stream(st), socket(so), writer(w) {}
  WriterGuard(const WriterGuard&) = delete;
  WriterGuard& operator=(const WriterGuard&) = delete;
  Stream& stream;
  ChannelSession& socket;
  std::thread& writer;
  ~WriterGuard() {
    socket.shutdown();
    {
      MutexLock l(stream.mu);
      stream.sessionOver = true;
    }
    stream.cv.notify_all();
    writer.join();
  }
};

// Writes the cloud's input into the session until it is over or cancelled: everything queued
// at once (stdin joined into one frame, the last terminal size), then one StreamInputAck for
// all of it, which lets the cloud send more.
void StreamServer::writeInput(Stream& stream, ChannelSession& session) {
  bool stdinClosed = false;
  for (;;) {
    std::deque<tv1::StreamInput> batch;
    {
      MutexLock l(stream.mu);
      while (!stream.cancelled && !stream.sessionOver && stream.inputs.empty()) l.wait(stream.cv);
      if (stream.cancelled || stream.sessionOver) return;
      batch.swap(stream.inputs);
      stream.queuedInput = 0;
    }
    std::string data;
    uint64_t received = 0;  // acknowledged whether written or not (after the end of stdin)
    const tv1::StreamInput* size = nullptr;
    bool closeNow = false;
    for (const auto& in : batch) {
      received += in.data().size();
      if (!stdinClosed && !closeNow) data += in.data();  // nothing after the end of stdin
      if (in.width() > 0 && in.height() > 0) size = &in;
      closeNow = closeNow || in.stdin_closed();
    }
    if (!data.empty() && !session.write(kChannelStdin, data).isOk()) return;
    if (size != nullptr) {
      nlohmann::json wh = {{"Width", size->width()}, {"Height", size->height()}};
      if (!session.write(kChannelResize, wh.dump()).isOk()) return;
    }
    if (closeNow && !stdinClosed) {
      stdinClosed = true;
      // Over SPDY the command reads end-of-file; v4.channel.k8s.io over WebSocket has no way to
      // end stdin alone, so there the input simply stops (docs/tunnel.md, "Streams").
      if (!session.closeStdin().isOk()) return;
    }
    tv1::EdgeMessage ack;
    ack.mutable_stream_input_ack()->set_id(stream.open.id());
    ack.mutable_stream_input_ack()->set_bytes(received);
    ack.mutable_stream_input_ack()->set_inputs(static_cast<uint32_t>(batch.size()));
    if (!stream.send(std::move(ack))) {
      stream.cancel();
      return;
    }
  }
}

Result<int32_t> StreamServer::streamInteractive(Stream& stream, const ContainerStatus& container) {
  const tv1::StreamOpen& open = stream.open;
  const bool attach = open.kind() == tv1::STREAM_KIND_ATTACH;
  if (container.info.state != ContainerState::kRunning) {
    return badRequestError("container \"" + open.container() + "\" in pod \"" + open.pod() +
                           "\" is not running");
  }
  StreamingRequest request;
  request.containerId = container.info.id;
  request.attach = attach;
  if (!attach) {
    request.command.assign(open.command().begin(), open.command().end());
    if (request.command.empty()) {
      return badRequestError("you must specify at least one command for the container");
    }
  }
  request.stdin = open.stdin();
  request.tty = open.tty();
  request.stdout = true;
  request.stderr = !open.tty();
  auto url = runtime_.streamingUrl(request);
  if (!url.isOk()) return url.status();
  std::shared_ptr<ChannelSession> socket;
  if (request.stdin && !request.tty) {
    // Only SPDY gives each channel a stream of its own, so that stdin can end alone (kubectl
    // exec -i without a terminal, kubectl cp).
    auto spdy = connectSpdySession(
        *url, {.stdin = true, .stdout = true, .stderr = request.stderr, .tty = false},
        options_.connectTimeout);
    if (spdy.isOk()) {
      socket = std::move(spdy.value());
    } else if (spdy.status().code() == Code::kUnavailable &&
               (spdy.status().message().find("refused the upgrade: HTTP/1.1 400") !=
                    std::string::npos ||
                spdy.status().message().find("does not speak") != std::string::npos ||
                spdy.status().message().find("closed the connection during the upgrade") !=
                    std::string::npos)) {
      // A runtime without SPDY (it refused the upgrade as a bad request, or dropped it): a new
      // URL (a token is good for one session) over WebSocket. Other failures (unreachable, an
      // expired token, a stream refused) are the session's.
      spdlog::info("exec: {}; using WebSocket (stdin cannot end alone)", spdy.status().message());
      url = runtime_.streamingUrl(request);
      if (!url.isOk()) return url.status();
    } else {
      return spdy.status();
    }
  }
  if (!socket) {
    auto connected = WebSocketClient::connect(*url, kStreamingProtocol, options_.connectTimeout);
    if (!connected.isOk()) return connected.status();
    socket = webSocketSession(std::move(connected.value()));
  }
  {
    MutexLock l(stream.mu);
    if (stream.cancelled) return 0;
    stream.socket = socket;
  }
  if (!stream.sendReady()) return 0;
  std::thread writer([this, &stream, socket] { writeInput(stream, *socket); });
  std::optional<WriterGuard> guard(std::in_place, stream, *socket, writer);
  Result<int32_t> result = 0;
  bool sawStatus = false;
  for (;;) {
    auto m = socket->read();
    if (!m.isOk()) {
      if (m.status().code() != Code::kUnavailable) result = m.status();
      break;
    }
    const uint8_t channel = m->channel;
    std::string_view payload = m->data;
    if (payload.empty()) continue;  // the server's "channel open" marker
    if (channel == 1 || channel == 2) {
      if (!stream.sendData(channel == 1 ? tv1::STREAM_CHANNEL_STDOUT : tv1::STREAM_CHANNEL_STDERR,
                           payload)) {
        break;
      }
    } else if (channel == 3) {
      result = exitCodeOf(payload);
      sawStatus = true;
    }
  }
  guard.reset();
  if (!sawStatus && result.isOk() && !stream.isCancelled() && !attach) {
    return internalError("the runtime ended the exec session without an exit status");
  }
  return result;
}

Status StreamServer::streamPortForward(Stream& stream) {
  const tv1::StreamOpen& open = stream.open;
  if (open.port() == 0 || open.port() > 65535) {
    return badRequestError("invalid port " + std::to_string(open.port()) +
                           ": must be from 1 to 65535");
  }
  auto sandboxes = runtime_.listPodSandboxes(
      {{kLabelPodName, open.pod()}, {kLabelPodNamespace, open.namespace_()}});
  if (!sandboxes.isOk()) return sandboxes.status();
  const SandboxInfo* ready = nullptr;
  for (const auto& sb : *sandboxes) {
    if (sb.state != SandboxState::kReady) continue;
    if (ready == nullptr || sb.attempt > ready->attempt ||
        (sb.attempt == ready->attempt && sb.createdAtNs > ready->createdAtNs)) {
      ready = &sb;
    }
  }
  if (ready == nullptr) {
    return notFoundError("pod \"" + open.pod() + "\" has no running sandbox on this node");
  }
  auto url = runtime_.portForwardUrl(ready->id, static_cast<uint16_t>(open.port()));
  if (!url.isOk()) return url.status();
  auto connected = WebSocketClient::connect(*url, kStreamingProtocol, options_.connectTimeout);
  if (!connected.isOk()) return connected.status();
  std::shared_ptr<ChannelSession> socket = webSocketSession(std::move(connected.value()));
  {
    MutexLock l(stream.mu);
    if (stream.cancelled) return Status::ok();
    stream.socket = socket;
  }
  if (!stream.sendReady()) return Status::ok();
  // The cloud's input is the client's bytes: channel 0, as stdin is for exec (writeInput).
  std::thread writer([this, &stream, socket] { writeInput(stream, *socket); });
  std::optional<WriterGuard> guard(std::in_place, stream, *socket, writer);
  // Each channel starts with the port, two bytes little-endian; then channel 0 carries the
  // pod's bytes and channel 1 the runtime's error text, if any.
  size_t prefix[2] = {2, 2};
  std::string error;
  Status result;
  for (;;) {
    auto m = socket->read();
    if (!m.isOk()) {
      if (m.status().code() != Code::kUnavailable) result = m.status();
      break;
    }
    const uint8_t channel = m->channel;
    if (channel > 1) continue;
    std::string_view payload = m->data;
    const size_t skip = std::min(prefix[channel], payload.size());
    prefix[channel] -= skip;
    payload.remove_prefix(skip);
    if (payload.empty()) continue;
    if (channel == 0) {
      if (!stream.sendData(tv1::STREAM_CHANNEL_STDOUT, payload)) break;
    } else if (error.size() < 4096) {
      error.append(payload.substr(0, 4096 - error.size()));
    }
  }
  guard.reset();
  if (!error.empty() && !stream.isCancelled()) {
    // containerd says "error forwarding port P to pod SANDBOX, uid : REASON"; the cloud says
    // the first part itself, with the pod's name.
    if (error.rfind("error forwarding port ", 0) == 0) {
      if (auto uid = error.find(", uid "); uid != std::string::npos) {
        if (auto colon = error.find(": ", uid); colon != std::string::npos) {
          error.erase(0, colon + 2);
        }
      }
    }
    return unavailableError(error);
  }
  return result;
}

Status StreamServer::streamLogs(Stream& stream, const ContainerStatus& container) {
  const tv1::StreamOpen& open = stream.open;
  if (open.tail_lines() < -1) return badRequestError("tailLines must be >= 0");
  if (open.limit_bytes() < 0) return badRequestError("limitBytes must be >= 1");
  LogOutputOptions out;
  out.timestamps = open.timestamps();
  out.limitBytes = open.limit_bytes();
  if (open.since_seconds() > 0) out.sinceNs = nowNs() - open.since_seconds() * 1'000'000'000LL;
  CriLogFormatter formatter(out);

  const std::string& path = container.logPath;
  File file(path.empty() ? nullptr : std::fopen(path.c_str(), "rb"));
  struct stat st {};
  if (!file) {
    // A container that never started may have no log yet: that is an empty log.
    if (!open.follow() || path.empty()) {
      stream.sendReady();
      return Status::ok();
    }
  } else {
    fstat(fileno(file.get()), &st);
  }
  int64_t offset = 0;
  if (file && open.tail_lines() >= 0) {
    auto o = fileTailOffset(file.get(), static_cast<int64_t>(st.st_size), open.tail_lines());
    if (!o) return internalError("reading " + path + " failed");
    offset = *o;
  }
  if (!stream.sendReady()) return Status::ok();

  std::string buf(kMaxChunk, '\0');
  std::string output;
  bool exited = container.info.state == ContainerState::kExited;
  auto nextStatus = std::chrono::steady_clock::now() + options_.statusInterval;
  while (!stream.isCancelled()) {
    size_t n = 0;
    if (file) {
      if (std::fseek(file.get(), static_cast<long>(offset), SEEK_SET) != 0) {
        return internalError("seeking in " + path + " failed");
      }
      n = std::fread(buf.data(), 1, buf.size(), file.get());
      offset += static_cast<int64_t>(n);
    }
    if (n > 0) {
      output.clear();
      formatter.feed(std::string_view(buf.data(), n), output);
      if (!stream.sendData(tv1::STREAM_CHANNEL_STDOUT, output)) return Status::ok();
      if (formatter.limitReached()) return Status::ok();
      continue;
    }
    // At the end of the file.
    if (!open.follow() || exited) return Status::ok();
    // Rotation: the path now names another file, or the file was truncated.
    struct stat now {};
    if (::stat(path.c_str(), &now) == 0 &&
        (!file || now.st_ino != st.st_ino || now.st_dev != st.st_dev ||
         now.st_size < static_cast<off_t>(offset))) {
      File reopened(std::fopen(path.c_str(), "rb"));
      if (reopened) {
        file = std::move(reopened);
        st = now;
        offset = 0;
        continue;
      }
    }
    if (std::chrono::steady_clock::now() >= nextStatus) {
      nextStatus = std::chrono::steady_clock::now() + options_.statusInterval;
      auto s = runtime_.containerStatus(container.info.id);
      // Gone or exited: read what is left once more, then end.
      if (!s.isOk() || s->info.state == ContainerState::kExited) {
        exited = true;
        continue;
      }
    }
    if (!stream.sleep(options_.pollInterval)) return Status::ok();
  }
  return Status::ok();
}

}  // namespace ep::edged::streaming
