#pragma once
// Domain-level storage interfaces. Host code talks to these, never to raw Redis commands or files.
// Two implementations: storage/embedded (default, single node, durable journal shared by the
// processes that open the dir) and storage/redis.
// Both pass tests/storage/conformance_test.cpp. All methods are thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace rg {

// ---- Gateway keys ------------------------------------------------------------------------------

enum class ModelFilterMode { kNone = 0, kAllow = 1, kDeny = 2 };

struct ApiKeyRecord {
  std::string id;  // UUIDv4
  std::string name;
  std::string hash;  // hex HMAC-SHA256 of the plain key; the only form stored
  bool enabled = true;
  int64_t createdAtMs = 0;
  int64_t updatedAtMs = 0;
  int64_t expiresAtMs = 0;               // 0 = never
  std::vector<std::string> permissions;  // empty = every provider
  int64_t concurrencyLimit = 0;          // 0 = unlimited
  int64_t rateWindowMinutes = 0;         // 0 = no window
  int64_t rateRequests = 0;              // requests per window, 0 = unlimited
  int64_t rateTokens = 0;                // tokens per window, 0 = unlimited
  ModelFilterMode modelMode = ModelFilterMode::kNone;
  std::vector<std::string> models;  // allow or deny list per modelMode
  // Account binding per provider ("claude", "gemini", "openai", "bedrock"): an account id
  // (dedicated) or "group:<name>" (any account carrying that group). Absent = the shared pool.
  // Records written before this field existed read back empty.
  std::map<std::string, std::string> bindings;
  // Cost limits in billed micro-dollars (USD x 1e6, after the key's and the global rate);
  // 0 = no limit. Records written before these fields existed read back with these defaults.
  int64_t rateCostMicroUsd = 0;    // per rate window (needs rateWindowMinutes)
  int64_t dailyCostMicroUsd = 0;   // per calendar day in accounting.time_zone
  int64_t totalCostMicroUsd = 0;   // lifetime
  int64_t weeklyCostMicroUsd = 0;  // per week, Claude-family models only (reference §2.3 #11)
  int64_t weeklyResetDay = 1;      // the week starts on this weekday: 1 = Monday .. 7 = Sunday
  int64_t weeklyResetHour = 0;     // ... at this local hour, 0..23
  // Per-key price multiplier, parts per million (1000000 = 1.0): billed = real x this x global.
  int64_t ratePpm = 1000000;
  // Activation expiry: when activationMs > 0 the key expires activationMs after its first
  // authenticated use; activatedAtMs records that use (0 = not yet) and expiresAtMs is set then.
  int64_t activationMs = 0;
  int64_t activatedAtMs = 0;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // Fails with kAlreadyExists when the id or the hash is taken.
  virtual Status create(const ApiKeyRecord& rec) = 0;
  virtual StatusOr<std::optional<ApiKeyRecord>> getById(const std::string& id) = 0;
  virtual StatusOr<std::optional<ApiKeyRecord>> getByHash(const std::string& hash) = 0;
  virtual StatusOr<std::vector<ApiKeyRecord>> list() = 0;  // sorted by createdAtMs, then id
  // Replaces the record with the same id (the hash may not change). kNotFound if absent.
  virtual Status update(const ApiKeyRecord& rec) = 0;
  virtual Status remove(const std::string& id) = 0;  // kNotFound if absent
};

// ---- Upstream accounts -------------------------------------------------------------------------

struct AccountRecord {
  std::string id;  // UUIDv4
  std::string name;
  std::string type;          // "claude-console", ...
  std::string baseUrl;       // no trailing slash
  std::string secretSealed;  // the credential, sealed by crypto::SecretBox (never plaintext)
  int64_t priority = 50;     // 1..100, lower preferred
  bool schedulable = true;
  std::string status = "active";  // active | error | blocked | disabled
  std::string statusReason;
  int64_t createdAtMs = 0;
  int64_t updatedAtMs = 0;
  int64_t lastUsedAtMs = 0;
  // Fields of the one account model for every type. Records written before they existed read
  // back with these defaults.
  std::string provider;            // claude | gemini | openai | bedrock (derived from type)
  std::string sharing = "shared";  // shared | dedicated
  std::vector<std::string> groups;
  int64_t concurrencyLimit = 0;  // 0 = no per-account cap
  // requested -> upstream model name; empty = every model. A plain supported-model list is
  // stored as identity mappings.
  std::map<std::string, std::string> modelMapping;
  std::string proxyUrl;  // "socks5://user@host:1080"; its password is a sealed secret
  int64_t subscriptionExpiresAtMs = 0;  // 0 = never
  std::string settingsJson = "{}";      // type-specific non-secret fields (region, deployment, ...)
  // Further secrets by name ("refresh_token", "aws_access_key_id", "proxy_password", ...), each
  // sealed by crypto::SecretBox; the primary credential stays in secretSealed.
  std::map<std::string, std::string> secretsSealed;
};

class AccountStore {
 public:
  virtual ~AccountStore() = default;
  virtual Status create(const AccountRecord& rec) = 0;  // kAlreadyExists on duplicate id
  virtual StatusOr<std::optional<AccountRecord>> get(const std::string& id) = 0;
  virtual StatusOr<std::vector<AccountRecord>> list() = 0;  // sorted by createdAtMs, then id
  virtual Status update(const AccountRecord& rec) = 0;      // kNotFound if absent
  virtual Status remove(const std::string& id) = 0;         // kNotFound if absent
  virtual Status touchLastUsed(const std::string& id, int64_t unixMs) = 0;
};

// ---- Usage -------------------------------------------------------------------------------------

struct TokenCounts {
  int64_t requests = 0;
  int64_t inputTokens = 0;
  int64_t outputTokens = 0;
  int64_t cacheCreate5mTokens = 0;
  int64_t cacheCreate1hTokens = 0;
  int64_t cacheReadTokens = 0;
  // Money, micro-dollars (USD x 1e6): the real price-table cost and the billed amount after
  // rates. Records booked before these existed read back as 0.
  int64_t costMicroUsd = 0;
  int64_t billedMicroUsd = 0;

  int64_t allTokens() const {
    return inputTokens + outputTokens + cacheCreate5mTokens + cacheCreate1hTokens + cacheReadTokens;
  }
  void add(const TokenCounts& o);
  bool operator==(const TokenCounts& o) const;
};

struct UsageEvent {
  // Idempotency key: a second record() / settle() with the same id within 24 hours of the first
  // booking books nothing (both backends; the embedded one also caps the ids it remembers at
  // 2,000,000, see store_util.h). "" = never deduplicated.
  std::string requestId;
  std::string keyId;
  std::string accountId;
  std::string model;
  std::string day;  // "YYYY-MM-DD" bucket in the configured zone (computed by the caller)
  int64_t unixMs = 0;
  TokenCounts counts;  // counts.requests is normally 1
  // The per-request record (kept, the last UsageRetention::recentPerKey per key) and the time
  // buckets of the aggregates, all computed by the caller in the configured time zone. An event
  // without day / hour / month gets them from unixMs in UTC (record() and settle() book every
  // aggregate either way). Records written before these fields existed read back with them
  // empty / 0.
  std::string hour;           // "YYYY-MM-DDTHH"
  std::string month;          // "YYYY-MM"
  std::string provider;       // "claude", ...
  std::string upstreamModel;  // the account's name for the model ("" = same as model)
  int64_t status = 0;         // HTTP status the client got
  bool stream = false;
  int64_t firstByteMs = 0;  // latency to the first response byte
  int64_t totalMs = 0;      // latency to the end
  std::string client;       // User-Agent family: "claude-cli", "anthropic-python", ... or ""
};

// What the aggregates are kept by. A kKeyModel series is per key, one point per model.
enum class UsageDim { kKey = 0, kAccount = 1, kModel = 2, kKeyModel = 3 };
enum class UsageBucket { kHour = 0, kDay = 1, kMonth = 2 };

struct UsagePoint {
  std::string bucket;  // as booked: "YYYY-MM-DDTHH" | "YYYY-MM-DD" | "YYYY-MM"
  std::string model;   // kKeyModel only
  TokenCounts counts;
};

struct UsageRetention {
  int64_t hourlyMs = 7LL * 86400000;  // hourly buckets are dropped this long after booking
  int64_t dailyMs = 32LL * 86400000;
  int64_t monthlyMs = 396LL * 86400000;  // 13 months
  int64_t recentPerKey = 200;            // per-request records kept per key (newest)
};

class UsageStore {
 public:
  virtual ~UsageStore() = default;
  // Books, in one atomic step with the idempotency check: per key, account, model and key+model,
  // an hourly, daily and monthly bucket and a lifetime total; and the key's recent records list
  // (newest first, capped). An event without hour / month gets them from unixMs in UTC. Returns
  // true when booked, false when requestId was already booked (within the last 24 hours).
  virtual StatusOr<bool> record(const UsageEvent& ev) = 0;
  // Shorthands over lifetime() / series() (one round trip each).
  StatusOr<TokenCounts> keyTotal(const std::string& keyId);
  StatusOr<TokenCounts> keyDaily(const std::string& keyId, const std::string& day);
  StatusOr<std::map<std::string, TokenCounts>> keyModelsDaily(const std::string& keyId,
                                                              const std::string& day);
  StatusOr<TokenCounts> accountTotal(const std::string& accountId);

  // Applies to bookings from now on (a booked bucket keeps the expiry it was booked with until
  // it is booked again). A retention <= 0 keeps those buckets forever; recentPerKey <= 0 keeps
  // no records.
  virtual void setRetention(const UsageRetention& r) = 0;
  // The key's most recent records, newest first, at most `limit`.
  virtual StatusOr<std::vector<UsageEvent>> recent(const std::string& keyId, size_t limit) = 0;
  // The buckets asked for (the caller lists them: it knows the zone), in the order given; a
  // bucket with nothing booked (or past retention) comes back with zero counts, except for
  // kKeyModel, which returns one point per (bucket, model) that has usage (models in name
  // order). One round trip.
  virtual StatusOr<std::vector<UsagePoint>> series(UsageDim dim, const std::string& id,
                                                   UsageBucket bucket,
                                                   const std::vector<std::string>& buckets) = 0;
  // Lifetime totals of one key / account / model (kKeyModel: id = keyId, every model summed).
  virtual StatusOr<TokenCounts> lifetime(UsageDim dim, const std::string& id) = 0;
  // The keys with the highest billed cost summed over the given buckets (booked by record() in a
  // per-bucket index with the same retention as the buckets), highest first, ties by key id, at
  // most `limit`. One round trip.
  struct KeyCost {
    std::string keyId;
    int64_t billedMicroUsd = 0;
  };
  virtual StatusOr<std::vector<KeyCost>> topKeys(UsageBucket bucket,
                                                 const std::vector<std::string>& buckets,
                                                 size_t limit) = 0;
};

// ---- Limits: leases and windows (ephemeral state) ----------------------------------------------

struct LeaseResult {
  bool acquired = false;
  int64_t count = 0;  // holders after the call (including this one when acquired)
};

class LimitStore {
 public:
  virtual ~LimitStore() = default;
  // Atomically: drop expired holders of `scope`; if fewer than `limit` remain (limit <= 0 means
  // unlimited), add `holder` with expiry now+ttlMs. A holder that dies is gone after ttlMs.
  virtual StatusOr<LeaseResult> acquireLease(const std::string& scope, const std::string& holder,
                                             int64_t limit, int64_t ttlMs) = 0;
  // Extends a live holder's expiry; false if it is no longer held.
  virtual StatusOr<bool> renewLease(const std::string& scope, const std::string& holder,
                                    int64_t ttlMs) = 0;
  virtual Status releaseLease(const std::string& scope, const std::string& holder) = 0;
  virtual StatusOr<int64_t> leaseCount(const std::string& scope) = 0;  // live holders
};

// ---- Admission: every per-key limit checked and the request's share reserved, atomically ----
//
// A reservation is held per (key, request) from admit() until settle()/release(), or until it
// expires (its process died): expired reservations are dropped by the next admit/settle/state
// of that key. Live reservations are the key's concurrency and carry the request's estimate, so
// requests in flight count against every limit at their worst case and a burst, or several
// instances, can never admit more than the limits allow.

struct AdmissionLimits {           // 0 = no limit
  int64_t concurrency = 0;         // live reservations
  int64_t windowMs = 0;            // fixed rate window, starting at its first request; 0 = none
  int64_t windowRequests = 0;      // requests per window
  int64_t windowTokens = 0;        // tokens (all kinds) per window
  int64_t windowCostMicroUsd = 0;  // billed cost per window
  int64_t dailyCostMicroUsd = 0;   // billed cost booked in AdmitRequest::day
  int64_t totalCostMicroUsd = 0;   // billed cost booked over the key's lifetime
  int64_t weeklyCostMicroUsd = 0;  // billed cost booked in AdmitRequest::week (weekly only)
};

struct AdmitRequest {
  std::string keyId;
  std::string requestId;  // the reservation's holder (and the usage record's id at settle)
  AdmissionLimits limits;
  int64_t ttlMs = 0;  // reservation lifetime; renew() extends it
  // The request's worst case: input estimate + max output tokens, and their billed cost.
  int64_t estTokens = 0;
  int64_t estBilledMicroUsd = 0;
  // Committed daily / lifetime cost are read from the usage aggregates (kKey buckets, field
  // billedMicroUsd): `day` is the current day bucket in the configured zone.
  std::string day;
  // The request counts toward the weekly limit (a Claude-family model); `week` names the current
  // weekly period (TimeZone::weekBucket) and weekTtlMs is how long its counter must live.
  bool weekly = false;
  std::string week;
  int64_t weekTtlMs = 0;
};

enum class AdmitVerdict {
  kAdmitted = 0,
  kConcurrency,     // live reservations >= limits.concurrency
  kWindowRequests,  // requests in the window >= limits.windowRequests
  kWindowTokens,    // window tokens + reserved + estTokens > limits.windowTokens
  kWindowCost,      // window cost + reserved + estimate > limits.windowCostMicroUsd
  kDailyCost,       // the same rule for the day's booked cost
  kTotalCost,       // ... lifetime booked cost
  kWeeklyCost,      // ... this week's booked Claude-family cost (only when weekly)
};

struct AdmitResult {
  AdmitVerdict verdict = AdmitVerdict::kAdmitted;
  // For a refusal: the limited quantity as checked (committed + reserved by the key's other live
  // requests, without this request's estimate), and its limit. Requests / tokens / micro-USD.
  int64_t current = 0;
  int64_t limit = 0;
  int64_t windowEndMs = 0;  // unix ms at which the current rate window ends (0 = no window)
  int64_t inFlight = 0;     // live reservations of the key (including this one when admitted)
};

struct SettleRequest {
  std::string keyId;
  std::string requestId;
  // The usage to book, exactly as UsageStore::record (idempotent by usage->requestId); nullptr =
  // nothing to book (the reservation is only released).
  const UsageEvent* usage = nullptr;
  // Also add the usage to the key's rate-window counters (tokens, billed cost) when a window is
  // open, and to the weekly counter `week` (kept weekTtlMs) when weekly -- only if booked now.
  bool weekly = false;
  std::string week;
  int64_t weekTtlMs = 0;
};

// What key-info shows: the key's live admission state.
struct AdmissionState {
  int64_t windowEndMs = 0;  // 0 = no open window
  int64_t windowRequests = 0;
  int64_t windowTokens = 0;
  int64_t windowCostMicroUsd = 0;
  int64_t weeklyCostMicroUsd = 0;  // booked in `week`
  int64_t inFlight = 0;            // live reservations
  int64_t reservedTokens = 0;      // their estimates
  int64_t reservedMicroUsd = 0;
};

class AdmissionStore {
 public:
  virtual ~AdmissionStore() = default;
  // ONE atomic step (a Lua script; the embedded backend's lock): drop the key's expired
  // reservations; check, in this order, concurrency, window requests, window tokens, window
  // cost, daily, total, weekly cost; when all pass, count the request in the window (opening it
  // if none is open) and add the reservation {estTokens, estBilledMicroUsd, expiry now+ttlMs}.
  // A requestId that already holds a reservation is refreshed, not counted twice.
  virtual StatusOr<AdmitResult> admit(const AdmitRequest& req) = 0;
  // Extends a live reservation; false when it is gone (expired or settled).
  virtual StatusOr<bool> renew(const std::string& keyId, const std::string& requestId,
                               int64_t ttlMs) = 0;
  // ONE atomic step: book the usage (if any, idempotent), add it to the window / weekly
  // counters when booked now, and drop the reservation (absent = fine). A replayed settle books
  // nothing (within 24 hours, as record()). Returns true when usage was booked by this call. Keys
  // without limits settle too (no reservation to drop): this is how every request's usage is
  // booked. When the step fails (an error status) nothing is booked and the reservation stays
  // until its ttl. A weekly settle (or admit) needs weekTtlMs > 0, else kInvalidArgument.
  virtual StatusOr<bool> settle(const SettleRequest& req) = 0;
  // Drops the reservation without booking anything (absent = fine).
  virtual Status release(const std::string& keyId, const std::string& requestId) = 0;
  // The key's state; `week` names the weekly period to read ("" = skip).
  virtual StatusOr<AdmissionState> state(const std::string& keyId, const std::string& week) = 0;
};

// ---- Scheduler state (shared by every instance on one backend) -------------------------------

// An account (or one model family of it) that must not be scheduled until untilMs.
struct CooldownRecord {
  std::string accountId;
  std::string scope;       // "" = the whole account, else a model family ("opus", "sonnet", ...)
  int64_t untilMs = 0;     // unix ms; the record is gone (not returned) from then on
  int64_t markedAtMs = 0;  // unix ms
  std::string errorClass;  // "rate_limited" | "overloaded" | "transient" | "auth" | ...
  std::string reason;      // short human-readable reason (never a secret)
  int64_t upstreamStatus = 0;
};

struct StickyRecord {
  std::string accountId;
  int64_t expiresAtMs = 0;  // unix ms
};

class SchedStore {
 public:
  virtual ~SchedStore() = default;
  // Cooldowns, keyed by (accountId, scope). set replaces an existing record of the same key;
  // the record expires by itself at untilMs (set with untilMs <= now is a no-op delete).
  virtual Status setCooldown(const CooldownRecord& rec) = 0;
  // Deletes one scope, or every scope of the account when scope is nullopt. Absent = ok.
  virtual Status clearCooldown(const std::string& accountId,
                               const std::optional<std::string>& scope) = 0;
  // Every live cooldown (untilMs > now), sorted by accountId, then scope. One round trip.
  virtual StatusOr<std::vector<CooldownRecord>> listCooldowns() = 0;

  // Sticky session mappings: session hash -> account, with a TTL.
  virtual StatusOr<std::optional<StickyRecord>> getSticky(const std::string& sessionHash) = 0;
  // Creates or replaces the mapping with expiry now+ttlMs (also used to renew).
  virtual Status setSticky(const std::string& sessionHash, const std::string& accountId,
                           int64_t ttlMs) = 0;
  virtual Status deleteSticky(const std::string& sessionHash) = 0;  // absent = ok
  // Drops every mapping that points to the account (it was marked). Returns how many.
  virtual StatusOr<int64_t> deleteStickyForAccount(const std::string& accountId) = 0;

  // Mutual exclusion across processes (OAuth refresh): true when `token` now holds `name` for
  // ttlMs (Redis SET NX PX). unlock deletes only when `token` still holds it (compare-and-delete)
  // and returns whether it did.
  virtual StatusOr<bool> tryLock(const std::string& name, const std::string& token,
                                 int64_t ttlMs) = 0;
  virtual StatusOr<bool> unlock(const std::string& name, const std::string& token) = 0;
};

// ---- Settings and plugin KV --------------------------------------------------------------------

class KvStore {
 public:
  virtual ~KvStore() = default;
  virtual StatusOr<std::optional<std::string>> get(const std::string& key) = 0;
  virtual Status set(const std::string& key, const std::string& value,
                     int64_t ttlMs) = 0;  // 0 = no expiry
  virtual Status del(const std::string& key) = 0;
};

// ---- The store ---------------------------------------------------------------------------------

class Store {
 public:
  virtual ~Store() = default;
  virtual const char* backendName() const = 0;  // "embedded" | "redis"
  virtual Status ping() = 0;                    // for /ready
  virtual KeyStore& keys() = 0;
  virtual AccountStore& accounts() = 0;
  virtual UsageStore& usage() = 0;
  virtual LimitStore& limits() = 0;
  virtual SchedStore& sched() = 0;
  virtual AdmissionStore& admission() = 0;
  virtual KvStore& settings() = 0;  // durable
  virtual KvStore& pluginKv() = 0;  // durable unless a ttl is given; keys namespaced by the caller
  virtual uint64_t errorCount() const = 0;  // storage errors since start (for /metrics)
  // Called by `relaygate serve` before it serves. The embedded backend allows any number of
  // processes on one data dir (CLI commands next to the server) but only one server, because
  // leases and rate windows live in each process's memory: it takes a non-blocking lock on
  // <dataDir>/serve.lock, held until the store is destroyed, and fails with kFailedPrecondition
  // ("... already served by another relaygate process (pid N)") when another store holds it.
  // Redis shares limits between servers, so it has nothing to claim.
  virtual Status claimExclusiveServe() { return Status::ok(); }
};
using StorePtr = std::unique_ptr<Store>;

struct EmbeddedOptions {
  std::string dataDir;          // created if missing; holds the journal
  bool fsyncEachWrite = false;  // true: fsync after every durable write (power-loss safe)
  // The journal is compacted into a snapshot when it grows past max(this, 2 x last snapshot).
  // 0 = the default (64 MiB). Tests set it small to exercise compaction.
  int64_t compactThresholdBytes = 0;
};

struct RedisOptions {
  std::string url = "redis://127.0.0.1:6379";  // redis://[:password@]host:port[/db]
  std::string password;                        // overrides the url's
  int db = -1;                                 // >= 0 overrides the url's
  std::string keyPrefix = "rg:";
  int poolSize = 8;
  int connectTimeoutMs = 2000;
  int commandTimeoutMs = 2000;
};

// Factories (storage/embedded/embedded_store.cpp, storage/redis/redis_store.cpp).
StatusOr<StorePtr> openEmbeddedStore(const EmbeddedOptions& opts, const Clock& clock);
StatusOr<StorePtr> openRedisStore(const RedisOptions& opts, const Clock& clock);

}  // namespace rg
