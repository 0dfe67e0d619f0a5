#include "edgecore/edged/prober.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "tests/edgecore/edged/fake_runtime.h"

namespace ep::edged {
namespace {

// A loopback TCP server on port 0 that answers each connection with `reply` (or nothing).
class TinyServer {
 public:
  explicit TinyServer(std::string reply, bool silent = false)
      : reply_(std::move(reply)), silent_(silent) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 8);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) ::close(c);
          return;
        }
        char buf[2048];
        ssize_t n = ::recv(c, buf, sizeof buf - 1, 0);
        if (n > 0) {
          buf[n] = 0;
          lastRequest_ = buf;
        }
        if (!silent_) {
          (void)::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        }
        ::close(c);
      }
    });
  }
  ~TinyServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string lastRequest() const { return lastRequest_; }

 private:
  std::string reply_;
  bool silent_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::string lastRequest_;
  std::thread thread_;
};

ProbeTarget loopback(const Json* container = nullptr) {
  return ProbeTarget{"ctr", "127.0.0.1", "", container};
}

TEST(Prober, HttpGetSucceedsOn2xx3xxAndFailsOtherwise) {
  FakeRuntime rt;
  TinyServer ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  Json probe = {{"httpGet",
                 {{"path", "/healthz"},
                  {"port", ok.port()},
                  {"httpHeaders", {{{"name", "X-Probe"}, {"value", "1"}}}}}}};
  EXPECT_TRUE(runProbe(probe, loopback(), rt).success);
  EXPECT_NE(ok.lastRequest().find("GET /healthz HTTP/1.1"), std::string::npos);
  EXPECT_NE(ok.lastRequest().find("X-Probe: 1"), std::string::npos);

  TinyServer bad("HTTP/1.1 503 Service Unavailable\r\n\r\n");
  probe["httpGet"]["port"] = bad.port();
  auto out = runProbe(probe, loopback(), rt);
  EXPECT_FALSE(out.success);
  EXPECT_EQ(out.message, "HTTP probe failed with statuscode: 503");
}

TEST(Prober, NamedPortAndTimeout) {
  FakeRuntime rt;
  TinyServer silent("", true);
  Json container = {{"ports", {{{"name", "http"}, {"containerPort", silent.port()}}}}};
  Json probe = {{"httpGet", {{"path", "/"}, {"port", "http"}}}, {"timeoutSeconds", 1}};
  auto start = std::chrono::steady_clock::now();
  auto out = runProbe(probe, loopback(&container), rt);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(out.success);
  EXPECT_NE(out.message.find("deadline exceeded"), std::string::npos) << out.message;
  EXPECT_LT(took, std::chrono::milliseconds(1400));
}

TEST(Prober, TcpSocket) {
  FakeRuntime rt;
  int closedPort;
  {
    TinyServer s("x");
    closedPort = s.port();
    EXPECT_TRUE(runProbe({{"tcpSocket", {{"port", s.port()}}}}, loopback(), rt).success);
  }
  auto out = runProbe({{"tcpSocket", {{"port", closedPort}}}}, loopback(), rt);
  EXPECT_FALSE(out.success);
  EXPECT_NE(out.message.find("connect"), std::string::npos) << out.message;
}

TEST(Prober, ExecUsesTheRuntime) {
  FakeRuntime rt;
  rt.addImage("i");
  PodSandboxConfig sb;
  auto sbId = rt.runPodSandbox(sb);
  ContainerConfig c;
  c.image = "i";
  auto id = rt.createContainer(*sbId, c, sb);
  ASSERT_TRUE(rt.startContainer(*id).isOk());
  ProbeTarget t{*id, "", "", nullptr};
  Json probe = {{"exec", {{"command", {"cat", "/tmp/healthy"}}}}};
  rt.setExecResult({"", "no such file", 1});
  auto out = runProbe(probe, t, rt);
  EXPECT_FALSE(out.success);
  EXPECT_EQ(out.message, "command exited with 1: no such file");
  rt.setExecResult({"ok", "", 0});
  EXPECT_TRUE(runProbe(probe, t, rt).success);
  EXPECT_FALSE(runProbe(Json::object(), t, rt).success);
}

TEST(Prober, Timing) {
  auto t =
      probeTimingOf({{"initialDelaySeconds", 5}, {"periodSeconds", 0}, {"failureThreshold", 2}});
  EXPECT_EQ(t.initialDelay, std::chrono::seconds(5));
  EXPECT_EQ(t.period, std::chrono::seconds(1));  // at least 1 s
  EXPECT_EQ(t.timeout, std::chrono::seconds(1));
  EXPECT_EQ(t.failureThreshold, 2);
  EXPECT_EQ(t.successThreshold, 1);
}

}  // namespace
}  // namespace ep::edged
