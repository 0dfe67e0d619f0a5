#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloudcore/apiserver/pod_stream_opener.h"
#include "cloudcore/cloudhub/dispatcher.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace edgeplane::tunnel::v1 {
class StreamData;
class StreamClose;
class StreamInputAck;
}  // namespace edgeplane::tunnel::v1

namespace ep::cloudhub {

// The stream types belong to the API's seam (cloudcore/apiserver/pod_stream_opener.h), which
// StreamBroker implements over the tunnel.
using apiserver::StreamChannel;
using apiserver::StreamHandle;
using apiserver::StreamObserver;
using apiserver::StreamOpener;
using apiserver::StreamRequest;

class StreamBroker;

struct StreamBrokerOptions {
  size_t maxStreamsPerNode = 16;
  // Output the edge may send ahead of consumption (per stream). With the 32 KiB chunk limit
  // this bounds both the cloud's buffering and the stream's share of the tunnel.
  uint64_t window = 256 * 1024;
};

// Routes API streams (logs, exec, attach) over the tunnel: open() sends StreamOpen to the node's
// current session, StreamData/StreamClose from that session reach the stream's observer, and
// the stream ends with kUnavailable if the session ends first. Flow control: a window per
// stream (StreamOpen.initial_window), topped up with StreamWindow as the consumer reports
// consumption. Interactive streams also carry the client's input to the edge (StreamInput; the
// API side bounds what is unacknowledged). Streams are not durable: they never move to a newer
// session of the node.
//
// Thread-safe; every method is non-blocking. Observer callbacks run outside the broker's lock.
class StreamBroker final : public StreamOpener {
 public:
  explicit StreamBroker(StreamBrokerOptions options = {}) : options_(options) {}
  StreamBroker(const StreamBroker&) = delete;
  StreamBroker& operator=(const StreamBroker&) = delete;

  // kUnavailable "node N is not connected" when the node has no session, or when it already
  // has maxStreamsPerNode streams.
  Result<std::shared_ptr<StreamHandle>> open(const std::string& node, const StreamRequest& request,
                                             std::shared_ptr<StreamObserver> observer) override;

  // What a node's edgecore listed in its Hello: "interactive-streams" (stdin, tty, attach) and
  // "port-forward". Requests a node cannot serve are refused with kBadRequest.
  struct NodeFeatures {
    bool interactive = false;
    bool portForward = false;
  };

  // --- called by the tunnel server ---
  void attach(const std::string& node, std::shared_ptr<SyncSink> sink, NodeFeatures features);
  // Ends every stream on `sink` (kUnavailable) unless the node moved to another sink already.
  void detach(const std::string& node, const SyncSink* sink);
  void onData(const SyncSink* sink, const edgeplane::tunnel::v1::StreamData& data);
  void onClose(const SyncSink* sink, const edgeplane::tunnel::v1::StreamClose& close);
  void onInputAck(const SyncSink* sink, const edgeplane::tunnel::v1::StreamInputAck& ack);

  size_t openStreams() const;

 private:
  friend class BrokerStreamHandle;
  struct Entry {
    std::string node;
    std::shared_ptr<SyncSink> sink;
    std::shared_ptr<StreamObserver> observer;
    uint64_t pendingGrant = 0;  // consumed, not yet granted back
  };
  struct Session {
    std::shared_ptr<SyncSink> sink;
    NodeFeatures features;
  };
  void consumed(uint64_t id, size_t bytes);
  void cancel(uint64_t id);
  // Sends StreamInput for stream `id` (dropped once the stream ended).
  void input(uint64_t id, std::string data, bool closeStdin, uint32_t width, uint32_t height);

  const StreamBrokerOptions options_;
  mutable Mutex mu_;
  uint64_t nextId_ EP_GUARDED_BY(mu_) = 1;
  std::map<std::string, Session> sinks_ EP_GUARDED_BY(mu_);
  std::map<uint64_t, Entry> streams_ EP_GUARDED_BY(mu_);
  std::map<std::string, size_t> perNode_ EP_GUARDED_BY(mu_);
};

}  // namespace ep::cloudhub
