#pragma once
// Client-visible errors in each provider's own wire shape, so clients show proper messages.

#include <string>
#include <string_view>

#include "relaygate/abi.h"

namespace rg {

// JSON string literal (with quotes) for `s`, escaping per RFC 8259.
std::string jsonQuote(std::string_view s);

// The body for `status` in `shape`. `type` overrides the default error type for the status
// (e.g. "rate_limit_error"); `code` is used by the OpenAI shape (and ignored elsewhere).
std::string errorBody(rg_error_shape shape, int status, std::string_view message,
                      std::string_view type = {}, std::string_view code = {});

} // namespace rg
