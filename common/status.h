#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ep {

// Error categories shared by every module. They map one-to-one onto Kubernetes Status reasons
// at the API boundary (see apiserver/errors.cc), so keep them coarse.
enum class Code {
  kOk = 0,
  kInvalid,           // request content is well-formed but semantically wrong (422)
  kBadRequest,        // malformed request (400)
  kNotFound,          // 404
  kAlreadyExists,     // 409 on create
  kConflict,          // 409 on a stale resourceVersion
  kExpired,           // 410: requested revision was compacted
  kTooLarge,          // 413
  kForbidden,         // 403
  kUnauthorized,      // 401: no or unusable credentials
  kMethodNotAllowed,  // 405
  kUnsupportedMedia,  // 415
  kUnavailable,       // 503 or a peer that cannot be reached
  kTimeout,           // 504
  kInternal,          // 500: broken invariant reported instead of crashing
};

const char* codeName(Code code);

// One field-level reason behind an error (Kubernetes StatusCause), e.g.
// {"spec.containers[0].image", "FieldValueRequired", "Required value"}.
struct StatusCause {
  std::string field;
  std::string reason;
  std::string message;
};

// A value-type error. Cheap to copy when ok (empty message). Thread-compatible. [[nodiscard]]:
// dropping one is a compile error under EP_WERROR; `(void)` says it is meant.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool isOk() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: pods \"x\" not found"
  std::string toString() const;

  const std::vector<StatusCause>& causes() const { return causes_; }
  Status&& withCauses(std::vector<StatusCause> causes) && {
    causes_ = std::move(causes);
    return std::move(*this);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::vector<StatusCause> causes_;
};

inline Status invalidError(std::string m) {
  return {Code::kInvalid, std::move(m)};
}
inline Status badRequestError(std::string m) {
  return {Code::kBadRequest, std::move(m)};
}
inline Status notFoundError(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
inline Status internalError(std::string m) {
  return {Code::kInternal, std::move(m)};
}
inline Status unavailableError(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}

// Aborts naming `error`: the value of a failed Result was read (a broken invariant).
[[noreturn]] void resultValueOfError(const Status& error);

// Either a T or a non-ok Status. Accessing value() on an error is a broken invariant: it aborts
// with the error's message (never a bad_variant_access crossing a boundary). [[nodiscard]].
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).isOk() && "Result built from an ok Status");
  }

  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }

  const Status& status() const {
    static const Status kOkStatus;
    return isOk() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & {
    checkValue();
    return std::get<T>(v_);
  }
  const T& value() const& {
    checkValue();
    return std::get<T>(v_);
  }
  T&& value() && {
    checkValue();
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void checkValue() const {
    if (!isOk()) [[unlikely]] {
      resultValueOfError(std::get<Status>(v_));
    }
  }
  std::variant<T, Status> v_;
};

}  // namespace ep
