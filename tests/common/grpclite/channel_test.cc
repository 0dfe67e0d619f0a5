// grpclite client against a real in-process grpc++ server (sync API) on 127.0.0.1 and on a unix
// socket, plus the Deframer. The server's behaviour is steered by the request (test_service.proto)
// and by EchoService's bidi mode.
#include "common/grpclite/channel.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "proto/grpc_runtime.h"
#include "tests/common/grpclite/test_service.grpc.pb.h"
#include "tests/testing/temp_dir.h"

namespace ep::grpclite {

// gtest prints RpcCode by name (found by ADL, so not in the anonymous namespace).
void PrintTo(RpcCode code, std::ostream* os) {
  *os << rpcCodeName(code);
}

namespace {

namespace gt = ::ep::grpclite::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Before any gRPC server exists (see grpc_runtime.h).
[[maybe_unused]] const bool kTuned = (ep::tuneGrpcRuntime(), true);

constexpr const char* kUnary = "/ep.grpclite.test.Echo/Unary";
constexpr const char* kBidi = "/ep.grpclite.test.Echo/Bidi";
constexpr const char* kServerStream = "/ep.grpclite.test.Echo/ServerStream";

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Deterministic bytes (all 256 values, not periodic on any small power of two).
std::string pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

std::string msgBytes(const std::string& text, const std::string& blob = {}, int code = 0,
                     int sleepMs = 0, int repeat = 0) {
  gt::Msg m;
  m.set_text(text);
  m.set_blob(blob);
  m.set_code(code);
  m.set_sleep_ms(sleepMs);
  m.set_repeat(repeat);
  return m.SerializeAsString();
}

gt::Msg parseMsg(const std::string& bytes) {
  gt::Msg m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

// ---- server side ----------------------------------------------------------------------------

class EchoService final : public gt::Echo::Service {
 public:
  enum class BidiMode { kEcho, kNeverRead };
  std::atomic<BidiMode> bidiMode{BidiMode::kEcho};

  grpc::Status Unary(grpc::ServerContext* ctx, const gt::Msg* req, gt::Msg* resp) override {
    if (req->sleep_ms() > 0 && !sleepUnlessCancelled(ctx, req->sleep_ms())) {
      return cancelled();
    }
    if (req->code() != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(req->code()), req->text());
    }
    *resp = *req;
    return grpc::Status::OK;
  }

  grpc::Status ServerStream(grpc::ServerContext* ctx, const gt::Msg* req,
                            grpc::ServerWriter<gt::Msg>* writer) override {
    for (int i = 0; i < req->repeat(); ++i) {
      if (i > 0 && req->sleep_ms() > 0 && !sleepUnlessCancelled(ctx, req->sleep_ms())) {
        return cancelled();
      }
      gt::Msg m = *req;
      m.set_text(req->text() + "#" + std::to_string(i));
      if (!writer->Write(m)) return cancelled();
    }
    if (req->code() != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(req->code()), req->text());
    }
    return grpc::Status::OK;
  }

  grpc::Status Bidi(grpc::ServerContext* ctx,
                    grpc::ServerReaderWriter<gt::Msg, gt::Msg>* stream) override {
    {
      std::lock_guard lock(mu_);
      ++bidiStarted_;
      cv_.notify_all();
    }
    if (bidiMode.load() == BidiMode::kNeverRead) {
      while (!ctx->IsCancelled()) std::this_thread::sleep_for(5ms);
      return cancelled();
    }
    gt::Msg m;
    while (stream->Read(&m)) {
      reads_.fetch_add(1);
      if (!stream->Write(m)) break;
    }
    // A client cancel (RST_STREAM) fails Read; IsCancelled may trail it by a moment.
    for (int i = 0; i < 20 && !ctx->IsCancelled(); ++i) std::this_thread::sleep_for(5ms);
    if (ctx->IsCancelled()) return cancelled();
    return grpc::Status::OK;
  }

  bool waitCancelled(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return cancelled_ >= n; });
  }
  bool waitBidiStarted(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return bidiStarted_ >= n; });
  }
  int cancelledCount() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  int reads() const { return reads_.load(); }

 private:
  grpc::Status cancelled() {
    std::lock_guard lock(mu_);
    ++cancelled_;
    cv_.notify_all();
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
  static bool sleepUnlessCancelled(grpc::ServerContext* ctx, int ms) {
    auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < end) {
      if (ctx->IsCancelled()) return false;
      std::this_thread::sleep_for(5ms);
    }
    return !ctx->IsCancelled();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int cancelled_ = 0;    // guarded by mu_
  int bidiStarted_ = 0;  // guarded by mu_
  std::atomic<int> reads_{0};
};

class TestServer {
 public:
  // `configure` adds channel arguments (keepalive policy, connection age, stream limits).
  TestServer(EchoService* service, const std::string& address,
             const std::function<void(grpc::ServerBuilder&)>& configure = {}) {
    grpc::ServerBuilder b;
    if (configure) configure(b);
    b.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(service);
    b.SetMaxReceiveMessageSize(64 << 20);
    b.SetMaxSendMessageSize(64 << 20);
    server_ = b.BuildAndStart();
  }
  ~TestServer() { shutdown(); }
  bool started() const { return server_ != nullptr && port_ != 0; }
  int port() const { return port_; }
  // Sends GOAWAY, cancels the calls still running after 100 ms, waits for their handlers.
  void shutdown() {
    if (!server_) return;
    server_->Shutdown(std::chrono::system_clock::now() + 100ms);
    server_->Wait();
    server_.reset();
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// A 127.0.0.1 port that nothing listens on (bound then released).
int unusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Listens on 127.0.0.1 and never accepts: the kernel completes the TCP handshake and buffers
// what the client sends, but no HTTP/2 byte ever comes back.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 16) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// ---- client side ----------------------------------------------------------------------------

class RecordingHandler : public CallHandler {
 public:
  void onMessage(std::string&& bytes) override {
    std::lock_guard lock(mu_);
    messages_.push_back(std::move(bytes));
    cv_.notify_all();
  }
  void onDone(const RpcStatus& status) override {
    std::lock_guard lock(mu_);
    ++doneCount_;
    status_ = status;
    cv_.notify_all();
  }

  bool waitDone(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return doneCount_ > 0; });
  }
  bool waitMessages(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return messages_.size() >= n || doneCount_ > 0; }) &&
           messages_.size() >= n;
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  RpcStatus status() {
    std::lock_guard lock(mu_);
    return status_.value_or(RpcStatus{RpcCode::kUnknown, "onDone did not run"});
  }
  int doneCount() {
    std::lock_guard lock(mu_);
    return doneCount_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> messages_;
  std::optional<RpcStatus> status_;
  int doneCount_ = 0;
};

class GrpcliteChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(&service_, "127.0.0.1:0");
    ASSERT_TRUE(server_->started());
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  std::shared_ptr<Channel> channel(ChannelOptions options = {}) {
    return Channel::create(target(), std::move(options));
  }

  EchoService service_;
  std::unique_ptr<TestServer> server_;
};

TEST(RpcStatusTest, NamesAndToString) {
  EXPECT_STREQ(rpcCodeName(RpcCode::kOk), "OK");
  EXPECT_STREQ(rpcCodeName(RpcCode::kDeadlineExceeded), "DEADLINE_EXCEEDED");
  EXPECT_STREQ(rpcCodeName(RpcCode::kUnauthenticated), "UNAUTHENTICATED");
  RpcStatus s{RpcCode::kUnavailable, "connection refused"};
  EXPECT_EQ(s.toString(), "UNAVAILABLE: connection refused");
  EXPECT_EQ(s.codeNumber(), 14);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(RpcStatus{}.ok());
}

TEST_F(GrpcliteChannelTest, UnaryRoundTripTcp) {
  auto ch = channel();
  EXPECT_EQ(ch->target(), target());

  gt::Msg req, resp;
  req.set_text("hello");
  req.set_blob(std::string("\0\1\2\xff binary", 11));
  RpcStatus s = ch->unary(kUnary, req, &resp, 1500ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(resp.text(), "hello");
  EXPECT_EQ(resp.blob(), req.blob());

  // Same connection, raw-bytes overload.
  std::string out;
  s = ch->unary(kUnary, msgBytes("again"), &out, 1500ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(parseMsg(out).text(), "again");
}

TEST(GrpcliteUnixSocketTest, UnaryRoundTripOverUnixSocket) {
  ep::testing::TempDir dir;
  const std::string path = dir.path() + "/echo.sock";
  EchoService service;
  TestServer server(&service, "unix:" + path);
  ASSERT_TRUE(server.started());

  for (const std::string& target : {"unix://" + path, "unix:" + path, path}) {
    SCOPED_TRACE(target);
    auto ch = Channel::create(target);
    std::string out;
    RpcStatus s = ch->unary(kUnary, msgBytes("over " + target), &out, 1500ms);
    ASSERT_TRUE(s.ok()) << s.toString();
    EXPECT_EQ(parseMsg(out).text(), "over " + target);
  }
}

TEST_F(GrpcliteChannelTest, ErrorStatusMessageIsPercentDecoded) {
  auto ch = channel();
  // grpc-message percent-encodes '%', controls and every non-ASCII byte.
  const std::string message = "bad request: 100% f\xC3\xBCr \xE6\x97\xA5\xE6\x9C\xAC\ttab %41 ok";
  std::string out;
  RpcStatus s =
      ch->unary(kUnary, msgBytes(message, {}, grpc::StatusCode::FAILED_PRECONDITION), &out, 1500ms);
  EXPECT_EQ(s.code, RpcCode::kFailedPrecondition) << s.toString();
  EXPECT_EQ(s.message, message);

  s = ch->unary(kUnary, msgBytes("no such pod", {}, grpc::StatusCode::NOT_FOUND), &out, 1500ms);
  EXPECT_EQ(s.code, RpcCode::kNotFound) << s.toString();
  EXPECT_EQ(s.message, "no such pod");
}

TEST_F(GrpcliteChannelTest, UnknownMethodIsUnimplemented) {
  auto ch = channel();
  std::string out;
  RpcStatus s = ch->unary("/ep.grpclite.test.Echo/Nope", msgBytes("x"), &out, 1500ms);
  EXPECT_EQ(s.code, RpcCode::kUnimplemented) << s.toString();
  s = ch->unary("/no.such.Service/Call", msgBytes("x"), &out, 1500ms);
  EXPECT_EQ(s.code, RpcCode::kUnimplemented) << s.toString();
  // The connection is still good.
  s = ch->unary(kUnary, msgBytes("x"), &out, 1500ms);
  EXPECT_TRUE(s.ok()) << s.toString();
}

TEST_F(GrpcliteChannelTest, UnaryFailsInternalUnlessExactlyOneResponse) {
  auto ch = channel();
  std::string out;
  RpcStatus s = ch->unary(kServerStream, msgBytes("none", {}, 0, 0, 0), &out, 1500ms);
  EXPECT_EQ(s.code, RpcCode::kInternal) << s.toString();
  s = ch->unary(kServerStream, msgBytes("two", {}, 0, 0, 2), &out, 1500ms);
  EXPECT_EQ(s.code, RpcCode::kInternal) << s.toString();
  s = ch->unary(kServerStream, msgBytes("one", {}, 0, 0, 1), &out, 1500ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(parseMsg(out).text(), "one#0");
}

TEST_F(GrpcliteChannelTest, DeadlineExceeded) {
  auto ch = channel();
  // Warm the connection so the bound below measures the deadline, not the connect.
  std::string out;
  ASSERT_TRUE(ch->unary(kUnary, msgBytes("warm"), &out, 1500ms).ok());

  auto start = Clock::now();
  RpcStatus s = ch->unary(kUnary, msgBytes("slow", {}, 0, 1500), &out, 200ms);
  auto took = since(start);
  EXPECT_EQ(s.code, RpcCode::kDeadlineExceeded) << s.toString();
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 800ms);

  // Through startCall with CallOptions::timeout.
  auto h = std::make_shared<RecordingHandler>();
  start = Clock::now();
  auto call = ch->startCall(kUnary, h, CallOptions{.timeout = 200ms});
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call->write(msgBytes("slow", {}, 0, 1500)), WriteResult::kQueued);
  call->writesDone();
  ASSERT_TRUE(h->waitDone(1500ms));
  took = since(start);
  EXPECT_EQ(h->status().code, RpcCode::kDeadlineExceeded) << h->status().toString();
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 800ms);
}

TEST(GrpcliteConnectTest, ConnectionRefusedIsUnavailable) {
  const int port = unusedPort();
  ASSERT_NE(port, 0);
  auto ch = Channel::create("127.0.0.1:" + std::to_string(port));
  std::string out;
  auto start = Clock::now();
  RpcStatus s = ch->unary(kUnary, msgBytes("x"), &out, 1500ms);
  EXPECT_LT(since(start), 1000ms);
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_NE(lower(s.message).find("refused"), std::string::npos) << s.message;

  // A streaming call on the same channel (a new attempt) ends the same way.
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(h->waitDone(1500ms));
  EXPECT_EQ(h->status().code, RpcCode::kUnavailable) << h->status().toString();
  EXPECT_FALSE(h->status().message.empty());
  EXPECT_EQ(h->doneCount(), 1);
}

TEST_F(GrpcliteChannelTest, BidiThousandMessagesEachWayInOrder) {
  auto ch = channel();
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  ASSERT_NE(call, nullptr);
  constexpr int kCount = 1000;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(call->write(msgBytes("m" + std::to_string(i))), WriteResult::kQueued) << i;
  }
  call->writesDone();
  ASSERT_TRUE(h->waitDone(1800ms));
  EXPECT_TRUE(h->status().ok()) << h->status().toString();
  auto msgs = h->messages();
  ASSERT_EQ(msgs.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(parseMsg(msgs[i]).text(), "m" + std::to_string(i)) << i;
  }
  EXPECT_EQ(service_.reads(), kCount);
  EXPECT_EQ(h->doneCount(), 1);
  EXPECT_EQ(call->queuedMessages(), 0u);
}

TEST_F(GrpcliteChannelTest, ServerStreamsMessagesLargerThanTheWindow) {
  const std::string blob = pattern(3 << 20);
  ChannelOptions big;
  big.maxReceiveMessageBytes = 8 << 20;
  ChannelOptions smallWindows = big;
  smallWindows.streamWindowBytes = 65535;
  smallWindows.connectionWindowBytes = 65535;
  for (const ChannelOptions& options : {big, smallWindows}) {
    SCOPED_TRACE(options.streamWindowBytes);
    auto ch = channel(options);
    auto h = std::make_shared<RecordingHandler>();
    auto call = ch->startCall(kServerStream, h);
    ASSERT_NE(call, nullptr);
    ASSERT_EQ(call->write(msgBytes("big", blob, 0, 0, 2)), WriteResult::kQueued);
    call->writesDone();
    ASSERT_TRUE(h->waitDone(1800ms));
    EXPECT_TRUE(h->status().ok()) << h->status().toString();
    auto msgs = h->messages();
    ASSERT_EQ(msgs.size(), 2u);
    for (int i = 0; i < 2; ++i) {
      gt::Msg m = parseMsg(msgs[i]);
      EXPECT_EQ(m.text(), "big#" + std::to_string(i));
      EXPECT_EQ(m.blob().size(), blob.size());
      EXPECT_TRUE(m.blob() == blob) << "blob " << i << " corrupted";
    }
  }
}

TEST_F(GrpcliteChannelTest, MessageAboveMaxReceiveIsResourceExhausted) {
  ChannelOptions options;
  options.maxReceiveMessageBytes = 1 << 20;
  auto ch = channel(options);
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kServerStream, h);
  ASSERT_NE(call, nullptr);
  ASSERT_EQ(call->write(msgBytes("huge", pattern((1 << 20) + 1), 0, 0, 1)), WriteResult::kQueued);
  call->writesDone();
  ASSERT_TRUE(h->waitDone(1500ms));
  EXPECT_EQ(h->status().code, RpcCode::kResourceExhausted) << h->status().toString();
  EXPECT_TRUE(h->messages().empty());
  EXPECT_EQ(h->doneCount(), 1);

  // A message just under the limit passes, and the channel is still usable.
  std::string out;
  RpcStatus s = ch->unary(kUnary, msgBytes("fits", pattern((1 << 20) - 64)), &out, 1500ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(parseMsg(out).blob().size(), static_cast<size_t>((1 << 20) - 64));
}

TEST_F(GrpcliteChannelTest, CancelMidStream) {
  auto ch = channel();
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  ASSERT_NE(call, nullptr);
  ASSERT_EQ(call->write(msgBytes("a")), WriteResult::kQueued);
  ASSERT_TRUE(h->waitMessages(1, 1500ms)) << h->status().toString();

  call->cancel();
  ASSERT_TRUE(h->waitDone(1000ms));
  EXPECT_EQ(h->status().code, RpcCode::kCancelled) << h->status().toString();
  EXPECT_TRUE(service_.waitCancelled(1, 1500ms)) << "server did not see the cancellation";

  EXPECT_EQ(call->write(msgBytes("b")), WriteResult::kClosed);
  call->cancel();
  call->writesDone();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(h->doneCount(), 1);

  // Other calls on the channel are unaffected.
  std::string out;
  EXPECT_TRUE(ch->unary(kUnary, msgBytes("after"), &out, 1500ms).ok());
}

TEST_F(GrpcliteChannelTest, WriteAfterWritesDoneOrFinishIsClosed) {
  auto ch = channel();
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kServerStream, h);
  ASSERT_NE(call, nullptr);
  ASSERT_EQ(call->write(msgBytes("once", {}, 0, 0, 1)), WriteResult::kQueued);
  call->writesDone();
  EXPECT_EQ(call->write(msgBytes("after writesDone")), WriteResult::kClosed);
  ASSERT_TRUE(h->waitDone(1500ms));
  EXPECT_TRUE(h->status().ok()) << h->status().toString();
  EXPECT_EQ(h->messages().size(), 1u);

  // A call the server ended with an error.
  auto h2 = std::make_shared<RecordingHandler>();
  auto call2 = ch->startCall(kUnary, h2);
  ASSERT_EQ(call2->write(msgBytes("x", {}, grpc::StatusCode::ABORTED)), WriteResult::kQueued);
  call2->writesDone();
  ASSERT_TRUE(h2->waitDone(1500ms));
  EXPECT_EQ(h2->status().code, RpcCode::kAborted);
  EXPECT_EQ(call2->write(msgBytes("late")), WriteResult::kClosed);
  EXPECT_EQ(call->write(msgBytes("late")), WriteResult::kClosed);
  EXPECT_EQ(h->doneCount(), 1);
  EXPECT_EQ(h2->doneCount(), 1);
}

TEST_F(GrpcliteChannelTest, QueueBoundAnswersFullWhenServerDoesNotRead) {
  service_.bidiMode = EchoService::BidiMode::kNeverRead;
  auto ch = channel();
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h, CallOptions{.maxQueuedMessages = 4});
  ASSERT_NE(call, nullptr);
  const std::string chunk = msgBytes("fill", pattern(256 << 10));
  bool sawFull = false;
  bool steadyFull = false;
  int queued = 0;
  bool fullNow = false;  // the last write answered kFull
  Clock::time_point fullSince;
  auto start = Clock::now();
  // At most 64 MiB: the server never reads, so HTTP/2 flow control must stop the sending and
  // the queue must then stay full.
  while (queued < 256 && since(start) < 1500ms) {
    WriteResult r = call->write(chunk);
    if (r == WriteResult::kQueued) {
      ++queued;
      fullNow = false;
      continue;
    }
    ASSERT_EQ(r, WriteResult::kFull) << h->status().toString();
    sawFull = true;
    ASSERT_LE(call->queuedMessages(), 4u);
    if (!fullNow) {
      fullNow = true;
      fullSince = Clock::now();
    } else if (Clock::now() - fullSince >= 200ms) {
      steadyFull = true;
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(sawFull) << "queued " << queued << " messages of 256 KiB without kFull";
  EXPECT_TRUE(steadyFull) << "queued " << queued
                          << " messages of 256 KiB to a server that reads none";
  EXPECT_GE(queued, 4);
  EXPECT_EQ(call->queuedMessages(), 4u);
  EXPECT_EQ(service_.reads(), 0);
  EXPECT_EQ(h->doneCount(), 0) << h->status().toString();

  call->cancel();
  ASSERT_TRUE(h->waitDone(1000ms));
  EXPECT_EQ(h->status().code, RpcCode::kCancelled) << h->status().toString();
  EXPECT_EQ(call->write(chunk), WriteResult::kClosed);
}

TEST_F(GrpcliteChannelTest, ServerShutdownMidCallThenReconnectOnDemand) {
  auto ch = channel();
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  ASSERT_NE(call, nullptr);
  ASSERT_EQ(call->write(msgBytes("a")), WriteResult::kQueued);
  ASSERT_TRUE(h->waitMessages(1, 1500ms)) << h->status().toString();

  const int port = server_->port();
  server_->shutdown();
  ASSERT_TRUE(h->waitDone(1000ms));
  EXPECT_FALSE(h->status().ok());
  EXPECT_NE(h->status().code, RpcCode::kDeadlineExceeded) << h->status().toString();
  EXPECT_EQ(h->doneCount(), 1);
  EXPECT_EQ(call->write(msgBytes("b")), WriteResult::kClosed);

  // Nobody listens now: a call fails UNAVAILABLE rather than hanging.
  std::string out;
  RpcStatus s = ch->unary(kUnary, msgBytes("nobody"), &out, 1000ms);
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();

  server_ = std::make_unique<TestServer>(&service_, "127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(server_->started());
  s = ch->unary(kUnary, msgBytes("back"), &out, 1500ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(parseMsg(out).text(), "back");
}

TEST(GrpcliteUnixSocketTest, PathTooLongFailsTheCall) {
  // sun_path holds 108 bytes: the connect must fail the call, not take the process down.
  const std::string path = "/tmp/" + std::string(200, 'p') + ".sock";
  auto ch = Channel::create("unix://" + path);
  std::string out;
  RpcStatus s = ch->unary(kUnary, msgBytes("x"), &out, 1000ms);
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_FALSE(s.message.empty());
}

TEST(GrpcliteIpv6Test, UnaryRoundTripOverIpv6Loopback) {
  EchoService service;
  TestServer server(&service, "[::1]:0");
  if (!server.started()) GTEST_SKIP() << "no IPv6 loopback";
  auto ch = Channel::create("[::1]:" + std::to_string(server.port()));
  std::string out;
  RpcStatus s = ch->unary(kUnary, msgBytes("v6"), &out, 1500ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(parseMsg(out).text(), "v6");
}

TEST(GrpcliteGoawayTest, CallsAfterGoawayGoToANewConnection) {
  // The server ends each connection after ~150 ms with GOAWAY (then closes it after a grace
  // period) but keeps listening: calls made across several of those must all succeed.
  EchoService service;
  TestServer server(&service, "127.0.0.1:0", [](grpc::ServerBuilder& b) {
    b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 150);
    b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 300);
  });
  ASSERT_TRUE(server.started());
  auto ch = Channel::create("127.0.0.1:" + std::to_string(server.port()));
  int calls = 0;
  auto start = Clock::now();
  while (since(start) < 700ms) {
    std::string out;
    RpcStatus s = ch->unary(kUnary, msgBytes("c" + std::to_string(calls)), &out, 1000ms);
    ASSERT_TRUE(s.ok()) << "call " << calls << " after " << since(start).count()
                        << " ms: " << s.toString();
    ++calls;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GT(calls, 20);
}

TEST(GrpcliteKeepaliveTest, HealthyServerKeepsTheCallAlive) {
  // Pings every 100 ms are answered; the server is told to tolerate them.
  EchoService service;
  TestServer server(&service, "127.0.0.1:0", [](grpc::ServerBuilder& b) {
    b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 0);
    b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  });
  ASSERT_TRUE(server.started());
  ChannelOptions options;
  options.keepaliveTime = 100ms;
  options.keepaliveTimeout = 200ms;
  auto ch = Channel::create("127.0.0.1:" + std::to_string(server.port()), options);
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  ASSERT_EQ(call->write(msgBytes("first")), WriteResult::kQueued);
  ASSERT_TRUE(h->waitMessages(1, 1000ms)) << h->status().toString();
  // Several keepalive rounds (ping, ack, re-arm) with the call idle.
  EXPECT_FALSE(h->waitDone(700ms)) << h->status().toString();
  ASSERT_EQ(call->write(msgBytes("second")), WriteResult::kQueued);
  call->writesDone();
  ASSERT_TRUE(h->waitDone(1000ms));
  EXPECT_TRUE(h->status().ok()) << h->status().toString();
  EXPECT_EQ(h->messages().size(), 2u);
}

TEST(GrpcliteConcurrencyTest, RespectsServerMaxConcurrentStreams) {
  EchoService service;
  TestServer server(&service, "127.0.0.1:0", [](grpc::ServerBuilder& b) {
    b.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 2);
  });
  ASSERT_TRUE(server.started());
  auto ch = Channel::create("127.0.0.1:" + std::to_string(server.port()));
  std::string out;
  // Warm up: the server's SETTINGS (the limit) are known before the burst.
  ASSERT_TRUE(ch->unary(kUnary, msgBytes("warm"), &out, 1000ms).ok());
  std::vector<std::shared_ptr<RecordingHandler>> handlers;
  std::vector<std::shared_ptr<Call>> calls;
  for (int i = 0; i < 10; ++i) {
    handlers.push_back(std::make_shared<RecordingHandler>());
    calls.push_back(ch->startCall(kUnary, handlers.back(), CallOptions{.timeout = 1500ms}));
    ASSERT_EQ(calls.back()->write(msgBytes("c" + std::to_string(i), {}, 0, 50)),
              WriteResult::kQueued);
    calls.back()->writesDone();
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(handlers[i]->waitDone(1800ms)) << i;
    EXPECT_TRUE(handlers[i]->status().ok()) << i << ": " << handlers[i]->status().toString();
    ASSERT_EQ(handlers[i]->messages().size(), 1u) << i;
    EXPECT_EQ(parseMsg(handlers[i]->messages()[0]).text(), "c" + std::to_string(i));
  }
}

TEST(GrpcliteKeepaliveTest, SilentServerEndsCallUnavailable) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  ChannelOptions options;
  options.keepaliveTime = 100ms;
  options.keepaliveTimeout = 200ms;
  // An implementation that waits for the server's SETTINGS may end the attempt by this instead.
  options.connectTimeout = 800ms;
  auto ch = Channel::create("127.0.0.1:" + std::to_string(silent.port()), options);
  std::string out;
  auto start = Clock::now();
  // No deadline that could end it first within the bound below.
  RpcStatus s = ch->unary(kUnary, msgBytes("anyone?"), &out, 5000ms);
  auto took = since(start);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_LT(took, 1200ms) << s.toString();
}

// Regression: without keepalive, a peer that accepts TCP but never sends HTTP/2 SETTINGS hung
// every call until its deadline; connectTimeout now covers the server's first SETTINGS.
TEST(GrpcliteConnectTest, NoSettingsFromServerFailsWithinConnectTimeout) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  ChannelOptions options;
  options.connectTimeout = 300ms;  // keepaliveTime stays 0
  auto ch = Channel::create("127.0.0.1:" + std::to_string(silent.port()), options);
  std::string out;
  auto start = Clock::now();
  RpcStatus s = ch->unary(kUnary, msgBytes("anyone?"), &out, 5000ms);
  auto took = since(start);
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_NE(s.message.find("SETTINGS"), std::string::npos) << s.toString();
  EXPECT_LT(took, 1500ms) << s.toString();
}

// Speaks just enough HTTP/2 to open huge flow-control windows (SETTINGS + a connection
// WINDOW_UPDATE), then never reads: the client's socket buffer fills and its writes stall.
class StallingHttp2Server {
 public:
  StallingHttp2Server() : listener_(std::make_unique<SilentListener>()) {
    thread_ = std::thread([this] {
      int fd = ::accept(listener_->fd(), nullptr, nullptr);
      if (fd < 0) return;
      const unsigned char frames[] = {
          0, 0, 6, 4, 0, 0, 0, 0, 0, 0,    4,    0x7f, 0xff, 0xff, 0xff,  // SETTINGS window 2^31-1
          0, 0, 4, 8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0,    0};                // WINDOW_UPDATE stream 0
      (void)!::write(fd, frames, sizeof frames);
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_; });
      ::close(fd);
    });
  }
  ~StallingHttp2Server() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    ::shutdown(listener_->fd(), SHUT_RDWR);
    thread_.join();
  }
  int port() const { return listener_->port(); }

 private:
  std::unique_ptr<SilentListener> listener_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Regression: a deadline (or cancel) finished its call only once the RST_STREAM was written, so
// a peer that stopped reading held DEADLINE_EXCEEDED back forever.
TEST(GrpcliteDeadlineTest, DeadlineEndsCallWhileWritesAreStalled) {
  StallingHttp2Server server;
  ASSERT_NE(server.port(), 0);
  auto ch = Channel::create("127.0.0.1:" + std::to_string(server.port()));
  auto h = std::make_shared<RecordingHandler>();
  CallOptions o;
  o.timeout = 500ms;
  auto call = ch->startCall(kBidi, h, o);
  ASSERT_EQ(call->write(std::string(32 << 20, 'x')), WriteResult::kQueued);
  auto start = Clock::now();
  ASSERT_TRUE(h->waitDone(3000ms)) << "the deadline did not end a call whose writes stall";
  EXPECT_EQ(h->status().code, RpcCode::kDeadlineExceeded) << h->status().toString();
  EXPECT_LT(since(start), 2000ms);
}

// Host names go through getaddrinfo (off the I/O thread).
TEST_F(GrpcliteChannelTest, HostNameTargetIsResolved) {
  auto ch = Channel::create("localhost:" + std::to_string(server_->port()));
  std::string out;
  RpcStatus s = ch->unary(kUnary, msgBytes("by name"), &out, 3000ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(parseMsg(out).text(), "by name");
}

TEST_F(GrpcliteChannelTest, DestroyingChannelCancelsRunningCalls) {
  auto ch = channel();
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  ASSERT_NE(call, nullptr);
  ASSERT_EQ(call->write(msgBytes("a")), WriteResult::kQueued);
  ASSERT_TRUE(h->waitMessages(1, 1500ms)) << h->status().toString();

  ch.reset();  // the last reference: ends the call, runs onDone, joins the I/O thread
  EXPECT_EQ(h->doneCount(), 1) << "onDone did not run before the Channel's destruction returned";
  ASSERT_TRUE(h->waitDone(1000ms));
  EXPECT_EQ(h->status().code, RpcCode::kCancelled) << h->status().toString();
  EXPECT_TRUE(service_.waitCancelled(1, 1500ms)) << "server did not see the call end";

  // The Call outlives its Channel harmlessly.
  EXPECT_EQ(call->write(msgBytes("b")), WriteResult::kClosed);
  call->writesDone();
  call->cancel();
  EXPECT_EQ(call->queuedMessages(), 0u);
  call.reset();
  EXPECT_EQ(h->doneCount(), 1);
}

TEST_F(GrpcliteChannelTest, CancelBeforeTheConnectionIsUp) {
  auto ch = channel();
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  call->cancel();  // the first call: the connection is still being made
  ASSERT_TRUE(h->waitDone(1000ms));
  EXPECT_EQ(h->status().code, RpcCode::kCancelled) << h->status().toString();
  EXPECT_EQ(call->write(msgBytes("x")), WriteResult::kClosed);
  std::string out;
  RpcStatus s = ch->unary(kUnary, msgBytes("next"), &out, 1500ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(h->doneCount(), 1);
}

// Writes the next message from onMessage (the I/O thread), as a reactor-style client would.
class PingPongHandler : public RecordingHandler {
 public:
  explicit PingPongHandler(int rounds) : rounds_(rounds) {}
  void setCall(std::shared_ptr<Call> call) {
    std::lock_guard lock(callMu_);
    call_ = std::move(call);
  }
  void onMessage(std::string&& bytes) override {
    const int n = ++received_;
    RecordingHandler::onMessage(std::move(bytes));
    std::shared_ptr<Call> call;
    {
      std::lock_guard lock(callMu_);
      call = call_;
    }
    if (!call) return;
    if (n < rounds_) {
      if (call->write(msgBytes("p" + std::to_string(n))) != WriteResult::kQueued) call->cancel();
    } else {
      call->writesDone();
    }
  }
  void onDone(const RpcStatus& status) override {
    {
      std::lock_guard lock(callMu_);
      call_.reset();  // break the Call -> handler -> Call cycle
    }
    RecordingHandler::onDone(status);
  }

 private:
  const int rounds_;
  std::atomic<int> received_{0};
  std::mutex callMu_;
  std::shared_ptr<Call> call_;
};

TEST_F(GrpcliteChannelTest, WritesFromTheHandlerPingPong) {
  auto ch = channel();
  constexpr int kRounds = 200;
  auto h = std::make_shared<PingPongHandler>(kRounds);
  auto call = ch->startCall(kBidi, h);
  h->setCall(call);
  ASSERT_EQ(call->write(msgBytes("p0")), WriteResult::kQueued);
  ASSERT_TRUE(h->waitDone(1800ms)) << h->messages().size() << " round trips";
  EXPECT_TRUE(h->status().ok()) << h->status().toString();
  auto msgs = h->messages();
  ASSERT_EQ(msgs.size(), static_cast<size_t>(kRounds));
  for (int i = 0; i < kRounds; ++i) ASSERT_EQ(parseMsg(msgs[i]).text(), "p" + std::to_string(i));
}

TEST_F(GrpcliteChannelTest, ConcurrentLargeStreamsShareSmallWindows) {
  ChannelOptions options;
  options.streamWindowBytes = 65535;
  options.connectionWindowBytes = 65535;
  auto ch = channel(options);
  constexpr int kCalls = 4;
  std::vector<std::shared_ptr<RecordingHandler>> handlers;
  std::vector<std::shared_ptr<Call>> calls;
  for (int i = 0; i < kCalls; ++i) {
    handlers.push_back(std::make_shared<RecordingHandler>());
    calls.push_back(ch->startCall(kServerStream, handlers.back()));
    ASSERT_EQ(
        calls.back()->write(msgBytes("s" + std::to_string(i), pattern((512 << 10) + i), 0, 0, 3)),
        WriteResult::kQueued);
    calls.back()->writesDone();
  }
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(handlers[i]->waitDone(1800ms)) << i;
    EXPECT_TRUE(handlers[i]->status().ok()) << i << ": " << handlers[i]->status().toString();
    auto msgs = handlers[i]->messages();
    ASSERT_EQ(msgs.size(), 3u) << i;
    const std::string blob = pattern((512 << 10) + i);
    for (int k = 0; k < 3; ++k) {
      gt::Msg m = parseMsg(msgs[k]);
      EXPECT_EQ(m.text(), "s" + std::to_string(i) + "#" + std::to_string(k));
      EXPECT_TRUE(m.blob() == blob) << "call " << i << " message " << k << " corrupted";
    }
  }
}

TEST_F(GrpcliteChannelTest, ConcurrentUnaryFromEightThreads) {
  auto ch = channel();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::atomic<int> ok{0};
  std::mutex failMu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string text = "t" + std::to_string(t) + "-" + std::to_string(i);
        std::string out;
        RpcStatus s = ch->unary(kUnary, msgBytes(text), &out, 1500ms);
        gt::Msg m;
        if (s.ok() && m.ParseFromString(out) && m.text() == text) {
          ok.fetch_add(1);
        } else {
          std::lock_guard lock(failMu);
          failures.push_back(text + ": " + s.toString() + " got '" + m.text() + "'");
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  for (size_t i = 0; i < failures.size() && i < 5; ++i) ADD_FAILURE() << failures[i];
}

// ---- framing --------------------------------------------------------------------------------

std::vector<std::string> drain(Deframer& d) {
  std::vector<std::string> out;
  std::string m;
  while (d.next(&m)) out.push_back(m);
  return out;
}

TEST(FrameMessageTest, Layout) {
  EXPECT_EQ(frameMessage(""), std::string(5, '\0'));
  EXPECT_EQ(frameMessage("abc"), std::string("\0\0\0\0\3abc", 8));
  std::string big(300, 'x');
  EXPECT_EQ(frameMessage(big), std::string("\0\0\0\x01\x2c", 5) + big);
  std::string huge = pattern(0x01020304 & 0xfffff);  // 0x20304 bytes
  EXPECT_EQ(frameMessage(huge).substr(0, 5), std::string("\0\0\x02\x03\x04", 5));
  EXPECT_EQ(frameMessage(huge).size(), huge.size() + 5);
}

TEST(DeframerTest, RoundTripInOneFeed) {
  const std::vector<std::string> msgs = {"", "a", std::string("\0\xff\0", 3), pattern(70000), ""};
  std::string stream;
  for (const auto& m : msgs) stream += frameMessage(m);
  Deframer d(1 << 20);
  d.feed(reinterpret_cast<const uint8_t*>(stream.data()), stream.size());
  EXPECT_EQ(drain(d), msgs);
  EXPECT_FALSE(d.failed());
  EXPECT_EQ(d.buffered(), 0u);
  std::string m;
  EXPECT_FALSE(d.next(&m));
}

TEST(DeframerTest, SplitByteByByte) {
  const std::vector<std::string> msgs = {"hello", "", pattern(1000), "world"};
  std::string stream;
  for (const auto& m : msgs) stream += frameMessage(m);
  Deframer d(4096);
  std::vector<std::string> got;
  bool sawPartial = false;
  for (size_t i = 0; i < stream.size(); ++i) {
    d.feed(reinterpret_cast<const uint8_t*>(stream.data()) + i, 1);
    for (auto& m : drain(d)) got.push_back(std::move(m));
    if (d.buffered() > 0) sawPartial = true;
    ASSERT_FALSE(d.failed()) << d.error();
  }
  EXPECT_TRUE(sawPartial);
  EXPECT_EQ(got, msgs);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(DeframerTest, IncompleteMessageIsBuffered) {
  std::string frame = frameMessage("0123456789");
  Deframer d(64);
  d.feed(reinterpret_cast<const uint8_t*>(frame.data()), 3);
  std::string m;
  EXPECT_FALSE(d.next(&m));
  EXPECT_EQ(d.buffered(), 3u);
  d.feed(reinterpret_cast<const uint8_t*>(frame.data()) + 3, 7);
  EXPECT_FALSE(d.next(&m));
  EXPECT_EQ(d.buffered(), 10u);
  EXPECT_FALSE(d.failed());
  d.feed(reinterpret_cast<const uint8_t*>(frame.data()) + 10, frame.size() - 10);
  ASSERT_TRUE(d.next(&m));
  EXPECT_EQ(m, "0123456789");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(DeframerTest, ZeroLengthMessage) {
  Deframer d(16);
  const uint8_t zero[5] = {0, 0, 0, 0, 0};
  d.feed(zero, 5);
  std::string m = "stale";
  ASSERT_TRUE(d.next(&m));
  EXPECT_EQ(m, "");
  EXPECT_FALSE(d.next(&m));
  EXPECT_FALSE(d.failed());
  EXPECT_EQ(d.buffered(), 0u);

  Deframer strict(0);  // a 0-byte limit still admits empty messages
  strict.feed(zero, 5);
  ASSERT_TRUE(strict.next(&m));
  EXPECT_EQ(m, "");
}

TEST(DeframerTest, OversizedMessageFailsAndSticks) {
  Deframer d(10);
  std::string ok = frameMessage("0123456789");  // exactly the limit
  d.feed(reinterpret_cast<const uint8_t*>(ok.data()), ok.size());
  std::string m;
  ASSERT_TRUE(d.next(&m));
  EXPECT_EQ(m, "0123456789");

  std::string tooBig = frameMessage("0123456789A");
  d.feed(reinterpret_cast<const uint8_t*>(tooBig.data()), tooBig.size());
  EXPECT_FALSE(d.next(&m));
  EXPECT_TRUE(d.failed());
  EXPECT_FALSE(d.error().empty());
  // Sticky: valid messages after it are not delivered.
  d.feed(reinterpret_cast<const uint8_t*>(ok.data()), ok.size());
  EXPECT_FALSE(d.next(&m));
  EXPECT_TRUE(d.failed());
}

TEST(DeframerTest, OversizedLengthFailsBeforeTheBodyArrives) {
  // A 4 GiB length must not make the deframer wait for (and buffer) 4 GiB.
  Deframer d(1 << 20);
  const uint8_t header[5] = {0, 0xff, 0xff, 0xff, 0xff};
  d.feed(header, 5);
  std::string m;
  EXPECT_FALSE(d.next(&m));
  EXPECT_TRUE(d.failed());
  EXPECT_FALSE(d.error().empty());
}

TEST(DeframerTest, CompressedFlagFails) {
  for (uint8_t flag : {uint8_t{1}, uint8_t{2}, uint8_t{0x80}}) {
    SCOPED_TRACE(static_cast<int>(flag));
    Deframer d(64);
    std::string frame = frameMessage("abc");
    frame[0] = static_cast<char>(flag);
    d.feed(reinterpret_cast<const uint8_t*>(frame.data()), frame.size());
    std::string m;
    EXPECT_FALSE(d.next(&m));
    EXPECT_TRUE(d.failed());
    EXPECT_FALSE(d.error().empty());
    std::string ok = frameMessage("x");
    d.feed(reinterpret_cast<const uint8_t*>(ok.data()), ok.size());
    EXPECT_FALSE(d.next(&m));
  }
}

}  // namespace
}  // namespace ep::grpclite
