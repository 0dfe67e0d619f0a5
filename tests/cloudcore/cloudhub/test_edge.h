#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proto/tunnel.grpc.pb.h"

namespace ep::cloudhub::testing {

namespace pb = edgeplane::tunnel::v1;

// A minimal in-test edge: one Tunnel.Connect stream with a reader thread that queues what the
// cloud sends. Not thread-safe except next()/done() against the reader.
class TestEdge {
 public:
  explicit TestEdge(const std::string& target, bool startReading = true) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 * 1024 * 1024);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per edge
    if (!startReading) {
      // A tiny window so an edge that does not read stalls the cloud's writes quickly.
      args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
      args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
    }
    channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    stub_ = pb::Tunnel::NewStub(channel_);
    stream_ = stub_->Connect(&context_);
    if (startReading) startReader();
  }
  ~TestEdge() {
    context_.TryCancel();
    if (reader_.joinable()) reader_.join();
  }

  void startReader() {
    reader_ = std::thread([this] {
      pb::CloudMessage m;
      while (stream_->Read(&m)) {
        std::lock_guard l(mu_);
        messages_.push_back(m);
        cv_.notify_all();
      }
      grpc::Status s = stream_->Finish();
      std::lock_guard l(mu_);
      status_ = s;
      cv_.notify_all();
    });
  }

  bool send(const pb::EdgeMessage& m) { return stream_->Write(m); }
  void closeWrites() { stream_->WritesDone(); }

  bool hello(const std::string& node, std::vector<pb::CachedObject> inventory = {},
             uint32_t version = 1) {
    pb::EdgeMessage m;
    auto* h = m.mutable_hello();
    h->set_node_name(node);
    h->set_protocol_version(version);
    h->set_edgecore_version("test");
    for (auto& c : inventory) *h->add_inventory() = c;
    return send(m);
  }
  bool ack(int64_t revision) {
    pb::EdgeMessage m;
    m.mutable_sync_ack()->set_revision(revision);
    return send(m);
  }
  bool report(uint64_t seq, pb::ReportKind kind, const std::string& payload,
              const std::string& ns = "", const std::string& name = "") {
    pb::EdgeMessage m;
    auto* r = m.mutable_report();
    r->set_sequence(seq);
    r->set_kind(kind);
    r->set_payload(payload);
    r->set_namespace_(ns);
    r->set_name(name);
    return send(m);
  }

  // The next message from the cloud, or nullopt after `timeout` or when the stream ended.
  std::optional<pb::CloudMessage> next(
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, timeout, [&] { return !messages_.empty() || status_.has_value(); });
    if (messages_.empty()) return std::nullopt;
    auto m = std::move(messages_.front());
    messages_.pop_front();
    return m;
  }
  // The next message of a type, skipping others (e.g. ReportAcks while waiting for a Sync).
  std::optional<pb::CloudMessage> nextOf(
      pb::CloudMessage::BodyCase body,
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = next(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!m) return std::nullopt;
      if (m->body_case() == body) return m;
    }
    return std::nullopt;
  }
  // Waits for the stream's end; nullopt if it is still open after `timeout`.
  std::optional<grpc::Status> done(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, timeout, [&] { return status_.has_value(); });
    return status_;
  }
  size_t pending() {
    std::lock_guard l(mu_);
    return messages_.size();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Tunnel::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::EdgeMessage, pb::CloudMessage>> stream_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pb::CloudMessage> messages_;
  std::optional<grpc::Status> status_;
};

}  // namespace ep::cloudhub::testing
