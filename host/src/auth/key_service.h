#pragma once
// Gateway keys: creation (shown once), keyed-hash storage, authentication with a short-lived
// in-process cache, and the per-key checks (expiry, permission, model filter).

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "storage/store.h"
#include "upstream/http_client.h"

namespace rg {

constexpr std::string_view kKeyPrefix = "cr_";
constexpr size_t kKeyHexLength = 64;

// How errors name the inputs: CLI flags ("--expires-at") or JSON members ("expires_at").
enum class InputSpelling { kCliFlags, kJson };

// Bounds of the per-key limits (validateOptions / update reject values outside them).
constexpr int64_t kMaxCostMicroUsd = 1'000'000'000LL * 1'000'000;  // 1e9 USD
constexpr int64_t kMaxActivationMs = 3650LL * 86'400'000;          // ten years

struct NewKeyOptions {
  std::string name;
  std::vector<std::string> permissions;
  int64_t expiresAtMs = 0;
  int64_t concurrencyLimit = 0;
  int64_t rateWindowMinutes = 0;
  int64_t rateRequests = 0;
  int64_t rateTokens = 0;
  ModelFilterMode modelMode = ModelFilterMode::kNone;
  std::vector<std::string> models;
  // provider (claude | gemini | openai | bedrock) -> an account id or "group:<name>".
  std::map<std::string, std::string> bindings;
  // Cost limits in micro-dollars (0 = none) and the weekly period; see ApiKeyRecord.
  int64_t rateCostMicroUsd = 0;  // needs rateWindowMinutes
  int64_t dailyCostMicroUsd = 0;
  int64_t totalCostMicroUsd = 0;
  int64_t weeklyCostMicroUsd = 0;
  int64_t weeklyResetDay = 1;   // 1 = Monday .. 7 = Sunday
  int64_t weeklyResetHour = 0;  // 0..23
  int64_t ratePpm = 1'000'000;  // per-key price multiplier, 0 < rate <= 1000
  // > 0: the key expires this long after its first authenticated use (excludes expiresAtMs).
  int64_t activationMs = 0;
};

// A change to an existing key (KeyService::update): absent = unchanged. Setting a model list
// sets its mode too (kNone with an empty list drops the filter).
struct KeyPatch {
  std::optional<std::vector<std::string>> permissions;
  std::optional<int64_t> expiresAtMs;  // 0 = never
  std::optional<int64_t> concurrencyLimit;
  std::optional<int64_t> rateWindowMinutes;
  std::optional<int64_t> rateRequests;
  std::optional<int64_t> rateTokens;
  std::optional<int64_t> rateCostMicroUsd;
  std::optional<int64_t> dailyCostMicroUsd;
  std::optional<int64_t> totalCostMicroUsd;
  std::optional<int64_t> weeklyCostMicroUsd;
  std::optional<int64_t> weeklyResetDay;
  std::optional<int64_t> weeklyResetHour;
  std::optional<int64_t> ratePpm;
  // 0 turns activation expiry off (and drops an expiry that came from an activation). A new
  // duration on an activated key moves its expiry to activatedAt + the new duration.
  std::optional<int64_t> activationMs;
  std::optional<ModelFilterMode> modelMode;
  std::optional<std::vector<std::string>> models;
  std::optional<std::map<std::string, std::string>> bindings;  // replaces all of them

  bool empty() const;
};

struct CreatedKey {
  ApiKeyRecord record;
  std::string plainKey;  // shown once, never stored
};

using KeyRecordPtr = std::shared_ptr<const ApiKeyRecord>;

class KeyService {
 public:
  // `hashSecret` is derived from the master key; cacheTtlMs bounds how long a change made by
  // another process (the CLI) can take to be seen by a running gateway.
  KeyService(Store& store, const Clock& clock, std::string hashSecret, int64_t cacheTtlMs = 5000);

  // Every field of the key in range and consistent; messages name the inputs in `spelling`.
  static Status validateOptions(const NewKeyOptions& opts,
                                InputSpelling spelling = InputSpelling::kCliFlags);
  static Status validateRecord(const ApiKeyRecord& rec,
                               InputSpelling spelling = InputSpelling::kCliFlags);
  StatusOr<CreatedKey> create(const NewKeyOptions& opts,
                              InputSpelling spelling = InputSpelling::kCliFlags);
  // Applies `patch` to the stored key, validates the result (and bound accounts when the
  // bindings change), stores it and drops it from the cache. kNotFound for an unknown id.
  StatusOr<ApiKeyRecord> update(const std::string& id, const KeyPatch& patch,
                                InputSpelling spelling = InputSpelling::kCliFlags);
  // kUnauthenticated with a client-facing message: format, unknown, disabled, expired.
  // kUnavailable when storage cannot be reached. A key with activation expiry that was never
  // used is activated here (activatedAtMs = now, expiresAtMs = now + activationMs, stored).
  StatusOr<KeyRecordPtr> authenticate(std::string_view plainKey);
  std::string hashKey(std::string_view plainKey) const;

  StatusOr<std::vector<ApiKeyRecord>> list();
  StatusOr<ApiKeyRecord> get(const std::string& id);
  Status setEnabled(const std::string& id, bool enabled);
  // Replaces the key's bindings (empty = the shared pool for every provider) after checkBindings.
  StatusOr<ApiKeyRecord> setBindings(const std::string& id,
                                     const std::map<std::string, std::string>& bindings);
  // Format (see validateBindings) plus: a bound account exists and serves that provider.
  Status checkBindings(const std::map<std::string, std::string>& bindings);
  // Format only: a known provider; "group:<name>" with name [A-Za-z0-9_.-]{1,64}, or a UUID.
  static Status validateBindings(const std::map<std::string, std::string>& bindings);
  Status remove(const std::string& id);

 private:
  void invalidate(const std::string& hash);
  StatusOr<KeyRecordPtr> activate(const KeyRecordPtr& rec);
  struct CacheEntry {
    KeyRecordPtr rec;
    int64_t expiresMs;
  };
  Store& store_;
  const Clock& clock_;
  std::string hashSecret_;
  int64_t cacheTtlMs_;
  std::mutex mu_;
  std::unordered_map<std::string, CacheEntry> cache_;
};

// "cr_" + 64 lowercase hex characters.
bool isWellFormedKey(std::string_view key);
// First non-empty of: x-api-key, x-goog-api-key, authorization (Bearer stripped), api-key,
// query parameter `key`. Empty when none.
std::string extractKey(const HeaderList& headers, std::string_view query);
// Header names that carry gateway credentials; never forwarded to a plugin or upstream.
bool isCredentialHeader(std::string_view name);
// Removes key=... from a query string (the gateway key must not travel upstream).
std::string stripKeyParam(std::string_view query);
bool hasPermission(const ApiKeyRecord& rec, std::string_view permission);
// Allow/deny list check. Entries match exactly (case-insensitive), after removing a vendor prefix
// ("anthropic/", "us.anthropic."), or as a prefix when they end in '*'.
bool modelAllowed(const ApiKeyRecord& rec, std::string_view model);

}  // namespace rg
