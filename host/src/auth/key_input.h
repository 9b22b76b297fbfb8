#pragma once
// A gateway key as an operator asks for it, shared by the CLI (`keys create`, `keys update`) and
// the admin API (POST /admin/keys, PATCH /admin/keys/{id}): the same checks, with the names in
// the caller's spelling. Money is decimal USD text, converted to micro-dollars without floating
// point.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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
  // Decimal USD text ("10", "0.25", "12.345678"); "0" = no limit.
  std::optional<std::string> rateCostUsd;
  std::optional<std::string> dailyCostUsd;
  std::optional<std::string> totalCostUsd;
  std::optional<std::string> weeklyCostUsd;
  std::optional<int64_t> weeklyResetDay;   // 1 = Monday .. 7 = Sunday
  std::optional<int64_t> weeklyResetHour;  // 0..23
  std::optional<std::string> rate;         // decimal multiplier, "1.5"
  // Activation expiry, one of the two (0 = off).
  std::optional<int64_t> activationHours;
  std::optional<int64_t> activationDays;
};

// "10" -> 10000000, "0.25" -> 250000, "12.345678" -> 12345678 (also "1e2" and ".5", as a JSON
// number's text may be). No floating point: kInvalidArgument for malformed text, a negative
// amount, more than 6 decimal places or more than 1e9 USD. The message does not name the input.
StatusOr<int64_t> parseUsdMicros(std::string_view text);
// 10500000 -> "10.5", 12345678 -> "12.345678", 0 -> "0" (trailing zeros trimmed).
std::string formatUsdMicros(int64_t microUsd);
// 1500000 -> "1.5".
std::string formatRatePpm(int64_t ppm);

// The key options, or kInvalidArgument when allow and deny lists are both given, the name is
// missing, the expiry (other than 0 = never) is not after nowMs, or an amount / rate does not
// parse. The key service checks the rest when the key is created.
StatusOr<NewKeyOptions> newKeyOptions(const KeyInput& in, int64_t nowMs, InputSpelling spelling);
// The same conversion for a change to an existing key (the name is not part of it: the caller
// rejects it). KeyService::update checks the merged result.
StatusOr<KeyPatch> keyPatch(const KeyInput& in, int64_t nowMs, InputSpelling spelling);

}  // namespace rg
