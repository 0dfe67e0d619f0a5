// grpclite's unary server on a unix socket, called by grpclite's own client and by gRPC++ (the
// real implementation mappers' gRPC libraries interoperate with).
#include "common/grpclite/server.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "tests/testing/grpc_generic.h"
#include "tests/testing/temp_dir.h"

namespace ep::grpclite {
namespace {

using namespace std::chrono_literals;

class GrpcliteServerTest : public ::testing::Test {
 protected:
  void startServer(ServerOptions o = {}) {
    o.unixPath = dir_.path() + "/s/dmi.sock";
    path_ = o.unixPath;
    server_ = std::make_unique<Server>(
        o, [this](const std::string& method, std::string request, UnaryResponder respond) {
          calls_++;
          if (method == "/test.Echo/Echo") return respond({}, "echo:" + request);
          if (method == "/test.Echo/Fail")
            return respond({RpcCode::kNotFound, "no device \"x\" here: 100%"}, "");
          if (method == "/test.Echo/Later") {
            // Answered from another thread, after the handler returned.
            std::thread([respond, request] {
              std::this_thread::sleep_for(20ms);
              respond({}, "later:" + request);
            }).detach();
            return;
          }
          if (method == "/test.Echo/Never") return;  // the server's timeout answers
          respond({RpcCode::kUnimplemented, "unknown method " + method}, "");
        });
    ASSERT_TRUE(server_->start().isOk());
  }
  void TearDown() override {
    if (server_) server_->stop();
  }

  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<Server> server_;
  std::atomic<int> calls_{0};
};

TEST_F(GrpcliteServerTest, UnaryCallsFromGrpcliteClient) {
  startServer();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto ch = Channel::create(path_);
  std::string out;
  RpcStatus s = ch->unary("/test.Echo/Echo", std::string("hi"), &out, 2000ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(out, "echo:hi");
  s = ch->unary("/test.Echo/Fail", std::string(), &out, 2000ms);
  EXPECT_EQ(s.code, RpcCode::kNotFound);
  EXPECT_EQ(s.message, "no device \"x\" here: 100%");  // percent-encoded on the wire
  s = ch->unary("/test.Echo/Later", std::string("x"), &out, 2000ms);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(out, "later:x");
  s = ch->unary("/test.Other/Thing", std::string(), &out, 2000ms);
  EXPECT_EQ(s.code, RpcCode::kUnimplemented);
  // Many calls on one connection, and an empty message.
  for (int i = 0; i < 50; ++i) {
    s = ch->unary("/test.Echo/Echo", std::to_string(i), &out, 2000ms);
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(out, "echo:" + std::to_string(i));
  }
  s = ch->unary("/test.Echo/Echo", std::string(), &out, 2000ms);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(out, "echo:");
}

TEST_F(GrpcliteServerTest, OversizedRequestsAndSilentHandlersEndWithAStatus) {
  startServer({.maxMessageBytes = 1024, .handlerTimeout = 200ms});
  auto ch = Channel::create(path_);
  std::string out;
  RpcStatus s = ch->unary("/test.Echo/Echo", std::string(4096, 'x'), &out, 2000ms);
  EXPECT_EQ(s.code, RpcCode::kResourceExhausted) << s.toString();
  s = ch->unary("/test.Echo/Echo", std::string(8 << 20, 'y'), &out, 5000ms);
  EXPECT_EQ(s.code, RpcCode::kResourceExhausted) << s.toString();
  s = ch->unary("/test.Echo/Never", std::string(), &out, 2000ms);
  EXPECT_EQ(s.code, RpcCode::kDeadlineExceeded) << s.toString();
  // The connection still serves.
  s = ch->unary("/test.Echo/Echo", std::string("ok"), &out, 2000ms);
  ASSERT_TRUE(s.ok()) << s.toString();
}

TEST_F(GrpcliteServerTest, GrpcPlusPlusClientInteroperates) {
  startServer();
  auto channel = grpc::CreateChannel("unix://" + path_, grpc::InsecureChannelCredentials());
  auto call = [&](const std::string& method, const std::string& body, std::string* response) {
    return ep::testing::genericUnaryCall(channel, method, body, response);
  };
  std::string out;
  auto st = call("/test.Echo/Echo", "grpc++", &out);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(out, "echo:grpc++");
  st = call("/test.Echo/Fail", "", &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "no device \"x\" here: 100%");
}

TEST_F(GrpcliteServerTest, StaleSocketIsReplacedAndOtherFilesAreNot) {
  startServer();
  server_->stop();
  server_.reset();
  // The socket file is removed on stop; one left by a crash is replaced.
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);  // as a crashed process leaves it
  }
  startServer();
  std::string out;
  ASSERT_TRUE(
      Channel::create(path_)->unary("/test.Echo/Echo", std::string("x"), &out, 2000ms).ok());
  server_.reset();
  std::string file = dir_.path() + "/s/dmi.sock";
  ASSERT_EQ(::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600)), 0);
  Server other({.unixPath = file},
               [](const std::string&, std::string, UnaryResponder r) { r({}, ""); });
  auto s = other.start();
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("not a socket"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ep::grpclite
