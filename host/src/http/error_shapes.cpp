#include "http/error_shapes.h"

#include "observability/logging.h"

namespace rg {

std::string jsonQuote(std::string_view s) { return "\"" + jsonEscape(s) + "\""; }

namespace {

const char* anthropicType(int status) {
  switch (status) {
  case 400: return "invalid_request_error";
  case 401: return "authentication_error";
  case 402: return "billing_error";
  case 403: return "permission_error";
  case 404: return "not_found_error";
  case 413: return "request_too_large";
  case 429: return "rate_limit_error";
  case 504: return "timeout_error";
  case 529: return "overloaded_error";
  default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

const char* openaiType(int status) {
  switch (status) {
  case 400: return "invalid_request_error";
  case 401: return "authentication_error";
  case 402: return "insufficient_quota";
  case 403: return "permission_denied";
  case 404: return "not_found_error";
  case 413: return "invalid_request_error";
  case 429: return "rate_limit_exceeded";
  default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

const char* googleStatus(int status) {
  switch (status) {
  case 400: return "INVALID_ARGUMENT";
  case 401: return "UNAUTHENTICATED";
  case 402: return "RESOURCE_EXHAUSTED";
  case 403: return "PERMISSION_DENIED";
  case 404: return "NOT_FOUND";
  case 413: return "INVALID_ARGUMENT";
  case 429: return "RESOURCE_EXHAUSTED";
  case 501: return "UNIMPLEMENTED";
  case 503: return "UNAVAILABLE";
  case 504: return "DEADLINE_EXCEEDED";
  default: return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

} // namespace

std::string errorBody(rg_error_shape shape, int status, std::string_view message,
                      std::string_view type, std::string_view code,
                      std::string_view extraMembers) {
  std::string extra(extraMembers);
  switch (shape) {
  case RG_SHAPE_OPENAI: {
    std::string t = type.empty() ? openaiType(status) : std::string(type);
    std::string c = code.empty() ? t : std::string(code);
    return "{\"error\":{\"message\":" + jsonQuote(message) + ",\"type\":" + jsonQuote(t) +
           ",\"code\":" + jsonQuote(c) + "}" + extra + "}";
  }
  case RG_SHAPE_GEMINI:
    return "{\"error\":{\"code\":" + std::to_string(status) + ",\"message\":" +
           jsonQuote(message) + ",\"status\":" + jsonQuote(googleStatus(status)) +
           (code.empty() ? std::string() : ",\"reason\":" + jsonQuote(code)) + "}" + extra + "}";
  case RG_SHAPE_ANTHROPIC:
  default: {
    std::string t = type.empty() ? anthropicType(status) : std::string(type);
    return "{\"type\":\"error\",\"error\":{\"type\":" + jsonQuote(t) +
           ",\"message\":" + jsonQuote(message) +
           (code.empty() ? std::string() : ",\"code\":" + jsonQuote(code)) + "}" + extra + "}";
  }
  }
}

} // namespace rg
