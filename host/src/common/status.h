#pragma once
// Status / StatusOr: the request path returns values, never throws (style rule 6).

#include <optional>
#include <string>
#include <utility>

namespace rg {

enum class Code {
  kOk = 0,
  kInvalidArgument,    // bad client input (400)
  kUnauthenticated,    // no / bad credential (401)
  kPermissionDenied,   // not allowed (403)
  kNotFound,           // (404)
  kAlreadyExists,      // (409)
  kResourceExhausted,  // a limit was hit (429)
  kFailedPrecondition, // state does not allow it
  kUnavailable,        // a dependency is down (503)
  kDeadlineExceeded,   // timed out (504)
  kAborted,            // cancelled (client gone)
  kInternal,           // bug or unexpected failure (500)
};

const char* codeName(Code c);

class Status {
public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool isOk() const { return code_ == Code::kOk; }
  explicit operator bool() const { return isOk(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string toString() const;

private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status invalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status notFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status internalError(std::string m) { return Status(Code::kInternal, std::move(m)); }
inline Status alreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
inline Status failedPrecondition(std::string m) {
  return Status(Code::kFailedPrecondition, std::move(m));
}

template <typename T> class StatusOr {
public:
  StatusOr(T value) : value_(std::move(value)) {} // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {} // NOLINT: implicit by design

  bool isOk() const { return status_.isOk() && value_.has_value(); }
  explicit operator bool() const { return isOk(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

private:
  Status status_;
  std::optional<T> value_;
};

} // namespace rg
