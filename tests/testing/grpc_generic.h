#pragma once

// One unary call with gRPC++'s generic stub (raw message bytes), as any gRPC client would make
// it: the tests' interop checks against grpclite's server and edgecore's DMI socket.
// Header-only; blocking; thread-compatible.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ep::testing {

// Calls `method` ("/package.Service/Method") with `body`; on OK, `response` holds the reply.
inline grpc::Status genericUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                                     const std::string& method, const std::string& body,
                                     std::string* response,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1), reply;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &reply, [&](grpc::Status st) {
    std::lock_guard lock(mu);
    status = st;
    done = true;
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  std::vector<grpc::Slice> slices;
  if (status.ok() && reply.Dump(&slices).ok()) {
    response->clear();
    for (auto& s : slices) response->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

}  // namespace ep::testing
