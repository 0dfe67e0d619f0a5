#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::edged::streaming {

class WebSocketClient;

// Kubernetes' channels of an exec, attach or port-forward session with the container runtime's
// streaming server: 0 stdin (port-forward: the connection's bytes), 1 stdout (port-forward: its
// errors), 2 stderr, 3 the final status (a v1 Status), 4 terminal resizes.
inline constexpr uint8_t kChannelStdin = 0;
inline constexpr uint8_t kChannelStdout = 1;
inline constexpr uint8_t kChannelStderr = 2;
inline constexpr uint8_t kChannelStatus = 3;
inline constexpr uint8_t kChannelResize = 4;

// One session over either protocol the runtime serves (v4.channel.k8s.io over WebSocket, or over
// SPDY/3.1). Threading: one thread reads; one other thread writes (write()/closeStdin());
// shutdown() from any thread makes a blocked read or write return.
class ChannelSession {
 public:
  struct Message {
    uint8_t channel = 0;
    std::string data;  // may be empty (WebSocket's "channel open" markers)
  };
  virtual ~ChannelSession() = default;
  // The next message. kUnavailable once the session ended or was shut down; kInvalid on a
  // protocol error.
  [[nodiscard]] virtual Result<Message> read() = 0;
  [[nodiscard]] virtual Status write(uint8_t channel, std::string_view data) = 0;
  // Ends stdin alone, so the command reads end-of-file. Over WebSocket it does nothing (and
  // returns OK): v4.channel.k8s.io there has no half-close.
  [[nodiscard]] virtual Status closeStdin() = 0;
  virtual void shutdown() = 0;
};

// A WebSocket session (each message's first byte is its channel).
std::unique_ptr<ChannelSession> webSocketSession(std::unique_ptr<WebSocketClient> socket);

// Which streams an SPDY exec or attach session opens (as the CRI request asked).
struct SpdyStreams {
  bool stdin = false;
  bool stdout = true;
  bool stderr = true;
  bool tty = false;  // a resize stream
};

// Upgrades the connection to `url` to SPDY/3.1 speaking v4.channel.k8s.io (as kubectl does with
// kubelet) and opens the error, stdin, stdout, stderr and resize streams `streams` asks for,
// and waits until the server accepted each (SYN_REPLY), all within `timeout`. Each channel is a
// stream of its own, so stdin can end alone. The status (channel 3) is read whole: one message
// when its stream ends, is reset, or the session ends. The server's pings are answered when the
// write side is free. Errors as for WebSocketClient::connect, and kUnavailable when the server
// resets or does not accept a stream.
Result<std::unique_ptr<ChannelSession>> connectSpdySession(const std::string& url,
                                                           SpdyStreams streams,
                                                           std::chrono::milliseconds timeout);
// An SPDY session over a connected socket whose upgrade already happened (`buffered`: bytes
// read past it); takes ownership of `fd`, opens the streams and waits for their acceptance
// within `timeout`. For tests.
Result<std::unique_ptr<ChannelSession>> adoptSpdySession(
    int fd, std::string buffered, SpdyStreams streams,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace ep::edged::streaming
