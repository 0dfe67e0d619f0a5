#include "common/http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/http/client.h"

namespace ep::http {
namespace {

// A stream fed by the test: push() makes data available and wakes the server.
class TestStream final : public BodyStream {
 public:
  std::string next(bool& finished) override {
    std::lock_guard lock(mu_);
    finished = finished_;
    return std::exchange(pending_, "");
  }
  void setWake(std::function<void()> wake) override {
    std::lock_guard lock(mu_);
    wake_ = std::move(wake);
  }
  std::chrono::steady_clock::time_point deadline() const override {
    return std::chrono::steady_clock::now() + std::chrono::seconds(30);
  }
  void close() override { closed_ = true; }

  void push(const std::string& line, bool finish = false) {
    std::function<void()> wake;
    {
      std::lock_guard lock(mu_);
      pending_ += line + "\n";
      finished_ = finish;
      wake = wake_;
    }
    if (wake) wake();
  }
  std::atomic<bool> closed_{false};

 private:
  std::mutex mu_;
  std::string pending_;
  bool finished_ = false;
  std::function<void()> wake_;
};

TEST(HttpServerTest, ServesRequestsAndStreamsChunks) {
  auto stream = std::make_shared<TestStream>();
  ServerOptions o;
  o.port = 0;
  o.maxBodyBytes = 1024;
  Server server(o, [&](ServerRequest& r) {
    ServerResponse res;
    if (r.path == "/stream") {
      res.stream = stream;
    } else {
      res.body = r.method + " " + r.path + " q=" + r.param("q") + " body=" + r.body;
    }
    return res;
  });
  ASSERT_TRUE(server.start().isOk());
  ASSERT_NE(server.port(), 0);
  std::string url = "http://127.0.0.1:" + std::to_string(server.port());

  HttpClient client(url);
  auto r = client.request("POST", "/a%20b?q=x+y", "hello", "text/plain");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->body, "POST /a b q=x y body=hello");
  // The same connection is reused (keep-alive) for a second request.
  EXPECT_EQ(client.request("GET", "/z")->body, "GET /z q= body=");

  auto big = client.request("POST", "/big", std::string(4096, 'x'), "text/plain");
  ASSERT_TRUE(big.isOk());
  EXPECT_EQ(big->status, 413);

  std::vector<std::string> lines;
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (int i = 0; i < 5; ++i) {
      stream->push("line" + std::to_string(i), i == 4);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  HttpClient streamClient(url);
  auto s = streamClient.stream("GET", "/stream", [&](std::string_view line) {
    lines.emplace_back(line);
    return true;
  });
  producer.join();
  EXPECT_TRUE(s.isOk()) << s.toString();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[4], "line4");
  for (int i = 0; i < 100 && !stream->closed_; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(stream->closed_);
  // Still serving after the stream ended.
  EXPECT_EQ(HttpClient(url).request("GET", "/after")->status, 200);
  server.stop();
}

// A server on a free loopback port whose every response is `stream` (not started).
std::unique_ptr<Server> serverOf(std::shared_ptr<BodyStream> stream) {
  ServerOptions o;
  o.port = 0;
  return std::make_unique<Server>(o, [stream](ServerRequest&) {
    ServerResponse res;
    res.stream = stream;
    return res;
  });
}

// A stream that never wakes the server but says when it wants next() again (periodic output,
// as watch bookmarks): a tick every 50 ms once due, finished after the third.
class TickingStream final : public BodyStream {
 public:
  std::string next(bool& finished) override {
    ++calls_;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    if (now < due_) return "";
    due_ = now + std::chrono::milliseconds(50);
    finished = ++ticks_ == 3;
    return "tick\n";
  }
  void setWake(std::function<void()>) override {}
  std::chrono::steady_clock::time_point deadline() const override { return deadline_; }
  std::chrono::steady_clock::time_point nextCall() const override {
    std::lock_guard lock(mu_);
    return due_;
  }
  void close() override {}

  std::atomic<int> calls_{0};

 private:
  const std::chrono::steady_clock::time_point deadline_ =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point due_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  int ticks_ = 0;
};

// The server calls a stream's next() again at its nextCall() without a wake: all three ticks
// arrive before the deadline (without it: none), and next() is not called in a loop meanwhile.
TEST(HttpServerTest, StreamIsCalledAgainAtItsNextCallWithoutAWake) {
  auto stream = std::make_shared<TickingStream>();
  auto server = serverOf(stream);
  ASSERT_TRUE(server->start().isOk());
  std::vector<std::string> lines;
  auto s = HttpClient("http://127.0.0.1:" + std::to_string(server->port()))
               .stream("GET", "/tick", [&](std::string_view line) {
                 lines.emplace_back(line);
                 return true;
               });
  EXPECT_TRUE(s.isOk()) << s.toString();
  EXPECT_EQ(lines.size(), 3u);
  EXPECT_LT(stream->calls_.load(), 30);  // about one call per tick, not a spin
  server->stop();
}

// A name a handler repeats (the apiserver's Warning headers) is sent once per value; a single
// one replaces the server's own header of that name.
TEST(HttpServerTest, RepeatedHeaderNamesAreSentOncePerValue) {
  ServerOptions o;
  o.port = 0;
  Server server(o, [&](ServerRequest&) {
    ServerResponse res;
    res.headers = {
        {"Warning", "299 - \"one\""}, {"Server", "handler"}, {"Warning", "299 - \"two\""}};
    return res;
  });
  ASSERT_TRUE(server.start().isOk());
  HttpClient client("http://127.0.0.1:" + std::to_string(server.port()));
  auto r = client.request("GET", "/");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  std::vector<std::string> warnings, servers;
  for (const auto& [k, v] : r->headers) {
    if (k == "Warning") warnings.push_back(v);
    if (k == "Server") servers.push_back(v);
  }
  EXPECT_EQ(warnings, (std::vector<std::string>{"299 - \"one\"", "299 - \"two\""}));
  EXPECT_EQ(servers, std::vector<std::string>{"handler"});
  server.stop();
}

// Boolean query parameters as Kubernetes reads them: only absent, "0" and "false" (any case)
// are false; the Python client's "True" and a bare "?watch" are true.
TEST(ServerRequestTest, FlagReadsBooleansAsKubernetesDoes) {
  ServerRequest r;
  EXPECT_FALSE(r.flag("watch"));
  for (const char* v : {"0", "false", "False", "FALSE", "fAlSe"}) {
    r.query["watch"] = v;
    EXPECT_FALSE(r.flag("watch")) << v;
  }
  for (const char* v : {"1", "true", "True", "TRUE", "t", "", "yes", "falsey", "f"}) {
    r.query["watch"] = v;
    EXPECT_TRUE(r.flag("watch")) << v;
  }
}

TEST(HttpServerTest, ClientHangupEndsStream) {
  auto stream = std::make_shared<TestStream>();
  auto server = serverOf(stream);
  ASSERT_TRUE(server->start().isOk());
  HttpClient c("http://127.0.0.1:" + std::to_string(server->port()));
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stream->push("first");
  });
  auto s = c.stream("GET", "/w", [](std::string_view) { return false; });  // hang up at once
  producer.join();
  for (int i = 0; i < 200 && !stream->closed_; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(stream->closed_);
  server->stop();
}

// A plain TCP connection to the server on loopback; -1 on failure.
int connectTo(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(HttpServerTest, MalformedRequestGets400AndServerKeepsServing) {
  ServerOptions o;
  o.port = 0;
  Server server(o, [](ServerRequest&) { return ServerResponse{}; });
  ASSERT_TRUE(server.start().isOk());
  // A raw garbage request through a plain socket.
  int fd = connectTo(server.port());
  ASSERT_GE(fd, 0);
  std::string garbage = "\x01\x02 NOT HTTP\r\n\r\n";
  ASSERT_GT(write(fd, garbage.data(), garbage.size()), 0);
  char buf[256] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf).find("400"), std::string::npos) << buf;
  EXPECT_EQ(
      HttpClient("http://127.0.0.1:" + std::to_string(server.port())).request("GET", "/ok")->status,
      200);
  server.stop();
}

// Out of file descriptors (issue 14): a pending connection makes every accept fail at once; the
// server pauses instead of spinning (it spun at 100% of a core and logged millions of lines),
// and serves again once descriptors are free.
TEST(HttpServerTest, OutOfFileDescriptorsPausesAcceptsAndRecovers) {
#if defined(__SANITIZE_ADDRESS__)
  // With no descriptor left the sanitizers' own runtime fails (UBSan's vptr checks then report
  // errors in correct code, seen in CI); the Release suite runs this test.
  GTEST_SKIP() << "not meaningful under the sanitizers: their runtime needs descriptors too";
#endif
  ServerOptions o;
  o.port = 0;
  Server server(o, [](ServerRequest&) { return ServerResponse{}; });
  ASSERT_TRUE(server.start().isOk());
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  // A low limit, then no descriptor to spare: the next connect takes the last one, and the
  // server's accept of it fails with EMFILE.
  rlimit low = before;
  low.rlim_cur = std::min<rlim_t>(before.rlim_cur, 256);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> fillers;
  while (true) {
    int fd = ::dup(0);
    if (fd < 0) break;
    fillers.push_back(fd);
  }
  ASSERT_FALSE(fillers.empty());
  ::close(fillers.back());
  fillers.pop_back();
  const int client = connectTo(server.port());  // uses the last free descriptor
  ASSERT_GE(client, 0);
  // Wait until accepts fail, then give the loop a second: paused, it retries about 7 times
  // (10 ms doubling to 1 s); spinning, it would fail hundreds of thousands of times.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server.acceptFailures() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_GT(server.acceptFailures(), 0u);
  const uint64_t first = server.acceptFailures();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_LT(server.acceptFailures() - first, 50u);
  for (int fd : fillers) ::close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &before), 0);
  // Descriptors are free again: the pending connection is accepted and served.
  std::string request = "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_GT(write(client, request.data(), request.size()), 0);
  char buf[256] = {};
  ssize_t n = read(client, buf, sizeof buf - 1);
  close(client);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf).find("200"), std::string::npos) << buf;
  server.stop();
}

// Request smuggling through Transfer-Encoding (issue 14): a request whose last coding is not
// chunked, or that has both Transfer-Encoding and Content-Length, gets 400 and the connection
// is closed, so what follows it is never read as a second request.
TEST(HttpServerTest, AmbiguousFramingGets400AndNothingIsSmuggled) {
  ServerOptions o;
  o.port = 0;
  std::atomic<int> handled{0};
  Server server(o, [&](ServerRequest&) {
    ++handled;
    return ServerResponse{};
  });
  ASSERT_TRUE(server.start().isOk());
  for (std::string te :
       {"Transfer-Encoding: chunked, identity\r\n", "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: identity\r\n", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"}) {
    SCOPED_TRACE(te);
    int fd = connectTo(server.port());
    ASSERT_GE(fd, 0);
    std::string req = "POST /first HTTP/1.1\r\nHost: x\r\n" + te +
                      "\r\n0\r\n\r\nGET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\n"
                      "Host: x\r\n\r\n";
    ASSERT_GT(write(fd, req.data(), req.size()), 0);
    std::string got;
    char buf[1024];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
    close(fd);  // read() returned 0: the server closed the connection
    EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
    EXPECT_EQ(got.find("HTTP/1.1", 5), std::string::npos) << "a second response: " << got;
  }
  EXPECT_EQ(handled.load(), 0);
  // Plain chunked requests still work.
  auto ok = HttpClient("http://127.0.0.1:" + std::to_string(server.port())).request("GET", "/ok");
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->status, 200);
  server.stop();
}

}  // namespace
}  // namespace ep::http

namespace ep::http {
namespace {

// Echoes every client message back, prefixed; ends after "bye".
class EchoSocket final : public WebSocketStream {
 public:
  std::vector<std::string> next(bool& finished) override {
    std::lock_guard l(mu_);
    std::vector<std::string> out;
    out.swap(pending_);
    finished = done_;
    return out;
  }
  void onMessage(std::string message) override {
    std::function<void()> wake;
    {
      std::lock_guard l(mu_);
      done_ = message == "bye";
      pending_.push_back("echo:" + message);
      wake = wake_;
    }
    if (wake) wake();
  }
  void setWake(std::function<void()> wake) override {
    std::lock_guard l(mu_);
    wake_ = std::move(wake);
  }
  void close() override {}

 private:
  std::mutex mu_;
  std::vector<std::string> pending_;
  bool done_ = false;
  std::function<void()> wake_;
};

// ClientWebSocket against the server: the subprotocol is offered, messages go both ways while a
// read waits on another thread, the server's close ends reads, and a refused upgrade is an error
// with the server's status and message (never a success code).
TEST(ClientWebSocketTest, TalksToTheServerAndReportsARefusedUpgrade) {
  ServerOptions o;
  o.port = 0;
  std::string offered;
  std::mutex mu;
  Server server(o, [&](ServerRequest& req) {
    ServerResponse res;
    if (req.target == "/missing") {
      res.status = 404;
      res.body = R"({"kind":"Status","status":"Failure","message":"pods \"x\" not found"})";
      return res;
    }
    {
      std::lock_guard l(mu);
      offered = req.header("sec-websocket-protocol");
    }
    res.websocket = std::make_shared<EchoSocket>();
    res.websocketProtocol = "v4.channel.k8s.io";
    return res;
  });
  ASSERT_TRUE(server.start().isOk());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());

  auto ws = ClientWebSocket::open(HttpClient(url), "/echo", "v4.channel.k8s.io");
  ASSERT_TRUE(ws.isOk()) << ws.status().toString();
  {
    std::lock_guard l(mu);
    EXPECT_EQ(offered, "v4.channel.k8s.io");
  }
  std::vector<std::string> got;
  std::thread reader([&] {
    for (;;) {
      auto m = (*ws)->read();
      if (!m.isOk()) return;
      got.push_back(*m);
    }
  });
  EXPECT_TRUE((*ws)->write(std::string("\0hello", 6)).isOk());
  EXPECT_TRUE((*ws)->write("bye").isOk());
  reader.join();  // the server finished after "bye": reads end
  EXPECT_EQ(got, (std::vector<std::string>{std::string("echo:\0hello", 11), "echo:bye"}));
  (*ws)->close();
  EXPECT_FALSE((*ws)->write("late").isOk());

  auto refused = ClientWebSocket::open(HttpClient(url), "/missing", "v4.channel.k8s.io");
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), Code::kNotFound);
  EXPECT_EQ(refused.status().message(), "pods \"x\" not found");

  // A server that hangs up instead of answering the upgrade: a transport error, never a
  // "refusal" with a success code (Beast leaves the response at 200 then).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread hangUp([fd] {
    int c = ::accept(fd, nullptr, nullptr);
    if (c >= 0) ::close(c);
  });
  auto gone =
      ClientWebSocket::open(HttpClient("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port))),
                            "/echo", "v4.channel.k8s.io");
  hangUp.join();
  ::close(fd);
  server.stop();
  ASSERT_FALSE(gone.isOk());
  EXPECT_EQ(gone.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace ep::http
