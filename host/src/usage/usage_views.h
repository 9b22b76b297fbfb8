#pragma once
// The client-facing usage views of a gateway key (GET .../v1/key-info, .../v1/usage and
// .../v1/organizations/{org}/usage on every Claude mount), built from the usage aggregates and
// the key's live admission state, plus the helpers the gateway shares with them (the weekly
// period id of the admission counters, the Claude-family test of the weekly limit) and the one
// micro-dollar formatter of every usage answer.
//
// Money is integer micro-dollars throughout: amounts are printed from the integer, never through
// floating point. Depends only on the storage *interfaces* (virtual calls), so it links from
// rg_common without the storage library.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "common/time_zone.h"
#include "storage/store.h"

namespace rg {

enum class ClientView { kKeyInfo, kUsage, kOrgUsage };

// GET /api/v1/key-info, /v1/key-info, /claude/v1/key-info; the same for usage; and
// /{api/,,claude/}v1/organizations/{org}/usage with one non-empty {org} segment. Anything else
// (other methods, trailing slashes, query strings -- pass the path without them) is nullopt.
std::optional<ClientView> matchClientView(std::string_view method, std::string_view path);

// The weekly period the admission counters of a key are kept under: the local start of the week
// that resets on `resetDay` (1 = Monday .. 7 = Sunday, taken % 7 so 7 and 0 are Sunday) at
// `resetHour`:00 (clamped to 0..23), as "YYYY-MM-DDTHH" (e.g. "2026-11-23T00").
std::string weeklyPeriodId(const TimeZone& tz, int64_t nowMs, int64_t resetDay, int64_t resetHour);

// The first instant of the next weekly period after the one containing nowMs.
int64_t nextWeeklyResetMs(const TimeZone& tz, int64_t nowMs, int64_t resetDay, int64_t resetHour);

// The first instant of the next local day after the one containing nowMs.
int64_t nextLocalMidnightMs(const TimeZone& tz, int64_t nowMs);

// Whether a request for `model` counts toward the weekly cost limit (reference §2.3 #11):
// "claude-*", Bedrock "*.anthropic.claude-*", or a name containing opus / sonnet / haiku; case
// insensitive.
bool isClaudeFamilyModel(std::string_view model);

// 1234567 -> "1.234567", -5 -> "-0.000005": USD with exactly six decimals.
std::string formatMicroUsd(int64_t microUsd);

// "2026-11-23T08:15:30.123Z".
std::string isoTimeMs(int64_t unixMs);

class UsageViews {
 public:
  // Recent records shown by key-info / usage.
  static constexpr size_t kRecentRecords = 20;

  UsageViews(Store& store, const Clock& clock, const TimeZone& tz)
      : store_(store), clock_(clock), tz_(tz) {}

  // The JSON body (status 200) of `view` for the authenticated `key`; storage failures come back
  // as their Status (the gateway answers 503/500 in the route's error shape).
  StatusOr<std::string> clientView(ClientView view, const ApiKeyRecord& key);

 private:
  Store& store_;
  const Clock& clock_;
  const TimeZone& tz_;
};

}  // namespace rg
