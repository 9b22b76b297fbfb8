#include "auth/key_service.h"

#include <algorithm>

#include "accounts/account_service.h"
#include "crypto/crypto.h"

namespace rg {

namespace {

std::string lowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + 32);
    }
  }
  return out;
}

std::string_view stripVendor(std::string_view m) {
  size_t slash = m.rfind('/');
  if (slash != std::string_view::npos) {
    m.remove_prefix(slash + 1);
  }
  size_t comma = m.find(',');
  if (comma != std::string_view::npos) {
    m.remove_prefix(comma + 1);
  }
  for (std::string_view p :
       {"us.anthropic.", "eu.anthropic.", "apac.anthropic.", "global.anthropic.", "anthropic."}) {
    if (m.substr(0, p.size()) == p) {
      m.remove_prefix(p.size());
      break;
    }
  }
  return m;
}

bool isUuid(const std::string& s) {
  if (s.size() != 36) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (dash ? c != '-' : !hex) {
      return false;
    }
  }
  return true;
}

bool entryMatches(const std::string& entry, std::string_view model) {
  std::string e = lowerCopy(entry);
  std::string m = lowerCopy(model);
  std::string bare = lowerCopy(stripVendor(model));
  if (!e.empty() && e.back() == '*') {
    std::string_view prefix(e.data(), e.size() - 1);
    return std::string_view(m).substr(0, prefix.size()) == prefix ||
           std::string_view(bare).substr(0, prefix.size()) == prefix;
  }
  return e == m || e == bare || lowerCopy(stripVendor(e)) == bare;
}

}  // namespace

KeyService::KeyService(Store& store, const Clock& clock, std::string hashSecret, int64_t cacheTtlMs)
    : store_(store), clock_(clock), hashSecret_(std::move(hashSecret)), cacheTtlMs_(cacheTtlMs) {}

std::string KeyService::hashKey(std::string_view plainKey) const {
  return crypto::toHex(crypto::hmacSha256(hashSecret_, plainKey));
}

bool KeyPatch::empty() const {
  return !permissions && !expiresAtMs && !concurrencyLimit && !rateWindowMinutes && !rateRequests &&
         !rateTokens && !rateCostMicroUsd && !dailyCostMicroUsd && !totalCostMicroUsd &&
         !weeklyCostMicroUsd && !weeklyResetDay && !weeklyResetHour && !ratePpm && !activationMs &&
         !modelMode && !models && !bindings;
}

namespace {

ApiKeyRecord recordOf(const NewKeyOptions& o) {
  ApiKeyRecord r;
  r.name = o.name;
  r.expiresAtMs = o.expiresAtMs;
  r.permissions = o.permissions;
  r.concurrencyLimit = o.concurrencyLimit;
  r.rateWindowMinutes = o.rateWindowMinutes;
  r.rateRequests = o.rateRequests;
  r.rateTokens = o.rateTokens;
  r.modelMode = o.modelMode;
  r.models = o.models;
  r.bindings = o.bindings;
  r.rateCostMicroUsd = o.rateCostMicroUsd;
  r.dailyCostMicroUsd = o.dailyCostMicroUsd;
  r.totalCostMicroUsd = o.totalCostMicroUsd;
  r.weeklyCostMicroUsd = o.weeklyCostMicroUsd;
  r.weeklyResetDay = o.weeklyResetDay;
  r.weeklyResetHour = o.weeklyResetHour;
  r.ratePpm = o.ratePpm;
  r.activationMs = o.activationMs;
  return r;
}

}  // namespace

Status KeyService::validateOptions(const NewKeyOptions& o, InputSpelling spelling) {
  return validateRecord(recordOf(o), spelling);
}

Status KeyService::validateRecord(const ApiKeyRecord& o, InputSpelling spelling) {
  const bool cli = spelling == InputSpelling::kCliFlags;
  auto nm = [cli](const char* flag, const char* json) { return std::string(cli ? flag : json); };
  if (o.name.empty() || o.name.size() > 100) {
    return invalidArgument("key name must be 1..100 characters");
  }
  for (const auto& p : o.permissions) {
    if (p != "claude" && p != "gemini" && p != "openai" && p != "bedrock") {
      return invalidArgument("unknown permission \"" + p +
                             "\" (expected claude, gemini, openai, bedrock)");
    }
  }
  struct {
    int64_t v;
    std::string name;
  } counts[] = {
      {o.concurrencyLimit, nm("--concurrency", "concurrency_limit")},
      {o.rateWindowMinutes, nm("--rate-window-min", "rate_window_minutes")},
      {o.rateRequests, nm("--rate-requests", "rate_requests")},
      {o.rateTokens, nm("--rate-tokens", "rate_tokens")},
      {o.rateCostMicroUsd, nm("--rate-cost", "rate_cost_usd")},
      {o.dailyCostMicroUsd, nm("--daily-cost", "daily_cost_usd")},
      {o.totalCostMicroUsd, nm("--total-cost", "total_cost_usd")},
      {o.weeklyCostMicroUsd, nm("--weekly-cost", "weekly_cost_usd")},
  };
  for (const auto& c : counts) {
    if (c.v < 0) {
      return invalidArgument(c.name + " must not be negative");
    }
  }
  for (const auto& c : {counts[4], counts[5], counts[6], counts[7]}) {
    if (c.v > kMaxCostMicroUsd) {
      return invalidArgument(c.name + ": at most 1000000000 USD");
    }
  }
  if (o.rateWindowMinutes == 0) {
    for (const auto& c : {counts[2], counts[3], counts[4]}) {
      if (c.v > 0) {
        return invalidArgument(c.name + " needs " + nm("--rate-window-min", "rate_window_minutes"));
      }
    }
  }
  if (o.weeklyResetDay < 1 || o.weeklyResetDay > 7) {
    return invalidArgument(nm("--weekly-reset-day", "weekly_reset_day") +
                           ": expected 1 (Monday) .. 7 (Sunday), got " +
                           std::to_string(o.weeklyResetDay));
  }
  if (o.weeklyResetHour < 0 || o.weeklyResetHour > 23) {
    return invalidArgument(nm("--weekly-reset-hour", "weekly_reset_hour") +
                           ": expected 0..23, got " + std::to_string(o.weeklyResetHour));
  }
  if (o.ratePpm <= 0 || o.ratePpm > 1000LL * 1'000'000) {
    return invalidArgument(nm("--rate", "rate") + ": must be above 0 and at most 1000");
  }
  if (o.activationMs < 0 || o.activationMs > kMaxActivationMs) {
    return invalidArgument(
        nm("--activation-hours / --activation-days", "activation_hours / activation_days") +
        ": at most 3650 days");
  }
  // Before its first use an activation key has no expiry of its own; afterwards expiresAtMs is
  // the one the activation set.
  if (o.activationMs > 0 && o.activatedAtMs == 0 && o.expiresAtMs != 0) {
    return invalidArgument(cli ? "--expires-at and --activation-hours / --activation-days exclude "
                                 "each other"
                               : "expires_at and activation_hours / activation_days exclude each "
                                 "other");
  }
  if (o.modelMode != ModelFilterMode::kNone && o.models.empty()) {
    return invalidArgument("a model allow/deny list needs at least one model");
  }
  return Status::ok();
}

Status KeyService::validateBindings(const std::map<std::string, std::string>& bindings) {
  static const std::string kGroup = "group:";
  for (const auto& [provider, target] : bindings) {
    if (provider != "claude" && provider != "gemini" && provider != "openai" &&
        provider != "bedrock") {
      return invalidArgument("unknown binding provider \"" + provider +
                             "\" (expected claude, gemini, openai, bedrock)");
    }
    if (target.compare(0, kGroup.size(), kGroup) == 0) {
      std::string group = target.substr(kGroup.size());
      bool ok = !group.empty() && group.size() <= 64 &&
                std::all_of(group.begin(), group.end(), [](char c) {
                  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
                });
      if (!ok) {
        return invalidArgument("binding " + provider +
                               ": group name must be 1..64 characters "
                               "of A-Z a-z 0-9 _ . -, got \"" +
                               group + "\"");
      }
    } else if (!isUuid(target)) {
      return invalidArgument("binding " + provider +
                             ": expected an account id or group:<name>, got \"" + target + "\"");
    }
  }
  return Status::ok();
}

Status KeyService::checkBindings(const std::map<std::string, std::string>& bindings) {
  Status v = validateBindings(bindings);
  if (!v) {
    return v;
  }
  for (const auto& [provider, target] : bindings) {
    if (target.rfind("group:", 0) == 0) {
      continue;  // a group may be filled later; an empty group simply has no account to offer
    }
    auto acct = store_.accounts().get(target);
    if (!acct) {
      return acct.status();
    }
    if (!acct->has_value()) {
      return invalidArgument("binding " + provider + ": no account with id " + target);
    }
    const AccountRecord& a = **acct;
    std::string accountProvider =
        a.provider.empty() ? AccountService::providerOf(a.type) : a.provider;
    if (accountProvider != provider) {
      return invalidArgument("binding " + provider + ": account " + target + " (" + a.name +
                             ") is a " + a.type + " account of provider " + accountProvider);
    }
  }
  return Status::ok();
}

StatusOr<CreatedKey> KeyService::create(const NewKeyOptions& opts, InputSpelling spelling) {
  Status v = validateOptions(opts, spelling);
  if (!v) {
    return v;
  }
  v = checkBindings(opts.bindings);
  if (!v) {
    return v;
  }
  CreatedKey out;
  out.plainKey = std::string(kKeyPrefix) + crypto::toHex(crypto::randomBytes(32));
  ApiKeyRecord& r = out.record;
  r.id = crypto::uuidV4();
  r.name = opts.name;
  r.hash = hashKey(out.plainKey);
  r.enabled = true;
  r.createdAtMs = clock_.nowUnixMs();
  r.updatedAtMs = r.createdAtMs;
  r.expiresAtMs = opts.expiresAtMs;
  r.permissions = opts.permissions;
  r.concurrencyLimit = opts.concurrencyLimit;
  r.rateWindowMinutes = opts.rateWindowMinutes;
  r.rateRequests = opts.rateRequests;
  r.rateTokens = opts.rateTokens;
  r.modelMode = opts.modelMode;
  r.models = opts.models;
  r.bindings = opts.bindings;
  r.rateCostMicroUsd = opts.rateCostMicroUsd;
  r.dailyCostMicroUsd = opts.dailyCostMicroUsd;
  r.totalCostMicroUsd = opts.totalCostMicroUsd;
  r.weeklyCostMicroUsd = opts.weeklyCostMicroUsd;
  r.weeklyResetDay = opts.weeklyResetDay;
  r.weeklyResetHour = opts.weeklyResetHour;
  r.ratePpm = opts.ratePpm;
  r.activationMs = opts.activationMs;
  r.activatedAtMs = 0;
  Status s = store_.keys().create(r);
  if (!s) {
    return s;
  }
  return out;
}

StatusOr<KeyRecordPtr> KeyService::authenticate(std::string_view plainKey) {
  if (!isWellFormedKey(plainKey)) {
    return Status(Code::kUnauthenticated, "Invalid API key format");
  }
  std::string hash = hashKey(plainKey);
  int64_t now = clock_.monotonicMs();
  KeyRecordPtr rec;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end() && it->second.expiresMs > now) {
      rec = it->second.rec;
    }
  }
  if (!rec) {
    auto found = store_.keys().getByHash(hash);
    if (!found) {
      return Status(Code::kUnavailable, "key storage unavailable: " + found.status().message());
    }
    if (!found->has_value()) {
      return Status(Code::kUnauthenticated, "API key not found");
    }
    // Constant-time check of the stored hash against ours (the lookup itself is by hash).
    if (!crypto::constantTimeEquals((*found)->hash, hash)) {
      return Status(Code::kUnauthenticated, "API key not found");
    }
    rec = std::make_shared<const ApiKeyRecord>(std::move(**found));
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() > 100000) {
      cache_.clear();
    }
    cache_[hash] = CacheEntry{rec, now + cacheTtlMs_};
  }
  if (!rec->enabled) {
    return Status(Code::kUnauthenticated, "API key is disabled");
  }
  if (rec->activationMs > 0 && rec->activatedAtMs == 0) {
    auto activated = activate(rec);
    if (!activated) {
      return activated.status();
    }
    rec = std::move(*activated);
  }
  if (rec->expiresAtMs > 0 && clock_.nowUnixMs() >= rec->expiresAtMs) {
    return Status(Code::kUnauthenticated, "API key has expired");
  }
  return rec;
}

// The first authenticated use of an activation key starts its lifetime. The stored record is
// read again first: another process (or thread) may have activated it already, and its earlier
// activation must stand (KeyStore has no compare-and-set; this narrows the race to the gap
// between this read and the write, where both writers pick nearly the same instant).
StatusOr<KeyRecordPtr> KeyService::activate(const KeyRecordPtr& rec) {
  auto fresh = store_.keys().getById(rec->id);
  if (!fresh) {
    return Status(Code::kUnavailable, "key storage unavailable: " + fresh.status().message());
  }
  if (!fresh->has_value()) {
    return Status(Code::kUnauthenticated, "API key not found");
  }
  ApiKeyRecord r = std::move(**fresh);
  if (r.activationMs > 0 && r.activatedAtMs == 0) {
    int64_t now = clock_.nowUnixMs();
    r.activatedAtMs = now;
    r.expiresAtMs = now + r.activationMs;
    r.updatedAtMs = now;
    Status s = store_.keys().update(r);
    if (!s) {
      return Status(Code::kUnavailable, "key storage unavailable: " + s.message());
    }
  }
  auto out = std::make_shared<const ApiKeyRecord>(std::move(r));
  std::lock_guard<std::mutex> lock(mu_);
  cache_[out->hash] = CacheEntry{out, clock_.monotonicMs() + cacheTtlMs_};
  return out;
}

void KeyService::invalidate(const std::string& hash) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(hash);
}

StatusOr<std::vector<ApiKeyRecord>> KeyService::list() {
  return store_.keys().list();
}

StatusOr<ApiKeyRecord> KeyService::get(const std::string& id) {
  auto r = store_.keys().getById(id);
  if (!r) {
    return r.status();
  }
  if (!r->has_value()) {
    return notFound("no key with id " + id);
  }
  return std::move(**r);
}

Status KeyService::setEnabled(const std::string& id, bool enabled) {
  auto r = get(id);
  if (!r) {
    return r.status();
  }
  r->enabled = enabled;
  r->updatedAtMs = clock_.nowUnixMs();
  Status s = store_.keys().update(*r);
  invalidate(r->hash);
  return s;
}

StatusOr<ApiKeyRecord> KeyService::setBindings(const std::string& id,
                                               const std::map<std::string, std::string>& bindings) {
  Status v = checkBindings(bindings);
  if (!v) {
    return v;
  }
  auto r = get(id);
  if (!r) {
    return r.status();
  }
  r->bindings = bindings;
  r->updatedAtMs = clock_.nowUnixMs();
  Status s = store_.keys().update(*r);
  invalidate(r->hash);
  if (!s) {
    return s;
  }
  return std::move(*r);
}

StatusOr<ApiKeyRecord> KeyService::update(const std::string& id, const KeyPatch& p,
                                          InputSpelling spelling) {
  auto got = get(id);
  if (!got) {
    return got.status();
  }
  ApiKeyRecord r = std::move(*got);
  if (p.bindings) {
    Status v = checkBindings(*p.bindings);
    if (!v) {
      return v;
    }
    r.bindings = *p.bindings;
  }
  auto set = [](const std::optional<int64_t>& v, int64_t* dest) {
    if (v) {
      *dest = *v;
    }
  };
  if (p.permissions) {
    r.permissions = *p.permissions;
  }
  set(p.concurrencyLimit, &r.concurrencyLimit);
  set(p.rateWindowMinutes, &r.rateWindowMinutes);
  set(p.rateRequests, &r.rateRequests);
  set(p.rateTokens, &r.rateTokens);
  set(p.rateCostMicroUsd, &r.rateCostMicroUsd);
  set(p.dailyCostMicroUsd, &r.dailyCostMicroUsd);
  set(p.totalCostMicroUsd, &r.totalCostMicroUsd);
  set(p.weeklyCostMicroUsd, &r.weeklyCostMicroUsd);
  set(p.weeklyResetDay, &r.weeklyResetDay);
  set(p.weeklyResetHour, &r.weeklyResetHour);
  set(p.ratePpm, &r.ratePpm);
  if (p.modelMode) {
    r.modelMode = *p.modelMode;
  }
  if (p.models) {
    r.models = *p.models;
  }
  if (p.activationMs) {
    if (*p.activationMs == 0) {
      // Activation off: an expiry it set goes with it (unless a new one is given below).
      if (r.activationMs > 0 && r.activatedAtMs > 0) {
        r.expiresAtMs = 0;
      }
      r.activatedAtMs = 0;
    } else if (r.activatedAtMs > 0) {
      r.expiresAtMs = r.activatedAtMs + *p.activationMs;  // still counted from the first use
    }
    r.activationMs = *p.activationMs;
  }
  if (p.expiresAtMs) {
    // With activation on, the expiry is the activation's (0 until the first use).
    if (r.activationMs > 0 && (*p.expiresAtMs != 0 || r.activatedAtMs > 0)) {
      return invalidArgument(spelling == InputSpelling::kCliFlags
                                 ? "--expires-at: the key has activation expiry; turn it off "
                                   "with --activation-hours 0 to set a fixed expiry"
                                 : "expires_at: the key has activation expiry; turn it off with "
                                   "activation_hours 0 to set a fixed expiry");
    }
    r.expiresAtMs = *p.expiresAtMs;
  }
  Status v = validateRecord(r, spelling);
  if (!v) {
    return v;
  }
  r.updatedAtMs = clock_.nowUnixMs();
  Status s = store_.keys().update(r);
  invalidate(r.hash);
  if (!s) {
    return s;
  }
  return r;
}

Status KeyService::remove(const std::string& id) {
  auto r = get(id);
  if (!r) {
    return r.status();
  }
  Status s = store_.keys().remove(id);
  invalidate(r->hash);
  return s;
}

bool isWellFormedKey(std::string_view key) {
  if (key.size() != kKeyPrefix.size() + kKeyHexLength || key.substr(0, 3) != kKeyPrefix) {
    return false;
  }
  return std::all_of(key.begin() + 3, key.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool isCredentialHeader(std::string_view name) {
  return iequals(name, "x-api-key") || iequals(name, "x-goog-api-key") ||
         iequals(name, "authorization") || iequals(name, "api-key") ||
         iequals(name, "proxy-authorization") || iequals(name, "cookie");
}

std::string extractKey(const HeaderList& headers, std::string_view query) {
  for (std::string_view name : {"x-api-key", "x-goog-api-key", "authorization", "api-key"}) {
    const std::string* v = findHeader(headers, name);
    if (v == nullptr || v->empty()) {
      continue;
    }
    std::string_view val(*v);
    if (name == "authorization") {
      if (val.size() > 7 && iequals(val.substr(0, 7), "bearer ")) {
        val.remove_prefix(7);
      }
      while (!val.empty() && val.front() == ' ') {
        val.remove_prefix(1);
      }
    }
    if (!val.empty()) {
      return std::string(val);
    }
  }
  size_t p = 0;
  while (p < query.size()) {
    size_t amp = query.find('&', p);
    std::string_view part = query.substr(p, amp == std::string_view::npos ? amp : amp - p);
    if (part.substr(0, 4) == "key=" && part.size() > 4) {
      return std::string(part.substr(4));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    p = amp + 1;
  }
  return {};
}

std::string stripKeyParam(std::string_view query) {
  std::string out;
  size_t p = 0;
  while (p < query.size()) {
    size_t amp = query.find('&', p);
    std::string_view part = query.substr(p, amp == std::string_view::npos ? amp : amp - p);
    if (part.substr(0, 4) != "key=" && !part.empty()) {
      if (!out.empty()) {
        out.push_back('&');
      }
      out.append(part);
    }
    if (amp == std::string_view::npos) {
      break;
    }
    p = amp + 1;
  }
  return out;
}

bool hasPermission(const ApiKeyRecord& rec, std::string_view permission) {
  if (permission.empty() || rec.permissions.empty()) {
    return true;
  }
  return std::any_of(rec.permissions.begin(), rec.permissions.end(),
                     [&](const std::string& p) { return p == permission || p == "all"; });
}

bool modelAllowed(const ApiKeyRecord& rec, std::string_view model) {
  if (rec.modelMode == ModelFilterMode::kNone) {
    return true;
  }
  bool listed = std::any_of(rec.models.begin(), rec.models.end(),
                            [&](const std::string& e) { return entryMatches(e, model); });
  return rec.modelMode == ModelFilterMode::kAllow ? listed : !listed;
}

}  // namespace rg
