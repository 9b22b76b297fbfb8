#pragma once
// Client-visible errors in each provider's own wire shape, so clients show proper messages.

#include <string>
#include <string_view>

#include "relaygate/abi.h"

namespace rg {

// JSON string literal (with quotes) for `s`, escaping per RFC 8259.
std::string jsonQuote(std::string_view s);

// The body for `status` in `shape`. `type` overrides the default error type for the status
// (e.g. "rate_limit_error"); `code`, when given, is the error object's "code" (the OpenAI shape
// always has one; Gemini's numeric code stays the status, so it goes to error.reason there).
// `extraMembers` is appended to the top-level object as is: ",\"name\":value,...".
std::string errorBody(rg_error_shape shape, int status, std::string_view message,
                      std::string_view type = {}, std::string_view code = {},
                      std::string_view extraMembers = {});

} // namespace rg
