#pragma once
// Upstream accounts: one model for every type (validation per type, sealing of every secret at
// rest, masked display), a cached snapshot and opened-secret cache for the request path. Which
// account serves a request is the scheduler's decision (scheduler/scheduler.h).

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "accounts/secret_cache.h"
#include "common/clock.h"
#include "common/status.h"
#include "crypto/crypto.h"
#include "storage/store.h"

namespace rg {

// Type-specific and credential inputs by their command-line flag name, so that every error can
// name the flag: "base-url", "endpoint", "api-key", "access-token", "refresh-token", "region",
// "aws-access-key-id", "aws-secret-access-key", "aws-session-token", "bearer-token", "project-id",
// "chatgpt-account-id", "deployment", "api-version", "proxy-password". Secrets are plaintext
// here and sealed before they are stored.
using AccountFields = std::map<std::string, std::string>;

struct NewAccountOptions {
  std::string type;
  std::string name;
  std::string baseUrl;  // same as fields["base-url"]
  std::string apiKey;   // same as fields["api-key"]
  int64_t priority = 50;
  AccountFields fields;
  int64_t concurrencyLimit = 0;
  std::map<std::string, std::string> modelMapping;  // empty = every model
  std::string proxyUrl;
  std::vector<std::string> groups;
  bool dedicated = false;
  int64_t subscriptionExpiresAtMs = 0;  // 0 = never
};

// A partial update: only the fields that are set change.
struct AccountChanges {
  std::optional<std::string> name;
  std::optional<int64_t> priority;
  std::optional<int64_t> concurrencyLimit;
  std::optional<std::map<std::string, std::string>> modelMapping;
  std::optional<std::string> proxyUrl;  // "" removes the proxy and its password
  std::optional<std::vector<std::string>> groups;
  std::optional<bool> dedicated;
  std::optional<int64_t> subscriptionExpiresAtMs;  // 0 = never
  std::optional<bool> schedulable;
  AccountFields fields;  // set or replace
};

// One secret of an account for display.
struct MaskedSecret {
  std::string name;  // "api_key", "refresh_token", ...
  std::string masked;
};

// "a=b,c=d" -> {a: b, c: d}; "a,b" (no '=') -> identity mappings. Rejects empty names and
// duplicates.
StatusOr<std::map<std::string, std::string>> parseModelMapping(const std::string& text);

class AccountService {
 public:
  AccountService(Store& store, const Clock& clock, const crypto::SecretBox& box,
                 int64_t cacheTtlMs = 1000);

  static const std::vector<std::string>& knownTypes();
  // claude | gemini | openai | bedrock; "" for an unknown type.
  static std::string providerOf(const std::string& type);
  // The flags a type accepts (beyond the common ones) and those it requires, for help texts.
  static std::vector<std::string> typeFlags(const std::string& type);
  // The type-specific settings of a record (settingsJson) as a map.
  static std::map<std::string, std::string> settingsOf(const AccountRecord& rec);

  StatusOr<AccountRecord> add(const NewAccountOptions& opts);
  StatusOr<AccountRecord> update(const std::string& id, const AccountChanges& changes);
  StatusOr<AccountRecord> get(const std::string& id);
  StatusOr<std::vector<AccountRecord>> list();
  Status remove(const std::string& id);
  // enable: status active, reason cleared. disable: status disabled with the reason.
  Status enable(const std::string& id);
  Status disable(const std::string& id, const std::string& reason);
  Status setSchedulable(const std::string& id, bool schedulable);
  // Sets status ("active" | "error" | "blocked" | "disabled") and its reason (cleared for
  // active). No write when nothing changes.
  Status setStatus(const std::string& id, const std::string& status, const std::string& reason);
  // Every account, from a cache refreshed at most every cacheTtlMs (the request path's view).
  StatusOr<std::shared_ptr<const std::vector<AccountRecord>>> snapshot();
  // The next snapshot() reads storage again (after a change made in this process).
  void invalidateCache();
  // The plaintext primary credential, opened once and kept in a bounded LRU (1024 entries, 5
  // minutes) keyed by the hash of the sealed form (a changed secret has a new sealed form, so it
  // is never served stale).
  StatusOr<std::string> openPrimaryCached(const AccountRecord& rec);
  // Masked form of a sealed secret for display: "sk-a****wxyz" style; never the secret.
  StatusOr<std::string> maskedSecret(const AccountRecord& rec) const;
  // Every secret of the account (primary first), masked.
  StatusOr<std::vector<MaskedSecret>> maskedSecrets(const AccountRecord& rec) const;
  // The plaintext of one named secret ("api_key", "refresh_token", ...) for an upstream call.
  StatusOr<std::string> openSecret(const AccountRecord& rec, const std::string& name) const;
  // The name of the record's primary credential (the one in secretSealed).
  static std::string primarySecretName(const AccountRecord& rec);

 private:
  Status apply(AccountRecord& rec, const AccountChanges& c, bool creating) const;
  Status store(const AccountRecord& rec, bool creating);
  Store& store_;
  const Clock& clock_;
  const crypto::SecretBox& box_;
  int64_t cacheTtlMs_;
  std::mutex mu_;
  std::shared_ptr<const std::vector<AccountRecord>> cached_;
  int64_t cachedUntilMs_ = 0;
  // Opened primary secrets: bounded LRU, 5-minute TTL, wiped on eviction.
  SecretCache secrets_;
};

}  // namespace rg
