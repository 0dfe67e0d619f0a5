#include "edgecore/edged/streaming/websocket_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
// wolfSSL's build options first (they decide the structure layouts), then its SHA-1 for the
// handshake's Sec-WebSocket-Accept check.
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "common/api/base64.h"
#include "edgecore/edged/streaming/http_upgrade.h"

namespace ep::edged::streaming {

namespace {

constexpr const char* kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::string randomBytes(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string expectedAccept(const std::string& key) {
  std::string in = key + kAcceptGuid;
  unsigned char digest[WC_SHA_DIGEST_SIZE];
  if (wc_ShaHash(reinterpret_cast<const byte*>(in.data()), static_cast<word32>(in.size()),
                 digest) != 0) {
    return {};
  }
  return api::base64Encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

bool sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<WebSocketClient>> WebSocketClient::connect(
    const std::string& url, const std::string& protocol, std::chrono::milliseconds timeout) {
  const std::string key = api::base64Encode(randomBytes(16));
  auto conn =
      upgradeConnection(url, timeout, [&](const std::string& host, const std::string& path) {
        return "GET " + path + " HTTP/1.1\r\nHost: " + host +
               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
               "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + protocol +
               "\r\nUser-Agent: edgecore\r\n\r\n";
      });
  if (!conn.isOk()) return conn.status();
  std::unique_ptr<WebSocketClient> client(new WebSocketClient(conn->fd));
  const std::string where = streamingServerName(url);
  if (responseHeader(conn->head, "sec-websocket-accept") != expectedAccept(key)) {
    return unavailableError(where + " answered a wrong Sec-WebSocket-Accept");
  }
  std::string chosen = responseHeader(conn->head, "sec-websocket-protocol");
  if (chosen != protocol) {
    return unavailableError(where + " does not speak " + protocol +
                            (chosen.empty() ? "" : " (it chose " + chosen + ")"));
  }
  client->buffered_ = std::move(conn->buffered);
  return client;
}

std::unique_ptr<WebSocketClient> WebSocketClient::adopt(int fd, std::string buffered) {
  std::unique_ptr<WebSocketClient> client(new WebSocketClient(fd));
  client->buffered_ = std::move(buffered);
  return client;
}

WebSocketClient::~WebSocketClient() {
  ::close(fd_);
}

void WebSocketClient::shutdown() {
  if (!shut_.exchange(true)) ::shutdown(fd_, SHUT_RDWR);
}

bool WebSocketClient::readExact(size_t n, std::string& out) {
  while (buffered_.size() < n) {
    char buf[16 * 1024];
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buffered_.append(buf, static_cast<size_t>(got));
  }
  out.assign(buffered_, 0, n);
  buffered_.erase(0, n);
  return true;
}

Result<std::string> WebSocketClient::read() {
  std::string message;
  bool inMessage = false;
  for (;;) {
    std::string h;
    if (!readExact(2, h)) return unavailableError("the streaming connection ended");
    const auto b0 = static_cast<uint8_t>(h[0]);
    const auto b1 = static_cast<uint8_t>(h[1]);
    const bool fin = (b0 & 0x80) != 0;
    const uint8_t opcode = b0 & 0x0f;
    const bool masked = (b1 & 0x80) != 0;
    uint64_t len = b1 & 0x7f;
    std::string ext;
    if (len == 126) {
      if (!readExact(2, ext)) return unavailableError("the streaming connection ended");
      len = (uint64_t{static_cast<uint8_t>(ext[0])} << 8) | static_cast<uint8_t>(ext[1]);
    } else if (len == 127) {
      if (!readExact(8, ext)) return unavailableError("the streaming connection ended");
      len = 0;
      for (char c : ext) len = (len << 8) | static_cast<uint8_t>(c);
    }
    const bool control = (opcode & 0x08) != 0;
    if ((control && (len > 125 || !fin)) || (b0 & 0x70) != 0 ||
        len > kMaxMessage - message.size()) {
      shutdown();
      return invalidError("the streaming server sent a malformed or oversized WebSocket frame");
    }
    std::string mask;
    if (masked && !readExact(4, mask)) return unavailableError("the streaming connection ended");
    std::string payload;
    if (!readExact(static_cast<size_t>(len), payload)) {
      return unavailableError("the streaming connection ended");
    }
    if (masked) {
      for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= mask[i % 4];
    }
    switch (opcode) {
      case 0x8:  // close: answer it, then the connection is over
        (void)writeFrame(0x8, payload.substr(0, 2), /*mayDrop=*/true);
        shutdown();
        return unavailableError("the streaming server closed the connection");
      case 0x9:
        (void)writeFrame(0xA, payload, /*mayDrop=*/true);
        continue;
      case 0xA:
        continue;
      case 0x0:
        if (!inMessage) {
          shutdown();
          return invalidError("the streaming server sent a continuation without a message");
        }
        break;
      case 0x1:
      case 0x2:
        if (inMessage) {
          shutdown();
          return invalidError("the streaming server interleaved two messages");
        }
        inMessage = true;
        break;
      default:
        shutdown();
        return invalidError("the streaming server sent WebSocket opcode " + std::to_string(opcode));
    }
    message += payload;
    if (fin) return message;
  }
}

Status WebSocketClient::write(std::string_view data) {
  return writeFrame(0x2, data, /*mayDrop=*/false);
}

Status WebSocketClient::writeFrame(uint8_t opcode, std::string_view payload, bool mayDrop) {
  std::string frame;
  frame.reserve(payload.size() + 14);
  frame.push_back(static_cast<char>(0x80 | opcode));
  if (payload.size() < 126) {
    frame.push_back(static_cast<char>(0x80 | payload.size()));
  } else if (payload.size() <= 0xffff) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(payload.size() >> 8));
    frame.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      frame.push_back(static_cast<char>((uint64_t{payload.size()} >> shift) & 0xff));
    }
  }
  const std::string mask = randomBytes(4);
  frame += mask;
  const size_t start = frame.size();
  frame.append(payload);
  for (size_t i = start; i < frame.size(); ++i) frame[i] ^= mask[(i - start) % 4];
  if (mayDrop) {
    // A control reply from the reader: never wait behind a write the runtime does not read
    // (the output would stop with it). A pong may be dropped; a close reply is best effort.
    if (!writeMu_.try_lock()) return unavailableError("a write is in progress");
    bool sent = false;
    if (!shut_) {
      ssize_t n = ::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      // Part of the frame went out: the rest must follow, or the framing would break.
      sent = n == static_cast<ssize_t>(frame.size()) ||
             (n > 0 && sendAll(fd_, std::string_view(frame).substr(static_cast<size_t>(n))));
    }
    writeMu_.unlock();
    return sent ? Status::ok() : unavailableError("no room to send the reply now");
  }
  MutexLock l(writeMu_);
  if (shut_) return unavailableError("the streaming connection ended");
  if (!sendAll(fd_, frame)) return unavailableError("the streaming connection ended");
  return Status::ok();
}

}  // namespace ep::edged::streaming
