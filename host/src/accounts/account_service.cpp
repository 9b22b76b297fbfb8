#include "accounts/account_service.h"

#include <algorithm>

#include "upstream/http_client.h"

namespace rg {

AccountService::AccountService(Store& store, const Clock& clock, const crypto::SecretBox& box,
                               int64_t cacheTtlMs)
    : store_(store), clock_(clock), box_(box), cacheTtlMs_(cacheTtlMs) {}

const std::vector<std::string>& AccountService::knownTypes() {
  static const std::vector<std::string> types = {"claude-console"};
  return types;
}

StatusOr<AccountRecord> AccountService::add(const NewAccountOptions& o) {
  const auto& types = knownTypes();
  if (std::find(types.begin(), types.end(), o.type) == types.end()) {
    return invalidArgument("unknown account type \"" + o.type + "\" (supported: claude-console)");
  }
  if (o.name.empty() || o.name.size() > 100) {
    return invalidArgument("account name must be 1..100 characters");
  }
  if (o.apiKey.empty()) {
    return invalidArgument("--api-key is required");
  }
  if (o.priority < 1 || o.priority > 100) {
    return invalidArgument("priority must be 1..100");
  }
  std::string base = o.baseUrl;
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  auto url = parseUrl(base);
  if (!url) {
    return invalidArgument("--base-url: " + url.status().message());
  }
  AccountRecord r;
  r.id = crypto::uuidV4();
  r.name = o.name;
  r.type = o.type;
  r.baseUrl = base;
  r.secretSealed = box_.seal(o.apiKey);
  r.priority = o.priority;
  r.createdAtMs = clock_.nowUnixMs();
  r.updatedAtMs = r.createdAtMs;
  Status s = store_.accounts().create(r);
  if (!s) {
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  cachedUntilMs_ = 0;
  return r;
}

StatusOr<std::vector<AccountRecord>> AccountService::list() { return store_.accounts().list(); }

Status AccountService::remove(const std::string& id) {
  Status s = store_.accounts().remove(id);
  std::lock_guard<std::mutex> lock(mu_);
  cachedUntilMs_ = 0;
  return s;
}

StatusOr<std::shared_ptr<const std::vector<AccountRecord>>> AccountService::snapshot() {
  int64_t now = clock_.monotonicMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ && now < cachedUntilMs_) {
      return cached_;
    }
  }
  auto all = store_.accounts().list();
  if (!all) {
    return all.status();
  }
  auto snap = std::make_shared<const std::vector<AccountRecord>>(std::move(all.value()));
  std::lock_guard<std::mutex> lock(mu_);
  if (cached_ != nullptr) {
    for (auto& kv : openedSecrets_) {
      std::fill(kv.second.begin(), kv.second.end(), '\0');
    }
    openedSecrets_.clear();
  }
  cached_ = snap;
  cachedUntilMs_ = now + cacheTtlMs_;
  return snap;
}

StatusOr<ChosenAccount> AccountService::pick(const std::vector<std::string>& types) {
  auto snap = snapshot();
  if (!snap) {
    return Status(Code::kUnavailable, "account storage unavailable: " + snap.status().message());
  }
  const AccountRecord* best = nullptr;
  int64_t bestUsed = 0;
  bool persist = false;
  int64_t now = clock_.nowUnixMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& a : **snap) {
      if (std::find(types.begin(), types.end(), a.type) == types.end()) {
        continue;
      }
      if (a.status != "active" || !a.schedulable) {
        continue;
      }
      auto it = lastPickedMs_.find(a.id);
      int64_t used = std::max(a.lastUsedAtMs, it == lastPickedMs_.end() ? 0 : it->second);
      if (best == nullptr || a.priority < best->priority ||
          (a.priority == best->priority &&
           (used < bestUsed || (used == bestUsed && a.createdAtMs < best->createdAtMs)))) {
        best = &a;
        bestUsed = used;
      }
    }
    if (best != nullptr) {
      // A strictly increasing stamp: two picks in the same millisecond still rotate.
      int64_t stamp = std::max(now, bestUsed + 1);
      lastPickedMs_[best->id] = stamp;
      int64_t& persisted = lastPersistedMs_[best->id];
      if (now - persisted >= 60000) {
        persisted = now;
        persist = true;
      }
    }
  }
  if (best == nullptr) {
    std::string list;
    for (const auto& t : types) {
      list += (list.empty() ? "" : ", ") + t;
    }
    return Status(Code::kUnavailable, "No upstream account is available for this route "
                                      "(no active account of type " + list + ")");
  }
  if (persist) {
    (void)store_.accounts().touchLastUsed(best->id, now); // best effort: for display only
  }
  // Opening a secret costs an AES-GCM decryption: keep it for the snapshot's life (<= 1 s).
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = openedSecrets_.find(best->secretSealed);
    if (it != openedSecrets_.end()) {
      return ChosenAccount{*best, it->second};
    }
  }
  auto secret = box_.open(best->secretSealed);
  if (!secret) {
    return Status(Code::kInternal, "account " + best->id + ": cannot open its secret (" +
                                       secret.status().message() + ")");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    openedSecrets_.emplace(best->secretSealed, *secret);
  }
  return ChosenAccount{*best, std::move(secret.value())};
}

StatusOr<std::string> AccountService::maskedSecret(const AccountRecord& rec) const {
  auto secret = box_.open(rec.secretSealed);
  if (!secret) {
    return secret.status();
  }
  const std::string& s = *secret;
  if (s.size() < 12) {
    return std::string("****");
  }
  return s.substr(0, 4) + "****" + s.substr(s.size() - 4);
}

} // namespace rg
