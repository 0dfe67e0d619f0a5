#include "cloudcore/apiserver/port_forward.h"

#include <spdlog/spdlog.h>

#include <algorithm>
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
constexpr size_t kMaxPendingInput = 256 * 1024;

}  // namespace

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
      wake_(std::make_shared<WakeSlot>()) {}

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
    for (auto& f : frames) onFrame(f);
    flushInput();
    if (!s.isOk()) {
      spdlog::info("apiserver: port-forward to pod {}/{}: {}; ending the session", ns_, pod_,
                   s.message());
      out_.push_back(writer_.goAway(lastStream_, spdy::kProtocolError));
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
      lastStream_ = std::max(lastStream_, f.streamId);
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
        out_.push_back(writer_.rstStream(f.streamId, spdy::kProtocolError));
        dropConnection(it->second);
      }
      return;
    }
    case spdy::FrameType::kRstStream: {
      auto it = streams_.find(f.streamId);
      if (it != streams_.end()) dropConnection(std::string(it->second));
      return;
    }
    case spdy::FrameType::kPing:
      out_.push_back(writer_.ping(f.value));
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
    out_.push_back(writer_.rstStream(f.streamId, spdy::kProtocolError));
    return;
  }
  if (streams_.count(f.streamId) != 0) {
    out_.push_back(writer_.rstStream(f.streamId, spdy::kProtocolError));
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
    if (connections_.size() >= limits_.maxConnections) {
      out_.push_back(writer_.rstStream(f.streamId, spdy::kRefusedStream));
      return;
    }
    it = connections_.emplace(requestId, Connection{}).first;
    Connection& c = it->second;
    c.observer = std::make_shared<Observer>(wake_);
    const std::string portText = spdy::headerValue(f.headers, "port");
    uint32_t port = 0;
    bool valid = !portText.empty() && portText.size() <= 5;
    for (char ch : portText) {
      valid = valid && ch >= '0' && ch <= '9';
      if (valid) port = port * 10 + uint32_t(ch - '0');
    }
    if (!valid || port == 0 || port > 65535) {
      c.error = "invalid port \"" + portText + "\": must be a number from 1 to 65535";
    }
    c.port = static_cast<uint16_t>(valid && port <= 65535 ? port : 0);
  }
  Connection& c = it->second;
  uint32_t& slot = isError ? c.errorStream : c.dataStream;
  if (slot != 0) {
    out_.push_back(writer_.rstStream(f.streamId, spdy::kProtocolError));
    return;
  }
  slot = f.streamId;
  streams_[f.streamId] = requestId;
  out_.push_back(writer_.synReply(f.streamId, {}, false));
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
    out_.push_back(writer_.data(c.errorStream,
                                "error forwarding port " + std::to_string(c.port) + " to pod " +
                                    ns_ + "/" + pod_ + ": " + error,
                                false));
  }
  out_.push_back(writer_.data(c.dataStream, {}, true));
  out_.push_back(writer_.data(c.errorStream, {}, true));
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
    if (!c.handle || c.ended || (c.pendingInput.empty() && !c.pendingFin)) continue;
    std::string_view rest = c.pendingInput;
    while (!rest.empty()) {
      std::string_view chunk = rest.substr(0, kMaxInputChunk);
      c.observer->inputSent(chunk.size());
      c.handle->input(std::string(chunk), false);
      rest.remove_prefix(chunk.size());
    }
    c.pendingInput.clear();
    if (c.pendingFin) {
      c.pendingFin = false;
      c.clientDone = true;
      c.observer->inputSent(0);
      c.handle->input({}, true);
    }
  }
}

bool PortForwardSession::wantsInput() {
  MutexLock l(mu_);
  for (auto& [id, c] : connections_) {
    if (c.handle && !c.ended && !c.observer->inputRoom()) return false;
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
      out_.push_back(writer_.data(c.dataStream, chunk, false));
    }
    if (bytes > 0) c.handle->consumed(bytes);
    if (closed) {
      // Nothing more comes from the node; whatever the client still sends for it is dropped.
      endConnection(c, status.isOk() ? std::string() : status.message());
      done.push_back(id);
    }
  }
  for (const auto& id : done) dropConnection(id);
  std::vector<std::string> out;
  out.swap(out_);
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
