#pragma once
// The admin REST API under /admin: accounts (every type), their cooldowns and recovery, gateway
// keys, recent account events and the Claude OAuth flow. JSON in and out with snake_case fields;
// times are unix milliseconds (0 = never / unknown). Secrets never leave: accounts show only the
// masked form of each secret; a new gateway key is returned in plain text once, by its create.
//
// Independent of the HTTP server (no POCO): the gateway hands each /admin/ request over as an
// AdminRequest and writes the AdminResponse back, so the whole API is testable in-process.
//
// Endpoints (all need `Authorization: Bearer <token>` or `x-admin-token: <token>`):
//   GET    /admin/accounts                   list (with masked secrets and live cooldowns)
//   POST   /admin/accounts                   add: type, name and the CLI's flags in snake_case
//   GET    /admin/accounts/{id}
//   PATCH  /admin/accounts/{id}              partial update (same fields but type)
//   DELETE /admin/accounts/{id}              also clears its cooldowns and sticky mappings
//   POST   /admin/accounts/{id}/enable | /disable {reason?} | /schedulable {schedulable}
//   POST   /admin/accounts/{id}/reset        clear cooldowns + sticky mappings, status active
//   POST   /admin/accounts/{id}/test {model?}
//   GET    /admin/cooldowns
//   GET    /admin/events[?limit=N]           the event bus's recent events, oldest first
//   GET    /admin/pricing[?model=M]          the price table in force (models, source, unpriced
//                                            requests); with model: how M is priced, USD/MTok
//   POST   /admin/pricing/reload             re-read pricing.file + override_file (like SIGHUP);
//                                            400 and the old table kept when they do not load
//   GET    /admin/keys | POST /admin/keys    (create returns {"key": "cr_...", "api_key": {...}})
//   GET    /admin/keys/{id} | DELETE /admin/keys/{id} | POST /admin/keys/{id}/enable|disable
//   PATCH  /admin/keys/{id}                  partial update: any create member but name
//                                            (bindings replace all bindings; {} = shared pool)
//   Key members (create / patch): name, permissions, expires_at (unix ms, 0 = never),
//     concurrency_limit (alias concurrency), rate_window_minutes (alias rate_window_min),
//     rate_requests, rate_tokens, rate_cost_usd, daily_cost_usd, total_cost_usd,
//     weekly_cost_usd, weekly_reset_day (1 = Mon .. 7 = Sun), weekly_reset_hour (0..23),
//     rate (per-key price multiplier), activation_hours | activation_days (the key expires this
//     long after its first use; excludes expires_at; 0 turns it off), allow_models |
//     deny_models ([] drops the filter on patch), bindings. USD amounts and rate are decimal
//     text: a JSON string ("0.25") or number (0.25), read from its text, never via a double;
//     at most 6 decimal places, "0" = no limit.
//   A key as answered: id, name, enabled, created_at, updated_at, expires_at, permissions,
//     concurrency_limit, rate_window_minutes, rate_requests, rate_tokens, model_mode, models,
//     bindings, <cost>_micro_usd (integer, exact) and <cost>_usd (decimal text) for <cost> in
//     rate_cost, daily_cost, total_cost, weekly_cost; weekly_reset_day, weekly_reset_hour,
//     rate (decimal text) and rate_ppm, activation_ms, activated_at (0 = not yet used).
//   POST   /admin/oauth/claude/start {setup_token?, proxy?, proxy_password?}
//   POST   /admin/oauth/claude/exchange {session_id, code, name, ...account fields}
//   GET    /admin/usage | /admin/usage/top | /admin/usage/recent   (admin/usage_routes.h)
// Errors: {"error": {"type": ..., "message": ...}} with 400/401/404/405/409/413/500/501/503.

#include <cstddef>
#include <functional>
#include <string>

#include "accounting/price_table_holder.h"
#include "accounts/account_service.h"
#include "accounts/account_tester.h"
#include "auth/key_service.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/time_zone.h"
#include "events/event_bus.h"
#include "storage/store.h"
#include "upstream/http_client.h"

namespace rg {

class ClaudeOAuth;

struct AdminRequest {
  std::string method;
  std::string path;   // starts with /admin/
  std::string query;  // without the '?'
  HeaderList headers;
  std::string body;
};

struct AdminResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  HeaderList headers;  // extra response headers (Allow on 405, Cache-Control on every answer)
};

struct AdminDeps {
  KeyService* keys = nullptr;
  AccountService* accounts = nullptr;
  Store* store = nullptr;
  EventBus* events = nullptr;
  ClaudeOAuth* claudeOAuth = nullptr;  // may be null: the oauth endpoints answer 501
  // May be empty: /test answers 501.
  std::function<StatusOr<AccountTestResult>(const AccountRecord&, const std::string& model)>
      testAccount;
  const Clock* clock = nullptr;
  // The price table in force (GET /admin/pricing) and how to reload it from the configured files
  // (POST /admin/pricing/reload: the new table, or why it was not loaded -- the old one stays).
  // Either may be empty: those endpoints answer 501.
  const PriceTableHolder* prices = nullptr;
  std::function<StatusOr<std::shared_ptr<const PriceTable>>()> reloadPrices;
  std::string adminToken;  // empty = the admin API is disabled (404 for every /admin path)
  const TimeZone* timeZone = nullptr;  // buckets of /admin/usage...; nullptr = UTC
};

class AdminApi {
 public:
  // Bodies above this answer 413. The server should stop reading at kMaxBodyBytes + 1.
  static constexpr size_t kMaxBodyBytes = 1 << 20;

  explicit AdminApi(AdminDeps deps);
  // Thread-safe (the services are); never throws.
  AdminResponse handle(const AdminRequest& req);

 private:
  AdminResponse route(const AdminRequest& req);
  bool authorized(const HeaderList& headers) const;
  AdminDeps deps_;
  std::string tokenDigest_;  // sha256 of the configured token, compared in constant time
};

}  // namespace rg
