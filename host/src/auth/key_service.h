#pragma once
// Gateway keys: creation (shown once), keyed-hash storage, authentication with a short-lived
// in-process cache, and the per-key checks (expiry, permission, model filter).

#include <map>
#include <memory>
#include <mutex>
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

  static Status validateOptions(const NewKeyOptions& opts);
  StatusOr<CreatedKey> create(const NewKeyOptions& opts);
  // kUnauthenticated with a client-facing message: format, unknown, disabled, expired.
  // kUnavailable when storage cannot be reached.
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
