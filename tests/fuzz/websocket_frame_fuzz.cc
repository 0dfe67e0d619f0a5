// libFuzzer: the edge's WebSocket client reading whatever a broken or hostile streaming server
// sends (frames of any header, length, fragmentation, control frames). Checks that every
// message it returns is within its limit and that it ends with an error, never a crash, a hang
// or memory out of proportion to the input.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "edgecore/edged/streaming/websocket_client.h"

using ep::edged::streaming::WebSocketClient;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // fits the socket pair's buffer: written before reading
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  int sndbuf = 256 * 1024;
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fds[1], data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  // The peer goes: what it wrote stays readable, and the client's replies (pongs, close) fail
  // at once instead of filling a buffer nobody reads.
  close(fds[1]);
  auto client = WebSocketClient::adopt(fds[0], "");
  size_t total = 0;
  for (;;) {
    auto m = client->read();
    if (!m.isOk()) break;
    if (m->size() > WebSocketClient::kMaxMessage) std::abort();
    total += m->size();
    if (total > size) std::abort();  // payload never exceeds what was sent
  }
  return 0;
}
