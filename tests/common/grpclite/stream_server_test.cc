// grpclite's TCP server (cloudcore's tunnel transport) against grpclite's client (edgecore's,
// on wolfSSL) and gRPC++'s generic stub: calls of every shape, mutual TLS, session resumption
// across a restart, cancellation and stopping.
#include "common/grpclite/stream_server.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "common/grpclite/channel.h"
#include "tests/common/grpclite/test_certs.h"
#include "tests/testing/eventually.h"
#include "tests/testing/grpc_generic.h"

namespace ep::grpclite {
namespace {

using namespace std::chrono_literals;
using ep::testing::eventually;

// Server side: "/t.E/Bidi" echoes each message ("finish" ends the call OK, "fail" with
// NOT_FOUND); "/t.E/Peer" answers who the client is; "/t.E/Hold" reads and waits for the end.
struct Counters {
  std::atomic<int> reads{0};  // messages the observers received
  std::atomic<int> cancels{0};
  std::atomic<int> dones{0};
};

class EchoObserver final : public ServerCallObserver {
 public:
  EchoObserver(std::shared_ptr<ServerCall> call, Counters& counters, bool hold)
      : call_(std::move(call)), counters_(counters), hold_(hold) {}
  void onReadDone(bool ok, std::string&& message) override {
    if (!ok) {
      call_->finish({});
      return;
    }
    counters_.reads++;
    if (message == "finish") return call_->finish({});
    if (message == "fail") return call_->finish({RpcCode::kNotFound, "no such thing: 100%"});
    if (hold_) return call_->startRead();
    call_->startWrite("echo:" + message);
  }
  void onWriteDone(bool ok) override {
    if (ok) call_->startRead();
  }
  void onCancel() override {
    counters_.cancels++;
    call_->finish({RpcCode::kCancelled, "cancelled"});
  }
  void onDone() override { counters_.dones++; }

 private:
  std::shared_ptr<ServerCall> call_;
  Counters& counters_;
  const bool hold_;
};

class PeerObserver final : public ServerCallObserver {
 public:
  PeerObserver(std::shared_ptr<ServerCall> call, std::string answer)
      : call_(std::move(call)), answer_(std::move(answer)) {}
  void onReadDone(bool ok, std::string&&) override {
    if (!ok) return call_->finish({RpcCode::kInvalidArgument, "no request"});
    call_->startWrite(answer_);
  }
  void onWriteDone(bool) override { call_->finish({}); }
  void onCancel() override { call_->finish({RpcCode::kCancelled, ""}); }
  void onDone() override {}

 private:
  std::shared_ptr<ServerCall> call_;
  const std::string answer_;
};

class RecordingHandler : public CallHandler {
 public:
  void onMessage(std::string&& bytes) override {
    std::lock_guard lock(mu_);
    messages_.push_back(std::move(bytes));
    cv_.notify_all();
  }
  void onDone(const RpcStatus& status) override {
    std::lock_guard lock(mu_);
    status_ = status;
    cv_.notify_all();
  }
  bool waitMessages(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return messages_.size() >= n; });
  }
  RpcStatus waitDone() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return status_.has_value(); });
    return status_.value_or(RpcStatus{RpcCode::kUnknown, "onDone did not run"});
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> messages_;
  std::optional<RpcStatus> status_;
};

class StreamServerTest : public ::testing::Test {
 protected:
  std::unique_ptr<StreamServer> makeServer(std::optional<StreamServerTls> tls,
                                           size_t maxMessageBytes = 4 << 20) {
    StreamServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.tls = std::move(tls);
    o.maxMessageBytes = maxMessageBytes;
    return std::make_unique<StreamServer>(
        o,
        [this](const std::string& method, const PeerInfo& peer,
               std::shared_ptr<ServerCall> call) -> std::shared_ptr<ServerCallObserver> {
          std::shared_ptr<ServerCallObserver> observer;
          if (method == "/t.E/Stall") {
            // Reads nothing: what the client sends stays unread until the call ends.
            return std::make_shared<EchoObserver>(call, counters_, true);
          }
          if (method == "/t.E/Bidi" || method == "/t.E/Hold") {
            observer = std::make_shared<EchoObserver>(call, counters_, method == "/t.E/Hold");
          } else if (method == "/t.E/Peer") {
            std::string who = "none";
            if (peer.certificate != nullptr) {
              char cn[256] = {};
              X509_NAME_get_text_by_NID(X509_get_subject_name(const_cast<X509*>(peer.certificate)),
                                        NID_commonName, cn, sizeof cn);
              who = std::string("cn:") + cn;
            }
            if (peer.address.rfind("ipv4:127.0.0.1:", 0) != 0) who = "bad address " + peer.address;
            observer = std::make_shared<PeerObserver>(call, who);
          } else {
            return nullptr;
          }
          call->startRead();
          return observer;
        });
  }

  static StreamServerTls serverTls(std::string ticketKey = "") {
    const auto& pki = testing::testPki();
    StreamServerTls tls;
    tls.certPem = pki.server.certPem;
    tls.keyPem = pki.server.keyPem;
    tls.clientCaPem = pki.ca.certPem;
    tls.ticketKey = std::move(ticketKey);
    return tls;
  }

  static ChannelOptions clientTls(const testing::KeyCert* client,
                                  std::shared_ptr<TlsSessionCache> cache = nullptr) {
    ChannelOptions o;
    o.tls.enabled = true;
    o.tls.caPem = testing::testPki().ca.certPem;
    if (client != nullptr) {
      o.tls.certPem = client->certPem;
      o.tls.keyPem = client->keyPem;
    }
    o.tls.sessionCache = std::move(cache);
    return o;
  }

  static std::string target(const StreamServer& s) {
    return "127.0.0.1:" + std::to_string(s.port());
  }

  static RpcStatus unary(const std::string& target, const ChannelOptions& o,
                         const std::string& method, std::string* response) {
    auto channel = Channel::create(target, o);
    return channel->unary(method, "x", response, 10s);
  }

  Counters counters_;
};

TEST_F(StreamServerTest, BidiAndUnaryCallsOverPlaintextHttp2) {
  auto server = makeServer(std::nullopt);
  ASSERT_TRUE(server->start().isOk());

  auto channel = Channel::create(target(*server));
  auto handler = std::make_shared<RecordingHandler>();
  auto call = channel->startCall("/t.E/Bidi", handler);
  for (const char* m : {"a", "b", "c"}) ASSERT_EQ(call->write(m), WriteResult::kQueued);
  ASSERT_TRUE(handler->waitMessages(3));
  call->writesDone();
  EXPECT_TRUE(handler->waitDone().ok());
  EXPECT_EQ(handler->messages(), (std::vector<std::string>{"echo:a", "echo:b", "echo:c"}));
  EXPECT_TRUE(eventually([&] { return counters_.dones.load() == 1; }));
  EXPECT_EQ(counters_.cancels.load(), 0);

  // gRPC++ as the client, and statuses with their messages.
  auto grpcChannel = grpc::CreateChannel(target(*server), grpc::InsecureChannelCredentials());
  std::string response;
  auto st = ep::testing::genericUnaryCall(grpcChannel, "/t.E/Peer", "x", &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(response, "none");
  st = ep::testing::genericUnaryCall(grpcChannel, "/t.E/Bidi", "fail", &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "no such thing: 100%");
  st = ep::testing::genericUnaryCall(grpcChannel, "/t.E/Nope", "x", &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(st.error_message(), "unknown method /t.E/Nope");
}

TEST_F(StreamServerTest, ServerFinishingFirstEndsTheCallForTheClient) {
  auto server = makeServer(std::nullopt);
  ASSERT_TRUE(server->start().isOk());
  auto channel = Channel::create(target(*server));
  auto handler = std::make_shared<RecordingHandler>();
  auto call = channel->startCall("/t.E/Bidi", handler);
  call->write("finish");  // the client's side stays open
  EXPECT_TRUE(handler->waitDone().ok());
  EXPECT_TRUE(eventually([&] { return counters_.dones.load() == 1; }));
}

TEST_F(StreamServerTest, OversizedMessageEndsTheCallResourceExhausted) {
  auto server = makeServer(std::nullopt, 1024);
  ASSERT_TRUE(server->start().isOk());
  auto channel = Channel::create(target(*server));
  auto handler = std::make_shared<RecordingHandler>();
  auto call = channel->startCall("/t.E/Bidi", handler);
  call->write("small");
  ASSERT_TRUE(handler->waitMessages(1));
  call->write(std::string(4096, 'x'));
  auto st = handler->waitDone();
  EXPECT_EQ(st.code, RpcCode::kResourceExhausted) << st.toString();
  EXPECT_TRUE(eventually([&] { return counters_.cancels.load() == 1; }));
  EXPECT_TRUE(eventually([&] { return counters_.dones.load() == 1; }));
  // The connection serves the next call.
  std::string response;
  EXPECT_TRUE(channel->unary("/t.E/Peer", "x", &response, 10s).ok());
}

TEST_F(StreamServerTest, ClientCancelReachesTheObserverWhichStillGetsOnDone) {
  auto server = makeServer(std::nullopt);
  ASSERT_TRUE(server->start().isOk());
  auto channel = Channel::create(target(*server));
  auto handler = std::make_shared<RecordingHandler>();
  auto call = channel->startCall("/t.E/Hold", handler);
  call->write("a");
  ASSERT_TRUE(eventually([&] { return counters_.reads.load() == 1; }));
  call->cancel();
  EXPECT_EQ(handler->waitDone().code, RpcCode::kCancelled);
  EXPECT_TRUE(eventually([&] { return counters_.cancels.load() == 1; }));
  EXPECT_TRUE(eventually([&] { return counters_.dones.load() == 1; }));
}

// Bytes of messages nobody read are given back to flow control when their call ends: otherwise
// the connection's window shrinks with every such call until no stream on it can send.
TEST_F(StreamServerTest, UnreadBytesOfEndedCallsGoBackToTheConnectionWindow) {
  auto server = makeServer(std::nullopt);
  ASSERT_TRUE(server->start().isOk());
  auto channel = Channel::create(target(*server));
  const std::string chunk(4000, 'x');
  for (int i = 0; i < 40; ++i) {  // 40 x 60,000 bytes: beyond the 1 MiB connection window
    auto handler = std::make_shared<RecordingHandler>();
    auto call = channel->startCall("/t.E/Stall", handler);
    for (int m = 0; m < 15; ++m) ASSERT_EQ(call->write(chunk), WriteResult::kQueued);
    ASSERT_TRUE(eventually([&] { return call->queuedMessages() == 0; }))
        << "call " << i << ": the stream's window did not take 60,000 bytes";
    call->cancel();
    EXPECT_EQ(handler->waitDone().code, RpcCode::kCancelled);
  }
  auto handler = std::make_shared<RecordingHandler>();
  auto call = channel->startCall("/t.E/Bidi", handler);
  call->write("still");
  ASSERT_TRUE(handler->waitMessages(1)) << "the connection can no longer send";
  EXPECT_EQ(handler->messages().front(), "echo:still");
  call->writesDone();
  EXPECT_TRUE(handler->waitDone().ok());
}

TEST_F(StreamServerTest, StopCancelsOpenCallsAndEveryObserverGetsOnDone) {
  auto server = makeServer(std::nullopt);
  ASSERT_TRUE(server->start().isOk());
  auto channel = Channel::create(target(*server));
  std::vector<std::shared_ptr<RecordingHandler>> handlers;
  std::vector<std::shared_ptr<Call>> calls;
  for (int i = 0; i < 3; ++i) {
    handlers.push_back(std::make_shared<RecordingHandler>());
    calls.push_back(channel->startCall("/t.E/Hold", handlers.back()));
    calls.back()->write("a");
  }
  ASSERT_TRUE(eventually([&] { return counters_.reads.load() == 3; }));
  server->stop(0ms);
  EXPECT_EQ(counters_.cancels.load(), 3);
  EXPECT_EQ(counters_.dones.load(), 3);
  for (auto& h : handlers) EXPECT_FALSE(h->waitDone().ok());
}

TEST_F(StreamServerTest, MutualTlsHandsTheVerifiedClientCertificateToTheCall) {
  auto server = makeServer(serverTls());
  ASSERT_TRUE(server->start().isOk());
  const auto& pki = testing::testPki();
  std::string response;
  ASSERT_TRUE(unary(target(*server), clientTls(&pki.client), "/t.E/Peer", &response).ok());
  EXPECT_EQ(response, "cn:system:node:n1");
  ASSERT_TRUE(unary(target(*server), clientTls(nullptr), "/t.E/Peer", &response).ok());
  EXPECT_EQ(response, "none") << "a client may present no certificate; the handler decides";

  // A certificate from another CA fails the handshake.
  testing::KeyCert stranger = testing::makeLeaf(
      pki.otherCa,
      {.commonName = "system:node:n1", .organization = "system:nodes", .clientAuth = true});
  auto st = unary(target(*server), clientTls(&stranger), "/t.E/Peer", &response);
  EXPECT_EQ(st.code, RpcCode::kUnavailable) << st.toString();

  // Plaintext HTTP/2 on the TLS port gets nowhere.
  ChannelOptions plain;
  plain.connectTimeout = 2s;
  st = unary(target(*server), plain, "/t.E/Peer", &response);
  EXPECT_EQ(st.code, RpcCode::kUnavailable) << st.toString();
}

TEST_F(StreamServerTest, SessionsResumeAcrossARestartWithTheSameTicketKey) {
  const std::string key(80, 'k');
  auto server = makeServer(serverTls(key));
  ASSERT_TRUE(server->start().isOk());
  const auto& pki = testing::testPki();
  auto cache = std::make_shared<TlsSessionCache>();
  std::string response;
  ASSERT_TRUE(unary(target(*server), clientTls(&pki.client, cache), "/t.E/Peer", &response).ok());
  EXPECT_EQ(cache->full(), 1u);
  ASSERT_TRUE(unary(target(*server), clientTls(&pki.client, cache), "/t.E/Peer", &response).ok());
  EXPECT_EQ(cache->resumed(), 1u) << "the second connection resumes";
  EXPECT_EQ(response, "cn:system:node:n1")
      << "a resumed session still carries the client certificate";

  // A new server (a restart) with the same key: still resumed.
  server->stop();
  server = makeServer(serverTls(key));
  ASSERT_TRUE(server->start().isOk());
  ASSERT_TRUE(unary(target(*server), clientTls(&pki.client, cache), "/t.E/Peer", &response).ok());
  EXPECT_EQ(cache->resumed(), 2u);
  EXPECT_EQ(response, "cn:system:node:n1");

  // Another key: the ticket is refused and a full handshake follows, which succeeds.
  server->stop();
  server = makeServer(serverTls(std::string(80, 'o')));
  ASSERT_TRUE(server->start().isOk());
  ASSERT_TRUE(unary(target(*server), clientTls(&pki.client, cache), "/t.E/Peer", &response).ok());
  EXPECT_EQ(cache->resumed(), 2u);
  EXPECT_EQ(cache->full(), 2u);
}

// A ticket expires ticketLifetime after it was issued; a connection open longer than half of it
// gets a fresh one, which the client keeps (on its keepalive PING's answer), so that it can still
// resume after the first ticket expired. Waits for the expiry: this test is about wall time.
TEST_F(StreamServerTest, LongLivedConnectionsGetFreshTickets) {
  const std::string key(80, 'k');
  auto tls = serverTls(key);
  tls.ticketLifetime = std::chrono::seconds(4);
  auto server = makeServer(tls);
  ASSERT_TRUE(server->start().isOk());
  const auto& pki = testing::testPki();
  auto kept = std::make_shared<TlsSessionCache>();   // on a connection that stays open
  auto stale = std::make_shared<TlsSessionCache>();  // only the first ticket
  std::string response;
  ASSERT_TRUE(unary(target(*server), clientTls(&pki.client, stale), "/t.E/Peer", &response).ok());
  auto o = clientTls(&pki.client, kept);
  o.keepaliveTime = 300ms;
  auto channel = Channel::create(target(*server), o);
  auto handler = std::make_shared<RecordingHandler>();
  auto call = channel->startCall("/t.E/Hold", handler);
  call->write("a");
  ASSERT_TRUE(eventually([&] { return counters_.reads.load() == 1; }));
  const auto expired = std::chrono::steady_clock::now() + 5s;  // both first tickets are stale
  EXPECT_TRUE(eventually([&] { return std::chrono::steady_clock::now() > expired; }, 10s));

  ASSERT_TRUE(unary(target(*server), clientTls(&pki.client, kept), "/t.E/Peer", &response).ok());
  EXPECT_EQ(kept->resumed(), 1u) << "the refreshed ticket resumes";
  ASSERT_TRUE(unary(target(*server), clientTls(&pki.client, stale), "/t.E/Peer", &response).ok());
  EXPECT_EQ(stale->resumed(), 0u) << "an expired ticket does not";
  EXPECT_EQ(stale->full(), 2u);
  call->cancel();
}

TEST_F(StreamServerTest, BadTlsMaterialIsAnErrorNamingTheField) {
  auto tls = serverTls();
  tls.keyPem = testing::testPki().client.keyPem;
  auto st = makeServer(tls)->start();
  EXPECT_NE(st.message().find("tls.keyPem"), std::string::npos) << st.toString();
  tls = serverTls();
  tls.certPem = "garbage";
  st = makeServer(tls)->start();
  EXPECT_NE(st.message().find("tls.certPem"), std::string::npos) << st.toString();
  tls = serverTls("short");
  st = makeServer(tls)->start();
  EXPECT_NE(st.message().find("tls.ticketKey"), std::string::npos) << st.toString();
}

TEST_F(StreamServerTest, PortInUseIsRefused) {
  auto a = makeServer(std::nullopt);
  ASSERT_TRUE(a->start().isOk());
  StreamServerOptions o;
  o.host = "127.0.0.1";
  o.port = a->port();
  StreamServer b(o, [](const std::string&, const PeerInfo&, std::shared_ptr<ServerCall>) {
    return std::shared_ptr<ServerCallObserver>();
  });
  EXPECT_FALSE(b.start().isOk());
}

}  // namespace
}  // namespace ep::grpclite
