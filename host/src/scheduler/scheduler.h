#pragma once
// The account scheduler: which upstream account serves a request, and what an upstream error does
// to the account. Provider-neutral: a route names the account types it can use and the plugin
// supplies the model and a session key; everything else is the account model's.
//
// Order (reference §4.1): the key's binding for the provider (a dedicated account: that one or
// nothing; a group: only its members) -> the sticky mapping of the session when its account is
// still usable -> the pool: active, schedulable, not cooling down (whole account, or the model's
// family), supporting the model, not expired, not already tried by this request, under its
// concurrency cap -> by priority, then least recently used, then creation time.
//
// Cooldowns, sticky mappings and concurrency leases live in storage (SchedStore, LimitStore), so
// every instance on one Redis honours what another decided. Cooldowns expire by themselves: an
// account is schedulable again the moment its reason ends (and at once after a success).

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "accounts/account_service.h"
#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"
#include "events/event_bus.h"
#include "observability/metrics.h"
#include "storage/store.h"

namespace rg {

// The verdict of a provider plugin on an upstream error (rg_error_info, as host types).
enum class ErrorKind {
  kNone,
  kClient,          // return to the client, no marking, no failover
  kContextTooLong,  // same
  kRateLimited,
  kOverloaded,
  kTransient,  // 5xx, timeouts, connection failures
  kAuth,
  kQuotaExhausted,
  kBlocked,  // the vendor disabled the account: operator must reset
};
const char* errorKindName(ErrorKind k);

struct UpstreamError {
  ErrorKind kind = ErrorKind::kNone;
  int status = 0;            // upstream HTTP status; 0 = no response (connect failure, timeout)
  int64_t retryAfterMs = 0;  // 0 = not given
  int64_t untilUnixMs = 0;   // absolute end of the limit; 0 = unknown
  std::string scope;         // "" = whole account, else a model family
  std::string reason;
};

struct PickRequest {
  std::vector<std::string> types;  // account types the route accepts
  std::string provider;            // "claude" ... (selects the key's binding)
  std::string model;               // requested model; "" = any account
  std::string sessionKey;          // from the plugin; "" = no stickiness
  const ApiKeyRecord* key = nullptr;
  std::string holder;             // lease holder id (the request id)
  std::set<std::string> exclude;  // accounts this request already tried
};

// A chosen account. Release it (exactly once) with Scheduler::release().
struct Pick {
  AccountRecord record;
  std::string upstreamModel;  // the account's name for the requested model ("" = unchanged)
  bool sticky = false;        // chosen through the session's mapping
  std::string leaseScope;     // "" = no per-account lease taken
  std::string holder;
  std::string stickyHash;  // storage key of the session mapping ("" = none)
  std::string family;      // model family of the request ("" = unknown)
};

// Why nothing could be chosen: the code is kUnavailable and the message says why, for the
// client (all cooling down until T / none supports model M / all at their concurrency cap /
// the key's dedicated account is unavailable).
class Scheduler {
 public:
  Scheduler(AccountService& accounts, Store& store, const Clock& clock, SchedulerConfig cfg,
            EventBus* events, MetricsRegistry* metrics);

  StatusOr<Pick> pick(const PickRequest& req);
  // Frees the per-account lease (idempotent). Every pick must end here.
  void release(Pick& p);
  // Keeps a long stream's lease alive.
  void renew(const Pick& p);
  // The upstream answered with success: clears any cooldown of the account (recovery on the first
  // success) and records use.
  void reportSuccess(const Pick& p);
  // Applies the cooldown policy for the error. Returns true when the request may be retried on
  // another account (the class is retryable; the caller also checks nothing was sent yet).
  bool reportError(const Pick& p, const UpstreamError& e);
  static bool retryable(ErrorKind k);

  // Publishes "account.recovered" for cooldowns that have ended since the last call (called
  // after every read of the shared state).
  void tick();
  // A background thread re-reads the shared state every stateRefreshMs, so recoveries are
  // announced when the cooldown ends even without traffic. stop() joins it (the destructor too).
  void startBackground();
  void stop();
  ~Scheduler();

  const SchedulerConfig& config() const { return cfg_; }
  int64_t leasesHeld() const;
  // The session hash used as the sticky mapping's key.
  static std::string stickyHash(const std::string& provider, const std::string& sessionKey);
  // "opus" | "sonnet" | "haiku" | "" from a model name.
  static std::string modelFamily(const std::string& model);
  // The upstream name of `model` on the account; nullopt when the account does not serve it.
  static std::optional<std::string> mapModel(const AccountRecord& rec, const std::string& model);

  int64_t leaseTtlMs() const { return leaseTtlMs_; }
  void setLeaseTtlMs(int64_t ms) { leaseTtlMs_ = ms; }

 private:
  StatusOr<std::shared_ptr<const std::vector<CooldownRecord>>> cooldowns(bool force);
  void markCooldown(const Pick& p, const std::string& scope, int64_t untilMs,
                    const UpstreamError& e);
  void publish(const std::string& type, const AccountRecord& rec, const std::string& oldState,
               const std::string& newState, const std::string& scope, const std::string& reason,
               int64_t untilMs);
  int64_t lruStamp(const AccountRecord& rec);
  // Sticky mappings, read through a small in-process cache (scheduler.sticky_cache_ms): a
  // conversation's turns then cost no storage read. Marking an account forgets its entries here
  // at once; another instance's changes are seen when the entry ends.
  StatusOr<std::optional<StickyRecord>> lookupSticky(const std::string& hash, int64_t now);
  void rememberSticky(const std::string& hash, const std::string& accountId, int64_t now);
  void forgetSticky(const std::string& hash, const std::string& accountId);
  struct CachedSticky {
    StickyRecord rec;
    int64_t cachedUntilMono = 0;
  };
  static constexpr size_t kStickyCacheMax = 100000;
  std::unordered_map<std::string, CachedSticky> stickyCache_;

  AccountService& accounts_;
  Store& store_;
  const Clock& clock_;
  SchedulerConfig cfg_;
  EventBus* events_;
  int64_t leaseTtlMs_ = 660000;

  std::mutex mu_;
  std::mutex bgMu_;
  std::condition_variable bgCv_;
  bool bgStop_ = false;
  std::thread bg_;
  std::shared_ptr<const std::vector<CooldownRecord>> cooldowns_;
  int64_t cooldownsReadMono_ = 0;
  bool cooldownsValid_ = false;
  // Cooldowns seen live, by "account|scope" -> until, to announce their end once.
  std::map<std::string, std::pair<int64_t, std::string>> seenCooldowns_;
  std::unordered_map<std::string, int64_t> lastPickedMs_;
  std::unordered_map<std::string, int64_t> lastPersistedMs_;

  Gauge* leasesHeld_ = nullptr;
  Counter* picksSticky_ = nullptr;
  Counter* picksPool_ = nullptr;
  Counter* picksNone_ = nullptr;
  MetricsRegistry* metrics_ = nullptr;
};

}  // namespace rg
