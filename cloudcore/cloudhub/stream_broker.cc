#include "cloudcore/cloudhub/stream_broker.h"

#include <spdlog/spdlog.h>

#include "common/thread_annotations.h"
#include "proto/tunnel.pb.h"

namespace ep::cloudhub {

namespace pb = edgeplane::tunnel::v1;

namespace {

constexpr uint64_t kGrantThreshold = 32 * 1024;

Status statusOf(const pb::StreamClose& c) {
  switch (c.error_code()) {
    case pb::STREAM_ERROR_NONE:
      return c.error().empty() ? Status::ok() : internalError(c.error());
    case pb::STREAM_ERROR_NOT_FOUND:
      return notFoundError(c.error());
    case pb::STREAM_ERROR_BAD_REQUEST:
      return badRequestError(c.error());
    case pb::STREAM_ERROR_UNAVAILABLE:
      return unavailableError(c.error());
    case pb::STREAM_ERROR_TIMEOUT:
      return Status(Code::kTimeout, c.error());
    default:
      return internalError(c.error().empty() ? "stream failed on the edge" : c.error());
  }
}

}  // namespace

// A stream's handle: forwards to the broker by id (the broker outlives its streams' users).
class BrokerStreamHandle final : public StreamHandle {
 public:
  BrokerStreamHandle(StreamBroker& broker, uint64_t id) : broker_(broker), id_(id) {}
  void consumed(size_t bytes) override { broker_.consumed(id_, bytes); }
  void cancel() override { broker_.cancel(id_); }
  void input(std::string data, bool closeStdin) override {
    broker_.input(id_, std::move(data), closeStdin, 0, 0);
  }
  void resize(uint32_t width, uint32_t height) override {
    if (width > 0 && height > 0) broker_.input(id_, {}, false, width, height);
  }

 private:
  StreamBroker& broker_;
  const uint64_t id_;
};

Result<std::shared_ptr<StreamHandle>> StreamBroker::open(const std::string& node,
                                                         const StreamRequest& request,
                                                         std::shared_ptr<StreamObserver> observer) {
  auto msg = std::make_shared<pb::CloudMessage>();
  auto* o = msg->mutable_stream_open();
  switch (request.kind) {
    case StreamRequest::Kind::kLogs:
      o->set_kind(pb::STREAM_KIND_LOGS);
      break;
    case StreamRequest::Kind::kExec:
      o->set_kind(pb::STREAM_KIND_EXEC);
      break;
    case StreamRequest::Kind::kAttach:
      o->set_kind(pb::STREAM_KIND_ATTACH);
      break;
    case StreamRequest::Kind::kPortForward:
      o->set_kind(pb::STREAM_KIND_PORT_FORWARD);
      o->set_port(request.port);
      break;
  }
  o->set_stdin(request.stdin);
  o->set_tty(request.tty);
  o->set_namespace_(request.ns);
  o->set_pod(request.pod);
  o->set_container(request.container);
  o->set_follow(request.follow);
  o->set_tail_lines(request.tailLines);
  o->set_previous(request.previous);
  o->set_timestamps(request.timestamps);
  o->set_since_seconds(request.sinceSeconds);
  o->set_limit_bytes(request.limitBytes);
  for (const auto& c : request.command) o->add_command(c);
  o->set_timeout_seconds(request.timeoutSeconds);
  o->set_initial_window(options_.window);
  std::shared_ptr<SyncSink> sink;
  uint64_t id = 0;
  {
    MutexLock l(mu_);
    auto it = sinks_.find(node);
    if (it == sinks_.end()) return unavailableError("node " + node + " is not connected");
    if (request.interactive() && !it->second.features.interactive) {
      return badRequestError("node " + node +
                             " runs an edgecore without interactive exec and attach (stdin, "
                             "tty); upgrade its edgecore");
    }
    if (request.kind == StreamRequest::Kind::kPortForward && !it->second.features.portForward) {
      return badRequestError("node " + node +
                             " runs an edgecore without port-forward, or without a container "
                             "runtime; upgrade its edgecore");
    }
    if (perNode_[node] >= options_.maxStreamsPerNode) {
      return unavailableError("too many log/exec streams to node " + node + " (limit " +
                              std::to_string(options_.maxStreamsPerNode) + "); try again later");
    }
    sink = it->second.sink;
    id = nextId_++;
    o->set_id(id);
    streams_[id] = Entry{node, sink, std::move(observer), 0};
    ++perNode_[node];
  }
  if (!sink->send(std::move(msg))) {
    // The session is closing (or overflowed); its detach may not have run yet.
    MutexLock l(mu_);
    if (streams_.erase(id) > 0 && --perNode_[node] == 0) perNode_.erase(node);
    return unavailableError("node " + node + " is not connected");
  }
  return std::shared_ptr<StreamHandle>(std::make_shared<BrokerStreamHandle>(*this, id));
}

void StreamBroker::attach(const std::string& node, std::shared_ptr<SyncSink> sink,
                          NodeFeatures features) {
  MutexLock l(mu_);
  sinks_[node] = Session{std::move(sink), features};
}

void StreamBroker::detach(const std::string& node, const SyncSink* sink) {
  std::vector<std::shared_ptr<StreamObserver>> orphans;
  {
    MutexLock l(mu_);
    if (auto it = sinks_.find(node); it != sinks_.end() && it->second.sink.get() == sink) {
      sinks_.erase(it);
    }
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (it->second.sink.get() != sink) {
        ++it;
        continue;
      }
      orphans.push_back(std::move(it->second.observer));
      if (--perNode_[it->second.node] == 0) perNode_.erase(it->second.node);
      it = streams_.erase(it);
    }
  }
  for (auto& o : orphans) {
    o->onClose(unavailableError("node " + node + " disconnected; the stream ended"), 0);
  }
}

void StreamBroker::onData(const SyncSink* sink, const pb::StreamData& data) {
  std::shared_ptr<StreamObserver> observer;
  {
    MutexLock l(mu_);
    auto it = streams_.find(data.id());
    if (it == streams_.end() || it->second.sink.get() != sink) return;  // cancelled or foreign
    observer = it->second.observer;
  }
  StreamChannel channel = data.channel() == pb::STREAM_CHANNEL_STDERR   ? StreamChannel::kStderr
                          : data.channel() == pb::STREAM_CHANNEL_STDOUT ? StreamChannel::kStdout
                                                                        : StreamChannel::kReady;
  observer->onData(channel, data.data());
}

void StreamBroker::onClose(const SyncSink* sink, const pb::StreamClose& close) {
  std::shared_ptr<StreamObserver> observer;
  {
    MutexLock l(mu_);
    auto it = streams_.find(close.id());
    if (it == streams_.end() || it->second.sink.get() != sink) return;
    observer = std::move(it->second.observer);
    if (--perNode_[it->second.node] == 0) perNode_.erase(it->second.node);
    streams_.erase(it);
  }
  observer->onClose(statusOf(close), close.exit_code());
}

void StreamBroker::onInputAck(const SyncSink* sink, const pb::StreamInputAck& ack) {
  std::shared_ptr<StreamObserver> observer;
  {
    MutexLock l(mu_);
    auto it = streams_.find(ack.id());
    if (it == streams_.end() || it->second.sink.get() != sink) return;
    observer = it->second.observer;
  }
  observer->onInputAck(ack.bytes(), ack.inputs());
}

void StreamBroker::input(uint64_t id, std::string data, bool closeStdin, uint32_t width,
                         uint32_t height) {
  std::shared_ptr<SyncSink> sink;
  {
    MutexLock l(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    sink = it->second.sink;
  }
  auto msg = std::make_shared<pb::CloudMessage>();
  auto* in = msg->mutable_stream_input();
  in->set_id(id);
  in->set_data(std::move(data));
  in->set_stdin_closed(closeStdin);
  in->set_width(width);
  in->set_height(height);
  sink->send(std::move(msg));
}

void StreamBroker::consumed(uint64_t id, size_t bytes) {
  std::shared_ptr<SyncSink> sink;
  uint64_t grant = 0;
  {
    MutexLock l(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    it->second.pendingGrant += bytes;
    // Batched: one StreamWindow per 32 KiB consumed. The window is far larger, so an edge that
    // used it all up always gets a grant once the consumer drained the buffer.
    if (it->second.pendingGrant < std::min(kGrantThreshold, options_.window)) return;
    grant = it->second.pendingGrant;
    it->second.pendingGrant = 0;
    sink = it->second.sink;
  }
  auto msg = std::make_shared<pb::CloudMessage>();
  msg->mutable_stream_window()->set_id(id);
  msg->mutable_stream_window()->set_bytes(grant);
  sink->send(std::move(msg));
}

void StreamBroker::cancel(uint64_t id) {
  std::shared_ptr<SyncSink> sink;
  {
    MutexLock l(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    sink = std::move(it->second.sink);
    if (--perNode_[it->second.node] == 0) perNode_.erase(it->second.node);
    streams_.erase(it);
  }
  auto msg = std::make_shared<pb::CloudMessage>();
  msg->mutable_stream_cancel()->set_id(id);
  sink->send(std::move(msg));
}

size_t StreamBroker::openStreams() const {
  MutexLock l(mu_);
  return streams_.size();
}

}  // namespace ep::cloudhub
