// The edge's WebSocket client against a Beast server on loopback (handshake, subprotocol,
// fragments, pings, limits, shutdown) and against raw bytes on a socket pair (malformed frames).
#include "edgecore/edged/streaming/websocket_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <thread>

namespace ep::edged::streaming {
namespace {

namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

// Accepts one connection and runs `session` on it (after the upgrade, when `protocol` is set:
// accepted with that subprotocol; else the raw socket gets `rawReply`).
class OneShotServer {
 public:
  using Session = std::function<void(websocket::stream<tcp::socket&>&)>;
  OneShotServer(std::string protocol, Session session, std::string rawReply = "")
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, protocol, session, rawReply] {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      try {
        if (protocol.empty()) {
          boost::beast::flat_buffer buf;
          boost::beast::http::request<boost::beast::http::string_body> req;
          boost::beast::http::read(socket, buf, req);
          asio::write(socket, asio::buffer(rawReply));
          return;
        }
        websocket::stream<tcp::socket&> ws(socket);
        ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& r) {
          r.set(boost::beast::http::field::sec_websocket_protocol, protocol);
        }));
        ws.accept();
        ws.binary(true);
        session(ws);
      } catch (const std::exception&) {
      }
    });
  }
  ~OneShotServer() {
    boost::system::error_code ec;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes a blocked accept()
    acceptor_.close(ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/exec/t";
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

TEST(WebSocketClientTest, ExchangesMessagesJoinsFragmentsAndAnswersPings) {
  std::string echoed;
  OneShotServer server("v4.channel.k8s.io", [&](websocket::stream<tcp::socket&>& ws) {
    ws.write(asio::buffer(std::string("\x01hello")));
    // One message in three fragments, with a ping between them.
    ws.write_some(false, asio::buffer(std::string("\x01"
                                                  "ab")));
    ws.ping({});
    ws.write_some(false, asio::buffer(std::string("cd")));
    ws.write_some(true, asio::buffer(std::string("ef")));
    boost::beast::flat_buffer buf;
    ws.read(buf);  // the client's message (a pong came before, handled by Beast)
    echoed = boost::beast::buffers_to_string(buf.data());
    ws.close(websocket::close_code::normal);
  });
  auto c = WebSocketClient::connect(server.url(), "v4.channel.k8s.io", 5s);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  auto m = (*c)->read();
  ASSERT_TRUE(m.isOk()) << m.status().toString();
  EXPECT_EQ(*m, "\x01hello");
  m = (*c)->read();
  ASSERT_TRUE(m.isOk()) << m.status().toString();
  EXPECT_EQ(*m,
            "\x01"
            "abcdef");
  std::string big(70000, 'x');  // a 64-bit length frame
  ASSERT_TRUE((*c)->write(std::string(1, '\0') + big).isOk());
  m = (*c)->read();
  EXPECT_EQ(m.status().code(), Code::kUnavailable);  // the server closed
  EXPECT_EQ(echoed, std::string(1, '\0') + big);
}

TEST(WebSocketClientTest, RefusesAnotherSubprotocolAndAFailedUpgrade) {
  {
    OneShotServer server("channel.k8s.io", [](websocket::stream<tcp::socket&>&) {});
    auto c = WebSocketClient::connect(server.url(), "v4.channel.k8s.io", 5s);
    ASSERT_FALSE(c.isOk());
    EXPECT_NE(c.status().message().find("does not speak v4.channel.k8s.io"), std::string::npos)
        << c.status().message();
  }
  {
    OneShotServer server("", nullptr,
                         "HTTP/1.1 404 Not Found\r\nContent-Length: 17\r\n\r\nunknown exec token");
    auto c = WebSocketClient::connect(server.url(), "v4.channel.k8s.io", 5s);
    ASSERT_FALSE(c.isOk());
    EXPECT_EQ(c.status().code(), Code::kUnavailable);
    EXPECT_NE(c.status().message().find("404"), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find("unknown exec token"), std::string::npos);
  }
  // Nothing listens (the acceptor is gone), or the URL is not one the client can dial.
  std::string url;
  { url = OneShotServer("x", nullptr).url(); }
  EXPECT_EQ(WebSocketClient::connect(url, "v4.channel.k8s.io", 2s).status().code(),
            Code::kUnavailable);
  for (const char* bad : {"https://127.0.0.1:1/x", "http://localhost:10/x", "http://1.2.3.4:0/",
                          "http://1.2.3.4:99999/", "http://[::1/x"}) {
    EXPECT_EQ(WebSocketClient::connect(bad, "p", 1s).status().code(), Code::kBadRequest) << bad;
  }
}

TEST(WebSocketClientTest, ShutdownWakesABlockedRead) {
  OneShotServer server("v4.channel.k8s.io", [](websocket::stream<tcp::socket&>& ws) {
    boost::beast::flat_buffer buf;
    boost::system::error_code ec;
    ws.read(buf, ec);  // until the client goes
  });
  auto c = WebSocketClient::connect(server.url(), "v4.channel.k8s.io", 5s);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);  // the read below is blocked by then (or returns at once)
    (*c)->shutdown();
  });
  auto m = (*c)->read();
  stopper.join();
  EXPECT_EQ(m.status().code(), Code::kUnavailable);
  EXPECT_EQ((*c)->write("x").code(), Code::kUnavailable);
}

// Raw frames from a broken server: clear errors, never a crash or a huge buffer.
Result<std::string> readRaw(const std::string& bytes) {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  EXPECT_EQ(write(fds[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  shutdown(fds[1], SHUT_WR);
  auto c = WebSocketClient::adopt(fds[0], "");
  auto r = c->read();
  close(fds[1]);
  return r;
}

TEST(WebSocketClientTest, MalformedFramesAreErrors) {
  // Over the 1 MiB limit (64-bit length).
  EXPECT_EQ(readRaw(std::string("\x82\x7f\x00\x00\x00\x00\x01\x00\x00\x01", 10)).status().code(),
            Code::kInvalid);
  // Reserved bits, an unknown opcode, a continuation first, a fragmented ping.
  for (const char* header : {"\xc2", "\x83", "\x80", "\x09"}) {
    EXPECT_EQ(readRaw(std::string(header) + std::string(1, '\0')).status().code(), Code::kInvalid)
        << static_cast<int>(static_cast<uint8_t>(header[0]));
  }
  // Truncated: the connection ends inside a frame.
  EXPECT_EQ(readRaw("\x82\x05\x01").status().code(), Code::kUnavailable);
  // A masked frame from the server is tolerated and unmasked.
  auto m = readRaw(std::string("\x82\x82\x01\x02\x03\x04", 6) +
                   std::string{static_cast<char>(0x01 ^ 1), static_cast<char>('A' ^ 2)});
  ASSERT_TRUE(m.isOk()) << m.status().toString();
  EXPECT_EQ(*m,
            "\x01"
            "A");
}

}  // namespace
}  // namespace ep::edged::streaming
