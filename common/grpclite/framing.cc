#include "common/grpclite/framing.h"

namespace ep::grpclite {

const char* rpcCodeName(RpcCode code) {
  switch (code) {
    case RpcCode::kOk:
      return "OK";
    case RpcCode::kCancelled:
      return "CANCELLED";
    case RpcCode::kUnknown:
      return "UNKNOWN";
    case RpcCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case RpcCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case RpcCode::kNotFound:
      return "NOT_FOUND";
    case RpcCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case RpcCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case RpcCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case RpcCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case RpcCode::kAborted:
      return "ABORTED";
    case RpcCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case RpcCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case RpcCode::kInternal:
      return "INTERNAL";
    case RpcCode::kUnavailable:
      return "UNAVAILABLE";
    case RpcCode::kDataLoss:
      return "DATA_LOSS";
    case RpcCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

std::string RpcStatus::toString() const {
  std::string s = rpcCodeName(code);
  if (!message.empty()) s += ": " + message;
  return s;
}

std::string grpcMessageEncode(std::string_view message) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : message) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string frameMessage(std::string_view message) {
  std::string out;
  out.reserve(5 + message.size());
  const auto n = static_cast<uint32_t>(message.size());
  out.push_back('\0');
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(message);
  return out;
}

void Deframer::feed(const uint8_t* data, size_t size) {
  if (failed() || size == 0) return;
  // Drop consumed bytes before growing, so the buffer holds at most one message and a chunk.
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 64 * 1024 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(reinterpret_cast<const char*>(data), size);
}

bool Deframer::next(std::string* out) {
  if (failed() || buf_.size() - pos_ < 5) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(buf_.data() + pos_);
  if (p[0] != 0) {
    error_ = p[0] == 1 ? "received a compressed message (no compression was offered)"
                       : "invalid message flag " + std::to_string(p[0]);
    return false;
  }
  const size_t len = (size_t{p[1]} << 24) | (size_t{p[2]} << 16) | (size_t{p[3]} << 8) | p[4];
  if (len > max_) {
    error_ = "received message of " + std::to_string(len) + " bytes, above the limit of " +
             std::to_string(max_);
    return false;
  }
  if (buf_.size() - pos_ - 5 < len) return false;
  out->assign(buf_, pos_ + 5, len);
  pos_ += 5 + len;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return true;
}

void Deframer::shrink() {
  if (buffered() != 0) return;
  std::string().swap(buf_);
  pos_ = 0;
}

}  // namespace ep::grpclite
