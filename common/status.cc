#include "common/status.h"

#include <cstdio>
#include <cstdlib>

namespace ep {

const char* codeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalid:
      return "Invalid";
    case Code::kBadRequest:
      return "BadRequest";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kConflict:
      return "Conflict";
    case Code::kExpired:
      return "Expired";
    case Code::kTooLarge:
      return "RequestEntityTooLarge";
    case Code::kForbidden:
      return "Forbidden";
    case Code::kUnauthorized:
      return "Unauthorized";
    case Code::kMethodNotAllowed:
      return "MethodNotAllowed";
    case Code::kUnsupportedMedia:
      return "UnsupportedMediaType";
    case Code::kUnavailable:
      return "ServiceUnavailable";
    case Code::kTimeout:
      return "Timeout";
    case Code::kInternal:
      return "InternalError";
  }
  return "Unknown";
}

std::string Status::toString() const {
  if (isOk()) return "OK";
  return std::string(codeName(code_)) + ": " + message_;
}

void resultValueOfError(const Status& error) {
  std::fprintf(stderr, "fatal: the value of a failed Result was read: %s\n",
               error.toString().c_str());
  std::abort();
}

}  // namespace ep
