#include "common/http/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace ep::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A tiny HTTP/1.1 server on 127.0.0.1:<ephemeral> serving a few fixed routes, one thread per
// connection. Tests destroy their clients before the server so connection threads end.
class TestServer {
 public:
  TestServer() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    acceptThread_ = std::thread([this] { acceptLoop(); });
  }
  ~TestServer() {
    stopping_ = true;
    // Wakes the blocking accept() (it fails with EINVAL). Connecting to ourselves instead could
    // fail on a loaded machine (no ephemeral port) and then the join hung for ever.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    acceptThread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto* s : sockets_) {
        beast::error_code ec;
        s->shutdown(tcp::socket::shutdown_both, ec);
      }
      threads.swap(connThreads_);
    }
    for (auto& t : threads) t.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void acceptLoop() {
    while (true) {
      auto sock = std::make_unique<tcp::socket>(ioc_);
      beast::error_code ec;
      acceptor_.accept(*sock, ec);
      if (stopping_ || ec) return;
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      tcp::socket* raw = sock.release();
      sockets_.push_back(raw);
      connThreads_.emplace_back([this, raw] { serve(raw); });
    }
  }

  void serve(tcp::socket* sock) {
    beast::flat_buffer buf;
    while (true) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(*sock, buf, req, ec);
      if (ec) break;
      if (!handle(*sock, req)) break;
    }
    beast::error_code ec;
    sock->shutdown(tcp::socket::shutdown_both, ec);
    std::lock_guard<std::mutex> lock(mu_);
    sockets_.erase(std::remove(sockets_.begin(), sockets_.end(), sock), sockets_.end());
    delete sock;
  }

  static void writeChunk(tcp::socket& s, std::string_view data, beast::error_code& ec) {
    if (ec) return;
    char size[32];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out(size, static_cast<size_t>(n));
    out.append(data);
    out += "\r\n";
    asio::write(s, asio::buffer(out), ec);
  }

  // Returns false when the connection must close.
  bool handle(tcp::socket& s, bhttp::request<bhttp::string_body>& req) {
    std::string target(req.target());
    bhttp::response<bhttp::string_body> res;
    res.version(11);
    res.keep_alive(req.keep_alive());
    res.set(bhttp::field::content_type, "application/json");
    beast::error_code ec;
    if (target == "/api/hello" || target == "/prefix/api/hello") {
      res.result(200);
      res.body() = R"({"hello":"world"})";
    } else if (target.rfind("/echo", 0) == 0) {
      json e = {{"method", std::string(req.method_string())},
                {"target", target},
                {"contentType", std::string(req[bhttp::field::content_type])},
                {"accept", std::string(req[bhttp::field::accept])},
                {"authorization", std::string(req[bhttp::field::authorization])},
                {"extra", std::string(req["X-Extra"])},
                {"host", std::string(req[bhttp::field::host])},
                {"body", req.body()}};
      res.result(200);
      res.body() = e.dump();
    } else if (target == "/missing") {
      res.result(404);
      res.body() = R"({"kind":"Status","message":"pods \"x\" not found","code":404})";
    } else if (target == "/slow") {
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      res.result(200);
      res.body() = "{}";
    } else if (target == "/close") {
      res.result(200);
      res.keep_alive(false);
      res.body() = "{}";
    } else if (target == "/stream") {
      std::string head =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nWarning: 299 - \"stale\"\r\n"
          "Transfer-Encoding: chunked\r\n\r\n";
      asio::write(s, asio::buffer(head), ec);
      writeChunk(s, "{\"a\":1}\n{\"b\"", ec);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      writeChunk(s, ":2}\n\n", ec);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      writeChunk(s, "{\"c\":3}\r\ntail", ec);
      writeChunk(s, "", ec);
      return !ec;
    } else if (target == "/forever") {
      std::string head =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
      asio::write(s, asio::buffer(head), ec);
      for (int i = 0; i < 500 && !ec && !stopping_; ++i) {
        writeChunk(s, "{\"n\":" + std::to_string(i) + "}\n", ec);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return false;
    } else if (target == "/eof-stream") {
      std::string out =
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nline1\nline2\n";
      asio::write(s, asio::buffer(out), ec);
      return false;
    } else {
      res.result(404);
      res.body() = "{}";
    }
    res.prepare_payload();
    bhttp::write(s, res, ec);
    return !ec && res.keep_alive();
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread acceptThread_;
  std::mutex mu_;
  std::vector<tcp::socket*> sockets_;
  std::vector<std::thread> connThreads_;
};

TEST(ParseBaseUrlTest, ParsesHostPortAndPrefix) {
  auto u = parseBaseUrl("http://127.0.0.1:6443");
  ASSERT_TRUE(u.isOk());
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6443);
  EXPECT_EQ(u->prefix, "");

  u = parseBaseUrl("http://cloud.example:8080/k8s/");
  ASSERT_TRUE(u.isOk());
  EXPECT_EQ(u->host, "cloud.example");
  EXPECT_EQ(u->prefix, "/k8s");

  u = parseBaseUrl("http://[::1]:9000");
  ASSERT_TRUE(u.isOk());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);

  u = parseBaseUrl("http://host");
  ASSERT_TRUE(u.isOk());
  EXPECT_EQ(u->port, 80);

  EXPECT_FALSE(parseBaseUrl("ftp://x").isOk());
  EXPECT_FALSE(parseBaseUrl("http://:80").isOk());
  EXPECT_FALSE(parseBaseUrl("http://h:99999").isOk());
  EXPECT_FALSE(parseBaseUrl("http://h:80/x?y=1").isOk());
}

TEST(HttpClientTest, BadTlsMaterialIsReportedNamingTheField) {
  ClientOptions o;
  o.caPem = "not a certificate";
  HttpClient c("https://127.0.0.1:6443", o);
  EXPECT_FALSE(c.valid().isOk());
  auto r = c.request("GET", "/version");
  ASSERT_FALSE(r.isOk());
  EXPECT_THAT(r.status().message(), HasSubstr("certificate-authority"));
}

TEST(HttpClientTest, GetReturnsBodyStatusAndHeaders) {
  TestServer server;
  HttpClient c(server.url());
  auto r = c.request("GET", "/api/hello");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->contentType, "application/json");
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(json::parse(r->body)["hello"], "world");
}

TEST(HttpClientTest, PrefixIsPrepended) {
  TestServer server;
  HttpClient c(server.url() + "/prefix/");
  auto r = c.request("GET", "/api/hello");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 200);
}

TEST(HttpClientTest, SendsBodyHeadersAndToken) {
  TestServer server;
  ClientOptions opts;
  opts.bearerToken = "s3cret";
  opts.headers = {{"X-Extra", "yes"}};
  HttpClient c(server.url(), opts);
  auto r = c.request("PATCH", "/echo?x=1", R"({"a":1})", "application/merge-patch+json",
                     "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  json e = json::parse(r->body);
  EXPECT_EQ(e["method"], "PATCH");
  EXPECT_EQ(e["target"], "/echo?x=1");
  EXPECT_EQ(e["contentType"], "application/merge-patch+json");
  EXPECT_EQ(e["accept"], "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
  EXPECT_EQ(e["authorization"], "Bearer s3cret");
  EXPECT_EQ(e["extra"], "yes");
  EXPECT_EQ(e["host"], "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(e["body"], R"({"a":1})");
}

TEST(HttpClientTest, NonSuccessStatusIsAValue) {
  TestServer server;
  HttpClient c(server.url());
  auto r = c.request("GET", "/missing");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 404);
  EXPECT_THAT(r->body, HasSubstr("not found"));
}

TEST(HttpClientTest, ReusesOneKeepAliveConnection) {
  TestServer server;
  {
    HttpClient c(server.url());
    for (int i = 0; i < 5; ++i) {
      auto r = c.request("GET", "/api/hello");
      ASSERT_TRUE(r.isOk()) << r.status().toString();
      ASSERT_EQ(r->status, 200);
    }
    EXPECT_EQ(server.connections(), 1);
    // The server closes after this one; the next request opens a new connection.
    ASSERT_TRUE(c.request("GET", "/close").isOk());
    ASSERT_TRUE(c.request("GET", "/api/hello").isOk());
    EXPECT_EQ(server.connections(), 2);
  }
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailable) {
  uint16_t port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  HttpClient c(url);
  auto r = c.request("GET", "/version");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(), "cannot reach cloudcore at " + url + ": Connection refused");
  Status s = c.stream("GET", "/x", [](std::string_view) { return true; });
  EXPECT_EQ(s.code(), Code::kUnavailable);
}

TEST(HttpClientTest, UnknownHostIsUnavailable) {
  HttpClient c("http://no-such-host.invalid:6443");
  auto r = c.request("GET", "/version");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_THAT(r.status().message(),
              HasSubstr("cannot reach cloudcore at http://no-such-host.invalid:6443: "));
}

TEST(HttpClientTest, TimesOut) {
  TestServer server;
  ClientOptions opts;
  opts.timeout = std::chrono::milliseconds(150);
  HttpClient c(server.url(), opts);
  auto r = c.request("GET", "/slow");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kTimeout);
  EXPECT_THAT(r.status().message(), HasSubstr("timed out after 150ms"));
}

TEST(HttpClientTest, StreamsChunkedLines) {
  TestServer server;
  HttpClient c(server.url());
  std::vector<std::string> lines;
  std::string warning;
  Status s = c.stream(
      "GET", "/stream",
      [&](std::string_view line) {
        EXPECT_EQ(warning, "299 - \"stale\"");  // headers come before the first line
        lines.emplace_back(line);
        return true;
      },
      "application/json",
      [&](std::string_view name, std::string_view value) {
        if (name == "Warning") warning = value;
      });
  ASSERT_TRUE(s.isOk()) << s.toString();
  EXPECT_THAT(lines, ElementsAre("{\"a\":1}", "{\"b\":2}", "", "{\"c\":3}", "tail"));
}

TEST(HttpClientTest, StreamStopsWhenCallbackReturnsFalse) {
  TestServer server;
  HttpClient c(server.url());
  int seen = 0;
  Status s = c.stream("GET", "/forever", [&](std::string_view line) {
    EXPECT_EQ(json::parse(line)["n"], seen);
    return ++seen < 3;
  });
  ASSERT_TRUE(s.isOk()) << s.toString();
  EXPECT_EQ(seen, 3);
}

TEST(HttpClientTest, StreamUntilEof) {
  TestServer server;
  HttpClient c(server.url());
  std::vector<std::string> lines;
  Status s = c.stream("GET", "/eof-stream", [&](std::string_view line) {
    lines.emplace_back(line);
    return true;
  });
  ASSERT_TRUE(s.isOk()) << s.toString();
  EXPECT_THAT(lines, ElementsAre("line1", "line2"));
}

TEST(HttpClientTest, StreamErrorStatusCarriesBody) {
  TestServer server;
  HttpClient c(server.url());
  Status s = c.stream("GET", "/missing", [](std::string_view) { return true; });
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("pods \\\"x\\\" not found"));
}

TEST(HttpClientTest, RequestAfterStreamStillWorks) {
  TestServer server;
  HttpClient c(server.url());
  ASSERT_TRUE(c.request("GET", "/api/hello").isOk());
  ASSERT_TRUE(c.stream("GET", "/stream", [](std::string_view) { return true; }).isOk());
  auto r = c.request("GET", "/api/hello");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->status, 200);
}

TEST(CodeForHttpStatusTest, Maps) {
  EXPECT_EQ(codeForHttpStatus(200), Code::kOk);
  EXPECT_EQ(codeForHttpStatus(404), Code::kNotFound);
  EXPECT_EQ(codeForHttpStatus(410), Code::kExpired);
  EXPECT_EQ(codeForHttpStatus(422), Code::kInvalid);
  EXPECT_EQ(codeForHttpStatus(500), Code::kInternal);
}

}  // namespace
}  // namespace ep::http
