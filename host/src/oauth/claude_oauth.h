#pragma once
// Claude (Anthropic) OAuth for claude-official accounts: the PKCE authorization flow (full scope
// or the inference-only setup token), the code exchange, and refresh. Endpoints default to the
// vendor's (reference §5.1) and are configurable so tests point them at a fake OAuth server.
//
// TokenManager hands the request path a usable access token: it refreshes ahead of expiry under
// a lock shared by every instance (SchedStore::tryLock), so N concurrent requests with an
// expiring token cause exactly one refresh; losers wait and re-read the account.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "accounts/account_service.h"
#include "common/clock.h"
#include "common/status.h"
#include "crypto/crypto.h"
#include "events/event_bus.h"
#include "storage/store.h"
#include "upstream/http_client.h"

namespace rg {

struct ClaudeOAuthOptions {
  std::string authorizeUrl = "https://claude.ai/oauth/authorize";
  std::string tokenUrl = "https://platform.claude.com/v1/oauth/token";
  std::string clientId = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
  std::string redirectUri = "https://platform.claude.com/oauth/code/callback";
  std::string scopes =
      "org:create_api_key user:profile user:inference user:sessions:claude_code "
      "user:mcp_servers user:file_upload";
  std::string setupScopes = "user:inference";
  int64_t setupTokenSeconds = 31536000;  // the setup token asks for one year
  int64_t sessionTtlMs = 600000;         // a pending authorization lives 10 minutes
  int timeoutMs = 30000;
};

struct OAuthStart {
  std::string sessionId;  // hand back to exchange()
  std::string url;        // open in a browser
  bool setupToken = false;
  int64_t expiresAtMs = 0;
};

struct OAuthTokens {
  std::string accessToken;
  std::string refreshToken;  // empty for setup tokens
  int64_t expiresAtMs = 0;   // unix ms; 0 = unknown
  std::string scopes;        // space-separated
  std::string accountEmail;  // from the token response's "account", when present
  std::string organization;  // organization name or uuid, when present
};

class ClaudeOAuth {
 public:
  // `box` seals the proxy password of a pending authorization while it waits in `pending` (the
  // settings KV, readable by anyone with the store). Without a box start() refuses a proxy
  // password rather than keep it in plain text.
  ClaudeOAuth(ClaudeOAuthOptions opts, UpstreamClient& http, KvStore& pending, const Clock& clock,
              const crypto::SecretBox* box = nullptr);

  // Creates a PKCE verifier/challenge and state, stores {verifier, state, setupToken, proxy URL,
  // sealed proxy password} under a new session id in `pending` (TTL sessionTtlMs), returns the
  // authorize URL. kFailedPrecondition for a proxy password without a SecretBox.
  StatusOr<OAuthStart> start(bool setupToken, const std::string& proxyUrl = {},
                             const std::string& proxyPassword = {});
  // Accepts the bare code, "code#state", or the whole callback URL (code cut at '#' and '&').
  // kNotFound when the session is unknown or expired; kInvalidArgument when the state does not
  // match; kUnavailable / kPermissionDenied with the server's error when the exchange fails.
  // The session is consumed on success.
  StatusOr<OAuthTokens> exchange(const std::string& sessionId, const std::string& codeOrUrl);
  // refresh_token grant. The old refresh token is kept when the response has none.
  StatusOr<OAuthTokens> refresh(const std::string& refreshToken, const std::string& proxyUrl = {},
                                const std::string& proxyPassword = {});

  const ClaudeOAuthOptions& options() const { return opts_; }
  // The storage key of a pending authorization.
  static std::string sessionKey(const std::string& sessionId) {
    return "oauth_session:" + sessionId;
  }

 private:
  // POSTs `body` (JSON) to the token URL; `what` names the grant in errors; `secrets` are
  // scrubbed from every message built from the server's answer.
  StatusOr<OAuthTokens> postToken(const std::string& body, const std::string& what,
                                  const std::string& proxyUrl, const std::string& proxyPassword,
                                  const std::vector<std::string>& secrets);

  ClaudeOAuthOptions opts_;
  UpstreamClient& http_;
  KvStore& pending_;
  const Clock& clock_;
  const crypto::SecretBox* box_;
};

struct TokenManagerOptions {
  int64_t refreshLeadMs = 60000;         // refresh when now >= expiresAt - lead
  int64_t lockTtlMs = 45000;             // the refresh lock's lifetime (longer than a refresh)
  int64_t waitForPeerMs = 35000;         // how long a loser waits for the winner's new token
  int64_t backgroundIntervalMs = 60000;  // the idle refresher's period; 0 = no background thread
};

class TokenManager {
 public:
  TokenManager(ClaudeOAuth& oauth, AccountService& accounts, SchedStore& locks, const Clock& clock,
               EventBus* events, TokenManagerOptions opts = {});
  ~TokenManager();  // stops the background thread

  // The access token to use for `rec` (a claude-official account) now. Refreshes first when it
  // is due and the account has a refresh token, under the lock "oauth_refresh:<accountId>".
  // A failed refresh marks the account status "error" with the reason and publishes
  // "account.error", and still returns the old token while it has not actually expired
  // (kUnavailable naming the failure once it has).
  StatusOr<std::string> accessToken(const AccountRecord& rec);
  // Refreshes every enabled claude-official account with a refresh token that is due within
  // refreshLeadMs + backgroundIntervalMs. Called by the background thread; public for tests.
  void refreshDue();
  void startBackground();
  void stop();
  uint64_t refreshCount() const { return refreshes_.load(); }  // refresh calls made by this process

 private:
  // One in-process refresh of an account that every concurrent caller shares.
  struct Flight {
    bool done = false;
    Status status;
    std::string token;
  };
  // The token after making sure it is not due within leadMs (refreshing under the shared lock).
  StatusOr<std::string> ensureFresh(const AccountRecord& rec, int64_t leadMs);
  // The leader's part: distributed lock, re-read, refresh or wait for the peer's new token.
  StatusOr<std::string> refreshShared(const AccountRecord& rec, int64_t oldExpiresAtMs,
                                      int64_t leadMs);
  // Refreshes with the lock held; `fresh` is the account as re-read under the lock.
  StatusOr<std::string> refreshLocked(const AccountRecord& fresh);
  // Waits up to ms (real time) or until stop(); false when stopping.
  bool pause(int64_t ms);
  void backgroundLoop();

  ClaudeOAuth& oauth_;
  AccountService& accounts_;
  SchedStore& locks_;
  const Clock& clock_;
  EventBus* events_;
  TokenManagerOptions opts_;
  std::atomic<uint64_t> refreshes_{0};
  std::atomic<bool> stop_{false};
  std::thread bg_;
  std::mutex mu_;               // guards flights_ and the Flight objects; paired with cv_
  std::condition_variable cv_;  // a flight finished, or stop()
  std::map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace rg
