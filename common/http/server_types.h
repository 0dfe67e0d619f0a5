#pragma once

#include <any>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ep::http {

// The client certificate of a TLS connection. Filled only when the certificate verified
// against the server's client CA (ServerTlsOptions::clientCaPem) and is within its validity;
// otherwise `verified` is false and the rest empty.
struct ClientCertificate {
  bool verified = false;
  std::string commonName;                  // subject CN (Kubernetes: the user name)
  std::vector<std::string> organizations;  // subject O, in order (Kubernetes: the groups)
  std::string serialHex;                   // lower-case hex, no leading zeros
};

// A parsed HTTP request, independent of the HTTP library.
struct ServerRequest {
  std::string method;                          // "GET"
  std::string target;                          // raw request target, "/api/v1/pods?watch=1"
  std::string path;                            // percent-decoded path without query
  std::map<std::string, std::string> query;    // decoded; last value wins
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string remote;                   // "127.0.0.1:5555"
  ClientCertificate clientCertificate;  // TLS only
  // Set by a filter in front of the handler for the handler's use (cloudcore: the
  // authenticated auth::UserInfo). Empty when nothing set it.
  std::any context;

  std::string header(const std::string& lowerName) const {
    auto it = headers.find(lowerName);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string param(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  }
  // A boolean query parameter read as Kubernetes reads one (runtime's string-to-bool
  // conversion): absent, "0" and "false" in any case are false; any other value, an empty one
  // included ("?watch"), is true. So the Python client's "watch=True" is a watch.
  bool flag(const std::string& name) const {
    auto it = query.find(name);
    if (it == query.end()) return false;
    const std::string& v = it->second;
    if (v == "0") return false;
    if (v.size() != 5) return true;
    static constexpr char kFalse[] = "false";
    for (size_t i = 0; i < 5; ++i) {
      if ((v[i] | 0x20) != kFalse[i]) return true;
    }
    return false;
  }
};

// The body of a streamed (chunked) response such as a watch. The server calls next() on a
// worker thread, one call at a time; next() returns what is available now without waiting.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // Data to send now (possibly empty). Sets `finished` when nothing more will come.
  virtual std::string next(bool& finished) = 0;
  // `wake` may be called from any thread when next() may have more; it never blocks.
  virtual void setWake(std::function<void()> wake) = 0;
  // When the server ends the stream regardless (timeoutSeconds).
  virtual std::chrono::steady_clock::time_point deadline() const = 0;
  // The server calls next() again by this time even without a wake (periodic output such as
  // watch bookmarks). Asked after each next(); default: only on wakes.
  virtual std::chrono::steady_clock::time_point nextCall() const {
    return std::chrono::steady_clock::time_point::max();
  }
  // Called once when the stream ends for any reason (client gone, deadline, finished).
  virtual void close() = 0;
};

// A WebSocket the server runs after accepting an upgrade (pod exec, attach). The server calls
// next() on a worker thread, one call at a time, and writes each returned string as one binary
// message; it closes the socket (normal closure) after the messages of the call that set
// `finished`. The client's messages go to onMessage() on the server's I/O thread, concurrently
// with next(), one at a time and in order; the server reads the next one only while
// wantsInput() is true (else after a wake once it is), so a slow consumer of input holds the
// client back instead of growing memory. A client message over 128 KiB ends the socket.
class WebSocketStream {
 public:
  virtual ~WebSocketStream() = default;
  // Messages to send now (possibly none). Never waits.
  virtual std::vector<std::string> next(bool& finished) = 0;
  // One message from the client (binary or text). Never waits. Default: discarded.
  virtual void onMessage(std::string message) { (void)message; }
  // Whether the server may read the client's next message now. Never waits.
  virtual bool wantsInput() { return true; }
  // `wake` may be called from any thread when next() may have more; it never blocks.
  virtual void setWake(std::function<void()> wake) = 0;
  // Called once when the socket ends for any reason (finished, client gone, server stopping).
  virtual void close() = 0;
};

struct ServerResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<BodyStream> stream;  // when set, body is ignored and the reply is chunked
  // When set, the request must be a WebSocket upgrade (else 400): the server accepts it with
  // `websocketProtocol` as Sec-WebSocket-Protocol and runs `websocket`; status/body are unused.
  std::shared_ptr<WebSocketStream> websocket;
  std::string websocketProtocol;
};

// Called on a worker thread for every request. May block on the store. Must not throw (the
// server turns an escaped exception into a 500 and logs it).
using ServerHandler = std::function<ServerResponse(ServerRequest&)>;

}  // namespace ep::http
