#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloudcore/cloudhub/dispatcher.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace edgeplane::tunnel::v1 {
class StreamData;
class StreamClose;
}  // namespace edgeplane::tunnel::v1

namespace ep::cloudhub {

// What the API asks an edge node for (docs/tunnel.md, "Streams").
struct StreamRequest {
  enum class Kind { kLogs, kExec };
  Kind kind = Kind::kLogs;
  std::string ns;
  std::string pod;
  std::string container;  // resolved by the caller: never empty
  // Logs (Kubernetes PodLogOptions).
  bool follow = false;
  int64_t tailLines = -1;  // -1: all
  bool previous = false;
  bool timestamps = false;
  int64_t sinceSeconds = 0;
  int64_t limitBytes = 0;
  // Exec.
  std::vector<std::string> command;
  int64_t timeoutSeconds = 0;
};

// Output channels of a stream. kReady comes once, empty, first: the edge found the container.
enum class StreamChannel { kReady = 0, kStdout = 1, kStderr = 2 };

// Receives one stream's output. Called on gRPC reaction threads (onClose also from the thread
// that notices a disconnect); calls for one stream never overlap and come in order. Must be
// thread-safe against the consumer and must not block.
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  virtual void onData(StreamChannel channel, std::string data) = 0;
  // The last call. `status` is OK on success (`exitCode` is exec's exit code), otherwise the
  // edge's error (kNotFound, kBadRequest, kTimeout, ...) or kUnavailable when the node
  // disconnected.
  virtual void onClose(Status status, int32_t exitCode) = 0;
};

class StreamBroker;

// The API's side of one open stream. Thread-safe. Destroying it does not cancel: call cancel().
class StreamHandle {
 public:
  StreamHandle(StreamBroker& broker, uint64_t id) : broker_(broker), id_(id) {}
  uint64_t id() const { return id_; }
  // The observer's consumer used up `bytes` of output: the edge may send that much more.
  void consumed(size_t bytes);
  // The client went away: sends StreamCancel and forgets the stream; after it returns no
  // callback starts (one already running may still finish).
  void cancel();

 private:
  StreamBroker& broker_;
  const uint64_t id_;
};

struct StreamBrokerOptions {
  size_t maxStreamsPerNode = 16;
  // Output the edge may send ahead of consumption (per stream). With the 32 KiB chunk limit
  // this bounds both the cloud's buffering and the stream's share of the tunnel.
  uint64_t window = 256 * 1024;
};

// Routes API streams (logs, exec) over the tunnel: open() sends StreamOpen to the node's
// current session, StreamData/StreamClose from that session reach the stream's observer, and
// the stream ends with kUnavailable if the session ends first. Flow control: a window per
// stream (StreamOpen.initial_window), topped up with StreamWindow as the consumer reports
// consumption. Streams are not durable: they never move to a newer session of the node.
//
// Thread-safe; every method is non-blocking. Observer callbacks run outside the broker's lock.
class StreamBroker {
 public:
  explicit StreamBroker(StreamBrokerOptions options = {}) : options_(options) {}
  StreamBroker(const StreamBroker&) = delete;
  StreamBroker& operator=(const StreamBroker&) = delete;

  // kUnavailable "node N is not connected" when the node has no session, or when it already
  // has maxStreamsPerNode streams.
  Result<std::shared_ptr<StreamHandle>> open(const std::string& node, const StreamRequest& request,
                                             std::shared_ptr<StreamObserver> observer);

  // --- called by the tunnel server ---
  void attach(const std::string& node, std::shared_ptr<SyncSink> sink);
  // Ends every stream on `sink` (kUnavailable) unless the node moved to another sink already.
  void detach(const std::string& node, const SyncSink* sink);
  void onData(const SyncSink* sink, const edgeplane::tunnel::v1::StreamData& data);
  void onClose(const SyncSink* sink, const edgeplane::tunnel::v1::StreamClose& close);

  size_t openStreams() const;

 private:
  friend class StreamHandle;
  struct Entry {
    std::string node;
    std::shared_ptr<SyncSink> sink;
    std::shared_ptr<StreamObserver> observer;
    uint64_t pendingGrant = 0;  // consumed, not yet granted back
  };
  void consumed(uint64_t id, size_t bytes);
  void cancel(uint64_t id);

  const StreamBrokerOptions options_;
  mutable Mutex mu_;
  uint64_t nextId_ EP_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::shared_ptr<SyncSink>> sinks_ EP_GUARDED_BY(mu_);
  std::map<uint64_t, Entry> streams_ EP_GUARDED_BY(mu_);
  std::map<std::string, size_t> perNode_ EP_GUARDED_BY(mu_);
};

}  // namespace ep::cloudhub
