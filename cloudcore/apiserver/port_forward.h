#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloudcore/apiserver/pod_stream_opener.h"
#include "common/http/server_types.h"
#include "common/spdy/spdy.h"
#include "common/thread_annotations.h"

namespace ep::apiserver {

// The WebSocket subprotocol kubectl (>= 1.30) offers for port-forward: SPDY/3.1 frames carried
// in binary WebSocket messages, speaking Kubernetes' portforward.k8s.io protocol.
inline constexpr const char* kPortForwardTunnelProtocol = "SPDY/3.1+portforward.k8s.io";
// The older WebSocket port-forward protocol (the Python and Java clients): channel-prefixed
// binary messages, ports from the `ports` query parameter.
inline constexpr const char* kPortForwardChannelProtocol = "v4.channel.k8s.io";

// A port number as Kubernetes writes it (decimal, 1-65535); nullopt for anything else.
std::optional<uint16_t> parsePort(std::string_view text);

struct PortForwardLimits {
  // Forwarded connections (request ids) a session may have at once; a stream beyond is refused
  // (RST_STREAM REFUSED_STREAM). Below the broker's streams per node (16), so one session leaves
  // room for logs and exec.
  size_t maxConnections = 8;
  // New connections a session may open: a burst, then this many a second (a token bucket), so a
  // client opening and resetting streams in a loop cannot flood the node's tunnel.
  size_t openBurst = 32;
  double opensPerSecond = 16;
};

// One `kubectl port-forward` session (pods/portforward, docs/api.md): a WebSocketStream that
// speaks the portforward.k8s.io protocol over SPDY/3.1 as the kubelet does. The client opens two
// SPDY streams per forwarded connection, both with headers `port` and `requestid` and one with
// `streamtype: error`, the other `streamtype: data`; each is answered with SYN_REPLY. Once both
// arrived, a tunnel stream (StreamRequest::Kind::kPortForward) connects to the port in the pod's
// network namespace on its node. The data stream's bytes go to the pod and the pod's bytes come
// back on it; a failure is written on the error stream as text (kubectl prints it), then both
// streams end (FIN). The client's FIN on the data stream is a half-close, its RST_STREAM or
// GOAWAY cancels; PINGs are echoed. Limits: PortForwardLimits, frames from the client up to
// 256 KiB, and the client is not read while more than 1 MiB of frames wait to be sent.
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
  // Sends what connections gathered from the client to their tunnel streams, as far as their
  // nodes acknowledged room for it.
  void flushInput() EP_REQUIRES(mu_);
  // Adds a frame to send (in order).
  void queue(std::string frame) EP_REQUIRES(mu_);
  // Whether the open rate allows another connection now (takes a token).
  bool takeOpenToken() EP_REQUIRES(mu_);

  StreamOpener& opener_;
  const std::string node_, ns_, pod_;
  const PortForwardLimits limits_;

  mutable Mutex mu_;
  spdy::FrameReader reader_ EP_GUARDED_BY(mu_);
  spdy::FrameWriter writer_ EP_GUARDED_BY(mu_);
  std::vector<std::string> out_ EP_GUARDED_BY(mu_);                   // frames to send, in order
  size_t queuedBytes_ EP_GUARDED_BY(mu_) = 0;                         // the size of out_
  std::map<std::string, Connection> connections_ EP_GUARDED_BY(mu_);  // by request id
  std::map<uint32_t, std::string> streams_ EP_GUARDED_BY(mu_);        // stream id -> request id
  bool finished_ EP_GUARDED_BY(mu_) = false;    // GOAWAY either way, or a protocol error
  bool closed_ EP_GUARDED_BY(mu_) = false;      // close() ran
  uint32_t lastStream_ EP_GUARDED_BY(mu_) = 0;  // the client's newest stream id (for GOAWAY)
  const std::shared_ptr<WakeSlot> wake_;
  double tokens_ EP_GUARDED_BY(mu_);  // opens allowed now
  std::chrono::steady_clock::time_point refilled_ EP_GUARDED_BY(mu_);
};

// The kubelet's WebSocket port-forward protocol (v4.channel.k8s.io, what the Python client
// speaks): one connection per requested port for the whole WebSocket, opened at once. For the
// i-th port, channel 2i carries the connection both ways and channel 2i+1 the error text; each
// of the two first carries the port, two bytes little-endian. The socket closes once every
// connection ended. Client messages are [channel][bytes]; bytes on a data channel go to that
// port's connection. Threading and input bounds as PortForwardSession.
class ChannelPortForwardSession final : public http::WebSocketStream {
 public:
  // `ports`: 1 to 32 of them, each 1-65535 (the caller checks).
  ChannelPortForwardSession(StreamOpener& opener, std::string node, std::string ns, std::string pod,
                            std::vector<uint16_t> ports);
  ~ChannelPortForwardSession() override;

  void onMessage(std::string message) override;
  bool wantsInput() override;
  std::vector<std::string> next(bool& finished) override;
  void setWake(std::function<void()> wake) override;
  void close() override;

 private:
  struct Port {
    uint16_t port = 0;
    std::shared_ptr<PortForwardSession::Observer> observer;
    std::shared_ptr<StreamHandle> handle;  // null when it could not be opened
    std::string openError;                 // why not
    bool ended = false;                    // its error (if any) was sent; nothing more comes
  };
  // Opens every port's tunnel stream (from the constructor; opening never waits).
  void openAll() EP_REQUIRES(mu_);

  StreamOpener& opener_;
  const std::string node_, ns_, pod_;
  const std::shared_ptr<PortForwardSession::WakeSlot> wake_;

  mutable Mutex mu_;
  std::vector<Port> ports_ EP_GUARDED_BY(mu_);
  bool started_ EP_GUARDED_BY(mu_) = false;  // the port prefixes went out
  bool closed_ EP_GUARDED_BY(mu_) = false;
};

}  // namespace ep::apiserver
