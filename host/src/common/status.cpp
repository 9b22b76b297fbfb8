#include "common/status.h"

namespace rg {

const char* codeName(Code c) {
  switch (c) {
  case Code::kOk: return "OK";
  case Code::kInvalidArgument: return "INVALID_ARGUMENT";
  case Code::kUnauthenticated: return "UNAUTHENTICATED";
  case Code::kPermissionDenied: return "PERMISSION_DENIED";
  case Code::kNotFound: return "NOT_FOUND";
  case Code::kAlreadyExists: return "ALREADY_EXISTS";
  case Code::kResourceExhausted: return "RESOURCE_EXHAUSTED";
  case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
  case Code::kUnavailable: return "UNAVAILABLE";
  case Code::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
  case Code::kAborted: return "ABORTED";
  case Code::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::toString() const {
  if (isOk()) {
    return "OK";
  }
  return std::string(codeName(code_)) + ": " + message_;
}

} // namespace rg
