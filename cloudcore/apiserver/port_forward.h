#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cloudcore/apiserver/pod_stream_opener.h"
#include "cloudcore/apiserver/spdy.h"
#include "common/http/server_types.h"
#include "common/thread_annotations.h"

namespace ep::apiserver {

// The WebSocket subprotocol kubectl (>= 1.30) offers for port-forward: SPDY/3.1 frames carried
// in binary WebSocket messages, speaking Kubernetes' portforward.k8s.io protocol.
inline constexpr const char* kPortForwardTunnelProtocol = "SPDY/3.1+portforward.k8s.io";

struct PortForwardLimits {
  // Forwarded connections (request ids) a session may have at once; a stream beyond is refused
  // (RST_STREAM REFUSED_STREAM).
  size_t maxConnections = 32;
};

// One `kubectl port-forward` session (pods/portforward, docs/api.md): a WebSocketStream that
// speaks the portforward.k8s.io protocol over SPDY/3.1 as the kubelet does. The client opens two
// SPDY streams per forwarded connection, both with headers `port` and `requestid` and one with
// `streamtype: error`, the other `streamtype: data`; each is answered with SYN_REPLY. Once both
// arrived, a tunnel stream (StreamRequest::Kind::kPortForward) connects to the port in the pod's
// network namespace on its node. The data stream's bytes go to the pod and the pod's bytes come
// back on it; a failure is written on the error stream as text (kubectl prints it), then both
// streams end (FIN). The client's FIN on the data stream is a half-close, its RST_STREAM or
// GOAWAY cancels; PINGs are echoed.
//
// Threading: onMessage() on the HTTP server's I/O thread, next()/close() on its pool (possibly at
// the same time), observer callbacks on the opener's threads: all state is under mu_, and no
// call blocks. Frames are serialized under mu_ in the order they are sent (their header blocks
// share one compression context). Input is bounded like exec's: the next client message is read
// only while every connection has less than 32 KiB and 24 inputs unacknowledged by its node.
class PortForwardSession final : public http::WebSocketStream {
 public:
  PortForwardSession(StreamOpener& opener, std::string node, std::string ns, std::string pod,
                     PortForwardLimits limits = {});
  ~PortForwardSession() override;

  void onMessage(std::string message) override;
  bool wantsInput() override;
  std::vector<std::string> next(bool& finished) override;
  void setWake(std::function<void()> wake) override;
  void close() override;

  // Connections currently forwarded or waiting for their second stream (tests).
  size_t connections() const;

  class Observer;   // per connection; defined in the .cc
  struct WakeSlot;  // the server's wake function, shared with the observers

 private:
  struct Connection {
    uint16_t port = 0;
    uint32_t dataStream = 0;   // 0 until the client opened it
    uint32_t errorStream = 0;  // 0 until the client opened it
    std::shared_ptr<Observer> observer;
    std::shared_ptr<StreamHandle> handle;  // set once opened
    bool ended = false;                    // the FINs were sent (it is dropped right after)
    bool clientDone = false;               // the client ended its data stream (FIN)
    std::string error;                     // a reason to refuse it once both streams are there
    // Client bytes (and its FIN) for the pod, gathered while reading one message; sent once the
    // tunnel stream is open.
    std::string pendingInput;
    bool pendingFin = false;
  };

  void onFrame(spdy::Frame& frame) EP_REQUIRES(mu_);
  void onSynStream(const spdy::Frame& frame) EP_REQUIRES(mu_);
  // Opens the tunnel stream of a connection whose two streams both arrived; a connection that
  // cannot be opened is ended and dropped (`c` is then gone).
  void openConnection(const std::string& requestId, Connection& c) EP_REQUIRES(mu_);
  // Writes `error` on the error stream (when not empty) and ends both streams. The caller drops
  // the connection then: later client frames for its streams are ignored.
  void endConnection(Connection& c, const std::string& error) EP_REQUIRES(mu_);
  // Forgets a connection, cancelling its tunnel stream if still open.
  void dropConnection(const std::string& requestId) EP_REQUIRES(mu_);
  // Sends what connections gathered from the client to their tunnel streams.
  void flushInput() EP_REQUIRES(mu_);

  StreamOpener& opener_;
  const std::string node_, ns_, pod_;
  const PortForwardLimits limits_;

  mutable Mutex mu_;
  spdy::FrameReader reader_ EP_GUARDED_BY(mu_);
  spdy::FrameWriter writer_ EP_GUARDED_BY(mu_);
  std::vector<std::string> out_ EP_GUARDED_BY(mu_);                   // frames to send, in order
  std::map<std::string, Connection> connections_ EP_GUARDED_BY(mu_);  // by request id
  std::map<uint32_t, std::string> streams_ EP_GUARDED_BY(mu_);        // stream id -> request id
  bool finished_ EP_GUARDED_BY(mu_) = false;    // GOAWAY either way, or a protocol error
  bool closed_ EP_GUARDED_BY(mu_) = false;      // close() ran
  uint32_t lastStream_ EP_GUARDED_BY(mu_) = 0;  // the client's newest stream id (for GOAWAY)
  const std::shared_ptr<WakeSlot> wake_;
};

}  // namespace ep::apiserver
