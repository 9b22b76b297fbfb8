#pragma once
// The admin usage API (dispatched by AdminApi after its authentication; same error shape):
//   GET /admin/usage?dim=key|account|model&id=X[&from=T&to=T][&by=hour|day|month][&by_model=1]
//       one point per bucket (dim=key&by_model=1: per bucket and model) and their total
//   GET /admin/usage/top[?from=T&to=T&by=...&limit=10]   keys by billed cost, with their names
//   GET /admin/usage/recent?key=ID[&limit=20]            the key's recent per-request records
// T is ISO-8601 ("2026-11-23", "2026-11-23T08:00:00+08:00", ...) or unix milliseconds; query
// values are percent-decoded. Defaults: to = now, from = to - 7 days (by=hour: 24 hours),
// by = day. Buckets are local to the configured time zone, named in every answer.
// Counters are integers; money is micro-dollars plus a "1.234567" USD string.

#include <optional>

#include "admin/admin_api.h"
#include "common/clock.h"
#include "common/time_zone.h"
#include "storage/store.h"

namespace rg {

struct UsageRouteDeps {
  Store* store = nullptr;
  const Clock* clock = nullptr;
  const TimeZone* timeZone = nullptr;  // nullptr = UTC
};

// Ranges spanning more buckets than this answer 400.
inline constexpr size_t kMaxUsageBuckets = 1000;
// Largest `limit` of /top and /recent.
inline constexpr size_t kMaxUsageLimit = 1000;

// The answer for a path under /admin/usage (the caller has authenticated the request), or
// nullopt when the path is not one of them. Never throws.
std::optional<AdminResponse> handleUsageRoute(const AdminRequest& req, const UsageRouteDeps& deps);

}  // namespace rg
