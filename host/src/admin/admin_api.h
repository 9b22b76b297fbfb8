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
//   GET    /admin/keys | POST /admin/keys    (create returns {"key": "cr_...", "api_key": {...}})
//   GET    /admin/keys/{id} | DELETE /admin/keys/{id} | POST /admin/keys/{id}/enable|disable
//   PATCH  /admin/keys/{id} {bindings}        replaces the key's account bindings
//   POST   /admin/oauth/claude/start {setup_token?, proxy?, proxy_password?}
//   POST   /admin/oauth/claude/exchange {session_id, code, name, ...account fields}
// Errors: {"error": {"type": ..., "message": ...}} with 400/401/404/405/409/413/500/501/503.

#include <cstddef>
#include <functional>
#include <string>

#include "accounts/account_service.h"
#include "accounts/account_tester.h"
#include "auth/key_service.h"
#include "common/clock.h"
#include "common/status.h"
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
  std::string adminToken;  // empty = the admin API is disabled (404 for every /admin path)
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
