#pragma once

// A stand-in for a container runtime's streaming server (containerd's answers CRI Exec/Attach
// with a URL on it), for tests: on 127.0.0.1 port 0 speaking v4.channel.k8s.io over WebSocket
// or over SPDY/3.1 (kubelet's: one stream per channel, named by its streamtype header), one
// session at a time, playing a tiny line-based shell:
//   stdin line "exit N"  -> the final Status for exit code N on channel 3, then closes;
//   the end of stdin (SPDY only: a FIN on the stdin stream) -> the final Status for 0 (as cat);
//   other stdin lines    -> "echo:LINE\n" on stdout (at most 200 bytes of it; lines end
//                           with \r or \n);
//   resize {"Width":W,"Height":H} on channel 4 -> "size WxH\n" on stdout.
// With `portForward`, it plays the runtime's port-forward instead (CRI PortForward's URL): each
// channel first says the port (2 bytes little-endian), then the client's bytes on channel 0 are
// read up to a blank line ("\r\n\r\n", an HTTP request), answered on channel 0 with
// "HTTP/1.0 200 OK ... forwarded:FIRST LINE", and the session closes; a request whose first line
// holds "refuse" gets "connection refused" on channel 1 instead.
// Test code only (Beast, blocking, one thread).

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/spdy/spdy.h"

namespace ep::testing {

class FakeStreamingServer {
 public:
  // `spdy` false: a runtime that speaks WebSocket only (refuses the SPDY upgrade with 400).
  explicit FakeStreamingServer(bool portForward = false, bool spdy = true)
      : portForward_(portForward),
        spdy_(spdy),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { run(); });
  }
  ~FakeStreamingServer() {
    boost::system::error_code ec;
    // Wakes the blocked accept() (closing alone does not, from another thread).
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    acceptor_.close(ec);
    {
      std::lock_guard l(mu_);
      if (current_) current_->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    }
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/exec/token";
  }
  std::vector<std::string> sizes() {
    std::lock_guard l(mu_);
    return sizes_;
  }
  std::string stdinSeen() {
    std::lock_guard l(mu_);
    return stdin_;
  }
  int sessions() {
    std::lock_guard l(mu_);
    return sessions_;
  }
  int sessionsEnded() {
    std::lock_guard l(mu_);
    return ended_;
  }
  // Sessions that spoke SPDY, and whether their stdin ended (a FIN on its stream).
  int spdySessions() {
    std::lock_guard l(mu_);
    return spdySessions_;
  }
  int stdinEnds() {
    std::lock_guard l(mu_);
    return stdinEnds_;
  }

 private:
  void run() {
    namespace websocket = boost::beast::websocket;
    for (;;) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      {
        std::lock_guard l(mu_);
        current_ = &socket;
        ++sessions_;
      }
      try {
        boost::beast::flat_buffer head;
        boost::beast::http::request<boost::beast::http::string_body> req;
        boost::beast::http::read(socket, head, req);
        if (!websocket::is_upgrade(req)) {
          serveSpdy(socket, req, head);
          std::lock_guard l(mu_);
          current_ = nullptr;
          ++ended_;
          continue;
        }
        websocket::stream<boost::asio::ip::tcp::socket&> ws(socket);
        ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
          res.set(boost::beast::http::field::sec_websocket_protocol, "v4.channel.k8s.io");
        }));
        ws.accept(req);
        ws.binary(true);
        if (portForward_) servePortForward(ws);
        std::string line;
        bool done = portForward_;
        while (!done) {
          boost::beast::flat_buffer buf;
          ws.read(buf);
          std::string m = boost::beast::buffers_to_string(buf.data());
          if (m.empty()) continue;
          std::string payload = m.substr(1);
          if (m[0] == 4) {
            auto j = nlohmann::json::parse(payload, nullptr, false);
            std::string size =
                std::to_string(j.value("Width", 0)) + "x" + std::to_string(j.value("Height", 0));
            {
              std::lock_guard l(mu_);
              sizes_.push_back(size);
            }
            ws.write(boost::asio::buffer("\x01size " + size + "\n"));
            continue;
          }
          if (m[0] != 0) continue;
          {
            std::lock_guard l(mu_);
            stdin_ += payload;
          }
          for (char c : payload) {
            if (c != '\r' && c != '\n') {
              line += c;
              continue;
            }
            if (line.rfind("exit ", 0) == 0) {
              std::string status = statusFor(std::stoi(line.substr(5)));
              ws.write(boost::asio::buffer("\x03" + status));
              ws.close(websocket::close_code::normal);
              done = true;
              break;
            }
            if (!line.empty()) {
              ws.write(boost::asio::buffer(std::string(1, '\x01') + "echo:" + line.substr(0, 200) +
                                           "\n"));
            }
            line.clear();
          }
        }
      } catch (const std::exception&) {
        // the client went away
      }
      std::lock_guard l(mu_);
      current_ = nullptr;
      ++ended_;
    }
  }

  static std::string statusFor(int code) {
    return code == 0 ? R"({"metadata":{},"status":"Success"})"
                     : R"({"metadata":{},"status":"Failure","message":"command terminated",)"
                       R"("reason":"NonZeroExitCode","details":{"causes":[{"reason":)"
                       R"("ExitCode","message":")" +
                           std::to_string(code) + R"("}]}})";
  }

  // The same shell over SPDY/3.1, as kubelet's streaming server speaks it.
  void serveSpdy(boost::asio::ip::tcp::socket& socket,
                 const boost::beast::http::request<boost::beast::http::string_body>& req,
                 boost::beast::flat_buffer& head) {
    if (!spdy_ || req[boost::beast::http::field::upgrade] != "SPDY/3.1" ||
        req["X-Stream-Protocol-Version"] != "v4.channel.k8s.io") {
      boost::asio::write(socket, boost::asio::buffer(std::string(
                                     "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")));
      return;
    }
    boost::asio::write(socket, boost::asio::buffer(std::string(
                                   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                   "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: "
                                   "v4.channel.k8s.io\r\n\r\n")));
    {
      std::lock_guard l(mu_);
      ++spdySessions_;
    }
    spdy::FrameReader reader;
    spdy::FrameWriter writer;
    std::map<std::string, uint32_t> streams;  // streamtype -> id
    auto send = [&](const std::string& bytes) {
      boost::asio::write(socket, boost::asio::buffer(bytes));
    };
    auto finish = [&](int code) {
      // As containerd ends a session: the status (no FIN), a reset of every stream, GOAWAY.
      if (streams.count("error")) send(writer.data(streams["error"], statusFor(code), false));
      for (const auto& [type, id] : streams) send(writer.rstStream(id, spdy::kCancel));
      send(writer.goAway(0, 0));
      boost::system::error_code ec;
      socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    };
    std::string line;
    std::string pending = boost::beast::buffers_to_string(head.data());
    for (;;) {
      std::vector<spdy::Frame> frames;
      if (!reader.feed(pending, frames).isOk()) return;
      pending.clear();
      for (const auto& f : frames) {
        if (f.type == spdy::FrameType::kSynStream) {
          streams[spdy::headerValue(f.headers, "streamtype")] = f.streamId;
          send(writer.synReply(f.streamId, {}, false));
          continue;
        }
        if (f.type != spdy::FrameType::kData) continue;
        if (streams.count("stdin") && f.streamId == streams["stdin"]) {
          {
            std::lock_guard l(mu_);
            stdin_ += f.data;
          }
          for (char c : f.data) {
            if (c != '\r' && c != '\n') {
              line += c;
              continue;
            }
            if (line.rfind("exit ", 0) == 0) return finish(std::stoi(line.substr(5)));
            if (!line.empty() && streams.count("stdout")) {
              send(writer.data(streams["stdout"], "echo:" + line.substr(0, 200) + "\n", false));
            }
            line.clear();
          }
          if (f.fin()) {
            std::lock_guard l(mu_);
            ++stdinEnds_;
          }
          if (f.fin()) return finish(0);
        }
      }
      char buf[4096];
      boost::system::error_code ec;
      size_t n = socket.read_some(boost::asio::buffer(buf), ec);
      if (ec) return;
      pending.assign(buf, n);
    }
  }

  template <typename WebSocket>
  void servePortForward(WebSocket& ws) {
    const uint16_t port = 8080;
    const std::string prefix{char(port & 0xff), char(port >> 8)};
    ws.write(boost::asio::buffer(std::string(1, '\x00') + prefix));
    ws.write(boost::asio::buffer(std::string(1, '\x01') + prefix));
    std::string request;
    while (request.find("\r\n\r\n") == std::string::npos) {
      boost::beast::flat_buffer buf;
      ws.read(buf);
      std::string m = boost::beast::buffers_to_string(buf.data());
      if (!m.empty() && m[0] == 0) request += m.substr(1);
    }
    {
      std::lock_guard l(mu_);
      stdin_ += request;
    }
    const std::string first = request.substr(0, request.find("\r\n"));
    if (first.find("refuse") != std::string::npos) {
      // As containerd words it (the kubelet's streaming library).
      ws.write(boost::asio::buffer(std::string(1, '\x01') +
                                   "error forwarding port 8080 to pod 5e1f, uid : failed to dial "
                                   "8080: dial tcp4 127.0.0.1:8080: connect: connection refused"));
    } else {
      const std::string body = "forwarded:" + first;
      ws.write(boost::asio::buffer(std::string(1, '\x00') + "HTTP/1.0 200 OK\r\nContent-Length: " +
                                   std::to_string(body.size()) + "\r\n\r\n" + body));
    }
    ws.close(boost::beast::websocket::close_code::normal);
  }

  const bool portForward_;
  const bool spdy_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  boost::asio::ip::tcp::socket* current_ = nullptr;
  std::vector<std::string> sizes_;
  std::string stdin_;
  int sessions_ = 0;
  int ended_ = 0;
  int spdySessions_ = 0;
  int stdinEnds_ = 0;
};

}  // namespace ep::testing
