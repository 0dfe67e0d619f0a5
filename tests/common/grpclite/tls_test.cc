// grpclite over TLS (ChannelOptions::tls) against an in-process grpc++ server with
// SslServerCredentials that requires and verifies client certificates (mTLS, as cloudhub will),
// plus raw OpenSSL and garbage-speaking servers for what grpc++ cannot be made to do.
// Certificates are made at run time (test_certs.h).
#include <arpa/inet.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/grpclite/channel.h"
#include "proto/grpc_runtime.h"
#include "tests/common/grpclite/test_certs.h"
#include "tests/common/grpclite/test_service.grpc.pb.h"
#include "tests/testing/temp_dir.h"

// LeakSanitizer: the gRPC++ test servers' own TLS (OpenSSL per-thread state and SSL objects
// freed by gRPC's background threads) can still be allocated when the test binary exits; the
// allocation stack ends inside libcrypto (built without frame pointers), so nothing of
// grpclite shows. Seen once in CI (904 bytes from CRYPTO_zalloc); suppressed for this binary
// only. grpclite's own OpenSSL objects are owned by RAII and covered by its other tests.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libcrypto.so\n";
}

namespace ep::grpclite {

// gtest prints RpcCode by name (found by ADL, so not in the anonymous namespace).
void PrintTo(RpcCode code, std::ostream* os) {
  *os << rpcCodeName(code);
}

namespace {

namespace gt = ::ep::grpclite::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::KeyCert;
using testing::testPki;

// Before any gRPC server exists (see grpc_runtime.h).
[[maybe_unused]] const bool kTuned = (ep::tuneGrpcRuntime(), true);
// The raw servers below write (and OpenSSL sends session tickets) to sockets the client may have
// closed already; grpclite itself never raises SIGPIPE (Asio sends with MSG_NOSIGNAL).
[[maybe_unused]] const bool kNoSigpipe = (std::signal(SIGPIPE, SIG_IGN), true);

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

bool contains(const std::string& haystack, const std::string& needle) {
  return lower(haystack).find(lower(needle)) != std::string::npos;
}

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

std::string msgBytes(const std::string& text, const std::string& blob = {}, int repeat = 0) {
  gt::Msg m;
  m.set_text(text);
  m.set_blob(blob);
  m.set_repeat(repeat);
  return m.SerializeAsString();
}

gt::Msg parseMsg(const std::string& bytes) {
  gt::Msg m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

// ---- grpc++ server ---------------------------------------------------------------------------

// Echoes, and remembers the common name of the last client certificate it saw.
class EchoService final : public gt::Echo::Service {
 public:
  grpc::Status Unary(grpc::ServerContext* ctx, const gt::Msg* req, gt::Msg* resp) override {
    record(ctx);
    *resp = *req;
    return grpc::Status::OK;
  }
  grpc::Status ServerStream(grpc::ServerContext* ctx, const gt::Msg* req,
                            grpc::ServerWriter<gt::Msg>* writer) override {
    record(ctx);
    for (int i = 0; i < req->repeat(); ++i) {
      gt::Msg m = *req;
      m.set_text(req->text() + "#" + std::to_string(i));
      if (!writer->Write(m)) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    return grpc::Status::OK;
  }
  grpc::Status Bidi(grpc::ServerContext* ctx,
                    grpc::ServerReaderWriter<gt::Msg, gt::Msg>* stream) override {
    record(ctx);
    gt::Msg m;
    while (stream->Read(&m)) {
      if (!stream->Write(m)) break;
    }
    return grpc::Status::OK;
  }

  std::string peerCommonName() {
    std::lock_guard lock(mu_);
    return peerCn_;
  }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  void record(grpc::ServerContext* ctx) {
    std::string cn;
    if (auto auth = ctx->auth_context()) {
      auto values = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
      if (!values.empty()) cn.assign(values[0].data(), values[0].size());
    }
    std::lock_guard lock(mu_);
    peerCn_ = cn;
    ++calls_;
  }

  std::mutex mu_;
  std::string peerCn_;  // guarded by mu_
  int calls_ = 0;       // guarded by mu_
};

class TlsServer {
 public:
  TlsServer(EchoService* service, const std::string& address, bool requireClientCert = true) {
    const auto& pki = testPki();
    grpc::SslServerCredentialsOptions o(
        requireClientCert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                          : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    o.pem_root_certs = pki.ca.certPem;
    o.pem_key_cert_pairs.push_back({pki.server.keyPem, pki.server.certPem});
    grpc::ServerBuilder b;
    b.AddListeningPort(address, grpc::SslServerCredentials(o), &port_);
    b.RegisterService(service);
    b.SetMaxReceiveMessageSize(64 << 20);
    b.SetMaxSendMessageSize(64 << 20);
    server_ = b.BuildAndStart();
  }
  ~TlsServer() {
    if (!server_) return;
    server_->Shutdown(std::chrono::system_clock::now() + 100ms);
    server_->Wait();
  }
  bool started() const { return server_ != nullptr && port_ != 0; }
  int port() const { return port_; }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// ---- raw servers -----------------------------------------------------------------------------

// A 127.0.0.1 listener whose thread runs `serve(fd)` for each accepted connection, one at a
// time, until destroyed.
class RawServer {
 public:
  explicit RawServer(std::function<void(int fd)> serve) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 16) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
    thread_ = std::thread([this] { run(); });
  }
  ~RawServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    if (int c = conn_.load(); c >= 0) ::shutdown(c, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      conn_ = c;
      if (!stop_) serve_(c);
      conn_ = -1;
      ::close(c);
    }
  }

  std::function<void(int)> serve_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> conn_{-1};
  std::thread thread_;
};

// Reads until the peer closes (or the server is stopped).
void drain(int fd) {
  char buf[4096];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

// Writes `payload` instead of a TLS ServerHello, then closes.
void speakGarbage(int fd, const std::string& payload) {
  pollfd p{fd, POLLIN, 0};
  ::poll(&p, 1, 1000);  // the ClientHello
  char buf[4096];
  (void)!::read(fd, buf, sizeof buf);
  if (!payload.empty()) (void)!::write(fd, payload.data(), payload.size());
  ::shutdown(fd, SHUT_WR);
  drain(fd);
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

// An OpenSSL server with the test server certificate: TLS 1.2 or 1.3, ALPN selection optional.
// After the handshake it reads and never answers.
std::shared_ptr<SSL_CTX> rawServerContext(int maxVersion, bool selectH2) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SslCtxFree());
  const auto& pki = testPki();
  BIO* cert = BIO_new_mem_buf(pki.server.certPem.data(), -1);
  BIO* key = BIO_new_mem_buf(pki.server.keyPem.data(), -1);
  X509* x = PEM_read_bio_X509(cert, nullptr, nullptr, nullptr);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
  SSL_CTX_use_certificate(ctx.get(), x);
  SSL_CTX_use_PrivateKey(ctx.get(), k);
  X509_free(x);
  EVP_PKEY_free(k);
  BIO_free(cert);
  BIO_free(key);
  SSL_CTX_set_max_proto_version(ctx.get(), maxVersion);
  if (selectH2) {
    SSL_CTX_set_alpn_select_cb(
        ctx.get(),
        [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
           unsigned int inlen, void*) {
          static const unsigned char kH2[] = {2, 'h', '2'};
          unsigned char* selected = nullptr;
          if (SSL_select_next_proto(&selected, outlen, kH2, sizeof kH2, in, inlen) !=
              OPENSSL_NPN_NEGOTIATED) {
            return SSL_TLSEXT_ERR_ALERT_FATAL;
          }
          *out = selected;
          return SSL_TLSEXT_ERR_OK;
        },
        nullptr);
  }
  return ctx;
}

void serveTls(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    char buf[4096];
    while (SSL_read(ssl, buf, sizeof buf) > 0) {
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
}

// ---- client side -----------------------------------------------------------------------------

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

// mTLS as the node uses it: the cluster CA, the node's client certificate.
ChannelOptions mtls() {
  const auto& pki = testPki();
  ChannelOptions o;
  o.connectTimeout = 3000ms;
  o.tls.enabled = true;
  o.tls.caPem = pki.ca.certPem;
  o.tls.certPem = pki.client.certPem;
  o.tls.keyPem = pki.client.keyPem;
  return o;
}

RpcStatus unaryText(Channel& ch, const std::string& text, std::string* echoed = nullptr) {
  std::string out;
  RpcStatus s = ch.unary(kUnary, msgBytes(text), &out, 3000ms);
  if (s.ok() && echoed != nullptr) *echoed = parseMsg(out).text();
  return s;
}

class GrpcliteTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TlsServer>(&service_, "127.0.0.1:0");
    ASSERT_TRUE(server_->started());
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  EchoService service_;
  std::unique_ptr<TlsServer> server_;
};

TEST_F(GrpcliteTlsTest, UnaryOverMutualTlsAndServerSeesClientCommonName) {
  auto ch = Channel::create(target(), mtls());
  std::string echoed;
  RpcStatus s = unaryText(*ch, "hello over tls", &echoed);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(echoed, "hello over tls");
  EXPECT_EQ(service_.peerCommonName(), "system:node:n1");
  // Same connection.
  s = unaryText(*ch, "again", &echoed);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(echoed, "again");
}

TEST_F(GrpcliteTlsTest, BidiStreamOverMutualTls) {
  auto ch = Channel::create(target(), mtls());
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  constexpr int kCount = 500;
  for (int i = 0; i < kCount; ++i) {
    // Every 50th message spans several TLS records.
    const std::string blob = i % 50 == 0 ? pattern(100 << 10) : std::string();
    ASSERT_EQ(call->write(msgBytes("m" + std::to_string(i), blob)), WriteResult::kQueued) << i;
  }
  call->writesDone();
  ASSERT_TRUE(h->waitDone(5000ms));
  EXPECT_TRUE(h->status().ok()) << h->status().toString();
  auto msgs = h->messages();
  ASSERT_EQ(msgs.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    gt::Msg m = parseMsg(msgs[i]);
    ASSERT_EQ(m.text(), "m" + std::to_string(i)) << i;
    if (i % 50 == 0) {
      ASSERT_TRUE(m.blob() == pattern(100 << 10)) << "blob " << i << " corrupted";
    }
  }
  EXPECT_EQ(service_.peerCommonName(), "system:node:n1");
}

TEST_F(GrpcliteTlsTest, LargeServerStreamAcrossManyRecords) {
  ChannelOptions o = mtls();
  o.maxReceiveMessageBytes = 8 << 20;
  auto ch = Channel::create(target(), o);
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kServerStream, h);
  const std::string blob = pattern(3 << 20);
  ASSERT_EQ(call->write(msgBytes("big", blob, 2)), WriteResult::kQueued);
  call->writesDone();
  ASSERT_TRUE(h->waitDone(5000ms));
  EXPECT_TRUE(h->status().ok()) << h->status().toString();
  auto msgs = h->messages();
  ASSERT_EQ(msgs.size(), 2u);
  for (auto& bytes : msgs) EXPECT_TRUE(parseMsg(bytes).blob() == blob);
}

// The name check covers DNS SANs too: "localhost" is resolved and matched by name.
TEST_F(GrpcliteTlsTest, HostNameTargetIsCheckedAgainstDnsSans) {
  auto ch = Channel::create("localhost:" + std::to_string(server_->port()), mtls());
  RpcStatus s = unaryText(*ch, "by name");
  EXPECT_TRUE(s.ok()) << s.toString();

  ChannelOptions o = mtls();
  o.tls.serverName = "localhost";  // explicitly, for an IP target
  ch = Channel::create(target(), o);
  s = unaryText(*ch, "by serverName");
  EXPECT_TRUE(s.ok()) << s.toString();
}

TEST_F(GrpcliteTlsTest, WrongCaFailsCertificateVerify) {
  ChannelOptions o = mtls();
  o.tls.caPem = testPki().otherCa.certPem;
  auto ch = Channel::create(target(), o);
  auto start = Clock::now();
  RpcStatus s = unaryText(*ch, "x");
  EXPECT_LT(since(start), 2000ms);
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  // No anchor for the server's certificate (wolfSSL's wording).
  EXPECT_EQ(s.message, "TLS handshake with " + target() +
                           ": certificate verify failed (unable to verify the first certificate)");
  EXPECT_EQ(service_.calls(), 0);

  // Several anchors in one PEM: the right one among them is enough.
  o.tls.caPem = testPki().otherCa.certPem + "\n" + testPki().ca.certPem;
  ch = Channel::create(target(), o);
  s = unaryText(*ch, "x");
  EXPECT_TRUE(s.ok()) << s.toString();
}

TEST_F(GrpcliteTlsTest, WrongServerNameFails) {
  for (const char* name : {"cloudhub.example", "127.0.0.2", "localhost.evil"}) {
    SCOPED_TRACE(name);
    ChannelOptions o = mtls();
    o.tls.serverName = name;
    auto ch = Channel::create(target(), o);
    RpcStatus s = unaryText(*ch, "x");
    EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
    EXPECT_TRUE(contains(s.message, "certificate verify failed")) << s.message;
    EXPECT_TRUE(contains(s.message, "mismatch")) << s.message;  // hostname / IP address mismatch
  }
  EXPECT_EQ(service_.calls(), 0);
}

TEST_F(GrpcliteTlsTest, InsecureSkipVerifyConnectsToAnyServer) {
  ChannelOptions o = mtls();
  o.tls.insecureSkipVerify = true;
  o.tls.caPem.clear();
  o.tls.serverName = "not-the-server.example";
  auto ch = Channel::create(target(), o);
  RpcStatus s = unaryText(*ch, "join");
  EXPECT_TRUE(s.ok()) << s.toString();

  o.tls.caPem = testPki().otherCa.certPem;  // ignored
  ch = Channel::create(target(), o);
  s = unaryText(*ch, "join");
  EXPECT_TRUE(s.ok()) << s.toString();
}

TEST_F(GrpcliteTlsTest, NoClientCertificateIsRefusedByTheServer) {
  ChannelOptions o = mtls();
  o.tls.certPem.clear();
  o.tls.keyPem.clear();
  auto ch = Channel::create(target(), o);
  auto start = Clock::now();
  RpcStatus s = unaryText(*ch, "x");
  EXPECT_LT(since(start), 2500ms);
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  // grpc++ closes the connection without sending its alert.
  EXPECT_TRUE(contains(s.message, "client certificate") || contains(s.message, "alert"))
      << s.message;
  EXPECT_EQ(service_.calls(), 0);

  // A client certificate from another CA is refused too.
  const KeyCert stranger =
      testing::makeLeaf(testPki().otherCa, {.commonName = "system:node:n1", .clientAuth = true});
  o.tls.certPem = stranger.certPem;
  o.tls.keyPem = stranger.keyPem;
  ch = Channel::create(target(), o);
  s = unaryText(*ch, "x");
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_EQ(service_.calls(), 0);
}

TEST(GrpcliteTlsServerTest, ServerWithoutClientAuthAcceptsNoCertificate) {
  EchoService service;
  TlsServer server(&service, "127.0.0.1:0", /*requireClientCert=*/false);
  ASSERT_TRUE(server.started());
  ChannelOptions o = mtls();
  o.tls.certPem.clear();
  o.tls.keyPem.clear();
  o.tls.tls13Only = false;
  auto ch = Channel::create("127.0.0.1:" + std::to_string(server.port()), o);
  RpcStatus s = unaryText(*ch, "anonymous");
  EXPECT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(service.peerCommonName(), "");
}

TEST(GrpcliteTlsUnixSocketTest, UnixSocketTargetUsesServerName) {
  ::ep::testing::TempDir dir;
  const std::string path = dir.path() + "/tls.sock";
  EchoService service;
  TlsServer server(&service, "unix:" + path);
  ASSERT_TRUE(server.started());

  ChannelOptions o = mtls();
  o.tls.serverName = "localhost";
  auto ch = Channel::create("unix://" + path, o);
  std::string echoed;
  RpcStatus s = unaryText(*ch, "over unix", &echoed);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(echoed, "over unix");
  EXPECT_EQ(service.peerCommonName(), "system:node:n1");

  o.tls.serverName = "127.0.0.1";  // an IP SAN of the certificate
  ch = Channel::create(path, o);
  EXPECT_TRUE(unaryText(*ch, "x").ok());

  o.tls.serverName = "cloudhub.example";
  ch = Channel::create(path, o);
  s = unaryText(*ch, "x");
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_TRUE(contains(s.message, "mismatch")) << s.message;

  // Nothing to check the certificate against.
  o.tls.serverName.clear();
  ch = Channel::create(path, o);
  s = unaryText(*ch, "x");
  EXPECT_EQ(s.code, RpcCode::kInvalidArgument) << s.toString();
  EXPECT_TRUE(contains(s.message, "tls.serverName")) << s.message;
}

// Options that cannot work end every call at once with INVALID_ARGUMENT naming the field, and
// never reach the network (nor, for an encrypted key, the terminal).
TEST_F(GrpcliteTlsTest, UnusableOptionsNameTheField) {
  const auto& pki = testPki();
  const std::string garbage = "this is not PEM\n\x01\x02\xff";
  const std::string badBase64 =
      "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n";
  const std::string badKeyBase64 =
      "-----BEGIN PRIVATE KEY-----\nAAAA####\n-----END PRIVATE KEY-----\n";
  struct Case {
    const char* name;
    std::function<void(TlsOptions&)> mutate;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"garbage key", [&](TlsOptions& t) { t.keyPem = garbage; }, "tls.keyPem: "},
      {"DER garbage in a key block",
       [&](TlsOptions& t) {
         t.keyPem = "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n";
       },
       "tls.keyPem: "},
      {"corrupt key block", [&](TlsOptions& t) { t.keyPem = badKeyBase64; }, "tls.keyPem: "},
      {"encrypted key",
       [&](TlsOptions& t) { t.keyPem = testing::encryptKeyPem(pki.client.keyPem, "secret"); },
       "tls.keyPem: "},
      {"key of another certificate", [&](TlsOptions& t) { t.keyPem = pki.server.keyPem; },
       "tls.keyPem: "},
      {"a certificate as the key", [&](TlsOptions& t) { t.keyPem = pki.client.certPem; },
       "tls.keyPem: "},
      {"garbage cert", [&](TlsOptions& t) { t.certPem = garbage; }, "tls.certPem: "},
      {"corrupt cert block", [&](TlsOptions& t) { t.certPem = badBase64; }, "tls.certPem: "},
      {"cert without key", [&](TlsOptions& t) { t.keyPem.clear(); }, "tls.keyPem: "},
      {"key without cert", [&](TlsOptions& t) { t.certPem.clear(); }, "tls.certPem: "},
      {"garbage CA", [&](TlsOptions& t) { t.caPem = garbage; }, "tls.caPem: "},
      {"corrupt CA block", [&](TlsOptions& t) { t.caPem = pki.ca.certPem + badBase64; },
       "tls.caPem: "},
      {"a key as the CA", [&](TlsOptions& t) { t.caPem = pki.ca.keyPem; }, "tls.caPem: "},
      {"no CA", [&](TlsOptions& t) { t.caPem.clear(); }, "tls.caPem: "},
      {"bad server name", [&](TlsOptions& t) { t.serverName = std::string("a\0b", 3); },
       "tls.serverName: "},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ChannelOptions o = mtls();
    c.mutate(o.tls);
    auto ch = Channel::create(target(), o);
    auto start = Clock::now();
    RpcStatus s = unaryText(*ch, "x");
    EXPECT_LT(since(start), 500ms);
    EXPECT_EQ(s.code, RpcCode::kInvalidArgument) << s.toString();
    EXPECT_EQ(s.message.rfind(c.field, 0), 0u) << s.message;
    std::cout << "  " << c.name << " -> " << s.toString() << "\n";
    // Streaming calls end the same way.
    auto h = std::make_shared<RecordingHandler>();
    auto call = ch->startCall(kBidi, h);
    ASSERT_TRUE(h->waitDone(1000ms));
    EXPECT_EQ(h->status().code, RpcCode::kInvalidArgument);
    EXPECT_EQ(call->write(msgBytes("late")), WriteResult::kClosed);
  }
  EXPECT_EQ(service_.calls(), 0);
}

// A server that sends only its leaf, verified against the wrong CA.
TEST(GrpcliteTlsRawServerTest, UnknownIssuerFailsCertificateVerify) {
  auto ctx = rawServerContext(TLS1_3_VERSION, /*selectH2=*/true);
  RawServer server([&](int fd) { serveTls(ctx.get(), fd); });
  ASSERT_NE(server.port(), 0);
  ChannelOptions o = mtls();
  o.tls.caPem = testPki().otherCa.certPem;
  auto ch = Channel::create(server.target(), o);
  RpcStatus s = unaryText(*ch, "x");
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_EQ(s.message, "TLS handshake with " + server.target() +
                           ": certificate verify failed (unable to verify the first certificate)");
}

// Both ends must agree on h2 by ALPN (gRPC requires HTTP/2).
TEST(GrpcliteTlsRawServerTest, ServerThatSelectsNoAlpnIsRefused) {
  auto ctx = rawServerContext(TLS1_3_VERSION, /*selectH2=*/false);
  RawServer server([&](int fd) { serveTls(ctx.get(), fd); });
  ASSERT_NE(server.port(), 0);
  auto ch = Channel::create(server.target(), mtls());
  RpcStatus s = unaryText(*ch, "x");
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_TRUE(contains(s.message, "ALPN")) << s.message;
  EXPECT_TRUE(contains(s.message, "h2")) << s.message;
}

TEST(GrpcliteTlsRawServerTest, Tls12OnlyWhenAllowed) {
  auto ctx = rawServerContext(TLS1_2_VERSION, /*selectH2=*/true);
  RawServer server([&](int fd) { serveTls(ctx.get(), fd); });
  ASSERT_NE(server.port(), 0);

  // tls13Only (the default): a TLS 1.2 server fails the handshake.
  ChannelOptions o = mtls();
  auto ch = Channel::create(server.target(), o);
  RpcStatus s = unaryText(*ch, "x");
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_TRUE(contains(s.message, "TLS handshake")) << s.message;
  EXPECT_TRUE(contains(s.message, "the server sent the TLS alert \"protocol_version\""))
      << s.message;

  // Allowed: the handshake completes; this server then never sends HTTP/2 SETTINGS.
  o.tls.tls13Only = false;
  o.connectTimeout = 500ms;
  ch = Channel::create(server.target(), o);
  s = unaryText(*ch, "x");
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_TRUE(contains(s.message, "SETTINGS")) << s.message;
}

TEST(GrpcliteTlsRawServerTest, SilentServerTimesOutInTheHandshake) {
  RawServer server([](int fd) { drain(fd); });
  ASSERT_NE(server.port(), 0);
  ChannelOptions o = mtls();
  o.connectTimeout = 300ms;
  auto ch = Channel::create(server.target(), o);
  auto start = Clock::now();
  RpcStatus s = unaryText(*ch, "x");
  EXPECT_LT(since(start), 1500ms);
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_EQ(s.message, "TLS handshake with " + server.target() + ": timed out");
}

TEST(GrpcliteTlsRawServerTest, DestroyingTheChannelDuringTheHandshake) {
  RawServer server([](int fd) { drain(fd); });
  ASSERT_NE(server.port(), 0);
  auto ch = Channel::create(server.target(), mtls());
  auto h = std::make_shared<RecordingHandler>();
  auto call = ch->startCall(kBidi, h);
  std::this_thread::sleep_for(50ms);  // connected, handshake waiting for the ServerHello
  ch.reset();
  EXPECT_EQ(h->doneCount(), 1);
  EXPECT_EQ(h->status().code, RpcCode::kCancelled) << h->status().toString();
}

// A peer that answers the ClientHello with anything but TLS: every call ends UNAVAILABLE with
// the handshake named, promptly, and the process survives (run under ASan in the sanitizer
// build).
TEST(GrpcliteTlsRawServerTest, GarbageInsteadOfTlsIsUnavailable) {
  std::vector<std::string> payloads = {
      "",
      "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
      // A plaintext HTTP/2 server's SETTINGS frame.
      std::string("\0\0\0\4\0\0\0\0\0", 9),
      // A TLS handshake record header, then nonsense.
      std::string("\x16\x03\x03\x00\x30", 5) + std::string(48, '\xee'),
      // An alert record with a made-up description.
      std::string("\x15\x03\x03\x00\x02\x02\xfe", 7),
      // A record longer than TLS allows.
      std::string("\x17\x03\x03\xff\xff", 5) + std::string(1000, 'A'),
  };
  std::mt19937 rng(20240601);
  for (int i = 0; i < 40; ++i) {
    std::string p(1 + rng() % 3000, '\0');
    for (auto& ch : p) ch = static_cast<char>(rng());
    // Half of them look like a TLS record at first glance.
    if (i % 2 == 0 && p.size() > 5) {
      p[0] = static_cast<char>(0x14 + rng() % 4);
      p[1] = 3;
      p[2] = static_cast<char>(rng() % 5);
    }
    payloads.push_back(std::move(p));
  }
  std::mutex mu;
  std::string current;
  RawServer server([&](int fd) {
    std::string payload;
    {
      std::lock_guard lock(mu);
      payload = current;
    }
    speakGarbage(fd, payload);
  });
  ASSERT_NE(server.port(), 0);
  for (size_t i = 0; i < payloads.size(); ++i) {
    SCOPED_TRACE(i);
    {
      std::lock_guard lock(mu);
      current = payloads[i];
    }
    ChannelOptions o = mtls();
    o.connectTimeout = 2000ms;
    auto ch = Channel::create(server.target(), o);
    auto start = Clock::now();
    RpcStatus s = unaryText(*ch, "x");
    EXPECT_LT(since(start), 1500ms) << s.toString();
    EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
    EXPECT_EQ(s.message.rfind("TLS handshake with " + server.target() + ": ", 0), 0u) << s.message;
  }
}

// A plaintext gRPC server is not mistaken for a TLS one.
TEST(GrpcliteTlsRawServerTest, PlaintextGrpcServerIsUnavailable) {
  EchoService service;
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  ASSERT_NE(port, 0);
  ChannelOptions o = mtls();
  o.connectTimeout = 1000ms;
  auto ch = Channel::create("127.0.0.1:" + std::to_string(port), o);
  RpcStatus s = unaryText(*ch, "x");
  EXPECT_EQ(s.code, RpcCode::kUnavailable) << s.toString();
  EXPECT_TRUE(contains(s.message, "TLS handshake")) << s.message;
  EXPECT_EQ(service.calls(), 0);
  server->Shutdown(std::chrono::system_clock::now() + 100ms);
}

}  // namespace
}  // namespace ep::grpclite
