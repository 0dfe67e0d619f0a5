#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// gRPC's status codes and message framing, shared by grpclite's client (channel.h, on the edge's
// wolfSSL) and its servers (server.h, stream_server.h). No TLS library and no Asio here, so a
// binary with either TLS library may link it.
namespace ep::grpclite {

// gRPC status codes, numbered as on the wire (grpc-status).
enum class RpcCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

struct RpcStatus {
  RpcCode code = RpcCode::kOk;
  std::string message;

  bool ok() const { return code == RpcCode::kOk; }
  int codeNumber() const { return static_cast<int>(code); }
  // "UNAVAILABLE: connection refused"
  std::string toString() const;
};

const char* rpcCodeName(RpcCode code);

// A status message as the grpc-message header carries it: printable ASCII except '%' as is,
// every other byte percent-encoded (gRPC's PROTOCOL-HTTP2).
std::string grpcMessageEncode(std::string_view message);

// gRPC message framing (exposed for tests and the fuzz target): a 1-byte compressed flag, a
// 4-byte big-endian length, then the message.
std::string frameMessage(std::string_view message);

// Splits a byte stream into gRPC messages. feed() appends bytes and yields complete messages in
// order through next(); an oversized or compressed message is an error that sticks.
class Deframer {
 public:
  explicit Deframer(size_t maxMessageBytes) : max_(maxMessageBytes) {}
  void feed(const uint8_t* data, size_t size);
  // true and fills `out` when a whole message is buffered; false otherwise (or after an error).
  bool next(std::string* out);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  // Bytes of an incomplete message (an error when the stream ends with some).
  size_t buffered() const { return buf_.size() - pos_; }
  // Frees the buffer's memory when nothing is buffered (a server holding many idle streams).
  void shrink();

 private:
  const size_t max_;
  std::string buf_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace ep::grpclite
