// TokenManager (declared in claude_oauth.h): refresh ahead of expiry, once per account across
// every thread (an in-process flight) and every instance (SchedStore::tryLock).
#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "crypto/crypto.h"
#include "oauth/claude_oauth.h"

namespace rg {

namespace {

// A refresh failure is recorded with this prefix so the background pass can recognise accounts
// it put into "error" and retry them (a transient failure must not park an account for good).
constexpr const char* kRefreshFailedPrefix = "OAuth token refresh failed: ";
constexpr int64_t kDefaultLifetimeMs = 3600000;  // when the server names no expires_in
constexpr int64_t kFirstPollMs = 10;
constexpr int64_t kMaxPollMs = 200;

int64_t expiresAtOf(const AccountRecord& rec) {
  auto settings = AccountService::settingsOf(rec);
  auto it = settings.find("tokenExpiresAt");
  if (it == settings.end() || it->second.empty() || it->second.size() > 18 ||
      !std::all_of(it->second.begin(), it->second.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return 0;
  }
  return std::stoll(it->second);
}

bool hasRefreshToken(const AccountRecord& rec) {
  return rec.secretsSealed.count("refresh_token") != 0;
}

bool isDue(int64_t expiresAtMs, int64_t nowMs, int64_t leadMs) {
  return expiresAtMs > 0 && nowMs >= expiresAtMs - leadMs;
}

// A status reason: printable and at most 500 characters (AccountService::setStatus's limit).
std::string reasonText(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
      out += c;
    }
  }
  if (out.size() > 500) {
    out.resize(497);
    out += "...";
  }
  return out;
}

std::string label(const AccountRecord& rec) {
  return "account " + rec.name + " (" + rec.id + ")";
}

}  // namespace

TokenManager::TokenManager(ClaudeOAuth& oauth, AccountService& accounts, SchedStore& locks,
                           const Clock& clock, EventBus* events, TokenManagerOptions opts)
    : oauth_(oauth),
      accounts_(accounts),
      locks_(locks),
      clock_(clock),
      events_(events),
      opts_(opts) {}

TokenManager::~TokenManager() {
  stop();
}

StatusOr<std::string> TokenManager::accessToken(const AccountRecord& rec) {
  return ensureFresh(rec, opts_.refreshLeadMs);
}

StatusOr<std::string> TokenManager::ensureFresh(const AccountRecord& rec, int64_t leadMs) {
  int64_t expiresAt = expiresAtOf(rec);
  int64_t now = clock_.nowUnixMs();
  if (!isDue(expiresAt, now, leadMs)) {
    return accounts_.openPrimaryCached(rec);
  }
  if (!hasRefreshToken(rec)) {
    if (now < expiresAt) {
      return accounts_.openPrimaryCached(rec);
    }
    return unavailable("the OAuth access token of " + label(rec) +
                       " has expired and the account has no refresh token; authorize it again");
  }
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = flights_[rec.id];
    if (!slot) {
      slot = std::make_shared<Flight>();
      leader = true;
    }
    flight = slot;
  }
  if (!leader) {
    // Another thread of this process is refreshing this account: share its result.
    std::unique_lock<std::mutex> lock(mu_);
    auto bound = std::chrono::milliseconds(opts_.waitForPeerMs + oauth_.options().timeoutMs +
                                           opts_.lockTtlMs);
    cv_.wait_for(lock, bound, [&] { return flight->done || stop_.load(); });
    if (flight->done) {
      if (!flight->status) {
        return flight->status;
      }
      return flight->token;
    }
    lock.unlock();
    if (clock_.nowUnixMs() < expiresAt) {
      return accounts_.openPrimaryCached(rec);
    }
    return unavailable("the OAuth access token of " + label(rec) +
                       " has expired and its refresh did not finish in time");
  }
  auto result = refreshShared(rec, expiresAt, leadMs);
  {
    std::lock_guard<std::mutex> lock(mu_);
    flight->done = true;
    flight->status = result.status();
    if (result) {
      flight->token = *result;
    }
    flights_.erase(rec.id);
  }
  cv_.notify_all();
  return result;
}

StatusOr<std::string> TokenManager::refreshShared(const AccountRecord& rec, int64_t oldExpiresAtMs,
                                                  int64_t leadMs) {
  // Falls back to the token we have while it is still valid.
  auto fallback = [&](const std::string& why) -> StatusOr<std::string> {
    if (clock_.nowUnixMs() < oldExpiresAtMs) {
      return accounts_.openPrimaryCached(rec);
    }
    return unavailable("the OAuth access token of " + label(rec) +
                       " has expired and could not be refreshed: " + why);
  };
  // The account as another thread or instance may have left it: a moved expiry means someone
  // refreshed since `rec` was read.
  auto refreshedBySomeone = [&](const AccountRecord& fresh) {
    int64_t exp = expiresAtOf(fresh);
    return exp > oldExpiresAtMs || !isDue(exp, clock_.nowUnixMs(), leadMs);
  };
  const std::string lockName = "oauth_refresh:" + rec.id;
  const std::string lockToken = crypto::base64UrlEncode(crypto::randomBytes(16));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.waitForPeerMs);
  int64_t pollMs = kFirstPollMs;
  while (true) {
    auto locked = locks_.tryLock(lockName, lockToken, opts_.lockTtlMs);
    if (!locked) {
      return fallback("cannot take the refresh lock: " + locked.status().message());
    }
    if (*locked) {
      StatusOr<std::string> out = [&]() -> StatusOr<std::string> {
        auto fresh = accounts_.get(rec.id);
        if (!fresh) {
          return fallback("cannot re-read the account: " + fresh.status().message());
        }
        if (refreshedBySomeone(*fresh)) {
          return accounts_.openPrimaryCached(*fresh);
        }
        return refreshLocked(*fresh);
      }();
      auto unlocked = locks_.unlock(lockName, lockToken);
      if (!unlocked) {
        spdlog::warn("{}: cannot release the OAuth refresh lock (it expires by itself): {}",
                     label(rec), unlocked.status().message());
      }
      return out;
    }
    // Another instance holds the lock: wait for its new token.
    auto fresh = accounts_.get(rec.id);
    if (fresh && refreshedBySomeone(*fresh)) {
      return accounts_.openPrimaryCached(*fresh);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return fallback("timed out after " + std::to_string(opts_.waitForPeerMs) +
                      " ms waiting for another instance to refresh it");
    }
    if (!pause(pollMs)) {
      return fallback("the gateway is shutting down");
    }
    pollMs = std::min(pollMs * 2, kMaxPollMs);
  }
}

StatusOr<std::string> TokenManager::refreshLocked(const AccountRecord& fresh) {
  const int64_t oldExpiresAt = expiresAtOf(fresh);
  auto refreshToken = accounts_.openSecret(fresh, "refresh_token");
  std::string proxyPassword;
  if (fresh.secretsSealed.count("proxy_password") != 0) {
    auto pw = accounts_.openSecret(fresh, "proxy_password");
    if (pw) {
      proxyPassword = *pw;
    }
  }
  StatusOr<OAuthTokens> tokens = refreshToken.status();
  if (refreshToken) {
    refreshes_.fetch_add(1);
    tokens = oauth_.refresh(*refreshToken, fresh.proxyUrl, proxyPassword);
  }
  const int64_t now = clock_.nowUnixMs();
  if (!tokens) {
    std::string reason = reasonText(kRefreshFailedPrefix + tokens.status().message());
    Status marked = accounts_.setStatus(fresh.id, "error", reason);
    accounts_.invalidateCache();
    spdlog::warn("{}: {}{}", label(fresh), reason,
                 marked ? "" : " (and marking it as error failed: " + marked.message() + ")");
    if (events_ != nullptr) {
      AccountEvent ev;
      ev.type = "account.error";
      ev.accountId = fresh.id;
      ev.accountName = fresh.name;
      ev.oldState = fresh.status;
      ev.newState = "error";
      ev.reason = reason;
      ev.atMs = now;
      events_->publish(ev);
    }
    if (now < oldExpiresAt) {
      return accounts_.openPrimaryCached(fresh);
    }
    return unavailable("the OAuth access token of " + label(fresh) +
                       " has expired and could not be refreshed: " + tokens.status().message());
  }
  int64_t expiresAt = tokens->expiresAtMs > 0 ? tokens->expiresAtMs : now + kDefaultLifetimeMs;
  AccountChanges changes;
  changes.fields["access-token"] = tokens->accessToken;
  if (!tokens->refreshToken.empty()) {
    changes.fields["refresh-token"] = tokens->refreshToken;
  }
  changes.fields["token-expires-at"] = std::to_string(expiresAt);
  if (!tokens->scopes.empty()) {
    changes.fields["oauth-scopes"] = tokens->scopes;
  }
  auto updated = accounts_.update(fresh.id, changes);
  if (!updated) {
    // The new token works for this request, but the next refresh may fail if the server
    // rotated the refresh token we could not store.
    spdlog::error("{}: OAuth token refreshed but not stored: {}", label(fresh),
                  updated.status().message());
    return tokens->accessToken;
  }
  std::string newState = fresh.status;
  if (fresh.status == "error") {
    Status s = accounts_.setStatus(fresh.id, "active", "");
    if (s) {
      newState = "active";
    } else {
      spdlog::warn("{}: cannot set it active after the refresh: {}", label(fresh), s.message());
    }
  }
  accounts_.invalidateCache();
  spdlog::info("{}: OAuth token refreshed, valid until unix ms {}", label(fresh), expiresAt);
  if (events_ != nullptr) {
    AccountEvent ev;
    ev.type = "account.oauth_refreshed";
    ev.accountId = fresh.id;
    ev.accountName = fresh.name;
    ev.oldState = fresh.status;
    ev.newState = newState;
    ev.untilMs = expiresAt;
    ev.atMs = now;
    events_->publish(ev);
  }
  return tokens->accessToken;
}

void TokenManager::refreshDue() {
  auto all = accounts_.list();
  if (!all) {
    spdlog::warn("OAuth background refresh: cannot list accounts: {}", all.status().message());
    return;
  }
  const int64_t lead = opts_.refreshLeadMs + std::max<int64_t>(opts_.backgroundIntervalMs, 0);
  for (const auto& rec : *all) {
    if (stop_.load()) {
      return;
    }
    bool refreshError =
        rec.status == "error" && rec.statusReason.rfind(kRefreshFailedPrefix, 0) == 0;
    if (rec.type != "claude-official" || (rec.status != "active" && !refreshError) ||
        !hasRefreshToken(rec) || !isDue(expiresAtOf(rec), clock_.nowUnixMs(), lead)) {
      continue;
    }
    auto token = ensureFresh(rec, lead);
    if (!token) {
      spdlog::warn("OAuth background refresh of {}: {}", label(rec), token.status().message());
    }
  }
}

bool TokenManager::pause(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_.load(); });
  return !stop_.load();
}

void TokenManager::backgroundLoop() {
  while (pause(opts_.backgroundIntervalMs)) {
    refreshDue();
  }
}

void TokenManager::startBackground() {
  if (opts_.backgroundIntervalMs <= 0 || bg_.joinable()) {
    return;
  }
  stop_.store(false);
  bg_ = std::thread([this] { backgroundLoop(); });
}

void TokenManager::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  if (bg_.joinable()) {
    bg_.join();
  }
}

}  // namespace rg
