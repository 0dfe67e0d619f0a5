#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::edged::streaming {

// A WebSocket client (RFC 6455) for the container runtime's streaming server: plain TCP to the
// URL CRI Exec/Attach answered (containerd: http://127.0.0.1:PORT/exec/TOKEN), one subprotocol
// offered (v4.channel.k8s.io), binary messages out (masked, as a client must), data messages in
// (fragments joined, pings answered, at most maxMessage bytes).
//
// Threading: one thread reads (read()); any thread may write (write() is serialized by a
// mutex; read() answers pings only when that costs no wait, else drops the pong); shutdown() from
// any thread makes a blocked read() or write() return. Owns its socket; the destructor closes it.
class WebSocketClient {
 public:
  static constexpr size_t kMaxMessage = 1024 * 1024;

  // Connects and completes the handshake within `timeout`. kBadRequest for a URL that is not
  // http://HOST:PORT/PATH with a numeric IPv4 or IPv6 host (an https streaming server is not
  // supported), kUnavailable when the server cannot be reached or refuses the upgrade.
  static Result<std::unique_ptr<WebSocketClient>> connect(const std::string& url,
                                                          const std::string& protocol,
                                                          std::chrono::milliseconds timeout);
  // A client over a connected socket whose upgrade already happened (`buffered`: bytes read
  // past it); takes ownership of `fd`. For tests and the fuzz target.
  static std::unique_ptr<WebSocketClient> adopt(int fd, std::string buffered);
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // The next data message (binary or text). kUnavailable once the peer closed the socket, the
  // connection ended or shutdown() was called; kInvalid on a protocol error or a message over
  // kMaxMessage (the socket is then shut down).
  [[nodiscard]] Result<std::string> read();
  // Sends `data` as one binary message. kUnavailable when the socket is gone.
  [[nodiscard]] Status write(std::string_view data);
  // Ends the connection in both directions; idempotent, never blocks.
  void shutdown();

 private:
  explicit WebSocketClient(int fd) : fd_(fd) {}
  // `mayDrop`: a control reply from the reader, skipped rather than waiting for the lock or
  // for room in the socket.
  [[nodiscard]] Status writeFrame(uint8_t opcode, std::string_view payload, bool mayDrop);
  // Fills `out` with exactly `n` bytes (buffered first). False when the socket ended.
  bool readExact(size_t n, std::string& out);

  const int fd_;
  std::atomic<bool> shut_{false};
  std::string buffered_;  // read side only: bytes received past the handshake
  Mutex writeMu_;
};

}  // namespace ep::edged::streaming
