// Sessions with the runtime's streaming server (edgecore/edged/streaming/channel_session.h):
// v4.channel.k8s.io over SPDY/3.1 against a scripted server on a socket pair and on loopback
// (the streams kubectl opens, output by channel, the status read whole, pings answered, the end
// of stdin as a FIN on its stream), and the upgrade refused.
#include "edgecore/edged/streaming/channel_session.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "common/spdy/spdy.h"

namespace ep::edged::streaming {
namespace {

// The server's side of a session: reads the client's frames, writes its own.
class SpdyPeer {
 public:
  explicit SpdyPeer(int fd) : fd_(fd) {}
  // Reads until `done` holds for the frames seen so far; false when the socket ended first.
  bool readUntil(const std::function<bool(const std::vector<spdy::Frame>&)>& done) {
    while (!done(frames)) {
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      std::vector<spdy::Frame> got;
      if (!reader_.feed(std::string_view(buf, static_cast<size_t>(n)), got).isOk()) return false;
      for (auto& f : got) frames.push_back(std::move(f));
    }
    return true;
  }
  void send(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  }

  std::vector<spdy::Frame> frames;
  spdy::FrameWriter writer;

 private:
  int fd_;
  spdy::FrameReader reader_;
};

std::map<std::string, uint32_t> streamsOf(const std::vector<spdy::Frame>& frames) {
  std::map<std::string, uint32_t> out;
  for (const auto& f : frames) {
    if (f.type == spdy::FrameType::kSynStream)
      out[spdy::headerValue(f.headers, "streamtype")] = f.streamId;
  }
  return out;
}

TEST(SpdySession, CarriesEachChannelOnItsOwnStreamAndEndsStdinAlone) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  SpdyPeer server(fds[1]);
  std::thread peer([&] {
    // kubectl's streams: error, stdin, stdout, stderr.
    ASSERT_TRUE(server.readUntil([](const auto& f) { return streamsOf(f).size() == 4; }));
    auto ids = streamsOf(server.frames);
    EXPECT_EQ(ids["error"], 1u);
    EXPECT_EQ(ids["stdin"], 3u);
    EXPECT_EQ(ids["stdout"], 5u);
    EXPECT_EQ(ids["stderr"], 7u);
    for (const auto& [type, id] : ids) server.send(server.writer.synReply(id, {}, false));
    server.send(server.writer.ping(8));  // the server's ids are even
    server.send(server.writer.ping(9));  // an odd one is the client's own: not answered
    server.send(server.writer.data(ids["stdout"], "out", false));
    server.send(server.writer.data(ids["stderr"], "err", false));
    // stdin's bytes, then its end alone (a FIN on its stream); the ping answered.
    ASSERT_TRUE(server.readUntil([&](const auto& frames) {
      bool fin = false, pong = false;
      for (const auto& f : frames) {
        fin = fin || (f.type == spdy::FrameType::kData && f.streamId == ids["stdin"] && f.fin());
        pong = pong || (f.type == spdy::FrameType::kPing && f.value == 8);
      }
      return fin && pong;
    }));
    std::string in;
    bool pong = false;
    for (const auto& f : server.frames) {
      if (f.type == spdy::FrameType::kData && f.streamId == ids["stdin"]) in += f.data;
      if (f.type == spdy::FrameType::kPing && f.value == 8) pong = true;
      if (f.type == spdy::FrameType::kPing) {
        EXPECT_NE(f.value, 9u);
      }
      // Only stdin is written to.
      if (f.type == spdy::FrameType::kData) {
        EXPECT_EQ(f.streamId, ids["stdin"]);
      }
    }
    EXPECT_EQ(in, "hello");
    EXPECT_TRUE(pong);
    // The status in two frames, the last with FIN; then the session ends.
    server.send(server.writer.data(ids["error"], R"({"metadata":{},"status":)", false));
    server.send(server.writer.data(ids["error"], R"("Success"})", true));
    ::shutdown(fds[1], SHUT_RDWR);
  });
  auto session = adoptSpdySession(fds[0], "", {.stdin = true, .stdout = true, .stderr = true});
  ASSERT_TRUE(session.isOk()) << session.status().toString();
  ChannelSession& s = **session;
  ASSERT_TRUE(s.write(kChannelStdin, "hello").isOk());
  // No terminal, no resize stream: a size has nowhere to go and is not an error.
  EXPECT_TRUE(s.write(kChannelResize, R"({"Width":80,"Height":24})").isOk());
  ASSERT_TRUE(s.closeStdin().isOk());
  EXPECT_EQ(s.write(kChannelStdin, "late").code(), Code::kInvalid);
  std::vector<std::pair<int, std::string>> got;
  for (;;) {
    auto m = s.read();
    if (!m.isOk()) {
      EXPECT_EQ(m.status().code(), Code::kUnavailable) << m.status().toString();
      break;
    }
    got.emplace_back(m->channel, m->data);
  }
  peer.join();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(1, std::string("out")));
  EXPECT_EQ(got[1], std::make_pair(2, std::string("err")));
  EXPECT_EQ(got[2], std::make_pair(3, std::string(R"({"metadata":{},"status":"Success"})")));
  ::close(fds[1]);
}

TEST(SpdySession, EndsAsContainerdEndsASession) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  SpdyPeer server(fds[1]);
  std::thread peer([&] {
    ASSERT_TRUE(server.readUntil([](const auto& f) { return streamsOf(f).size() == 3; }));
    auto ids = streamsOf(server.frames);
    for (const auto& [type, id] : ids) server.send(server.writer.synReply(id, {}, false));
    // The status without FIN, a reset of every stream, GOAWAY; the socket stays open.
    server.send(server.writer.data(ids["error"], R"({"status":"Failure"})", false));
    for (const auto& [type, id] : ids) server.send(server.writer.rstStream(id, spdy::kCancel));
    server.send(server.writer.goAway(7, 0));
  });
  // No stdin stream asked for: stdin calls have nothing to do.
  auto session = adoptSpdySession(fds[0], "", {.stdin = false, .stdout = true, .stderr = true});
  ASSERT_TRUE(session.isOk());
  EXPECT_TRUE((*session)->closeStdin().isOk());
  auto m = (*session)->read();
  ASSERT_TRUE(m.isOk()) << m.status().toString();
  EXPECT_EQ(m->channel, kChannelStatus);
  EXPECT_EQ(m->data, R"({"status":"Failure"})");
  EXPECT_EQ((*session)->read().status().code(), Code::kUnavailable);
  peer.join();
  ::close(fds[1]);
}

TEST(SpdySession, AStreamTheServerRefusesOrNeverAcceptsFailsTheSession) {
  for (bool refuse : {true, false}) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    SpdyPeer server(fds[1]);
    std::thread peer([&] {
      ASSERT_TRUE(server.readUntil([](const auto& f) { return streamsOf(f).size() == 3; }));
      auto ids = streamsOf(server.frames);
      server.send(server.writer.synReply(ids["error"], {}, false));
      if (refuse) server.send(server.writer.rstStream(ids["stdout"], spdy::kRefusedStream));
    });
    auto session = adoptSpdySession(fds[0], "", {.stdin = true, .stdout = true, .stderr = false},
                                    std::chrono::milliseconds(300));
    peer.join();
    ASSERT_FALSE(session.isOk());
    EXPECT_EQ(session.status().code(), Code::kUnavailable);
    EXPECT_NE(session.status().message().find(refuse ? "the runtime refused the stdout stream"
                                                     : "did not accept the stdin stream"),
              std::string::npos)
        << session.status().message();
    ::close(fds[1]);
  }
}

// A loopback server answering the upgrade with `reply`, then reading until the client closes.
class UpgradeServer {
 public:
  explicit UpgradeServer(std::string reply) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 1);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, reply] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      request = req;
      ::send(c, reply.data(), reply.size(), 0);
      // Accepts every stream a client opens, until it is done.
      spdy::FrameReader reader;
      spdy::FrameWriter writer;
      for (ssize_t n; (n = ::recv(c, buf, sizeof buf, 0)) > 0;) {
        std::vector<spdy::Frame> frames;
        if (!reader.feed(std::string_view(buf, static_cast<size_t>(n)), frames).isOk()) break;
        for (const auto& f : frames) {
          if (f.type != spdy::FrameType::kSynStream) continue;
          std::string r = writer.synReply(f.streamId, {}, false);
          ::send(c, r.data(), r.size(), MSG_NOSIGNAL);
        }
      }
      ::close(c);
    });
  }
  ~UpgradeServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/exec/tok"; }
  std::string request;

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(SpdySession, AsksForTheUpgradeAsKubectlDoesAndReportsARefusal) {
  {
    UpgradeServer server(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n");
    auto s = connectSpdySession(server.url(), {.stdin = true}, std::chrono::seconds(5));
    ASSERT_TRUE(s.isOk()) << s.status().toString();
    (*s)->shutdown();
  }
  {
    UpgradeServer server("HTTP/1.1 400 Bad Request\r\nContent-Length: 9\r\n\r\nno spdy\r\n");
    auto s = connectSpdySession(server.url(), {.stdin = true}, std::chrono::seconds(5));
    ASSERT_FALSE(s.isOk());
    EXPECT_EQ(s.status().code(), Code::kUnavailable);
    EXPECT_NE(s.status().message().find("refused the upgrade: HTTP/1.1 400 Bad Request"),
              std::string::npos)
        << s.status().message();
    EXPECT_NE(server.request.find("POST /exec/tok HTTP/1.1\r\n"), std::string::npos);
    EXPECT_NE(server.request.find("Upgrade: SPDY/3.1\r\n"), std::string::npos);
    EXPECT_NE(server.request.find("X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"),
              std::string::npos);
  }
  {
    UpgradeServer server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\n\r\n");
    auto s = connectSpdySession(server.url(), {.stdin = true}, std::chrono::seconds(5));
    ASSERT_FALSE(s.isOk());
    EXPECT_NE(s.status().message().find("does not speak v4.channel.k8s.io over SPDY"),
              std::string::npos)
        << s.status().message();
  }
}

}  // namespace
}  // namespace ep::edged::streaming
