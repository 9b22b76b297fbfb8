#pragma once
// A new gateway key as an operator asks for it, shared by the CLI (`keys create`) and the admin
// API (POST /admin/keys): the same checks, with the names in the caller's spelling.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "auth/key_service.h"
#include "common/status.h"

namespace rg {

// What was given; absent = not given.
struct KeyInput {
  std::optional<std::string> name;
  std::optional<std::vector<std::string>> permissions;
  std::optional<int64_t> expiresAtMs;
  std::optional<int64_t> concurrencyLimit;
  std::optional<int64_t> rateWindowMinutes;
  std::optional<int64_t> rateRequests;
  std::optional<int64_t> rateTokens;
  std::optional<std::vector<std::string>> allowModels;
  std::optional<std::vector<std::string>> denyModels;
  std::optional<std::map<std::string, std::string>> bindings;
};

// How errors name the inputs: CLI flags ("--expires-at") or JSON members ("expires_at").
enum class InputSpelling { kCliFlags, kJson };

// The key options, or kInvalidArgument when allow and deny lists are both given, the name is
// missing or the expiry (other than 0 = never) is not after nowMs. The key service checks the
// rest when the key is created.
StatusOr<NewKeyOptions> newKeyOptions(const KeyInput& in, int64_t nowMs, InputSpelling spelling);

}  // namespace rg
