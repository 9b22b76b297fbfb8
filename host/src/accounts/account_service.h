#pragma once
// Upstream accounts: validation, sealing of secrets at rest, and (for now) the simple choice of an
// account for a route: the best active, schedulable account of an accepted type, by priority, then
// least recently used, then creation time. The scheduler issue replaces pick() with the full policy.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "crypto/crypto.h"
#include "storage/store.h"

namespace rg {

struct NewAccountOptions {
  std::string type;
  std::string name;
  std::string baseUrl;
  std::string apiKey; // plaintext; sealed before it is stored
  int64_t priority = 50;
};

// An account ready for one request: the record plus its opened secret (kept only for the request).
struct ChosenAccount {
  AccountRecord record;
  std::string secret;
};

class AccountService {
public:
  AccountService(Store& store, const Clock& clock, const crypto::SecretBox& box,
                 int64_t cacheTtlMs = 1000);

  static const std::vector<std::string>& knownTypes();
  StatusOr<AccountRecord> add(const NewAccountOptions& opts);
  StatusOr<std::vector<AccountRecord>> list();
  Status remove(const std::string& id);
  // kUnavailable with a client-facing reason when no account can serve.
  StatusOr<ChosenAccount> pick(const std::vector<std::string>& types);
  // Masked form of a sealed secret for display: "sk-a****wxyz" style; never the secret.
  StatusOr<std::string> maskedSecret(const AccountRecord& rec) const;

private:
  StatusOr<std::shared_ptr<const std::vector<AccountRecord>>> snapshot();
  Store& store_;
  const Clock& clock_;
  const crypto::SecretBox& box_;
  int64_t cacheTtlMs_;
  std::mutex mu_;
  std::shared_ptr<const std::vector<AccountRecord>> cached_;
  int64_t cachedUntilMs_ = 0;
  // Least-recently-used order within a priority tier is kept in memory (a storage write per
  // request would be too dear); lastUsedAt is persisted at most once a minute per account.
  std::unordered_map<std::string, int64_t> lastPickedMs_;
  std::unordered_map<std::string, int64_t> lastPersistedMs_;
  // Opened secrets of the current snapshot (sealed form -> plaintext); cleared with it.
  std::unordered_map<std::string, std::string> openedSecrets_;
};

} // namespace rg
