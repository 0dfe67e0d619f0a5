#include "cloudcore/apiserver/port_forward.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>

namespace ep::apiserver {

namespace {

// Input a connection may have sent to its node and not had acknowledged before the client's next
// message is read (the tunnel's bound, proto/tunnel.proto StreamInput; the same as exec's): one
// message (at most 128 KiB, the server's limit) adds at most 4 chunks of 32 KiB and a FIN per
// connection, as the data of one message is joined per connection before it is split.
constexpr uint64_t kInputBytesBeforeRead = 32 * 1024;
constexpr uint64_t kInputsBeforeRead = 24;
constexpr size_t kMaxInputChunk = 32 * 1024;
// Client bytes a connection keeps while its second stream has not arrived.
constexpr size_t kMaxPendingInput = 64 * 1024;
// Frames waiting to be sent above which the client is not read (a client that sends PINGs or
// opens streams without reading the answers).
constexpr size_t kMaxQueuedOutput = 1024 * 1024;
// A SPDY frame from the client (kubectl writes data frames of at most 32 KiB).
constexpr size_t kMaxClientFrame = 256 * 1024;

}  // namespace

std::optional<uint16_t> parsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + uint32_t(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

struct PortForwardSession::WakeSlot {
  Mutex mu;
  std::function<void()> wake EP_GUARDED_BY(mu);
  void operator()() {
    std::function<void()> w;
    {
      MutexLock l(mu);
      w = wake;
    }
    if (w) w();
  }
};

// One forwarded connection's output and acknowledgements, from the opener's threads. Never takes
// the session's lock (the session takes this one inside its own).
class PortForwardSession::Observer final : public StreamObserver {
 public:
  explicit Observer(std::shared_ptr<WakeSlot> wake) : wake_(std::move(wake)) {}

  void onData(StreamChannel channel, std::string data) override {
    {
      MutexLock l(mu_);
      if (channel == StreamChannel::kReady || data.empty()) return;
      chunks_.push_back(std::move(data));
    }
    (*wake_)();
  }
  void onClose(Status status, int32_t) override {
    {
      MutexLock l(mu_);
      closed_ = true;
      status_ = std::move(status);
    }
    (*wake_)();
  }
  void onInputAck(uint64_t bytes, uint32_t inputs) override {
    {
      MutexLock l(mu_);
      unackedBytes_ -= std::min(unackedBytes_, bytes);
      unackedInputs_ -= std::min<uint64_t>(unackedInputs_, inputs);
    }
    (*wake_)();
  }

  void inputSent(uint64_t bytes) {
    MutexLock l(mu_);
    unackedBytes_ += bytes;
    ++unackedInputs_;
  }
  bool inputRoom() {
    MutexLock l(mu_);
    return unackedBytes_ < kInputBytesBeforeRead && unackedInputs_ < kInputsBeforeRead;
  }
  // The output so far; `closed` (with its status) once the tunnel stream ended.
  std::deque<std::string> take(bool& closed, Status& status) {
    MutexLock l(mu_);
    std::deque<std::string> out;
    out.swap(chunks_);
    closed = closed_;
    status = status_;
    return out;
  }

 private:
  const std::shared_ptr<WakeSlot> wake_;
  Mutex mu_;
  std::deque<std::string> chunks_ EP_GUARDED_BY(mu_);
  bool closed_ EP_GUARDED_BY(mu_) = false;
  Status status_ EP_GUARDED_BY(mu_);
  uint64_t unackedBytes_ EP_GUARDED_BY(mu_) = 0;
  uint64_t unackedInputs_ EP_GUARDED_BY(mu_) = 0;
};

PortForwardSession::PortForwardSession(StreamOpener& opener, std::string node, std::string ns,
                                       std::string pod, PortForwardLimits limits)
    : opener_(opener),
      node_(std::move(node)),
      ns_(std::move(ns)),
      pod_(std::move(pod)),
      limits_(limits),
      reader_(spdy::ReaderLimits{.maxFrame = kMaxClientFrame}),
      wake_(std::make_shared<WakeSlot>()),
      tokens_(static_cast<double>(limits.openBurst)),
      refilled_(std::chrono::steady_clock::now()) {}

PortForwardSession::~PortForwardSession() {
  close();
}

void PortForwardSession::setWake(std::function<void()> wake) {
  MutexLock l(wake_->mu);
  wake_->wake = std::move(wake);
}

size_t PortForwardSession::connections() const {
  MutexLock l(mu_);
  return connections_.size();
}

void PortForwardSession::onMessage(std::string message) {
  {
    MutexLock l(mu_);
    if (finished_ || closed_) return;
    std::vector<spdy::Frame> frames;
    Status s = reader_.feed(message, frames);
    for (auto& f : frames) {
      if (finished_) break;  // the client's GOAWAY: nothing after it counts
      onFrame(f);
    }
    flushInput();
    if (!s.isOk() && !finished_) {
      spdlog::info("apiserver: port-forward to pod {}/{}: {}; ending the session", ns_, pod_,
                   s.message());
      queue(writer_.goAway(lastStream_, spdy::kProtocolError));
      finished_ = true;
      for (auto& [id, c] : connections_) {
        if (c.handle && !c.ended) c.handle->cancel();
      }
      connections_.clear();
      streams_.clear();
    }
  }
  (*wake_)();
}

void PortForwardSession::onFrame(spdy::Frame& f) {
  switch (f.type) {
    case spdy::FrameType::kSynStream:
      // A client's streams have odd ids, each higher than the last.
      if (f.streamId % 2 == 0 || f.streamId <= lastStream_) {
        queue(writer_.rstStream(f.streamId, spdy::kProtocolError));
        return;
      }
      lastStream_ = f.streamId;
      onSynStream(f);
      return;
    case spdy::FrameType::kData: {
      auto it = streams_.find(f.streamId);
      if (it == streams_.end()) return;  // a stream already reset or ended: late bytes
      auto c = connections_.find(it->second);
      if (c == connections_.end() || f.streamId != c->second.dataStream) return;  // error stream
      Connection& conn = c->second;
      if (conn.clientDone || conn.ended) return;
      conn.pendingInput += f.data;
      if (f.fin()) conn.pendingFin = true;
      if (!conn.handle && conn.pendingInput.size() > kMaxPendingInput) {
        // The client sends data for a connection it never completed.
        queue(writer_.rstStream(f.streamId, spdy::kProtocolError));
        dropConnection(std::string(it->second));
      }
      return;
    }
    case spdy::FrameType::kRstStream: {
      auto it = streams_.find(f.streamId);
      if (it != streams_.end()) dropConnection(std::string(it->second));
      return;
    }
    case spdy::FrameType::kPing:
      // The client's PINGs have odd ids; an even one would answer ours (we send none).
      if (f.value % 2 == 1) queue(writer_.ping(f.value));
      return;
    case spdy::FrameType::kGoAway:
      finished_ = true;
      for (auto& [id, c] : connections_) {
        if (c.handle && !c.ended) c.handle->cancel();
      }
      connections_.clear();
      streams_.clear();
      return;
    default:
      return;  // SYN_REPLY, HEADERS, WINDOW_UPDATE: nothing to do for a server without flow control
  }
}

void PortForwardSession::onSynStream(const spdy::Frame& f) {
  const std::string type = spdy::headerValue(f.headers, "streamtype");
  const bool isError = type == "error";
  if (!isError && type != "data") {
    spdlog::info("apiserver: port-forward to pod {}/{}: stream {} has streamType \"{}\"", ns_, pod_,
                 f.streamId, type);
    queue(writer_.rstStream(f.streamId, spdy::kProtocolError));
    return;
  }
  if (streams_.count(f.streamId) != 0) {
    queue(writer_.rstStream(f.streamId, spdy::kProtocolError));
    return;
  }
  // Clients before Kubernetes 1.6 sent no request id: the error stream came first, the data
  // stream two ids later.
  std::string requestId = spdy::headerValue(f.headers, "requestid");
  if (requestId.empty()) {
    requestId = std::to_string(isError ? f.streamId : f.streamId - 2);
  }
  auto it = connections_.find(requestId);
  if (it == connections_.end()) {
    if (connections_.size() >= limits_.maxConnections || !takeOpenToken()) {
      queue(writer_.rstStream(f.streamId, spdy::kRefusedStream));
      return;
    }
    it = connections_.emplace(requestId, Connection{}).first;
    Connection& c = it->second;
    c.observer = std::make_shared<Observer>(wake_);
    const std::string portText = spdy::headerValue(f.headers, "port");
    if (auto port = parsePort(portText)) {
      c.port = *port;
    } else {
      c.error = "invalid port \"" + portText + "\": must be a number from 1 to 65535";
    }
  }
  Connection& c = it->second;
  uint32_t& slot = isError ? c.errorStream : c.dataStream;
  if (slot != 0) {
    queue(writer_.rstStream(f.streamId, spdy::kProtocolError));
    return;
  }
  slot = f.streamId;
  streams_[f.streamId] = requestId;
  queue(writer_.synReply(f.streamId, {}, false));
  if (c.dataStream != 0 && c.errorStream != 0) openConnection(requestId, c);
}

void PortForwardSession::openConnection(const std::string& requestId, Connection& c) {
  if (!c.error.empty()) {
    endConnection(c, c.error);
    dropConnection(requestId);
    return;
  }
  StreamRequest sr;
  sr.kind = StreamRequest::Kind::kPortForward;
  sr.ns = ns_;
  sr.pod = pod_;
  sr.port = c.port;
  auto handle = opener_.open(node_, sr, c.observer);
  if (!handle.isOk()) {
    endConnection(c, handle.status().message());
    dropConnection(requestId);
    return;
  }
  c.handle = std::move(handle.value());
}

void PortForwardSession::endConnection(Connection& c, const std::string& error) {
  if (c.ended) return;
  c.ended = true;
  if (!error.empty()) {
    // As the kubelet words it; kubectl prints it after "an error occurred forwarding L -> R:".
    queue(writer_.data(c.errorStream,
                       "error forwarding port " + std::to_string(c.port) + " to pod " + ns_ + "/" +
                           pod_ + ": " + error,
                       false));
  }
  queue(writer_.data(c.dataStream, {}, true));
  queue(writer_.data(c.errorStream, {}, true));
}

void PortForwardSession::dropConnection(const std::string& requestId) {
  auto it = connections_.find(requestId);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  if (c.handle && !c.ended) c.handle->cancel();
  if (c.dataStream != 0) streams_.erase(c.dataStream);
  if (c.errorStream != 0) streams_.erase(c.errorStream);
  connections_.erase(it);
}

void PortForwardSession::flushInput() {
  for (auto& [id, c] : connections_) {
    if (!c.handle || c.ended) continue;
    // Only as much as the node acknowledged room for; the rest waits (and the client is not
    // read meanwhile: wantsInput), so the node never holds more than the tunnel's bound.
    size_t sent = 0;
    while (sent < c.pendingInput.size() && c.observer->inputRoom()) {
      std::string chunk = c.pendingInput.substr(sent, kMaxInputChunk);
      sent += chunk.size();
      c.observer->inputSent(chunk.size());
      c.handle->input(std::move(chunk), false);
    }
    c.pendingInput.erase(0, sent);
    if (c.pendingFin && c.pendingInput.empty() && c.observer->inputRoom()) {
      c.pendingFin = false;
      c.clientDone = true;
      c.observer->inputSent(0);
      c.handle->input({}, true);
    }
  }
}

void PortForwardSession::queue(std::string frame) {
  queuedBytes_ += frame.size();
  out_.push_back(std::move(frame));
}

bool PortForwardSession::takeOpenToken() {
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  tokens_ =
      std::min(static_cast<double>(limits_.openBurst), tokens_ + seconds * limits_.opensPerSecond);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

bool PortForwardSession::wantsInput() {
  MutexLock l(mu_);
  if (queuedBytes_ > kMaxQueuedOutput) return false;
  for (auto& [id, c] : connections_) {
    if (!c.handle || c.ended) continue;
    if (!c.pendingInput.empty() || c.pendingFin || !c.observer->inputRoom()) return false;
  }
  return true;
}

std::vector<std::string> PortForwardSession::next(bool& finished) {
  MutexLock l(mu_);
  std::vector<std::string> done;
  for (auto& [id, c] : connections_) {
    if (!c.handle) continue;
    bool closed = false;
    Status status;
    auto chunks = c.observer->take(closed, status);
    size_t bytes = 0;
    for (auto& chunk : chunks) {
      bytes += chunk.size();
      queue(writer_.data(c.dataStream, chunk, false));
    }
    if (bytes > 0) c.handle->consumed(bytes);
    if (closed) {
      // Nothing more comes from the node; whatever the client still sends for it is dropped.
      endConnection(c, status.isOk() ? std::string() : status.message());
      done.push_back(id);
    }
  }
  for (const auto& id : done) dropConnection(id);
  flushInput();  // acknowledgements may have made room for what waits
  std::vector<std::string> out;
  out.swap(out_);
  queuedBytes_ = 0;
  finished = finished_;
  return out;
}

void PortForwardSession::close() {
  MutexLock l(mu_);
  if (closed_) return;
  closed_ = true;
  for (auto& [id, c] : connections_) {
    if (c.handle && !c.ended) c.handle->cancel();
  }
  connections_.clear();
  streams_.clear();
  {
    MutexLock w(wake_->mu);
    wake_->wake = nullptr;
  }
}

}  // namespace ep::apiserver

namespace ep::apiserver {

ChannelPortForwardSession::ChannelPortForwardSession(StreamOpener& opener, std::string node,
                                                     std::string ns, std::string pod,
                                                     std::vector<uint16_t> ports)
    : opener_(opener),
      node_(std::move(node)),
      ns_(std::move(ns)),
      pod_(std::move(pod)),
      wake_(std::make_shared<PortForwardSession::WakeSlot>()) {
  MutexLock l(mu_);  // not shared yet; the lock states what guards it
  for (uint16_t p : ports) {
    Port port;
    port.port = p;
    port.observer = std::make_shared<PortForwardSession::Observer>(wake_);
    ports_.push_back(std::move(port));
  }
  // At once: the client may send before the first next() (opening never waits).
  openAll();
}

ChannelPortForwardSession::~ChannelPortForwardSession() {
  close();
}

void ChannelPortForwardSession::setWake(std::function<void()> wake) {
  MutexLock l(wake_->mu);
  wake_->wake = std::move(wake);
}

void ChannelPortForwardSession::openAll() {
  for (auto& p : ports_) {
    StreamRequest sr;
    sr.kind = StreamRequest::Kind::kPortForward;
    sr.ns = ns_;
    sr.pod = pod_;
    sr.port = p.port;
    auto handle = opener_.open(node_, sr, p.observer);
    if (handle.isOk()) {
      p.handle = std::move(handle.value());
    } else {
      p.openError = handle.status().message();
    }
  }
}

void ChannelPortForwardSession::onMessage(std::string message) {
  if (message.size() < 2) return;
  const auto channel = static_cast<uint8_t>(message[0]);
  MutexLock l(mu_);
  if (closed_ || channel % 2 != 0 || channel / 2 >= ports_.size()) return;
  Port& p = ports_[channel / 2];
  if (!p.handle || p.ended) return;
  std::string_view rest = std::string_view(message).substr(1);
  while (!rest.empty()) {
    std::string_view chunk = rest.substr(0, kMaxInputChunk);
    p.observer->inputSent(chunk.size());
    p.handle->input(std::string(chunk), false);
    rest.remove_prefix(chunk.size());
  }
}

bool ChannelPortForwardSession::wantsInput() {
  MutexLock l(mu_);
  for (auto& p : ports_) {
    if (p.handle && !p.ended && !p.observer->inputRoom()) return false;
  }
  return true;
}

std::vector<std::string> ChannelPortForwardSession::next(bool& finished) {
  MutexLock l(mu_);
  std::vector<std::string> out;
  finished = false;
  if (closed_) {
    finished = true;
    return out;
  }
  if (!started_) {
    started_ = true;
    for (size_t i = 0; i < ports_.size(); ++i) {
      const std::string port{char(ports_[i].port & 0xff), char(ports_[i].port >> 8)};
      out.push_back(std::string(1, char(2 * i)) + port);
      out.push_back(std::string(1, char(2 * i + 1)) + port);
    }
  }
  bool allEnded = true;
  for (size_t i = 0; i < ports_.size(); ++i) {
    Port& p = ports_[i];
    if (p.ended) continue;
    std::string error = p.openError;
    bool closed = !p.handle;
    if (p.handle) {
      Status status;
      auto chunks = p.observer->take(closed, status);
      size_t bytes = 0;
      for (auto& c : chunks) {
        bytes += c.size();
        out.push_back(std::string(1, char(2 * i)) + c);
      }
      if (bytes > 0) p.handle->consumed(bytes);
      if (closed && !status.isOk()) error = status.message();
    }
    if (closed) {
      p.ended = true;
      if (!error.empty()) {
        out.push_back(std::string(1, char(2 * i + 1)) + "error forwarding port " +
                      std::to_string(p.port) + " to pod " + ns_ + "/" + pod_ + ": " + error);
      }
    } else {
      allEnded = false;
    }
  }
  finished = allEnded;
  return out;
}

void ChannelPortForwardSession::close() {
  MutexLock l(mu_);
  if (closed_) return;
  closed_ = true;
  for (auto& p : ports_) {
    if (p.handle && !p.ended) p.handle->cancel();
  }
  MutexLock w(wake_->mu);
  wake_->wake = nullptr;
}

}  // namespace ep::apiserver
