#include "admin/admin_json.h"

#include <spdlog/spdlog.h>

namespace rg::adminjson {

namespace {

const char* errorTypeOf(int status) {
  if (status == 401) {
    return "authentication_error";
  }
  if (status == 404) {
    return "not_found_error";
  }
  if (status >= 500) {
    return "api_error";
  }
  return "invalid_request_error";
}

}  // namespace

int httpStatusOf(Code c) {
  switch (c) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
      return 409;
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kResourceExhausted:
      return 503;
    default:
      return 500;
  }
}

AdminResponse errorResponse(int status, const std::string& message) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("type");
  w.String(errorTypeOf(status));
  w.Key("message");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.EndObject();
  w.EndObject();
  AdminResponse r;
  r.status = status;
  r.body.assign(sb.GetString(), sb.GetSize());
  return r;
}

AdminResponse errorResponse(const Status& s) {
  int status = httpStatusOf(s.code());
  if (status == 500) {
    // Internal failures are logged for the operator (status messages never carry secrets).
    spdlog::error("admin api: {}", s.toString());
  }
  return errorResponse(status, s.message());
}

}  // namespace rg::adminjson
