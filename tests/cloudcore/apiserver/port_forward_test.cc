#include "cloudcore/apiserver/port_forward.h"

#include <gtest/gtest.h>

#include <mutex>

namespace ep::apiserver {
namespace {

using spdy::Frame;
using spdy::FrameType;

// Records what the session asks of the nodes.
class FakeHandle final : public StreamHandle {
 public:
  void consumed(size_t bytes) override {
    std::lock_guard l(mu);
    consumedBytes += bytes;
  }
  void cancel() override {
    std::lock_guard l(mu);
    cancelled = true;
  }
  void input(std::string data, bool closeStdin) override {
    std::lock_guard l(mu);
    inputs += data;
    ++inputCalls;
    if (closeStdin) halfClosed = true;
  }
  void resize(uint32_t, uint32_t) override {}

  std::mutex mu;
  size_t consumedBytes = 0;
  bool cancelled = false;
  std::string inputs;
  int inputCalls = 0;
  bool halfClosed = false;
};

class FakeOpener final : public StreamOpener {
 public:
  Result<std::shared_ptr<StreamHandle>> open(const std::string& node, const StreamRequest& request,
                                             std::shared_ptr<StreamObserver> observer) override {
    std::lock_guard l(mu);
    if (!refusal.isOk()) return refusal;
    nodes.push_back(node);
    requests.push_back(request);
    observers.push_back(std::move(observer));
    handles.push_back(std::make_shared<FakeHandle>());
    return std::shared_ptr<StreamHandle>(handles.back());
  }

  std::mutex mu;
  Status refusal;
  std::vector<std::string> nodes;
  std::vector<StreamRequest> requests;
  std::vector<std::shared_ptr<StreamObserver>> observers;
  std::vector<std::shared_ptr<FakeHandle>> handles;
};

// Plays kubectl: its own compression context out, a reader for what the session sends.
class PortForwardTest : public ::testing::Test {
 protected:
  PortForwardTest() : session_(opener_, "edge-1", "default", "web", {.maxConnections = 2}) {
    session_.setWake([this] { ++wakes_; });
  }

  // kubectl's pair for one local connection: the error stream, then the data stream.
  void openPair(uint32_t errorId, const std::string& port, const std::string& requestId) {
    send(client_.synStream(
        errorId, {{"streamtype", "error"}, {"port", port}, {"requestid", requestId}}, false));
    send(client_.synStream(
        errorId + 2, {{"streamtype", "data"}, {"port", port}, {"requestid", requestId}}, false));
  }
  void send(const std::string& bytes) { session_.onMessage(bytes); }
  // What the session sends now, parsed.
  std::vector<Frame> received(bool* finished = nullptr) {
    bool f = false;
    std::vector<Frame> frames;
    for (const auto& m : session_.next(f)) {
      Status s = reader_.feed(m, frames);
      EXPECT_TRUE(s.isOk()) << s.toString();
    }
    if (finished != nullptr) *finished = f;
    return frames;
  }

  FakeOpener opener_;
  PortForwardSession session_;
  spdy::FrameWriter client_;
  spdy::FrameReader reader_;
  int wakes_ = 0;
};

TEST_F(PortForwardTest, APairOpensATunnelStreamAndCarriesBytesBothWays) {
  openPair(1, "8080", "0");
  auto frames = received();
  ASSERT_EQ(frames.size(), 2u);  // both streams answered
  EXPECT_EQ(frames[0].type, FrameType::kSynReply);
  EXPECT_EQ(frames[0].streamId, 1u);
  EXPECT_EQ(frames[1].streamId, 3u);
  ASSERT_EQ(opener_.requests.size(), 1u);
  EXPECT_EQ(opener_.nodes[0], "edge-1");
  EXPECT_EQ(opener_.requests[0].kind, StreamRequest::Kind::kPortForward);
  EXPECT_EQ(opener_.requests[0].port, 8080);
  EXPECT_EQ(opener_.requests[0].ns, "default");
  EXPECT_EQ(opener_.requests[0].pod, "web");

  // Client bytes in one message are joined, then cut into chunks of at most 32 KiB, each sent
  // only when the node acknowledged room for it; meanwhile the client is not read.
  send(client_.data(3, "GET / HTTP/1.0\r\n", false) + client_.data(3, "\r\n", false) +
       client_.data(3, std::string(70000, 'b'), false));
  auto& h = *opener_.handles[0];
  EXPECT_EQ(h.inputs.size(), 32768u);
  EXPECT_EQ(h.inputs.substr(0, 18), "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(h.inputCalls, 1);
  EXPECT_FALSE(session_.wantsInput());
  for (size_t sent : {65536u, 70018u}) {
    opener_.observers[0]->onInputAck(32768, 1);
    EXPECT_FALSE(session_.wantsInput());  // the rest still waits to be sent
    EXPECT_TRUE(received().empty());      // next() sends it
    EXPECT_EQ(h.inputs.size(), sent);
  }
  EXPECT_EQ(h.inputCalls, 3);
  EXPECT_TRUE(session_.wantsInput());
  // Bytes on the error stream are not the pod's.
  send(client_.data(1, "junk", true));
  EXPECT_EQ(h.inputs.size(), 18u + 70000u);

  wakes_ = 0;
  opener_.observers[0]->onData(StreamChannel::kReady, {});
  opener_.observers[0]->onData(StreamChannel::kStdout, "HTTP/1.0 200 OK\r\n\r\nhi");
  EXPECT_EQ(wakes_, 1);  // the ready marker wakes nobody; the output does
  frames = received();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, FrameType::kData);
  EXPECT_EQ(frames[0].streamId, 3u);
  EXPECT_EQ(frames[0].data, "HTTP/1.0 200 OK\r\n\r\nhi");
  EXPECT_EQ(h.consumedBytes, frames[0].data.size());

  // The client's FIN is a half-close; the pod closing ends both streams.
  send(client_.data(3, {}, true));
  EXPECT_TRUE(h.halfClosed);
  opener_.observers[0]->onClose(Status::ok(), 0);
  frames = received();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].streamId, 3u);
  EXPECT_TRUE(frames[0].fin());
  EXPECT_TRUE(frames[0].data.empty());
  EXPECT_EQ(frames[1].streamId, 1u);
  EXPECT_TRUE(frames[1].fin());
  EXPECT_EQ(session_.connections(), 0u);  // both sides done
  EXPECT_FALSE(h.cancelled);
}

TEST_F(PortForwardTest, FailuresAreWrittenOnTheErrorStream) {
  openPair(1, "80", "0");
  received();
  opener_.observers[0]->onClose(unavailableError("dial tcp4 127.0.0.1:80: connection refused"), 0);
  auto frames = received();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].streamId, 1u);
  EXPECT_EQ(frames[0].data,
            "error forwarding port 80 to pod default/web: dial tcp4 127.0.0.1:80: connection "
            "refused");
  EXPECT_TRUE(frames[1].fin());
  EXPECT_TRUE(frames[2].fin());

  // The node cannot be reached at all: said the same way.
  opener_.refusal = unavailableError("node edge-1 is not connected");
  openPair(5, "81", "1");
  frames = received();
  ASSERT_EQ(frames.size(), 5u);  // two replies, the error, two FINs
  EXPECT_EQ(frames[2].streamId, 5u);
  EXPECT_EQ(frames[2].data,
            "error forwarding port 81 to pod default/web: node edge-1 is not "
            "connected");

  // A port that is not one never reaches the node.
  opener_.refusal = Status::ok();
  openPair(9, "99999", "2");
  frames = received();
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_NE(frames[2].data.find("invalid port \"99999\""), std::string::npos) << frames[2].data;
  EXPECT_EQ(opener_.requests.size(), 1u);
}

TEST_F(PortForwardTest, ResetCancelsPingIsEchoedAndLimitsHold) {
  openPair(1, "8080", "0");
  openPair(5, "8080", "1");
  EXPECT_EQ(session_.connections(), 2u);
  // A third connection is over this session's limit of 2.
  openPair(9, "8080", "2");
  send(client_.ping(41));
  auto frames = received();
  ASSERT_EQ(frames.size(), 7u);
  EXPECT_EQ(frames[4].type, FrameType::kRstStream);
  EXPECT_EQ(frames[4].streamId, 9u);
  EXPECT_EQ(frames[4].value, spdy::kRefusedStream);
  EXPECT_EQ(frames[5].type, FrameType::kRstStream);
  EXPECT_EQ(frames[5].streamId, 11u);
  EXPECT_EQ(frames[6].type, FrameType::kPing);
  EXPECT_EQ(frames[6].value, 41u);

  // kubectl resets both streams when its local connection is done: the node's stream is
  // cancelled and the connection forgotten.
  send(client_.rstStream(3, spdy::kCancel) + client_.rstStream(1, spdy::kCancel));
  EXPECT_TRUE(opener_.handles[0]->cancelled);
  EXPECT_FALSE(opener_.handles[1]->cancelled);
  EXPECT_EQ(session_.connections(), 1u);

  // Input waits while a connection's node has not acknowledged enough.
  EXPECT_TRUE(session_.wantsInput());
  send(client_.data(7, std::string(40 * 1024, 'x'), false));
  EXPECT_FALSE(session_.wantsInput());
  opener_.observers[1]->onInputAck(32 * 1024, 1);
  received();
  EXPECT_EQ(opener_.handles[1]->inputs.size(), 40u * 1024);
  EXPECT_TRUE(session_.wantsInput());

  // Closing the session cancels what is still open.
  session_.close();
  EXPECT_TRUE(opener_.handles[1]->cancelled);
}

TEST_F(PortForwardTest, AProtocolErrorEndsTheSessionWithGoAway) {
  openPair(1, "8080", "0");
  received();
  send(std::string("\x80\x02\x00\x01\x00\x00\x00\x00", 8));  // SPDY/2
  bool finished = false;
  auto frames = received(&finished);
  EXPECT_TRUE(finished);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, FrameType::kGoAway);
  EXPECT_EQ(frames[0].streamId, 3u);
  EXPECT_EQ(frames[0].value, spdy::kProtocolError);
  EXPECT_TRUE(opener_.handles[0]->cancelled);
}

// The v4.channel.k8s.io protocol (the Python client): every port's connection opens with the
// session, channels 2i and 2i+1 start with the port, data goes both ways on 2i, a failure is
// text on 2i+1, and the socket finishes once every connection ended.
TEST(ChannelPortForwardTest, PortsOpenAtOnceAndCarryBytesOnTheirChannels) {
  FakeOpener opener;
  ChannelPortForwardSession session(opener, "edge-1", "default", "web", {8080, 443});
  bool finished = false;
  auto out = session.next(finished);
  EXPECT_FALSE(finished);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], std::string("\x00\x90\x1f", 3));  // 8080 little-endian
  EXPECT_EQ(out[1], std::string("\x01\x90\x1f", 3));
  EXPECT_EQ(out[2], std::string("\x02\xbb\x01", 3));  // 443
  EXPECT_EQ(out[3], std::string("\x03\xbb\x01", 3));
  ASSERT_EQ(opener.requests.size(), 2u);
  EXPECT_EQ(opener.requests[0].port, 8080);
  EXPECT_EQ(opener.requests[1].port, 443);
  EXPECT_EQ(opener.requests[1].kind, StreamRequest::Kind::kPortForward);

  session.onMessage(std::string("\x00", 1) + "GET / HTTP/1.0\r\n\r\n");
  session.onMessage(std::string("\x01", 1) + "ignored: an error channel");
  session.onMessage(std::string("\x07", 1) + "ignored: no such port");
  EXPECT_EQ(opener.handles[0]->inputs, "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(opener.handles[1]->inputs, "");

  opener.observers[0]->onData(StreamChannel::kStdout, "HTTP/1.0 200 OK\r\n\r\n");
  opener.observers[0]->onClose(Status::ok(), 0);
  out = session.next(finished);
  EXPECT_FALSE(finished);  // 443 is still open
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], std::string("\x00", 1) + "HTTP/1.0 200 OK\r\n\r\n");
  opener.observers[1]->onClose(unavailableError("connection refused"), 0);
  out = session.next(finished);
  EXPECT_TRUE(finished);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], std::string("\x03", 1) +
                        "error forwarding port 443 to pod default/web: connection refused");
}

TEST(ChannelPortForwardTest, ANodeThatCannotBeReachedIsReportedPerPort) {
  FakeOpener opener;
  opener.refusal = unavailableError("node edge-1 is not connected");
  ChannelPortForwardSession session(opener, "edge-1", "default", "web", {80});
  bool finished = false;
  auto out = session.next(finished);
  EXPECT_TRUE(finished);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2],
            std::string("\x01", 1) +
                "error forwarding port 80 to pod default/web: node edge-1 is not connected");
}

// Old clients send no requestID: the error stream and the data stream two ids later pair up.
TEST_F(PortForwardTest, StreamsWithoutARequestIdPairByStreamId) {
  send(client_.synStream(1, {{"streamtype", "error"}, {"port", "22"}}, false));
  send(client_.synStream(3, {{"streamtype", "data"}, {"port", "22"}}, false));
  ASSERT_EQ(opener_.requests.size(), 1u);
  EXPECT_EQ(opener_.requests[0].port, 22);
  // Stream ids must be odd and rising; a stream of another type is refused.
  send(client_.synStream(3, {{"streamtype", "data"}, {"port", "22"}}, false));
  send(client_.synStream(6, {{"streamtype", "data"}, {"port", "22"}}, false));
  send(client_.synStream(7, {{"streamtype", "stdin"}, {"port", "22"}}, false));
  auto frames = received();
  ASSERT_EQ(frames.size(), 5u);
  for (size_t i = 2; i < 5; ++i) {
    EXPECT_EQ(frames[i].type, FrameType::kRstStream);
    EXPECT_EQ(frames[i].value, spdy::kProtocolError);
  }
  EXPECT_EQ(opener_.requests.size(), 1u);
}

// A client opening and resetting connections in a loop gets its burst, then refusals: the node's
// tunnel sees a bounded number of opens.
TEST_F(PortForwardTest, OpensAreRateLimited) {
  std::string burst;
  for (uint32_t i = 0; i < 100; ++i) {
    const uint32_t id = 1 + 4 * i;
    const std::string rid = std::to_string(i);
    // One statement each: header blocks share a compression context, so their order counts.
    burst +=
        client_.synStream(id, {{"streamtype", "error"}, {"port", "80"}, {"requestid", rid}}, false);
    burst += client_.synStream(id + 2, {{"streamtype", "data"}, {"port", "80"}, {"requestid", rid}},
                               false);
    burst += client_.rstStream(id, spdy::kCancel);
  }
  send(burst);
  // 32 at once (with a test slower than 60 ms, one or two more refilled).
  EXPECT_GE(opener_.requests.size(), 32u);
  EXPECT_LE(opener_.requests.size(), 34u);
  EXPECT_EQ(session_.connections(), 0u);
}

// A client that sends PINGs and never reads the answers stops being read at 1 MiB queued.
TEST_F(PortForwardTest, UnreadAnswersStopTheReading) {
  std::string pings;
  for (uint32_t i = 0; i < 10000; ++i) pings += client_.ping(2 * i + 1);
  size_t messages = 0;
  while (session_.wantsInput() && messages < 100) {
    send(pings);
    ++messages;
  }
  EXPECT_LT(messages, 100u);
  EXPECT_GE(messages * 10000 * 12, 1024u * 1024);  // it stopped only once over 1 MiB
  received();
  EXPECT_TRUE(session_.wantsInput());
  // A PING with an even id is not the client's: not echoed.
  send(client_.ping(2));
  EXPECT_TRUE(received().empty());
}

// Frames after the client's GOAWAY in the same message are not acted on; data for a pair that
// never completes is bounded.
TEST_F(PortForwardTest, GoAwayEndsAndIncompletePairsAreBounded) {
  send(client_.synStream(1, {{"streamtype", "data"}, {"port", "80"}, {"requestid", "a"}}, false) +
       client_.data(1, std::string(70 * 1024, 'x'), false));
  auto frames = received();
  ASSERT_EQ(frames.size(), 2u);  // the reply, then the reset: over 64 KiB kept for it
  EXPECT_EQ(frames[1].type, FrameType::kRstStream);
  EXPECT_EQ(session_.connections(), 0u);
  std::string after = client_.goAway(1, 0);
  after +=
      client_.synStream(3, {{"streamtype", "error"}, {"port", "80"}, {"requestid", "b"}}, false);
  after +=
      client_.synStream(5, {{"streamtype", "data"}, {"port", "80"}, {"requestid", "b"}}, false);
  send(after);
  bool finished = false;
  frames = received(&finished);
  EXPECT_TRUE(finished);
  EXPECT_TRUE(frames.empty());
  EXPECT_TRUE(opener_.requests.empty());
}

}  // namespace
}  // namespace ep::apiserver
